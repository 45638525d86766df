/**
 * A key/value cache held in JS memory between decoding steps: the `present.*` outputs of
 * one step become the `past_key_values.*` inputs of the next. Rows can be selected
 * (finished rows dropped, beams reordered) and leading positions dropped (left padding
 * no remaining row needs).
 */
import type { FloatTensor, Tensor } from '../backend/onnx.js';

/** The past input a present output feeds: `present.0.key` -> `past_key_values.0.key`. */
export function pastNameOf(presentName: string): string {
  return presentName.replace(/^present/, 'past_key_values');
}

/** Rows `rows` (along axis 0; may repeat) of a tensor of any rank. */
export function selectRows<T extends { data: Float32Array | BigInt64Array; dims: readonly number[] }>(t: T, rows: readonly number[]): T {
  const rowSize = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const Ctor = t.data.constructor as new (n: number) => T['data'];
  const data = new Ctor(rows.length * rowSize);
  rows.forEach((r, i) => {
    if (r < 0 || r >= (t.dims[0] ?? 0)) throw new Error(`row ${r} out of range`);
    (data as Float32Array).set((t.data as Float32Array).subarray(r * rowSize, (r + 1) * rowSize), i * rowSize);
  });
  return { ...t, data, dims: [rows.length, ...t.dims.slice(1)] };
}

/**
 * Positions `[start, dims[axis])` along `axis` of a tensor of any rank (a copy). Used to drop
 * leading padding positions of `[batch, heads, seq, headDim]` caches and `[batch, seq]` masks.
 */
export function dropLeading<T extends { data: Float32Array | BigInt64Array; dims: readonly number[] }>(t: T, axis: number, start: number): T {
  if (start === 0) return t;
  const dims = [...t.dims];
  const len = dims[axis] as number;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const kept = len - start;
  const Ctor = t.data.constructor as new (n: number) => T['data'];
  const data = new Ctor(outer * kept * inner);
  for (let o = 0; o < outer; o++) {
    (data as Float32Array).set(
      (t.data as Float32Array).subarray((o * len + start) * inner, (o + 1) * len * inner),
      o * kept * inner,
    );
  }
  dims[axis] = kept;
  return { ...t, data, dims };
}

/**
 * The rows of `a` then the rows of `b` (tensors of any rank, rows on axis 0), the shorter
 * of the two left-padded with zeros along `axis` to the longer's length: how a request
 * prefilled on its own joins a running batch whose cache is longer (its mask gets zeros
 * there, so the padding is never attended to).
 */
export function concatLeftPadded<T extends { data: Float32Array | BigInt64Array; dims: readonly number[] }>(a: T, b: T, axis: number): T {
  const la = a.dims[axis] as number;
  const lb = b.dims[axis] as number;
  const len = Math.max(la, lb);
  const inner = a.dims.slice(axis + 1).reduce((x, y) => x * y, 1);
  const outerOf = (t: T) => t.dims.slice(0, axis).reduce((x, y) => x * y, 1);
  const outerA = outerOf(a);
  const outerB = outerOf(b);
  const Ctor = a.data.constructor as new (n: number) => T['data'];
  const data = new Ctor((outerA + outerB) * len * inner);
  const copy = (t: T, tLen: number, outer: number, base: number) => {
    for (let o = 0; o < outer; o++) {
      (data as Float32Array).set(
        (t.data as Float32Array).subarray(o * tLen * inner, (o + 1) * tLen * inner),
        ((base + o) * len + len - tLen) * inner,
      );
    }
  };
  copy(a, la, outerA, 0);
  copy(b, lb, outerB, outerA);
  const dims = [...a.dims];
  dims[0] = (a.dims[0] as number) + (b.dims[0] as number);
  dims[axis] = len;
  return { ...a, data, dims };
}

/** Past keys and values by input name (`past_key_values.{i}.key`, `...decoder.value`, ...). */
export class KvCache {
  private readonly entries = new Map<string, FloatTensor>();

  /**
   * Empty pasts `[batch, heads, 0, headDim]` for the given input names.
   * @param shapes - heads and headDim of each input.
   */
  static empty(batch: number, shapes: ReadonlyMap<string, { heads: number; headDim: number }>): KvCache {
    const cache = new KvCache();
    for (const [name, { heads, headDim }] of shapes) {
      cache.entries.set(name, { data: new Float32Array(0), dims: [batch, heads, 0, headDim] });
    }
    return cache;
  }

  /**
   * Takes the `present.*` outputs as the next pasts. Names `keep` accepts are left as they
   * are (the encoder keys and values of an encoder-decoder after its first step).
   */
  update(outputs: Readonly<Record<string, FloatTensor>>, keep: (pastName: string) => boolean = () => false): void {
    for (const [name, t] of Object.entries(outputs)) {
      if (!name.startsWith('present')) continue;
      const past = pastNameOf(name);
      if (keep(past) && this.entries.has(past)) continue;
      this.entries.set(past, t);
    }
  }

  /** The pasts as graph inputs. */
  feeds(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, t] of this.entries) out[name] = { type: 'float32', data: t.data, dims: t.dims };
    return out;
  }

  /** Keeps rows `rows` (may repeat, for beams) of every past `which` accepts (all by default). */
  select(rows: readonly number[], which: (pastName: string) => boolean = () => true): void {
    for (const [name, t] of this.entries) if (which(name)) this.entries.set(name, selectRows(t, rows));
  }

  /** Appends the rows of `other` (same inputs), left-padding the shorter cache (axis 2) with zeros. */
  append(other: KvCache): void {
    for (const [name, t] of this.entries) {
      const o = other.entries.get(name);
      if (!o) throw new Error(`append: the other cache has no ${name}`);
      this.entries.set(name, concatLeftPadded(t, o, 2));
    }
  }

  /** Drops the first `count` positions (axis 2) of the pasts `which` accepts. */
  dropLeading(count: number, which: (pastName: string) => boolean = () => true): void {
    if (count === 0) return;
    for (const [name, t] of this.entries) if (which(name)) this.entries.set(name, dropLeading(t, 2, count));
  }

  /** Positions in the cache (axis 2) of the first past `which` accepts; 0 when empty. */
  length(which: (pastName: string) => boolean = () => true): number {
    for (const [name, t] of this.entries) if (which(name)) return t.dims[2] ?? 0;
    return 0;
  }
}
