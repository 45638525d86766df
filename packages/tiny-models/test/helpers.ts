import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import ort from 'onnxruntime-node';

/** The tokenizer of a model folder, as `@huggingface/tokenizers` reads it. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as object;
  const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as object;
  return new Tokenizer(json, config);
}

export async function createSession(dir: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
}

function int64(rows: number[][]): ort.Tensor {
  const width = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== width)) throw new Error('rows must have one length');
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, width]);
}

/**
 * Logits `[batch][numLabels]` for rows of token ids, with the given attention mask
 * (default all ones) and token types 0.
 */
export async function logits(session: ort.InferenceSession, ids: number[][], mask?: number[][]): Promise<number[][]> {
  const out = await session.run({
    input_ids: int64(ids),
    attention_mask: int64(mask ?? ids.map((r) => r.map(() => 1))),
    token_type_ids: int64(ids.map((r) => r.map(() => 0))),
  });
  const tensor = out.logits;
  if (!tensor) throw new Error('no logits output');
  const [batch, labels] = tensor.dims as [number, number];
  const data = Array.from(tensor.data as Float32Array);
  return Array.from({ length: batch }, (_, i) => data.slice(i * labels, (i + 1) * labels));
}

export function softmax(row: number[]): number[] {
  const max = Math.max(...row);
  const exps = row.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export function maxAbsDiff(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, i) => row.map((x, j) => Math.abs(x - (b[i]?.[j] ?? NaN)))));
}

/** An int64 tensor `[rows, width]` from rows of equal length. */
export function int64Tensor(rows: number[][]): ort.Tensor {
  return int64(rows);
}

/** An empty float32 past `[batch, heads, 0, headDim]`. */
export function emptyPast(batch: number, heads: number, headDim: number): ort.Tensor {
  return new ort.Tensor('float32', new Float32Array(0), [batch, heads, 0, headDim]);
}

/** Rows of `[batch, seq, vocab]` logits at one position: `[batch][vocab]`. */
export function logitsAt(tensor: ort.Tensor | undefined, position: number): number[][] {
  if (!tensor) throw new Error('no logits output');
  const [batch, seq, vocab] = tensor.dims as [number, number, number];
  const data = tensor.data as Float32Array;
  const pos = position < 0 ? seq + position : position;
  return Array.from({ length: batch }, (_, b) => Array.from(data.subarray((b * seq + pos) * vocab, (b * seq + pos + 1) * vocab)));
}

/** Index of the largest value. */
export function argmax(row: number[]): number {
  let best = 0;
  row.forEach((v, i) => {
    if (v > (row[best] as number)) best = i;
  });
  return best;
}

/** The past inputs of the next step from a step's `present.*` outputs. */
export function pastFrom(outputs: ort.InferenceSession.OnnxValueMapType, keep?: Record<string, ort.Tensor>): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, value] of Object.entries(outputs)) {
    if (!name.startsWith('present')) continue;
    const past = name.replace('present', 'past_key_values');
    out[past] = keep?.[past] ?? (value as ort.Tensor);
  }
  return out;
}
