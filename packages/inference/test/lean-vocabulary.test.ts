/**
 * Issue 13, items 13-15: the large-vocabulary path stays lean, with the same answers.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_BART_ID, TINY_LLAMA_ID, llamaSpecialTokenIds } from '@inferq/tiny-models';
import { argmax, SummarizationPipeline, TextGenerationPipeline, TopPLogitsWarper, type Session } from '../src/index.js';
import { TICKETS, tinyModels } from './helpers.js';

const PROMPTS = [
  'The refund never arrived and support is slow',
  'Hello there',
  'Where is my order? I paid two weeks ago and the tracking page shows nothing at all.',
  'bad',
];
const VOCAB = llamaSpecialTokenIds().vocabSize;

let dir: string;
let bartDir: string;
let plain: TextGenerationPipeline;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_LLAMA_ID, TINY_BART_ID]);
  cleanup = models.cleanup;
  dir = models.dirs[TINY_LLAMA_ID]!;
  bartDir = models.dirs[TINY_BART_ID]!;
  plain = await TextGenerationPipeline.load(dir, { prefillThread: false }); // every run on `session`, to record them
});
afterAll(async () => {
  await plain?.release();
  await cleanup?.();
});

/** Wraps a session, recording each run's input width, requested outputs and logits bytes. */
function recording(session: Session, runs: { width: number; outputs: readonly string[] | undefined; logitsBytes: number }[]): Session {
  return new Proxy(session, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver) as unknown;
      return async (...args: Parameters<Session['run']>) => {
        const out = await target.run(...args);
        runs.push({ width: args[0].input_ids?.dims[1] ?? 0, outputs: args[1], logitsBytes: out.logits?.data.byteLength ?? 0 });
        return out;
      };
    },
  });
}

describe('item 13: prefill logits bounded', () => {
  it('a graph without num_logits_to_keep prefills all but the last position without logits, then the last: [rows, 1, vocab]', async () => {
    const runs: { width: number; outputs: readonly string[] | undefined; logitsBytes: number }[] = [];
    const session = plain.session;
    Object.defineProperty(plain, 'session', { value: recording(session, runs), configurable: true });
    try {
      const prepared = PROMPTS.map((input) => plain.prepare({ input, maxNewTokens: 3, minNewTokens: 3 }));
      const longest = Math.max(...prepared.map((p) => p.promptIds.length));
      const mine = await plain.run(prepared);
      expect(runs[0]).toEqual({ width: longest - 1, outputs: session.outputNames.filter((n) => n.startsWith('present')), logitsBytes: 0 });
      expect(runs[1]).toMatchObject({ width: 1, logitsBytes: PROMPTS.length * VOCAB * 4 });
      expect(Math.max(...runs.map((r) => r.logitsBytes))).toBe(PROMPTS.length * VOCAB * 4);
      // The first token is what one full run of the prompts gives (the logits of every position, as before).
      const full = await TextGenerationPipeline.load(dir, { prefillThread: false });
      const rows = prepared.length;
      const ids = new BigInt64Array(rows * longest).fill(BigInt(full.tokenizer.padId));
      const mask = new BigInt64Array(rows * longest);
      const positions = new BigInt64Array(rows * longest).fill(1n);
      prepared.forEach((p, r) => p.promptIds.forEach((t, i) => {
        const at = r * longest + longest - p.promptIds.length + i;
        ids[at] = BigInt(t);
        mask[at] = 1n;
        positions[at] = BigInt(i);
      }));
      const feeds: Parameters<Session['run']>[0] = {
        input_ids: { type: 'int64', data: ids, dims: [rows, longest] },
        attention_mask: { type: 'int64', data: mask, dims: [rows, longest] },
        position_ids: { type: 'int64', data: positions, dims: [rows, longest] },
      };
      for (const info of full.session.inputInfo.filter((i) => i.name.startsWith('past_key_values.'))) {
        feeds[info.name] = { type: 'float32', data: new Float32Array(0), dims: [rows, info.dims[1] as number, 0, info.dims[3] as number] };
      }
      const { logits } = await full.session.run(feeds);
      await full.release();
      const firsts = prepared.map((_, r) => {
        const row = logits!.data.subarray((r * longest + longest - 1) * VOCAB, (r * longest + longest) * VOCAB);
        return row.indexOf(Math.max(...row));
      });
      expect(mine.map((o) => o.tokenIds[0])).toEqual(firsts);
    } finally {
      Object.defineProperty(plain, 'session', { value: session, configurable: true });
    }
  });
});

