/**
 * One batch of an encoder-decoder LM (Optimum's `onnx/encoder_model.onnx` and
 * `onnx/decoder_model_merged.onnx`, as transformers.js runs them).
 *
 * The encoder runs once, on right-padded inputs. The decoder's first step feeds the
 * decoder start token with `use_cache_branch` false and empty pasts, so the graph projects
 * the cross-attention keys and values from `encoder_hidden_states`; later steps feed one
 * token with `use_cache_branch` true, the self-attention pasts of the step before, and the
 * cross-attention pasts of the first step, unchanged.
 */
import type { FloatTensor, Session, Tensor } from '../backend/onnx.js';
import type { StepModel } from '../generation/generate.js';
import { KvCache, selectRows } from '../generation/kv-cache.js';
import { lastPositionLogits, type PastShape } from './past-shapes.js';

const isEncoderPast = (name: string): boolean => name.includes('.encoder.');

export class Seq2SeqLmBatch implements StepModel {
  private cache: KvCache;
  /** `[rows, encoderSeq, dModel]`. */
  private encoderStates: FloatTensor = { data: new Float32Array(0), dims: [0, 0, 0] };
  /** `[rows, encoderSeq]`: 1 for real input tokens, 0 for right padding. */
  private encoderMask: { data: BigInt64Array; dims: readonly number[] } = { data: new BigInt64Array(0), dims: [0, 0] };
  /** The input (request) each row decodes for; beams of one request share it. */
  private rowInputs: number[];

  /**
   * @param inputs - encoder token ids of each row, `[rows][inputLen]`, none empty.
   * @param padId - id written into padding positions (masked out).
   * @param decoderStartId - the first decoder token (`decoder_start_token_id`).
   */
  constructor(
    private readonly encoder: Session,
    private readonly decoder: Session,
    private readonly inputs: readonly (readonly number[])[],
    private readonly padId: number,
    private readonly decoderStartId: number,
    pastShapes: ReadonlyMap<string, PastShape>,
  ) {
    if (inputs.some((p) => p.length === 0)) throw new Error('Every input needs at least one token');
    this.cache = KvCache.empty(inputs.length, pastShapes);
    this.rowInputs = inputs.map((_, i) => i);
  }

  private async decode(tokens: readonly number[], useCache: boolean): Promise<Float32Array[]> {
    const rows = tokens.length;
    const feeds: Record<string, Tensor> = {
      input_ids: { type: 'int64', data: BigInt64Array.from(tokens, (t) => BigInt(t)), dims: [rows, 1] },
      encoder_attention_mask: { type: 'int64', data: this.encoderMask.data, dims: this.encoderMask.dims },
      encoder_hidden_states: { type: 'float32', data: this.encoderStates.data, dims: this.encoderStates.dims },
      use_cache_branch: { type: 'bool', data: Uint8Array.of(useCache ? 1 : 0), dims: [1] },
      ...this.cache.feeds(),
    };
    const outputs = await this.decoder.run(feeds);
    this.cache.update(outputs, useCache ? isEncoderPast : () => false);
    return lastPositionLogits(outputs.logits);
  }

  async start(): Promise<Float32Array[]> {
    const rows = this.inputs.length;
    const seq = this.inputs.reduce((m, p) => Math.max(m, p.length), 0);
    const ids = new BigInt64Array(rows * seq).fill(BigInt(this.padId));
    const mask = new BigInt64Array(rows * seq);
    this.inputs.forEach((input, r) => {
      input.forEach((token, i) => {
        ids[r * seq + i] = BigInt(token);
        mask[r * seq + i] = 1n;
      });
    });
    const dims = [rows, seq];
    const { last_hidden_state: states } = await this.encoder.run(
      {
        input_ids: { type: 'int64', data: ids, dims },
        attention_mask: { type: 'int64', data: mask, dims },
        token_type_ids: { type: 'int64', data: new BigInt64Array(rows * seq), dims },
      },
      ['last_hidden_state'],
    );
    if (!states) throw new Error('The encoder has no last_hidden_state output');
    this.encoderStates = states;
    this.encoderMask = { data: mask, dims };
    return this.decode(this.inputs.map(() => this.decoderStartId), false);
  }

  next(tokens: readonly number[]): Promise<Float32Array[]> {
    return this.decode(tokens, true);
  }

  /**
   * Keeps rows `rows`. The encoder side (states, mask, cross-attention keys and values) is
   * the same for every beam of a request, so it is copied only when the rows' requests
   * change (a request finished, or its beams first open); a beam reordering within the
   * same requests keeps it as it is.
   */
  select(rows: readonly number[]): void {
    const inputs = rows.map((r) => this.rowInputs[r] as number);
    const same = inputs.length === this.rowInputs.length && inputs.every((input, i) => input === this.rowInputs[i]);
    if (!same) {
      this.encoderStates = selectRows(this.encoderStates, rows);
      this.encoderMask = selectRows(this.encoderMask, rows);
    }
    this.cache.select(rows, same ? (name) => !isEncoderPast(name) : () => true);
    this.rowInputs = inputs;
  }
}
