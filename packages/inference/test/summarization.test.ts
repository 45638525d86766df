import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoModelForSeq2SeqLM, AutoTokenizer, env, pipeline as hfPipeline, type PreTrainedModel, type PreTrainedTokenizer } from '@huggingface/transformers';
import { TINY_BART_ID } from '@inferq/tiny-models';
import { SummarizationPipeline, type FloatTensor, type GenerationOptions, type Tensor } from '../src/index.js';
import { TICKETS, tinyModels, upToEos, useLocalModels } from './helpers.js';

const EOS = 2;
const START = 2;

let ours: SummarizationPipeline;
let hfModel: PreTrainedModel;
let hfTokenizer: PreTrainedTokenizer;
let modelsDir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_BART_ID]);
  cleanup = models.cleanup;
  modelsDir = models.modelsDir;
  useLocalModels(env, modelsDir);
  ours = await SummarizationPipeline.load(models.dirs[TINY_BART_ID]!);
  hfModel = await AutoModelForSeq2SeqLM.from_pretrained(TINY_BART_ID, { dtype: 'fp32' });
  hfTokenizer = await AutoTokenizer.from_pretrained(TINY_BART_ID);
});
afterAll(async () => {
  await ours?.release();
  await hfModel?.dispose();
  await cleanup?.();
});

async function hfGenerate(texts: string[], maxNewTokens: number): Promise<number[][]> {
  const inputs = hfTokenizer(texts, { padding: true, truncation: true });
  const out = (await hfModel.generate({ ...inputs, max_new_tokens: maxNewTokens })) as unknown as { tolist(): bigint[][] };
  return out.tolist().map((row) => row.map(Number).slice(1)); // drop the decoder start token
}

/** Decoder logits of the last position for a full decoder sequence, without a cache. */
async function uncachedLogits(inputIds: readonly number[], decoderIds: readonly number[]): Promise<Float32Array> {
  const dims = [1, inputIds.length];
  const mask: Tensor = { type: 'int64', data: new BigInt64Array(inputIds.length).fill(1n), dims };
  const { last_hidden_state: states } = await ours.encoder.run({ input_ids: { type: 'int64', data: BigInt64Array.from(inputIds, BigInt), dims }, attention_mask: mask });
  const feeds: Record<string, Tensor> = {
    input_ids: { type: 'int64', data: BigInt64Array.from(decoderIds, BigInt), dims: [1, decoderIds.length] },
    encoder_attention_mask: mask,
    encoder_hidden_states: { type: 'float32', ...(states as FloatTensor) },
    use_cache_branch: { type: 'bool', data: Uint8Array.of(0), dims: [1] },
  };
  const heads = ours.config.decoder_attention_heads as number;
  const headDim = (ours.config.d_model as number) / heads;
  for (const name of ours.decoder.inputNames.filter((n) => n.startsWith('past_key_values.'))) {
    feeds[name] = { type: 'float32', data: new Float32Array(0), dims: [1, heads, 0, headDim] };
  }
  const { logits } = await ours.decoder.run(feeds, ['logits']);
  const vocab = logits!.dims[2]!;
  return logits!.data.slice((decoderIds.length - 1) * vocab, decoderIds.length * vocab);
}

function forcedEos(logprobs: number[], generated: number, maxNewTokens: number): number[] {
  return generated === maxNewTokens - 1 ? logprobs.map((_, t) => (t === EOS ? 0 : Number.NEGATIVE_INFINITY)) : logprobs;
}

function logSoftmax(l: Float32Array): number[] {
  const max = Math.max(...l);
  const lse = max + Math.log(Array.from(l).reduce((s, v) => s + Math.exp(v - max), 0));
  return Array.from(l, (v) => v - lse);
}

async function summarize(texts: string[], options: GenerationOptions) {
  return ours.summarize(texts, options);
}

describe('greedy summarization matches transformers.js generate', () => {
  it('one text at a time: the same token ids', async () => {
    for (const text of TICKETS) {
      const [reference] = await hfGenerate([text], 20);
      const [mine] = await summarize([text], { maxNewTokens: 20 });
      expect(mine!.tokenIds).toEqual(reference);
    }
  });

  it('a batch of inputs of different lengths: the same tokens up to each row’s EOS', async () => {
    // transformers.js keeps generating for rows that finished (it stops when all have); ours
    // stops each row at its EOS, so compare up to it.
    const references = await hfGenerate(TICKETS, 20);
    const mine = await summarize(TICKETS, { maxNewTokens: 20 });
    mine.forEach((m, i) => expect(m.tokenIds).toEqual(upToEos(references[i]!, [EOS])));
    expect(new Set(mine.map((m) => m.tokenIds.length)).size).toBeGreaterThan(1);
  });

  it('the summarization pipeline text is the same', async () => {
    const summarizer = await hfPipeline('summarization', TINY_BART_ID, { dtype: 'fp32' });
    try {
      for (const text of TICKETS.slice(0, 2)) {
        const [reference] = (await summarizer(text, { max_new_tokens: 20 })) as { summary_text: string }[];
        const [mine] = await summarize([text], { maxNewTokens: 20 });
        expect(mine!.text).toBe(reference!.summary_text);
      }
    } finally {
      await summarizer.dispose();
    }
  });
});

