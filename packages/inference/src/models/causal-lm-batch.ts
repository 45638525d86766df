/**
 * One batch of a decoder-only LM with a KV cache (`onnx/model.onnx` of an Optimum or
 * transformers.js export: `input_ids`, `attention_mask`, `position_ids`,
 * `past_key_values.{i}.key|value` -> `logits`, `present.{i}.key|value`).
 *
 * Prompts are left-padded; `attention_mask` `[rows, past + new]` marks the real tokens and
 * grows by one column a step; `position_ids` count real tokens only (cumsum of the mask
 * minus 1; pads get 1, as HF), so a padded row sees the positions it would see alone.
 */
import type { Session, Tensor } from '../backend/onnx.js';
import type { StepModel } from '../generation/generate.js';
import { concatLeftPadded, dropLeading, KvCache, selectRows } from '../generation/kv-cache.js';
import { lastPositionLogits, type PastShape } from './past-shapes.js';

interface Int64Matrix {
  data: BigInt64Array;
  dims: readonly number[];
}

/** Options of {@link CausalLmBatch}. */
export interface CausalLmBatchOptions {
  /** Logits per position (`vocab_size`); needed to bound the prefill's logits. @defaultValue unknown: no bound */
  vocabSize?: number;
  /**
   * Most bytes of `[rows, tokens, vocab]` float32 logits one prefill run may return, when the
   * graph has no `num_logits_to_keep` input: longer prompts are prefilled in chunks of
   * positions (the KV cache carries the earlier ones), as a 152k vocabulary makes 16 x 512
   * tokens of logits about 5 GB. @defaultValue 256 MiB
   */
  prefillLogitsBytes?: number;
  /**
   * A session of the same graph on a worker thread, for the prefill: a big prompt batch is
   * seconds of compute, and on the caller's thread it would stop the event loop that long.
   * Decoding steps stay on `session` (short, and their KV cache would have to be copied to
   * the thread every step). @defaultValue none: `session` prefills too
   */
  prefillSession?: Session;
}

/** Default of {@link CausalLmBatchOptions.prefillLogitsBytes}. */
export const PREFILL_LOGITS_BYTES = 256 * 1024 * 1024;

/** Columns `[from, to)` of a `[rows, cols]` matrix. */
function columns(m: BigInt64Array, rows: number, cols: number, from: number, to: number): BigInt64Array {
  const out = new BigInt64Array(rows * (to - from));
  for (let r = 0; r < rows; r++) out.set(m.subarray(r * cols + from, r * cols + to), r * (to - from));
  return out;
}

export class CausalLmBatch implements StepModel {
  private cache: KvCache;
  /** `[rows, past + new]`: 1 for real tokens, 0 for left padding. */
  private mask: Int64Matrix = { data: new BigInt64Array(0), dims: [0, 0] };
  /** Position of the next token of each row. */
  private nextPositions: number[] = [];

  /**
   * @param prompts - token ids of each row, `[rows][promptLen]`, none empty.
   * @param padId - id written into padding positions (masked out).
   */
  constructor(
    private readonly session: Session,
    private readonly prompts: readonly (readonly number[])[],
    private readonly padId: number,
    pastShapes: ReadonlyMap<string, PastShape>,
    private readonly options: CausalLmBatchOptions = {},
  ) {
    if (prompts.some((p) => p.length === 0)) throw new Error('Every prompt needs at least one token');
    this.cache = KvCache.empty(prompts.length, pastShapes);
  }

  /** One run; updates the cache from its presents; each row's last-position logits (none when `outputNames` leaves them out). */
  private async run(inputIds: Tensor, positionIds: Tensor, session: Session = this.session, outputNames?: readonly string[]): Promise<Float32Array[]> {
    const feeds: Record<string, Tensor> = {
      input_ids: inputIds,
      attention_mask: { type: 'int64', data: this.mask.data, dims: this.mask.dims },
      position_ids: positionIds,
      ...this.cache.feeds(),
    };
    if (this.session.inputNames.includes('num_logits_to_keep')) {
      feeds.num_logits_to_keep = { type: 'int64', data: BigInt64Array.of(1n), dims: [] };
    }
    // The pasts are replaced by the presents below: a session thread may take their buffers.
    const pasts = Object.keys(feeds).filter((name) => name.startsWith('past_key_values.'));
    const outputs = await session.run(feeds, outputNames, pasts);
    this.cache.update(outputs);
    return outputNames && !outputNames.includes('logits') ? [] : lastPositionLogits(outputs.logits);
  }

