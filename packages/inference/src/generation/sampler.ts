/**
 * Choosing the next token of one row from its processed logits: greedy (argmax) or
 * multinomial sampling with the row's own seeded PRNG. Beam search is in `beam-search.ts`.
 */

/** Uniform numbers in `[0, 1)`. */
export type Random = () => number;

/**
 * A seeded PRNG (mulberry32 over a splitmix32-scrambled seed): the same seed gives the
 * same numbers on every platform. Without a seed, one is drawn from `Math.random`.
 */
export function seededRandom(seed?: number): Random {
  let state = (seed ?? Math.floor(Math.random() * 0x100000000)) >>> 0;
  // splitmix32 step, so that nearby seeds give unrelated streams.
  state = Math.imul(state ^ (state >>> 16), 0x85ebca6b) >>> 0;
  state = Math.imul(state ^ (state >>> 13), 0xc2b2ae35) >>> 0;
  state = (state ^ (state >>> 16)) >>> 0;
  return mulberry32(state);
}

/** mulberry32 from `seed` as it is (no scrambling): numbers in [0, 1), the same on every platform. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Index of the largest logit (the first one on ties, as transformers.js). Four running
 * maxima, then the first index holding the largest: half the time of one compare-and-branch
 * loop over a 152k vocabulary, where it is most of a decoding step's own work.
 */
export function argmax(logits: Float32Array): number {
  const n = logits.length;
  let m0 = Number.NEGATIVE_INFINITY;
  let m1 = m0;
  let m2 = m0;
  let m3 = m0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const a = logits[i] as number;
    const b = logits[i + 1] as number;
    const c = logits[i + 2] as number;
    const d = logits[i + 3] as number;
    if (a > m0) m0 = a;
    if (b > m1) m1 = b;
    if (c > m2) m2 = c;
    if (d > m3) m3 = d;
  }
  let max = Math.max(m0, m1, m2, m3);
  for (; i < n; i++) if ((logits[i] as number) > max) max = logits[i] as number;
  if (max === Number.NEGATIVE_INFINITY) return 0;
  return logits.indexOf(max);
}

/** `log(softmax(logits))` `[vocab]`, computed in float64 and returned as a new array. */
export function logSoftmax(logits: Float32Array): Float32Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > max) max = logits[i] as number;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
  const logSum = max + Math.log(sum);
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = (logits[i] as number) - logSum;
  return out;
}

/**
 * Draws a token from `softmax(logits)` with one number from `random`. Tokens at -Infinity
 * (removed by top-k / top-p) are never drawn.
 */
export function sampleMultinomial(logits: Float32Array, random: Random): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > max) max = logits[i] as number;
  if (max === Number.NEGATIVE_INFINITY) throw new Error('Every token was filtered out; nothing to sample');
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
  let target = random() * sum;
  let last = -1;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v === Number.NEGATIVE_INFINITY) continue;
    last = i;
    target -= Math.exp(v - max);
    if (target < 0) return i;
  }
  return last; // rounding left a sliver: the last possible token
}

/** Picks one row's next token. */
export interface TokenSampler {
  next(logits: Float32Array): number;
}

/** The most likely token. */
export class GreedySampler implements TokenSampler {
  next(logits: Float32Array): number {
    return argmax(logits);
  }
}

/** A token drawn from the distribution with the row's own seeded PRNG. */
export class MultinomialSampler implements TokenSampler {
  private readonly random: Random;

  constructor(seed?: number) {
    this.random = seededRandom(seed);
  }

  next(logits: Float32Array): number {
    return sampleMultinomial(logits, this.random);
  }
}