describe('summarization decoding', () => {
  it('the KV cache gives the tokens of re-running the whole decoder sequence each step', async () => {
    for (const text of TICKETS.slice(0, 3)) {
      const inputIds = ours.prepare({ text }).inputIds;
      const tokens: number[] = [];
      while (tokens.length < 12 && tokens.at(-1) !== EOS) {
        const lp = forcedEos(Array.from(await uncachedLogits(inputIds, [START, ...tokens])), tokens.length, 12);
        tokens.push(lp.indexOf(Math.max(...lp)));
      }
      const [mine] = await summarize([text], { maxNewTokens: 12 });
      expect(mine!.tokenIds).toEqual(tokens);
    }
  });

  it('beam search finds what a plain reference beam search over uncached logits finds', async () => {
    const numBeams = 3;
    const maxNewTokens = 8;
    const texts = [TICKETS[0]!, TICKETS[2]!];
    const mine = await summarize(texts, { numBeams, maxNewTokens, earlyStopping: true });
    for (const [i, text] of texts.entries()) {
      const inputIds = ours.prepare({ text }).inputIds;
      let beams = [{ tokens: [] as number[], score: 0 }];
      const hyps: { tokens: number[]; score: number }[] = [];
      for (let step = 1; step <= maxNewTokens && hyps.length < numBeams; step++) {
        const cands: { tokens: number[]; s: number; b: number; t: number }[] = [];
        for (const [b, beam] of beams.entries()) {
          const lp = forcedEos(logSoftmax(await uncachedLogits(inputIds, [START, ...beam.tokens])), beam.tokens.length, maxNewTokens);
          lp.forEach((v, t) => Number.isFinite(v) && cands.push({ tokens: [...beam.tokens, t], s: beam.score + v, b, t }));
        }
        cands.sort((x, y) => y.s - x.s || x.b - y.b || x.t - y.t);
        const next: typeof beams = [];
        for (const [rank, c] of cands.slice(0, 2 * numBeams).entries()) {
          if (next.length === numBeams) break;
          if (c.t === EOS) {
            if (rank < numBeams) hyps.push({ tokens: c.tokens, score: c.s / step });
          } else next.push({ tokens: c.tokens, score: c.s });
        }
        beams = next;
      }
      hyps.push(...beams.map((b) => ({ tokens: b.tokens, score: b.score / b.tokens.length })));
      const best = hyps.sort((x, y) => y.score - x.score)[0]!;
      expect(mine[i]!.tokenIds).toEqual(best.tokens);
    }
  });

  it.each<[string, GenerationOptions]>([
    ['greedy', { maxNewTokens: 16 }],
    ['seeded sampling', { maxNewTokens: 16, doSample: true, seed: 11, temperature: 0.8, topP: 0.9 }],
    ['beam search', { maxNewTokens: 10, numBeams: 3 }],
  ])('%s gives every text the same output batched as alone', async (_, options) => {
    const batched = await summarize(TICKETS, options);
    for (const [i, text] of TICKETS.entries()) expect(batched[i]).toEqual((await summarize([text], options))[0]);
  });

  it('reports finish reasons and token counts, and stops rows independently', async () => {
    const out = await summarize(TICKETS, { maxNewTokens: 20 });
    for (const [i, o] of out.entries()) {
      expect(o.inputTokens).toBe(ours.prepare({ text: TICKETS[i]! }).inputIds.length);
      expect(o.outputTokens).toBe(o.tokenIds.length);
      expect(o.tokenIds.at(-1)).toBe(EOS); // natural EOS, or forced at the limit (forced_eos_token_id)
      expect(o.finishReason).toBe(o.tokenIds.length < 20 ? 'stop' : 'length');
      expect(o.text).toBe(ours.tokenizer.decode(o.tokenIds));
    }
    expect(new Set(out.map((o) => o.finishReason))).toEqual(new Set(['stop', 'length']));
  });

  it('minNewTokens holds EOS back, and noRepeatNgramSize forbids repeated n-grams', async () => {
    const plain = await summarize(TICKETS, { maxNewTokens: 30 });
    const shortest = Math.min(...plain.map((o) => o.tokenIds.length));
    const longer = await summarize(TICKETS, { maxNewTokens: 30, minNewTokens: shortest + 3 });
    for (const o of longer) {
      expect(o.tokenIds.length).toBeGreaterThanOrEqual(shortest + 3);
      expect(o.tokenIds.slice(0, -1)).not.toContain(EOS);
    }
    const noRepeat = await summarize(TICKETS, { maxNewTokens: 30, noRepeatNgramSize: 2 });
    for (const o of noRepeat) {
      const seq = [START, ...o.tokenIds];
      const bigrams = seq.slice(0, -1).map((t, i) => `${t},${seq[i + 1]}`);
      expect(new Set(bigrams).size).toBe(bigrams.length);
    }
    expect(noRepeat.map((o) => o.tokenIds)).not.toEqual(plain.map((o) => o.tokenIds));
  });

  it('streams text deltas that add up to the summary', async () => {
    const deltas: string[][] = TICKETS.map(() => []);
    const prepared = TICKETS.map((text, i) => ours.prepare({ text, maxNewTokens: 20, onToken: (d) => deltas[i]!.push(d) }));
    const out = await ours.run(prepared);
    out.forEach((o, i) => expect(deltas[i]!.join('')).toBe(o.text));
  });

  it('checks its parameters', () => {
    expect(() => ours.prepare({ text: 'x', temperature: -1 })).toThrow(/temperature/);
    expect(() => ours.prepare({ text: 'x', topP: 1.5 })).toThrow(/topP/);
    expect(() => ours.prepare({ text: '' })).toThrow(/non-empty/);
    expect(() => ours.prepare({ text: 'x', maxNewTokens: 10_000 })).toThrow(/positions/);
    expect(ours.groupKey(ours.prepare({ text: 'x', numBeams: 4 }))).not.toBe(ours.groupKey(ours.prepare({ text: 'x' })));
    const p = ours.prepare({ text: 'x', maxNewTokens: 7 });
    expect(ours.cost(p)).toBe(p.inputIds.length + 7);
    // The model's generation_config.json max_length (64) counts the start token.
    expect(ours.prepare({ text: 'x' }).config.maxNewTokens).toBe(63);
  });
});