  async start(): Promise<Float32Array[]> {
    const rows = this.prompts.length;
    const seq = this.prompts.reduce((m, p) => Math.max(m, p.length), 0);
    const ids = new BigInt64Array(rows * seq).fill(BigInt(this.padId));
    const mask = new BigInt64Array(rows * seq);
    const positions = new BigInt64Array(rows * seq).fill(1n);
    this.prompts.forEach((prompt, r) => {
      const offset = r * seq + seq - prompt.length;
      prompt.forEach((token, i) => {
        ids[offset + i] = BigInt(token);
        mask[offset + i] = 1n;
        positions[offset + i] = BigInt(i);
      });
    });
    this.nextPositions = this.prompts.map((p) => p.length);
    const chunk = this.prefillChunk(rows, seq);
    const session = this.options.prefillSession ?? this.session;
    if (chunk >= seq) {
      this.mask = { data: mask, dims: [rows, seq] };
      return this.run({ type: 'int64', data: ids, dims: [rows, seq] }, { type: 'int64', data: positions, dims: [rows, seq] }, session);
    }
    // Chunks of positions, each seeing the ones before through the KV cache. Only the last
    // chunk's logits are read (its last column is every row's last prompt token); the others
    // ask for the presents alone, so their logits are not copied out of onnxruntime (it still
    // computes them: it does not prune the LM head, measured).
    const presents = this.session.outputNames.filter((name) => name.startsWith('present'));
    let logits: Float32Array[] = [];
    for (let from = 0; from < seq; from += chunk) {
      const to = Math.min(seq, from + chunk);
      this.mask = { data: columns(mask, rows, seq, 0, to), dims: [rows, to] };
      logits = await this.run(
        { type: 'int64', data: columns(ids, rows, seq, from, to), dims: [rows, to - from] },
        { type: 'int64', data: columns(positions, rows, seq, from, to), dims: [rows, to - from] },
        session,
        to < seq ? presents : undefined,
      );
    }
    return logits;
  }

  /** Positions per prefill run that keep `[rows, positions, vocab]` logits within the budget. */
  private prefillChunk(rows: number, seq: number): number {
    const { vocabSize, prefillLogitsBytes = PREFILL_LOGITS_BYTES } = this.options;
    if (vocabSize === undefined || this.session.inputNames.includes('num_logits_to_keep')) return seq;
    return Math.max(1, Math.floor(prefillLogitsBytes / (rows * vocabSize * 4)));
  }

  async next(tokens: readonly number[]): Promise<Float32Array[]> {
    const [rows = 0, total = 0] = this.mask.dims;
    if (tokens.length !== rows) throw new Error(`next: ${tokens.length} tokens for ${rows} rows`);
    const mask = new BigInt64Array(rows * (total + 1));
    for (let r = 0; r < rows; r++) {
      mask.set(this.mask.data.subarray(r * total, (r + 1) * total), r * (total + 1));
      mask[r * (total + 1) + total] = 1n;
    }
    this.mask = { data: mask, dims: [rows, total + 1] };
    const positions = BigInt64Array.from(this.nextPositions, (p) => BigInt(p));
    this.nextPositions = this.nextPositions.map((p) => p + 1);
    return this.run(
      { type: 'int64', data: BigInt64Array.from(tokens, (t) => BigInt(t)), dims: [rows, 1] },
      { type: 'int64', data: positions, dims: [rows, 1] },
    );
  }

  /** Rows in the batch now. */
  get rows(): number {
    return this.mask.dims[0] ?? 0;
  }

  /**
   * Takes the rows of `other` (prefilled, or stepped, on its own) after this batch's rows:
   * their caches and masks are left-padded to the longer of the two, and each row keeps its
   * own positions, so a row that joins sees what it saw alone (continuous batching).
   */
  append(other: CausalLmBatch): void {
    if (other.rows === 0) return;
    if (this.rows === 0) {
      this.mask = other.mask;
      this.nextPositions = [...other.nextPositions];
      this.cache = other.cache;
      return;
    }
    this.mask = concatLeftPadded(this.mask, other.mask, 1);
    this.nextPositions = [...this.nextPositions, ...other.nextPositions];
    this.cache.append(other.cache);
  }

  select(rows: readonly number[]): void {
    this.mask = selectRows(this.mask, rows);
    this.nextPositions = rows.map((r) => this.nextPositions[r] as number);
    this.cache.select(rows);
    // Drop the left-padding columns that no remaining row needs.
    const [count = 0, total = 0] = this.mask.dims;
    let lead = total;
    for (let r = 0; r < count && lead > 0; r++) {
      let first = 0;
      while (first < lead && this.mask.data[r * total + first] === 0n) first++;
      lead = Math.min(lead, first);
    }
    if (lead > 0 && lead < total) {
      this.mask = dropLeading(this.mask, 1, lead);
      this.cache.dropLeading(lead);
    }
  }
}
