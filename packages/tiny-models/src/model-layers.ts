/**
 * Building blocks shared by the generative models (BART, Llama): seeded initializers named
 * as the PyTorch parameters, linear layers, norms, attention heads, additive masks.
 * Every tensor's values depend only on `(seed, name)`.
 */
import { attr, ElemType, GraphBuilder } from './onnx-graph.js';
import { fillNormal, streamRng } from './rng.js';

/** Largest negative float32, which HF adds to the scores of masked positions. */
export const FLOAT32_MIN = -3.4028234663852886e38;

/** Options of {@link Layers.linear}. */
export interface LinearOptions {
  /** Add a bias (BART) or not (Llama). @defaultValue true */
  bias?: boolean;
  /** Standard deviation of the weights is `gain / sqrt(inSize)`. @defaultValue 2 */
  gain?: number;
  /** Name of the output value (for graph outputs). @defaultValue the node's default */
  output?: string;
}

/** Seeded weights and common layers over one {@link GraphBuilder}. */
export class Layers {
  constructor(
    readonly g: GraphBuilder,
    readonly seed: number,
  ) {}

  /** A float32 initializer of normal(0, std) values from the `(seed, name)` stream. */
  normal(name: string, dims: number[], std: number): string {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    return this.g.float(name, fillNormal(data, streamRng(this.seed, name), std), dims);
  }

