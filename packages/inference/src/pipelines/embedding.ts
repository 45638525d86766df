/**
 * Sentence embeddings from a sentence-transformers export: an encoder whose
 * `last_hidden_state` (or `token_embeddings`) is pooled as `1_Pooling/config.json` says, or
 * a graph that already outputs a pooled `sentence_embedding`; then L2-normalized when the
 * model's `modules.json` has a `Normalize` module (or when asked). What Python's
 * `SentenceTransformer.encode` returns for the same folder.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSession, type FloatTensor, type Session } from '../backend/onnx.js';
import { onnxFile, readModelConfig, type ModelConfig } from '../model-folder.js';
import { padBatch } from '../padding.js';
import { TextTokenizer, type Encoded } from '../text-tokenizer.js';
import type { PipelineLoadOptions } from './text-classification.js';

/** How token vectors become one vector: sentence-transformers' pooling modes. */
export type PoolingMode = 'mean' | 'cls' | 'max' | 'last_token' | 'mean_sqrt_len';

export const POOLING_MODES: readonly PoolingMode[] = ['mean', 'cls', 'max', 'last_token', 'mean_sqrt_len'];

/** `1_Pooling/config.json` as sentence-transformers writes it. */
export interface PoolingConfig {
  word_embedding_dimension?: number;
  pooling_mode_cls_token?: boolean;
  pooling_mode_mean_tokens?: boolean;
  pooling_mode_max_tokens?: boolean;
  pooling_mode_mean_sqrt_len_tokens?: boolean;
  pooling_mode_lasttoken?: boolean;
  /** false: the prompt's tokens are left out of the pooling (Instructor-style models). */
  include_prompt?: boolean;
}

/** One entry of `modules.json`. */
export interface SentenceTransformerModule {
  idx?: number;
  name?: string;
  path: string;
  type: string;
}

/** What the folder says about embeddings, read once at load. */
export interface EmbeddingModelInfo {
  /** Pooling modes from `1_Pooling/config.json`, in sentence-transformers' concatenation order; empty when the folder has none. */
  pooling: PoolingMode[];
  /** Whether the prompt's tokens are pooled. @defaultValue true */
  includePrompt: boolean;
  /** Normalize unless asked otherwise: true without `modules.json`, else whether it lists a `Normalize` module. */
  normalize: boolean;
  /** Named prompts from `config_sentence_transformers.json` (`query: "query: "`, ...). */
  prompts: Record<string, string>;
  /** The prompt used when a request names none. */
  defaultPromptName: string | undefined;
  /** `max_seq_length` of `sentence_bert_config.json`: sentence-transformers cuts inputs there, often below the positions. */
  maxSeqLength: number | undefined;
}

/** One embedding request. */
export interface EmbeddingRequest {
  text: string;
  /** Pooling when the model folder has no `1_Pooling/config.json`. @defaultValue 'mean' */
  pooling?: PoolingMode;
  /** L2-normalize the vector. @defaultValue the model's (see {@link EmbeddingModelInfo.normalize}) */
  normalize?: boolean;
  /** Keep the first n dimensions (Matryoshka), then renormalize when normalizing. @defaultValue all */
  dimensions?: number;
  /** A prompt of `config_sentence_transformers.json` to put before the text. */
  promptName?: string;
  /** A literal prefix to put before the text (instead of a named prompt). */
  prompt?: string;
}

/** A checked request, tokenized. */
export interface EmbeddingPrepared {
  readonly encoded: Encoded;
  readonly pooling: readonly PoolingMode[];
  readonly normalize: boolean;
  readonly dimensions: number | undefined;
  /** Leading tokens (after `[CLS]`) left out of the pooling: the prompt's, when `include_prompt` is false. */
  readonly skipTokens: number;
}