/** Top-p by a full sort (value desc, id asc), the rule the partial selection must keep. */
function sortedTopP(logits: Float32Array, p: number): Float32Array {
  const out = Float32Array.from(logits);
  const order = [...logits.keys()].filter((i) => logits[i]! > Number.NEGATIVE_INFINITY).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (order.length === 0) return out;
  const max = logits[order[0]!]!;
  const sum = order.reduce((s, i) => s + Math.exp(logits[i]! - max), 0);
  let cumulative = 0;
  let keep = 0;
  while (keep < order.length) {
    cumulative += Math.exp(logits[order[keep]!]! - max) / sum;
    keep++;
    if (cumulative >= p) break;
  }
  for (const i of order.slice(keep)) out[i] = Number.NEGATIVE_INFINITY;
  return out;
}

describe('item 15: top-p by partial selection', () => {
  it('keeps exactly the tokens a full sort keeps, ties and -Infinity included', () => {
    const logit = fc.oneof(fc.integer({ min: -8, max: 8 }).map((x) => x / 2), fc.constant(Number.NEGATIVE_INFINITY), fc.float({ min: -10, max: 10, noNaN: true }));
    fc.assert(
      fc.property(fc.array(logit, { minLength: 1, maxLength: 300 }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (values, p) => {
        const logits = Float32Array.from(values);
        const mine = Float32Array.from(logits);
        new TopPLogitsWarper(p).apply(mine);
        expect(Array.from(mine)).toEqual(Array.from(sortedTopP(logits, p)));
      }),
      { numRuns: 300, seed: 15 },
    );
  });

  it('on a 152k vocabulary row', () => {
    const logits = Float32Array.from({ length: 151_936 }, (_, i) => Math.sin(i * 12.9898) * 8);
    const mine = Float32Array.from(logits);
    new TopPLogitsWarper(0.9).apply(mine);
    const reference = sortedTopP(logits, 0.9);
    expect(mine.filter((v) => v > Number.NEGATIVE_INFINITY).length).toBeGreaterThan(100);
    expect(Array.from(mine)).toEqual(Array.from(reference));
  });
});

describe('item 14: encoder-decoder beams share the encoder states and cross-attention cache', () => {
  it('a beam step feeds the same encoder arrays as the step before; they are copied only when a request finishes', async () => {
    const pipeline = await SummarizationPipeline.load(bartDir);
    const fed: { states: unknown; cross: unknown; rows: number }[] = [];
    const decoder = pipeline.decoder;
    Object.defineProperty(pipeline, 'decoder', {
      value: new Proxy(decoder, {
        get(target, key, receiver) {
          if (key !== 'run') return Reflect.get(target, key, receiver) as unknown;
          return (...args: Parameters<Session['run']>) => {
            const feeds = args[0];
            fed.push({ states: feeds.encoder_hidden_states?.data, cross: feeds['past_key_values.0.encoder.key']?.data, rows: feeds.input_ids?.dims[0] ?? 0 });
            return target.run(...args);
          };
        },
      }),
    });
    try {
      const texts = [TICKETS[0]!, TICKETS[3]!];
      const shared = await pipeline.summarize(texts, { numBeams: 3, maxNewTokens: 12 });
      const batch = fed.splice(0);
      const alone = await Promise.all(texts.map(async (t) => (await pipeline.summarize([t], { numBeams: 3, maxNewTokens: 12 }))[0]!));
      expect(shared.map((r) => r.tokenIds)).toEqual(alone.map((r) => r.tokenIds));
      // Within the two-request batch: a new encoder array only where the rows' requests changed.
      const changes = batch.filter((f, i) => i > 1 && f.states !== batch[i - 1]!.states).length;
      const rowCountChanges = batch.filter((f, i) => i > 1 && f.rows !== batch[i - 1]!.rows).length;
      expect(batch.length).toBeGreaterThan(4);
      expect(changes).toBeLessThanOrEqual(rowCountChanges);
      expect(batch.filter((f, i) => i > 1 && f.cross !== batch[i - 1]!.cross).length).toBeLessThanOrEqual(rowCountChanges);
    } finally {
      await pipeline.release();
    }
  });
});

describe('the greedy pick, most of a large-vocabulary step outside session.run', () => {
  it('argmax (four running maxima, then the first index of the largest) equals a plain scan, ties to the first', () => {
    const plainArgmax = (l: Float32Array) => l.reduce((best, v, i) => (v > l[best]! ? i : best), 0);
    const logit = fc.oneof(fc.integer({ min: -4, max: 4 }).map((x) => x / 2), fc.constant(Number.NEGATIVE_INFINITY), fc.float({ noNaN: true }));
    fc.assert(
      fc.property(fc.array(logit, { minLength: 1, maxLength: 40 }), (values) => {
        const l = Float32Array.from(values);
        expect(argmax(l)).toBe(plainArgmax(l));
      }),
      { numRuns: 500, seed: 16 },
    );
  });
});
