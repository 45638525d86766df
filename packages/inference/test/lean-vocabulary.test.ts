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

/** Wraps a session, recording the byte size of every `logits` output and the input widths. */
function recording(session: Session, logitsBytes: number[], widths: number[]): Session {
  return new Proxy(session, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver) as unknown;
      return async (...args: Parameters<Session['run']>) => {
        widths.push(args[0].input_ids?.dims[1] ?? 0);
        const out = await target.run(...args);
        logitsBytes.push(out.logits?.data.byteLength ?? 0);
        return out;
      };
    },
  });
}

describe('item 13: prefill logits bounded', () => {
  it('a prefill over the budget runs in chunks of positions, none returning more logits than the budget; same tokens', async () => {
    // 3 positions of logits for the 4 rows: the longest prompt (about 20 tokens) needs 7 chunks.
    const budget = 4 * 3 * VOCAB * 4;
    const bounded = await TextGenerationPipeline.load(dir, { prefillLogitsBytes: budget, prefillThread: false });
    const bytes: number[] = [];
    const widths: number[] = [];
    Object.defineProperty(bounded, 'session', { value: recording(bounded.session, bytes, widths) });
    try {
      const reference = await plain.generate(PROMPTS, { maxNewTokens: 12, minNewTokens: 12 });
      const mine = await bounded.generate(PROMPTS, { maxNewTokens: 12, minNewTokens: 12 });
      expect(mine.map((r) => r.tokenIds)).toEqual(reference.map((r) => r.tokenIds));
      expect(Math.max(...bytes)).toBeLessThanOrEqual(budget);
      // Only the last chunk's logits are copied out; the chunks before ask for the presents alone.
      const chunkCount = Math.ceil(Math.max(...PROMPTS.map((p) => plain.prepare({ input: p }).promptIds.length)) / 3);
      expect(bytes.slice(0, chunkCount - 1).every((b) => b === 0)).toBe(true);
      expect(bytes[chunkCount - 1]).toBeGreaterThan(0);
      const longest = Math.max(...PROMPTS.map((p) => plain.prepare({ input: p }).promptIds.length));
      const chunks = Array.from({ length: Math.ceil(longest / 3) }, (_, i) => Math.min(3, longest - 3 * i));
      expect(widths.slice(0, chunks.length)).toEqual(chunks);
      expect(widths.slice(chunks.length).every((w) => w === 1)).toBe(true);
    } finally {
      await bounded.release();
    }
  });

  it('within the budget (the default 256 MiB here) the prompt is one run', async () => {
    const widths: number[] = [];
    const session = plain.session;
    Object.defineProperty(plain, 'session', { value: recording(session, [], widths), configurable: true });
    try {
      await plain.generate(PROMPTS, { maxNewTokens: 2 });
      expect(widths[0]).toBe(Math.max(...PROMPTS.map((p) => plain.prepare({ input: p }).promptIds.length)));
      expect(widths.slice(1)).toEqual([1]);
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
