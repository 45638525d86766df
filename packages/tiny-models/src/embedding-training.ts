/**
 * Trains the word vectors of `inferq/starter-embeddings`, deterministically, from plain
 * sentences: PPMI over a weighted co-occurrence window, then a truncated SVD (randomized
 * subspace iteration with a seeded start, eigenvectors of the small projected matrix by
 * Jacobi rotations). Word vectors are `U sqrt(S)`, unit length, scaled by the smooth inverse
 * frequency `a / (a + p(w))` (Arora et al. 2017), with the common direction removed, so that
 * the mean of a sentence's token vectors (the model's mean pooling) is a SIF sentence
 * embedding. Sub-word pieces (`refu`, `##able`) get the mean vector of the words they start
 * or end, so a word the corpus never showed still lands near its relatives.
 *
 * Only float64 arithmetic in a fixed order: the same sentences give the same bytes.
 */
import { mulberry32 } from './rng.js';
import { SPECIAL_TOKENS } from './wordpiece-tokenizer.js';

/** Options of {@link trainEmbeddings}. */
export interface EmbeddingTrainingOptions {
  /** Width of the vectors. @defaultValue 96 */
  dims?: number;
  /** Words on each side that count as context, weighted 1/distance. @defaultValue 5 */
  window?: number;
  /** Fewest occurrences for a word to get its own vector. @defaultValue 2 */
  minCount?: number;
  /** Most words with their own vector (the most frequent). @defaultValue 12000 */
  maxWords?: number;
  /** Fewest vocabulary words a sub-word piece must start (or end) to get a vector. @defaultValue 4 */
  minPieceWords?: number;
  /** Context distribution smoothing exponent of PPMI. @defaultValue 0.75 */
  contextAlpha?: number;
  /** SIF weight parameter `a`. @defaultValue 0.001 */
  sifA?: number;
  /** Subspace iterations of the randomized SVD. @defaultValue 6 */
  iterations?: number;
  /** Seed of the SVD's random start. @defaultValue 1 */
  seed?: number;
}

export const EMBEDDING_TRAINING_DEFAULTS: Required<EmbeddingTrainingOptions> = Object.freeze({
  dims: 96,
  window: 5,
  minCount: 2,
  maxWords: 12000,
  minPieceWords: 4,
  contextAlpha: 0.75,
  sifA: 0.001,
  iterations: 6,
  seed: 1,
});

/** The trained table: tokens in id order (special tokens first) and their vectors. */
export interface TrainedEmbeddings {
  vocab: string[];
  dims: number;
  /** `[vocab.length, dims]`, row-major. Special tokens and punctuation rows are zero. */
  vectors: Float64Array;
  /** Words with their own vector (the rest of the vocabulary past the specials is pieces). */
  wordCount: number;
}

/** Lower case, accents stripped, split into runs of letters and digits: what the WordPiece tokenizer's pre-tokenizer keeps as words. */
export function corpusWords(text: string): string[] {
  const folded = text.normalize('NFD').replace(/\p{M}+/gu, '').toLowerCase();
  return folded.match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Orthonormalizes the columns of `m` (`[rows, cols]`, row-major) in place, modified Gram-Schmidt. */
function orthonormalize(m: Float64Array, rows: number, cols: number): void {
  for (let c = 0; c < cols; c++) {
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let r = 0; r < rows; r++) dot += m[r * cols + c]! * m[r * cols + p]!;
      for (let r = 0; r < rows; r++) m[r * cols + c]! -= dot * m[r * cols + p]!;
    }
    let norm = 0;
    for (let r = 0; r < rows; r++) norm += m[r * cols + c]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let r = 0; r < rows; r++) m[r * cols + c]! /= norm;
  }
}

/** Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations: values and column eigenvectors. */
function jacobiEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i]!;
  return { values, vectors: v };
}

/** A sparse symmetric matrix in CSR form. */
interface Csr {
  rowStart: Int32Array;
  cols: Int32Array;
  values: Float64Array;
}

/** `out = M x` for `x` `[n, k]`. */
function spmm(m: Csr, x: Float64Array, n: number, k: number): Float64Array {
  const out = new Float64Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let e = m.rowStart[r]!; e < m.rowStart[r + 1]!; e++) {
      const c = m.cols[e]!;
      const w = m.values[e]!;
      for (let j = 0; j < k; j++) out[r * k + j]! += w * x[c * k + j]!;
    }
  }
  return out;
}

