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
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Index of the largest logit (the first one on ties, as transformers.js). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
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
