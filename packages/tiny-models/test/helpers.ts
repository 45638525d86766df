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
