/**
 * Summarization with an encoder-decoder LM (`*ForConditionalGeneration`: Optimum's
 * `onnx/encoder_model.onnx` + `onnx/decoder_model_merged.onnx`): the encoder runs once per
 * batch, the decoder steps with a KV cache (cross-attention keys and values computed at the
 * first step and reused); greedy, sampling or beam search.
 *
 * Scheduler-friendly: {@link SummarizationPipeline.prepare} validates and tokenizes one
 * request synchronously; {@link SummarizationPipeline.run} summarizes a batch of them.
 */
import { createSession, type Session } from '../backend/onnx.js';
import { generate, type GeneratedSequence } from '../generation/generate.js';
import { StreamOnce } from '../generation/stream-once.js';
import {
  fixSeed,
  modelGenerationDefaults,
  resolveGenerationConfig,
  type GenerationConfig,
  type GenerationOptions,
  type ModelGenerationDefaults,
} from '../generation/generation-config.js';
import { onnxFile, readGenerationConfig, readModelConfig, type ModelConfig } from '../model-folder.js';
import { pastShapes, type PastShape } from '../models/past-shapes.js';
import { Seq2SeqLmBatch } from '../models/seq2seq-lm-batch.js';
import { TextTokenizer } from '../text-tokenizer.js';
import type { GeneratedText, GenerationRunOptions } from './generated-text.js';
import type { PipelineLoadOptions } from './text-classification.js';

/** One summarization request. */
export interface SummarizationRequest extends GenerationOptions {
  /** The text to summarize; cut to the model's longest input. */
  text: string;
  /** Called with each new piece of the summary (beam search: once, at the end), for streaming. */
  onToken?: (textDelta: string) => void;
}

/** A validated, tokenized request, ready to share a batch. */
export interface SummarizationPrepared {
  /** Encoder token ids, special tokens included, `[inputTokens]`. */
  readonly inputIds: readonly number[];
  /** The merged, checked generation settings. */
  readonly config: GenerationConfig;
  readonly onToken?: (textDelta: string) => void;
  /** Stops this request's generation at the next step (its job's time limit); set by the caller after `prepare`. */
  readonly signal?: AbortSignal;
  /** `onToken` behind a guard, so a retried batch never streams a token twice. */
  readonly stream?: StreamOnce;
}

function num(config: ModelConfig, key: string): number | undefined {
  const v = config[key];
  return typeof v === 'number' ? v : undefined;
}

export class SummarizationPipeline {
  /** The model's generation defaults (`config.json`, then `generation_config.json`). */
  readonly defaults: ModelGenerationDefaults;
  /** The decoder's first token. */
  readonly decoderStartTokenId: number;
  /** Put before every input (`task_specific_params.summarization.prefix`, T5's `summarize: `). */
  readonly prefix: string;
  private readonly shapes: Map<string, PastShape>;

