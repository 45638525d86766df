import { describe, expect, it } from 'vitest';
import {
  buildLogitsProcessors,
  ForcedEosTokenLogitsProcessor,
  kthLargest,
  MinNewTokensLogitsProcessor,
  NoRepeatNGramLogitsProcessor,
  RepetitionPenaltyLogitsProcessor,
  resolveGenerationConfig,
  seededRandom,
  TemperatureLogitsWarper,
  TopKLogitsWarper,
  TopPLogitsWarper,
} from '../src/index.js';

const NEG = Number.NEGATIVE_INFINITY;
const row = (tokens: number[], generated = 0) => ({ tokens, generated });

/** HF Python's TopPLogitsWarper, written out: sort ascending, drop tokens whose cumulative probability is <= 1 - p. */
function referenceTopP(logits: number[], p: number): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const ascending = logits.map((_, i) => i).sort((a, b) => logits[a]! - logits[b]! || b - a);
  const out = [...logits];
  let cumulative = 0;
  ascending.forEach((i, rank) => {
    cumulative += exps[i]! / sum;
    if (cumulative <= 1 - p && rank < logits.length - 1) out[i] = NEG;
  });
  return out;
}

describe('top-p (nucleus)', () => {
  it('keeps the fewest most likely tokens that reach p, the crossing token included', () => {
    // probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625
    const logits = Float32Array.from([0.5, 0.25, 0.125, 0.0625, 0.0625].map(Math.log));
    new TopPLogitsWarper(0.6).apply(logits);
    expect(Array.from(logits.map((l) => (l === NEG ? 0 : 1)))).toEqual([1, 1, 0, 0, 0]);
    const all = Float32Array.from([3, 1, 2]);
    new TopPLogitsWarper(1).apply(all);
    expect(Array.from(all)).toEqual([3, 1, 2]);
    const one = Float32Array.from([9, 1, 2]);
    new TopPLogitsWarper(0.01).apply(one);
    expect(Array.from(one)).toEqual([9, NEG, NEG]);
  });

  it('agrees with a reference implementation on random logits', () => {
    const random = seededRandom(7);
    for (let trial = 0; trial < 200; trial++) {
      const logits = Array.from({ length: 30 }, () => Math.fround((random() - 0.5) * 8));
      const p = [0.1, 0.5, 0.9, 0.95, 0.99][trial % 5]!;
      const mine = Float32Array.from(logits);
      new TopPLogitsWarper(p).apply(mine);
      expect(Array.from(mine)).toEqual(referenceTopP(logits, p));
    }
  });
});

describe('logits processors', () => {
  it('top-k keeps the k highest (and ties with the k-th)', () => {
    const logits = Float32Array.from([1, 5, 3, 5, 2, 4]);
    new TopKLogitsWarper(3).apply(logits);
    expect(Array.from(logits)).toEqual([NEG, 5, NEG, 5, NEG, 4]);
    const ties = Float32Array.from([1, 2, 2, 2]);
    new TopKLogitsWarper(2).apply(ties);
    expect(Array.from(ties)).toEqual([NEG, 2, 2, 2]);
  });

  it('finds the k-th largest value as sorting does', () => {
    const random = seededRandom(3);
    for (let trial = 0; trial < 100; trial++) {
      const values = Float32Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 20) - 10);
      const k = 1 + Math.floor(random() * values.length);
      const sorted = Array.from(values).sort((a, b) => b - a);
      expect(kthLargest(values, k)).toBe(sorted[k - 1]);
    }
  });

  it('temperature divides the logits', () => {
    const logits = Float32Array.from([1, -2, 4]);
    new TemperatureLogitsWarper(2).apply(logits);
    expect(Array.from(logits)).toEqual([0.5, -1, 2]);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const logits = Float32Array.from([2, -2, 2, -2]);
    new RepetitionPenaltyLogitsProcessor(2).apply(logits, row([0, 1, 1]));
    expect(Array.from(logits)).toEqual([1, -4, 2, -2]);
  });

  it('no-repeat-ngram bans exactly the tokens that would repeat an n-gram', () => {
    const tokens = [5, 6, 7, 5, 6, 9, 5, 6];
    // Brute force: a token t is banned if tokens + [t] has a repeated trigram.
    const trigrams = (t: number[]) => t.slice(0, -2).map((_, i) => t.slice(i, i + 3).join(','));
    const expected = Array.from({ length: 12 }, (_, t) => t).filter((t) => {
      const grams = trigrams([...tokens, t]);
      return new Set(grams).size !== grams.length;
    });
    const proc = new NoRepeatNGramLogitsProcessor(3);
    expect(proc.banned(tokens).sort((a, b) => a - b)).toEqual(expected);
    const logits = new Float32Array(12);
    proc.apply(logits, row(tokens));
    expect(Array.from(logits.map((l) => (l === NEG ? 1 : 0)))).toEqual(Array.from({ length: 12 }, (_, t) => (expected.includes(t) ? 1 : 0)));
    expect(new NoRepeatNGramLogitsProcessor(3).banned([1])).toEqual([]);
    expect(new NoRepeatNGramLogitsProcessor(1).banned([4, 2]).sort()).toEqual([2, 4]);
  });

  it('min-new-tokens suppresses every EOS until enough tokens are generated', () => {
    const proc = new MinNewTokensLogitsProcessor(2, [1, 3]);
    const early = Float32Array.from([0, 5, 0, 5]);
    proc.apply(early, row([9, 9], 1));
    expect(Array.from(early)).toEqual([0, NEG, 0, NEG]);
    const late = Float32Array.from([0, 5, 0, 5]);
    proc.apply(late, row([9, 9, 9], 2));
    expect(Array.from(late)).toEqual([0, 5, 0, 5]);
  });

  it('forced EOS leaves only EOS at the last allowed step', () => {
    const proc = new ForcedEosTokenLogitsProcessor(4, 2);
    const last = Float32Array.from([1, 2, 3]);
    proc.apply(last, row([0, 0, 0, 0], 3));
    expect(Array.from(last)).toEqual([NEG, NEG, 0]);
    const before = Float32Array.from([1, 2, 3]);
    proc.apply(before, row([0, 0, 0], 2));
    expect(Array.from(before)).toEqual([1, 2, 3]);
  });

  it("composes a row's processors from its config, warpers only when sampling", () => {
    const names = (request: Parameters<typeof resolveGenerationConfig>[1]) =>
      buildLogitsProcessors(resolveGenerationConfig({ eosTokenId: 2 }, request, 1)).processors.map((p) => p.constructor.name);
    expect(names({})).toEqual([]);
    expect(names({ temperature: 0.5, topP: 0.9 })).toEqual([]);
    expect(names({ doSample: true, temperature: 0.5, topP: 0.9, repetitionPenalty: 1.2, minNewTokens: 3, noRepeatNgramSize: 2 })).toEqual([
      'RepetitionPenaltyLogitsProcessor',
      'NoRepeatNGramLogitsProcessor',
      'MinNewTokensLogitsProcessor',
      'TemperatureLogitsWarper',
      'TopKLogitsWarper',
      'TopPLogitsWarper',
    ]);
  });
});