/** Trains word and piece vectors from sentences (see the file's comment). */
export function trainEmbeddings(sentences: Iterable<string>, options: EmbeddingTrainingOptions = {}): TrainedEmbeddings {
  const o = { ...EMBEDDING_TRAINING_DEFAULTS, ...options };
  const docs: string[][] = [];
  const counts = new Map<string, number>();
  for (const s of sentences) {
    const words = corpusWords(s);
    docs.push(words);
    for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const words = [...counts.entries()]
    .filter(([, c]) => c >= o.minCount)
    .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, o.maxWords)
    .map(([w]) => w);
  const V = words.length;
  const index = new Map(words.map((w, i) => [w, i]));
  let total = 0;
  for (const c of counts.values()) total += c;

  // Weighted co-occurrence counts, symmetric.
  const pairs = new Map<number, number>();
  for (const doc of docs) {
    const ids = doc.map((w) => index.get(w) ?? -1);
    for (let i = 0; i < ids.length; i++) {
      const a = ids[i]!;
      if (a < 0) continue;
      for (let d = 1; d <= o.window && i + d < ids.length; d++) {
        const b = ids[i + d]!;
        if (b < 0 || b === a) continue;
        const w = 1 / d;
        pairs.set(a * V + b, (pairs.get(a * V + b) ?? 0) + w);
        pairs.set(b * V + a, (pairs.get(b * V + a) ?? 0) + w);
      }
    }
  }
  const rowSum = new Float64Array(V);
  let sum = 0;
  const keys = [...pairs.keys()].sort((x, y) => x - y);
  for (const key of keys) {
    const c = pairs.get(key)!;
    rowSum[Math.floor(key / V)]! += c;
    sum += c;
  }
  const ctx = Float64Array.from(rowSum, (c) => c ** o.contextAlpha);
  const ctxSum = ctx.reduce((a, b) => a + b, 0);

  // PPMI in CSR (keys are sorted by row, then column).
  const rowStart = new Int32Array(V + 1);
  const cols: number[] = [];
  const values: number[] = [];
  let row = 0;
  for (const key of keys) {
    const r = Math.floor(key / V);
    const c = key % V;
    while (row < r) rowStart[++row] = cols.length;
    const pmi = Math.log((pairs.get(key)! / sum) / ((rowSum[r]! / sum) * (ctx[c]! / ctxSum)));
    if (pmi > 0) {
      cols.push(c);
      values.push(pmi);
    }
  }
  while (row < V) rowStart[++row] = cols.length;
  const m: Csr = { rowStart, cols: Int32Array.from(cols), values: Float64Array.from(values) };

  // Randomized subspace iteration, then the eigenvectors of Q^T M Q.
  const k = o.dims + 16;
  const rng = mulberry32(o.seed);
  let q: Float64Array = Float64Array.from({ length: V * k }, () => rng() * 2 - 1);
  orthonormalize(q, V, k);
  for (let it = 0; it < o.iterations; it++) {
    q = spmm(m, q, V, k);
    orthonormalize(q, V, k);
  }
  const mq = spmm(m, q, V, k);
  const b = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let dot = 0;
      for (let r = 0; r < V; r++) dot += q[r * k + i]! * mq[r * k + j]!;
      b[i * k + j] = dot;
    }
  }
  for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) b[i * k + j] = b[j * k + i] = (b[i * k + j]! + b[j * k + i]!) / 2;
  const { values: eig, vectors: ev } = jacobiEigen(b, k);
  const order = Array.from({ length: k }, (_, i) => i).sort((x, y) => Math.abs(eig[y]!) - Math.abs(eig[x]!) || x - y);
  const top = order.slice(0, o.dims);

  const D = o.dims;
  const wordVectors = new Float64Array(V * D);
  for (let r = 0; r < V; r++) {
    let norm = 0;
    for (let j = 0; j < D; j++) {
      const col = top[j]!;
      let x = 0;
      for (let i = 0; i < k; i++) x += q[r * k + i]! * ev[i * k + col]!;
      x *= Math.sqrt(Math.abs(eig[col]!));
      wordVectors[r * D + j] = x;
      norm += x * x;
    }
    norm = Math.sqrt(norm) || 1;
    const sif = o.sifA / (o.sifA + counts.get(words[r]!)! / total);
    for (let j = 0; j < D; j++) wordVectors[r * D + j] = (wordVectors[r * D + j]! / norm) * sif;
  }
  // Remove the common direction: the frequency-weighted mean of the word vectors.
  const common = new Float64Array(D);
  for (let r = 0; r < V; r++) {
    const f = counts.get(words[r]!)!;
    for (let j = 0; j < D; j++) common[j]! += f * wordVectors[r * D + j]!;
  }
  const cn = Math.sqrt(common.reduce((s, x) => s + x * x, 0)) || 1;
  for (let j = 0; j < D; j++) common[j]! /= cn;
  for (let r = 0; r < V; r++) {
    let dot = 0;
    for (let j = 0; j < D; j++) dot += wordVectors[r * D + j]! * common[j]!;
    for (let j = 0; j < D; j++) wordVectors[r * D + j]! -= dot * common[j]!;
  }

  // Pieces: prefixes (3 to 6 letters) and "##" suffixes (1 to 5 letters) shared by enough words;
  // every single letter and digit, so no word is [UNK].
  const pieceWords = new Map<string, number[]>();
  const add = (piece: string, r: number) => {
    const list = pieceWords.get(piece);
    if (list) list.push(r);
    else pieceWords.set(piece, [r]);
  };
  words.forEach((w, r) => {
    const chars = [...w];
    for (let n = 3; n <= 6 && n < chars.length; n++) add(chars.slice(0, n).join(''), r);
    for (let n = 1; n <= 5 && n < chars.length; n++) add(`##${chars.slice(chars.length - n).join('')}`, r);
  });
  const singles = 'abcdefghijklmnopqrstuvwxyz0123456789'.split('');
  const pieces = [...pieceWords.entries()]
    .filter(([p, rows]) => !index.has(p) && rows.length >= o.minPieceWords)
    .map(([p]) => p)
    .sort();
  for (const s of singles) {
    if (!index.has(s) && !pieces.includes(s)) pieces.push(s);
    if (!pieces.includes(`##${s}`)) pieces.push(`##${s}`);
  }
  const specials = Object.values(SPECIAL_TOKENS);
  const vocab = [...specials, ...words, ...pieces];
  const vectors = new Float64Array(vocab.length * D);
  vectors.set(wordVectors, specials.length * D);
  pieces.forEach((p, i) => {
    const rows = pieceWords.get(p) ?? [];
    const at = (specials.length + V + i) * D;
    for (const r of rows) for (let j = 0; j < D; j++) vectors[at + j]! += wordVectors[r * D + j]! / rows.length;
  });
  return { vocab, dims: D, vectors, wordCount: V };
}