/** One embedding. */
export interface EmbeddingOutput {
  embedding: Float32Array;
  /** Tokens the model read (special tokens and prompt included). */
  inputTokens: number;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Pooling modes a `1_Pooling/config.json` turns on, in the order sentence-transformers concatenates them. */
export function poolingModes(config: PoolingConfig): PoolingMode[] {
  const modes: PoolingMode[] = [];
  if (config.pooling_mode_cls_token) modes.push('cls');
  if (config.pooling_mode_max_tokens) modes.push('max');
  if (config.pooling_mode_mean_tokens) modes.push('mean');
  if (config.pooling_mode_mean_sqrt_len_tokens) modes.push('mean_sqrt_len');
  if (config.pooling_mode_lasttoken) modes.push('last_token');
  return modes;
}

/** Reads `modules.json`, the pooling module's config and `config_sentence_transformers.json`. */
export async function readEmbeddingModelInfo(dir: string): Promise<EmbeddingModelInfo> {
  const modules = await readJson<SentenceTransformerModule[]>(join(dir, 'modules.json'));
  const poolingPath = modules?.find((m) => m.type.endsWith('.Pooling'))?.path ?? '1_Pooling';
  const pooling = (await readJson<PoolingConfig>(join(dir, poolingPath, 'config.json'))) ?? {};
  const st = (await readJson<{ prompts?: Record<string, string>; default_prompt_name?: string | null }>(
    join(dir, 'config_sentence_transformers.json'),
  )) ?? {};
  const bert = await readJson<{ max_seq_length?: number }>(join(dir, 'sentence_bert_config.json'));
  return {
    maxSeqLength: bert?.max_seq_length,
    pooling: poolingModes(pooling),
    includePrompt: pooling.include_prompt ?? true,
    normalize: modules ? modules.some((m) => m.type.endsWith('.Normalize')) : true,
    prompts: st.prompts ?? {},
    defaultPromptName: st.default_prompt_name ?? undefined,
  };
}

/**
 * The embedding pipeline. `prepare` checks and tokenizes one request (throws for bad
 * parameters), `run` embeds a batch of prepared requests in one padded ONNX run, so the
 * scheduler can batch requests with different settings together.
 */
export class EmbeddingPipeline {
  /** Width of the model's vectors (before any `dimensions` cut). */
  readonly hiddenSize: number;
  private readonly output: string;

  private constructor(
    readonly config: ModelConfig,
    readonly info: EmbeddingModelInfo,
    readonly tokenizer: TextTokenizer,
    readonly session: Session,
  ) {
    const names = session.outputNames;
    const output = ['sentence_embedding', 'last_hidden_state', 'token_embeddings'].find((n) => names.includes(n));
    if (!output) throw new Error(`The model has no last_hidden_state, token_embeddings or sentence_embedding output (it has ${names.join(', ')})`);
    this.output = output;
    const width = config.hidden_size ?? config.d_model ?? config.dim;
    if (typeof width !== 'number') throw new Error('config.json has no hidden_size');
    this.hiddenSize = width;
  }

  static async load(dir: string, options: PipelineLoadOptions = {}): Promise<EmbeddingPipeline> {
    const config = await readModelConfig(dir);
    const [info, tokenizer, session] = await Promise.all([
      readEmbeddingModelInfo(dir),
      TextTokenizer.load(dir, config.max_position_embeddings),
      onnxFile(dir, 'model', options.variant).then((file) => createSession(file, options)),
    ]);
    return new EmbeddingPipeline(config, info, tokenizer, session);
  }

  /** Whether the graph pools by itself (a `sentence_embedding` output): the pooling settings then don't apply. */
  get pooledByModel(): boolean {
    return this.output === 'sentence_embedding';
  }

  /** Checks a request and tokenizes it (prompt included). Throws for what the caller must fix. */
  prepare(request: EmbeddingRequest): EmbeddingPrepared {
    if (request.prompt !== undefined && request.promptName !== undefined) throw new Error('give prompt or prompt_name, not both');
    let prompt = request.prompt;
    const promptName = request.promptName ?? (request.prompt === undefined ? this.info.defaultPromptName : undefined);
    if (promptName !== undefined) {
      prompt = this.info.prompts[promptName];
      if (prompt === undefined) {
        const known = Object.keys(this.info.prompts);
        throw new Error(`prompt_name "${promptName}" is not one of this model's prompts (${known.length > 0 ? known.join(', ') : 'it has none'})`);
      }
    }
    if (request.dimensions !== undefined && (!Number.isInteger(request.dimensions) || request.dimensions < 1 || request.dimensions > this.hiddenSize)) {
      throw new Error(`dimensions must be an integer from 1 to ${this.hiddenSize} (the model's width), got ${request.dimensions}`);
    }
    if (request.pooling !== undefined && !POOLING_MODES.includes(request.pooling)) throw new Error(`pooling must be one of ${POOLING_MODES.join(', ')}`);
    const pooling = this.info.pooling.length > 0 ? this.info.pooling : [request.pooling ?? 'mean'];
    const text = prompt ? prompt + request.text : request.text;
    const encoded = this.tokenizer.encode(text, undefined, Math.min(this.tokenizer.maxLength, this.info.maxSeqLength ?? Number.POSITIVE_INFINITY));
    // As sentence-transformers: the prompt's length is its tokenization less the final special token.
    const skipTokens = prompt && !this.info.includePrompt ? Math.max(0, this.tokenizer.encode(prompt).ids.length - 1) : 0;
    return { encoded, pooling, normalize: request.normalize ?? this.info.normalize, dimensions: request.dimensions, skipTokens };
  }

