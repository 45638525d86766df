/**
 * The heads and head width of each `past_key_values.*` input of a decoder graph: from the
 * graph's declared dimensions when they are numbers, else from `config.json`.
 */
import type { Session } from '../backend/onnx.js';

/** Heads and head width of one past input `[batch, heads, pastSeq, headDim]`. */
export interface PastShape {
  heads: number;
  headDim: number;
}

/**
 * @param fallback - heads and headDim from the config, for graphs that leave them symbolic.
 */
export function pastShapes(session: Session, fallback: (name: string) => PastShape | undefined): Map<string, PastShape> {
  const out = new Map<string, PastShape>();
  for (const info of session.inputInfo) {
    if (!info.name.startsWith('past_key_values.')) continue;
    if (info.type !== undefined && info.type !== 'float32') {
      throw new Error(`${info.name} is ${info.type}; only float32 KV caches are supported`);
    }
    const [, heads, , headDim] = info.dims;
    const shape =
      typeof heads === 'number' && typeof headDim === 'number' ? { heads, headDim } : fallback(info.name);
    if (!shape) throw new Error(`Can't tell the heads and head size of ${info.name} from the graph or config.json`);
    out.set(info.name, shape);
  }
  if (out.size === 0) throw new Error('The decoder graph has no past_key_values inputs (a KV-cache export is needed)');
  return out;
}

/** `[rows][vocab]`: the logits of the last position of each row of `[rows, seq, vocab]` logits. */
export function lastPositionLogits(logits: { data: Float32Array; dims: readonly number[] } | undefined): Float32Array[] {
  if (!logits) throw new Error('The model has no logits output');
  const [rows = 0, seq = 0, vocab = 0] = logits.dims.length === 3 ? logits.dims : [logits.dims[0], 1, logits.dims[1]];
  return Array.from({ length: rows }, (_, r) => logits.data.subarray((r * seq + seq - 1) * vocab, (r * seq + seq) * vocab));
}