  private constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    readonly encoder: Session,
    readonly decoder: Session,
    generationConfig: Record<string, unknown> | undefined,
  ) {
    // Python's pipeline applies `task_specific_params.summarization` over the generation
    // config (T5: `summarize: ` prefix, num_beams 4, min_length 30, ...).
    const taskParams = (config.task_specific_params as Record<string, Record<string, unknown> | undefined> | undefined)?.summarization ?? {};
    const { prefix, ...taskGeneration } = taskParams;
    this.defaults = { ...modelGenerationDefaults(config, generationConfig), ...modelGenerationDefaults(taskGeneration, undefined) };
    this.prefix = typeof prefix === 'string' ? prefix : typeof config.prefix === 'string' ? config.prefix : '';
    const start = this.defaults.decoderStartTokenId ?? this.defaults.bosTokenId;
    if (start === undefined) throw new Error('config.json has no decoder_start_token_id (nor bos_token_id)');
    this.decoderStartTokenId = start;
    if (!decoder.inputNames.includes('use_cache_branch')) {
      throw new Error('onnx/decoder_model_merged.onnx has no use_cache_branch input: a merged decoder export is needed');
    }
    const heads = num(config, 'decoder_attention_heads') ?? num(config, 'num_attention_heads');
    const width = num(config, 'd_model') ?? num(config, 'hidden_size');
    this.shapes = pastShapes(decoder, () => (heads !== undefined && width !== undefined ? { heads, headDim: width / heads } : undefined));
  }

  /** Loads the encoder, the merged decoder, the tokenizer and the configs from a model folder. */
  static async load(dir: string, options: PipelineLoadOptions = {}): Promise<SummarizationPipeline> {
    const config = await readModelConfig(dir);
    const [tokenizer, encoder, decoder, generationConfig] = await Promise.all([
      TextTokenizer.load(dir, config.max_position_embeddings),
      // The encoder runs once per batch, on a thread (the event loop stays free): its inputs
      // are token ids, its states come back without a copy.
      onnxFile(dir, 'encoder_model', options.variant).then((file) => createSession(file, { thread: true, ...options })),
      onnxFile(dir, 'decoder_model_merged', options.variant).then((file) => createSession(file, { thread: false, ...options })),
      readGenerationConfig(dir),
    ]);
    return new SummarizationPipeline(config, tokenizer, encoder, decoder, generationConfig);
  }

  /** Validates and tokenizes one request (truncated to the model's longest input). */
  prepare(request: SummarizationRequest): SummarizationPrepared {
    const { text, onToken, ...options } = request;
    if (typeof text !== 'string' || text.length === 0) throw new Error('text must be a non-empty string');
    const inputIds = this.tokenizer.encode(this.prefix + text).ids;
    const config = resolveGenerationConfig(
      { ...this.defaults, padTokenId: this.defaults.padTokenId ?? this.tokenizer.padId },
      options,
      1,
    );
    const maxPositions = num(this.config, 'max_position_embeddings');
    if (maxPositions !== undefined && config.maxNewTokens + 1 > maxPositions) {
      throw new Error(`maxNewTokens (${config.maxNewTokens}) is over the decoder's ${maxPositions - 1} positions`);
    }
    fixSeed(config);
    return { inputIds, config, ...(onToken ? { onToken, stream: new StreamOnce(onToken) } : {}) };
  }

  /** Tokens a request may occupy: its input plus every token it may generate, per beam. */
  cost(prepared: SummarizationPrepared): number {
    const { numBeams, doSample, numReturnSequences } = prepared.config;
    return prepared.inputIds.length + prepared.config.maxNewTokens * (doSample ? numReturnSequences : numBeams);
  }

  /** Beam search requests batch only with each other (same beam count). */
  groupKey(prepared: SummarizationPrepared): string {
    return prepared.config.numBeams > 1 ? `beams:${prepared.config.numBeams}` : 'single';
  }

  /** Summarizes a batch of prepared requests; one output per request, in order. */
  async run(batch: readonly SummarizationPrepared[], options: GenerationRunOptions = {}): Promise<GeneratedText[]> {
    if (batch.length === 0) return [];
    const model = new Seq2SeqLmBatch(
      this.encoder,
      this.decoder,
      batch.map((p) => p.inputIds),
      this.tokenizer.padId,
      this.decoderStartTokenId,
      this.shapes,
    );
    const rows = batch.map((p, i) => {
      const toRequest = p.stream?.attempt();
      const onText =
        toRequest || options.onToken
          ? (delta: string) => {
              toRequest?.(delta);
              options.onToken?.(i, delta);
            }
          : undefined;
      return { config: p.config, context: [this.decoderStartTokenId], ...(onText ? { onText } : {}), ...(p.signal ? { signal: p.signal } : {}) };
    });
    // Python's summarization pipeline decodes with clean_up_tokenization_spaces=False,
    // whatever the tokenizer_config says.
    const sequences = await generate(model, rows, (ids) => this.tokenizer.decode([...ids], true, false));
    const one = (x: GeneratedSequence) => ({ text: x.text, tokenIds: x.tokens, finishReason: x.finishReason, outputTokens: x.tokens.length });
    return sequences.map((s, i) => ({
      ...one(s),
      inputTokens: (batch[i] as SummarizationPrepared).inputIds.length,
      ...(s.sequences ? { sequences: s.sequences.map(one) } : {}),
    }));
  }

  /** Prepares and summarizes several texts as one batch (convenience). */
  async summarize(texts: readonly string[], options: Omit<SummarizationRequest, 'text'> = {}): Promise<GeneratedText[]> {
    return this.run(texts.map((text) => this.prepare({ ...options, text })));
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.decoder.release()]);
  }
}