  /** Tokens a prepared request costs in a batch. */
  cost(p: EmbeddingPrepared): number {
    return p.encoded.ids.length;
  }

  /** Embeds prepared requests as one padded batch. */
  async run(rows: readonly EmbeddingPrepared[]): Promise<EmbeddingOutput[]> {
    if (rows.length === 0) return [];
    const batch = padBatch(
      rows.map((r) => r.encoded),
      { padId: this.tokenizer.padId, side: 'right' },
    );
    const outputs = await this.session.run(
      { input_ids: batch.inputIds, attention_mask: batch.attentionMask, token_type_ids: batch.tokenTypeIds },
      [this.output],
    );
    const out = outputs[this.output];
    if (!out) throw new Error(`The model returned no ${this.output}`);
    return rows.map((row, b) => {
      const pooled = this.pooledByModel ? pooledRow(out, b) : pool(out, b, row.encoded.ids.length, row);
      return { embedding: finish(pooled, row), inputTokens: row.encoded.ids.length };
    });
  }

  /** Embeds texts as one batch, with the same settings for each. */
  async embed(texts: readonly string[], options: Omit<EmbeddingRequest, 'text'> = {}): Promise<Float32Array[]> {
    const outs = await this.run(texts.map((text) => this.prepare({ ...options, text })));
    return outs.map((o) => o.embedding);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function pooledRow(out: FloatTensor, b: number): Float32Array {
  const width = out.dims[1] ?? 0;
  return out.data.slice(b * width, (b + 1) * width);
}

/**
 * Pools row `b` of `[batch, seqLen, width]` token vectors over its `length` real tokens
 * (right padding), the modes concatenated. Sums are in float64, as transformers.js and
 * torch's float32 reductions come close to.
 */
function pool(out: FloatTensor, b: number, length: number, row: EmbeddingPrepared): Float32Array {
  const seqLen = out.dims[1] ?? 0;
  const width = out.dims[2] ?? 0;
  const base = b * seqLen * width;
  const at = (t: number, k: number) => out.data[base + t * width + k] ?? 0;
  // include_prompt=false leaves out the first skipTokens tokens ([CLS] and the prompt's), as sentence-transformers masks them.
  const from = row.skipTokens > 0 ? Math.min(length - 1, row.skipTokens) : 0;
  const result = new Float32Array(width * row.pooling.length);
  row.pooling.forEach((mode, m) => {
    const dst = result.subarray(m * width, (m + 1) * width);
    for (let k = 0; k < width; k++) {
      switch (mode) {
        case 'cls':
          dst[k] = at(0, k);
          break;
        case 'last_token':
          dst[k] = at(length - 1, k);
          break;
        case 'max': {
          let max = Number.NEGATIVE_INFINITY;
          for (let t = from; t < length; t++) max = Math.max(max, at(t, k));
          dst[k] = max;
          break;
        }
        case 'mean':
        case 'mean_sqrt_len': {
          let sum = 0;
          for (let t = from; t < length; t++) sum += at(t, k);
          const count = Math.max(1, length - from);
          dst[k] = mode === 'mean' ? sum / count : sum / Math.sqrt(count);
          break;
        }
      }
    }
  });
  return result;
}

/** Matryoshka cut, then L2 normalization (a zero vector stays zero). */
function finish(vector: Float32Array, row: EmbeddingPrepared): Float32Array {
  const v = row.dimensions !== undefined && row.dimensions < vector.length ? vector.slice(0, row.dimensions) : vector;
  if (!row.normalize) return v;
  let sq = 0;
  for (const x of v) sq += x * x;
  const norm = Math.max(Math.sqrt(sq), 1e-12);
  for (let i = 0; i < v.length; i++) v[i] = (v[i] ?? 0) / norm;
  return v;
}

/** Little-endian float32 bytes as base64 (OpenAI's `encoding_format: "base64"`). */
export function embeddingToBase64(vector: Float32Array): string {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  vector.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return Buffer.from(bytes).toString('base64');
}

/** The inverse of {@link embeddingToBase64}. */
export function embeddingFromBase64(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(Math.floor(bytes.byteLength / 4));
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}
