import type { Tensor } from './backend/onnx.js';
import type { Encoded } from './text-tokenizer.js';

/** Model inputs for a padded batch. All tensors are int64 `[batch, seqLen]`. */
export interface PaddedBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
  /** Position of each token, counting only real tokens (left padding starts at 0 after the pads). */
  positionIds: Tensor;
  batchSize: number;
  seqLen: number;
}

export interface PadOptions {
  padId: number;
  /** Right for encoders; left for decoder-only generation. @defaultValue 'right' */
  side?: 'left' | 'right';
}

/** Pads rows to the longest one and builds the attention mask. */
export function padBatch(rows: readonly Encoded[], options: PadOptions): PaddedBatch {
  const side = options.side ?? 'right';
  const batchSize = rows.length;
  const seqLen = rows.reduce((m, r) => Math.max(m, r.ids.length), 0);
  const size = batchSize * seqLen;
  const ids = new BigInt64Array(size).fill(BigInt(options.padId));
  const mask = new BigInt64Array(size);
  const types = new BigInt64Array(size);
  const positions = new BigInt64Array(size);
  rows.forEach((row, b) => {
    const offset = b * seqLen + (side === 'left' ? seqLen - row.ids.length : 0);
    for (let i = 0; i < row.ids.length; i++) {
      ids[offset + i] = BigInt(row.ids[i] ?? options.padId);
      mask[offset + i] = 1n;
      types[offset + i] = BigInt(row.typeIds[i] ?? 0);
      positions[offset + i] = BigInt(i);
    }
  });
  const dims = [batchSize, seqLen];
  return {
    inputIds: { type: 'int64', data: ids, dims },
    attentionMask: { type: 'int64', data: mask, dims },
    tokenTypeIds: { type: 'int64', data: types, dims },
    positionIds: { type: 'int64', data: positions, dims },
    batchSize,
    seqLen,
  };
}
