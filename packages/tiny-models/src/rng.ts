/**
 * Seeded, deterministic random numbers for weight initialisation.
 *
 * Everything here uses only integer and float64 arithmetic (no `Math.log`, `Math.cos`),
 * so the same seed gives bit-identical weights on every platform and Node version.
 */

/** A function returning uniform numbers in `[0, 1)`. */
export type Rng = () => number;

/**
 * mulberry32: a small, fast 32-bit PRNG, good enough for weight initialisation.
 *
 * @param seed - any integer; only its low 32 bits are used.
 */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a hash of a string, 32 bits. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * An RNG for one named stream under a seed, so that each tensor's values depend only on
 * `(seed, name)`: adding a layer does not change the weights of the others.
 */
export function streamRng(seed: number, name: string): Rng {
  return mulberry32(fnv1a(name) ^ Math.imul(seed >>> 0, 0x9e3779b1));
}

const IRWIN_HALL_SCALE = Math.sqrt(3);

/**
 * Fills `out` with normal-ish values of mean `mean` and standard deviation `std`.
 *
 * Uses the Irwin-Hall sum of 4 uniforms (rescaled to unit variance): bell-shaped and
 * bounded at about ±3.46 std, much like the truncated normal BERT initialises with.
 */
export function fillNormal(out: Float32Array, rng: Rng, std: number, mean = 0): Float32Array {
  const scale = std * IRWIN_HALL_SCALE;
  for (let i = 0; i < out.length; i++) {
    const sum = rng() + rng() + rng() + rng();
    out[i] = mean + (sum - 2) * scale;
  }
  return out;
}

/** Deterministic Fisher-Yates shuffle, in place. */
export function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}