/** The committed file of the starter embeddings: vocabulary and int8 rows with a scale each. */
export interface EmbeddingWeightsFile {
  format: 'inferq-embedding-bag/1';
  description: string;
  provenance: Record<string, unknown>;
  dims: number;
  vocab: string[];
  /** Per row: the value of int8 127. */
  scales: number[];
  /** `[vocab, dims]` int8 values, base64. */
  vectors: string;
}

/** Quantizes a trained table to the committed file's form (int8 rows, 4-significant-digit scales). */
export function quantizeEmbeddings(trained: TrainedEmbeddings, meta: Pick<EmbeddingWeightsFile, 'description' | 'provenance'>): EmbeddingWeightsFile {
  const { vocab, dims, vectors } = trained;
  const q = new Int8Array(vocab.length * dims);
  const scales: number[] = [];
  for (let r = 0; r < vocab.length; r++) {
    let max = 0;
    for (let j = 0; j < dims; j++) max = Math.max(max, Math.abs(vectors[r * dims + j]!));
    const scale = max === 0 ? 0 : Number(max.toPrecision(4));
    scales.push(scale);
    for (let j = 0; j < dims; j++) q[r * dims + j] = scale === 0 ? 0 : Math.max(-127, Math.min(127, Math.round((vectors[r * dims + j]! / scale) * 127)));
  }
  return { format: 'inferq-embedding-bag/1', ...meta, dims, vocab, scales, vectors: Buffer.from(q.buffer).toString('base64') };
}

/** The float32 table `[vocab, dims]` of a weights file. */
export function dequantizeEmbeddings(file: EmbeddingWeightsFile): Float32Array {
  const q = new Int8Array(Buffer.from(file.vectors, 'base64'));
  if (q.length !== file.vocab.length * file.dims) throw new Error(`embedding weights: ${q.length} values for ${file.vocab.length} x ${file.dims}`);
  const out = new Float32Array(q.length);
  for (let r = 0; r < file.vocab.length; r++) {
    const s = (file.scales[r] ?? 0) / 127;
    for (let j = 0; j < file.dims; j++) out[r * file.dims + j] = q[r * file.dims + j]! * s;
  }
  return out;
}