  /** A float32 initializer filled with one value. */
  filled(name: string, dims: number[], value: number): string {
    return this.g.float(name, new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value), dims);
  }

  /**
   * `input @ W (+ b)`: W stored `[inSize, outSize]` (already transposed for `MatMul`, as
   * exporters store it) under `<prefix>.weight`, b under `<prefix>.bias`.
   */
  linear(scope: string, input: string, inSize: number, outSize: number, prefix: string, options: LinearOptions = {}): string {
    const { bias = true, gain = 2, output } = options;
    const w = this.normal(`${prefix}.weight`, [inSize, outSize], gain / Math.sqrt(inSize));
    if (!bias) return this.g.node('MatMul', [input, w], { name: `${scope}/MatMul`, ...(output ? { output } : {}) });
    const mm = this.g.node('MatMul', [input, w], { name: `${scope}/MatMul` });
    const b = this.normal(`${prefix}.bias`, [outSize], 0.02);
    return this.g.node('Add', [mm, b], { name: `${scope}/Add`, ...(output ? { output } : {}) });
  }

  /** LayerNorm over the last axis, weight 1 and bias 0. */
  layerNorm(scope: string, input: string, prefix: string, size: number, eps: number): string {
    return this.g.node('LayerNormalization', [input, this.filled(`${prefix}.weight`, [size], 1), this.filled(`${prefix}.bias`, [size], 0)], {
      name: `${scope}/LayerNormalization`,
      attrs: { axis: attr.int(-1), epsilon: attr.float(eps) },
    });
  }

  /** RMSNorm (Llama): `x / sqrt(mean(x^2) + eps) * weight`, weight 1. */
  rmsNorm(scope: string, input: string, prefix: string, size: number, eps: number): string {
    const g = this.g;
    const sq = g.node('Mul', [input, input], { name: `${scope}/Pow` });
    const mean = g.node('ReduceMean', [sq], { name: `${scope}/ReduceMean`, attrs: { axes: attr.ints([-1]), keepdims: attr.int(1) } });
    const plus = g.node('Add', [mean, g.scalar(eps)], { name: `${scope}/Add` });
    const root = g.node('Sqrt', [plus], { name: `${scope}/Sqrt` });
    const normed = g.node('Div', [input, root], { name: `${scope}/Div` });
    return g.node('Mul', [normed, this.filled(`${prefix}.weight`, [size], 1)], { name: `${scope}/Mul` });
  }

  /** Exact GELU: `x * 0.5 * (1 + erf(x / sqrt(2)))`. */
  gelu(scope: string, x: string): string {
    const g = this.g;
    const div = g.node('Div', [x, g.scalar(Math.SQRT2)], { name: `${scope}/Div` });
    const erf = g.node('Erf', [div], { name: `${scope}/Erf` });
    const plusOne = g.node('Add', [erf, g.scalar(1)], { name: `${scope}/Add` });
    const times = g.node('Mul', [x, plusOne], { name: `${scope}/Mul` });
    return g.node('Mul', [times, g.scalar(0.5)], { name: `${scope}/Mul_1` });
  }

  /** SiLU: `x * sigmoid(x)`. */
  silu(scope: string, x: string): string {
    const s = this.g.node('Sigmoid', [x], { name: `${scope}/Sigmoid` });
    return this.g.node('Mul', [x, s], { name: `${scope}/Mul` });
  }

  /** `[batch, seq, heads * headDim]` to `[batch, heads, seq, headDim]`. */
  splitHeads(scope: string, x: string, heads: number, headDim: number): string {
    const r = this.g.node('Reshape', [x, this.g.ints([0, 0, heads, headDim])], { name: `${scope}/Reshape` });
    return this.g.node('Transpose', [r], { name: `${scope}/Transpose`, attrs: { perm: attr.ints([0, 2, 1, 3]) } });
  }

  /** `[batch, heads, seq, headDim]` to `[batch, seq, heads * headDim]`. */
  mergeHeads(scope: string, x: string, width: number): string {
    const t = this.g.node('Transpose', [x], { name: `${scope}/Transpose`, attrs: { perm: attr.ints([0, 2, 1, 3]) } });
    return this.g.node('Reshape', [t, this.g.ints([0, 0, width])], { name: `${scope}/Reshape` });
  }

  /**
   * Scaled dot-product attention: `softmax(q k^T / sqrt(headDim) + bias) v`.
   * q `[batch, heads, q, headDim]`, k and v `[batch, heads, k, headDim]`, bias broadcast to
   * `[batch, heads, q, k]`. Returns `[batch, heads, q, headDim]`.
   */
  attend(scope: string, q: string, k: string, v: string, bias: string, headDim: number): string {
    const g = this.g;
    const kT = g.node('Transpose', [k], { name: `${scope}/Transpose_k`, attrs: { perm: attr.ints([0, 1, 3, 2]) } });
    const scores = g.node('MatMul', [q, kT], { name: `${scope}/MatMul` });
    const scaled = g.node('Div', [scores, g.scalar(Math.sqrt(headDim))], { name: `${scope}/Div` });
    const masked = g.node('Add', [scaled, bias], { name: `${scope}/Add` });
    const probs = g.node('Softmax', [masked], { name: `${scope}/Softmax`, attrs: { axis: attr.int(-1) } });
    return g.node('MatMul', [probs, v], { name: `${scope}/MatMul_1` });
  }

  /** Additive padding mask `[batch, 1, 1, seq]` from an int64 mask: 0 where 1, float32 min where 0. */
  paddingBias(scope: string, mask: string): string {
    const g = this.g;
    const f = g.node('Cast', [mask], { name: `${scope}/Cast`, attrs: { to: attr.int(ElemType.float32) } });
    const m4 = g.node('Unsqueeze', [f, g.ints([1, 2])], { name: `${scope}/Unsqueeze` });
    const inverted = g.node('Sub', [g.scalar(1), m4], { name: `${scope}/Sub` });
    return g.node('Mul', [inverted, g.scalar(FLOAT32_MIN)], { name: `${scope}/Mul` });
  }

  /**
   * Causal mask for `seq` new tokens after `past` cached ones: bool `[seq, past + seq]`,
   * true where key `j` may be seen by query `i` (`j <= past + i`). `past` and `total` are
   * int64 scalars.
   */
  causalAllowed(scope: string, past: string, total: string): string {
    const g = this.g;
    const qIdx = g.node('Range', [past, total, g.ints(1)], { name: `${scope}/Range` });
    const qCol = g.node('Unsqueeze', [qIdx, g.ints([1])], { name: `${scope}/Unsqueeze` });
    const kIdx = g.node('Range', [g.ints(0), total, g.ints(1)], { name: `${scope}/Range_1` });
    return g.node('LessOrEqual', [kIdx, qCol], { name: `${scope}/LessOrEqual` });
  }

  /** `Where(allowed, 0, float32 min)`: a bool mask as an additive bias. */
  biasFromAllowed(scope: string, allowed: string): string {
    return this.g.node('Where', [allowed, this.g.scalar(0), this.g.scalar(FLOAT32_MIN)], { name: `${scope}/Where` });
  }

  /** Dimension `axis` of `x`'s shape, as an int64 scalar. */
  dim(scope: string, x: string, axis: number): string {
    const shape = this.g.node('Shape', [x], { name: `${scope}/Shape` });
    return this.g.node('Gather', [shape, this.g.ints(axis)], { name: `${scope}/Gather`, attrs: { axis: attr.int(0) } });
  }
}
