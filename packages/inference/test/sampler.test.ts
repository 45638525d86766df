import { describe, expect, it } from 'vitest';
import { argmax, logSoftmax, MultinomialSampler, sampleMultinomial, seededRandom } from '../src/index.js';

describe('samplers', () => {
  it('a seed gives the same numbers every time, and other seeds others', () => {
    const a = Array.from({ length: 5 }, seededRandom(42));
    const b = Array.from({ length: 5 }, seededRandom(42));
    const c = Array.from({ length: 5 }, seededRandom(43));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    for (const x of a) expect(x >= 0 && x < 1).toBe(true);
  });

  it('argmax takes the first of equal maxima', () => {
    expect(argmax(Float32Array.from([1, 3, 3, 2]))).toBe(1);
  });

  it('log-softmax sums to probability one', () => {
    const lp = logSoftmax(Float32Array.from([1, 2, 3, -1000]));
    expect(Array.from(lp).reduce((s, v) => s + Math.exp(v), 0)).toBeCloseTo(1, 6);
  });

  it('draws tokens with the softmax frequencies and never a filtered one', () => {
    const logits = Float32Array.from([Math.log(0.6), Math.log(0.3), Math.log(0.1), Number.NEGATIVE_INFINITY]);
    const random = seededRandom(1);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[sampleMultinomial(logits, random)]!++;
    expect(counts[3]).toBe(0);
    expect(counts[0]! / n).toBeCloseTo(0.6, 1);
    expect(counts[1]! / n).toBeCloseTo(0.3, 1);
    expect(counts[2]! / n).toBeCloseTo(0.1, 1);
  });

  it('a seeded sampler repeats its choices', () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const run = (seed: number) => {
      const s = new MultinomialSampler(seed);
      return Array.from({ length: 20 }, () => s.next(logits));
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });
});
