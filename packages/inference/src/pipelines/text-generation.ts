/**
 * Text generation with a decoder-only LM (`*ForCausalLM` export with a KV cache): a prompt
 * string, or chat messages rendered with the tokenizer's chat template; greedy, sampling
 * (per-row seeded) or beam search; stop strings; streaming.
 *
 * Scheduler-friendly: {@link TextGenerationPipeline.prepare} validates and tokenizes one
 * request synchronously; {@link TextGenerationPipeline.run} generates for a batch of
 * prepared requests (left-padded, one KV cache, finished rows dropped as they finish).
 */
import { createSession, type Session } from '../backend/onnx.js';
import { checkChatMessages, renderChat, type ChatMessage } from '../chat-template.js';
import { ContinuousBatcher, type ContinuousBatcherOptions } from '../generation/continuous-batch.js';
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
import { firstOnnxFile, readGenerationConfig, readModelConfig, type ModelConfig } from '../model-folder.js';
import { CausalLmBatch, type CausalLmBatchOptions } from '../models/causal-lm-batch.js';
import { pastShapes, type PastShape } from '../models/past-shapes.js';
import { TextTokenizer } from '../text-tokenizer.js';
import type { GeneratedText, GenerationRunOptions } from './generated-text.js';
import { checkPromptTokens } from './input-limits.js';
import type { PipelineLoadOptions } from './text-classification.js';

/** Options of {@link TextGenerationPipeline.load}. */
export interface TextGenerationLoadOptions extends PipelineLoadOptions {
  /** {@inheritDoc CausalLmBatchOptions.prefillLogitsBytes} */
  prefillLogitsBytes?: number;
  /**
   * Prefill on a second session of the model on a worker thread, so the event loop stays
   * free during a big prompt batch (the cost: the weights are loaded twice). Decoding steps
   * run on the caller's thread. @defaultValue true
   */
  prefillThread?: boolean;
}

/** One text-generation request. */
export interface TextGenerationRequest extends GenerationOptions {
  /** A prompt, or chat messages (rendered with the chat template and an assistant turn opened). */
  input: string | ChatMessage[];
  /** Return the prompt text followed by the generated text. @defaultValue false */
  returnFullText?: boolean;
  /** Called with each new piece of generated text (never part of a stop string), for streaming. */
  onToken?: (textDelta: string) => void;
  /** Most prompt tokens: a longer prompt throws {@link PromptTooLongError}, having cost only that many tokens. @defaultValue no limit */
  maxPromptTokens?: number;
}

/** A model's continuous decode loop for prepared requests (see {@link TextGenerationPipeline.continuous}). */
export interface ContinuousTextGeneration {
  readonly batcher: ContinuousBatcher<CausalLmBatch>;
  /** Generates for one prepared request (greedy or sampling); priority 0 is interactive, higher is bulk. */
  submit(prepared: TextGenerationPrepared, priority?: number): Promise<GeneratedText>;
  /** Waits for every admitted and waiting request, refusing new ones. */
  close(): Promise<void>;
}

/** A validated, tokenized request, ready to share a batch. */
export interface TextGenerationPrepared {
  /** Prompt token ids, `[inputTokens]`. */
  readonly promptIds: readonly number[];
  /** The prompt as text (the rendered chat for chat input). */
  readonly promptText: string;
  /** The merged, checked generation settings. */
  readonly config: GenerationConfig;
  readonly returnFullText: boolean;
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

/** Ids of the stop strings that are special tokens of the tokenizer (`added_tokens_decoder`). */
function specialTokenIds(tokenizer: TextTokenizer, stop: readonly string[]): number[] {
  const added = (tokenizer.config.added_tokens_decoder ?? {}) as Record<string, { content?: string; special?: boolean }>;
  const ids: number[] = [];
  for (const [id, token] of Object.entries(added)) {
    if (token.special && token.content !== undefined && stop.includes(token.content)) ids.push(Number(id));
  }
  return ids;
}

export class TextGenerationPipeline {
  /** The model's generation defaults (`config.json`, then `generation_config.json`). */
  readonly defaults: ModelGenerationDefaults;
  /** Longest prompt + generation, in tokens (`max_position_embeddings`). */
  readonly maxPositions: number;
  private readonly shapes: Map<string, PastShape>;

  private constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    readonly session: Session,
    generationConfig: Record<string, unknown> | undefined,
    private readonly batchOptions: CausalLmBatchOptions = {},
  ) {
    this.defaults = modelGenerationDefaults(config, generationConfig);
    this.maxPositions = num(config, 'max_position_embeddings') ?? tokenizer.maxLength;
    // Fallback for graphs that leave the cache dimensions symbolic.
    const queryHeads = num(config, 'num_attention_heads');
    const heads = num(config, 'num_key_value_heads') ?? queryHeads;
    const hidden = num(config, 'hidden_size');
    const headDim = num(config, 'head_dim') ?? (hidden !== undefined && queryHeads !== undefined ? hidden / queryHeads : undefined);
    this.shapes = pastShapes(session, () => (heads !== undefined && headDim !== undefined ? { heads, headDim } : undefined));
  }

  /**
   * Loads `onnx/model.onnx` (or `onnx/decoder_model_merged.onnx`, older exports), the
   * tokenizer, `config.json` and `generation_config.json` from a model folder.
   */
  static async load(dir: string, options: TextGenerationLoadOptions = {}): Promise<TextGenerationPipeline> {
    const config = await readModelConfig(dir);
    const { prefillLogitsBytes, prefillThread = true, ...sessionOptions } = options;
    const file = await firstOnnxFile(dir, ['model', 'decoder_model_merged'], options.variant);
    const [tokenizer, session, prefillSession, generationConfig] = await Promise.all([
      TextTokenizer.load(dir),
      createSession(file, { ...sessionOptions, thread: false }),
      // No spin-waiting and a lower priority: the event loop's thread gets a core when it needs one.
      prefillThread ? createSession(file, { ...sessionOptions, thread: true, spinning: false, niceness: 10 }) : undefined,
      readGenerationConfig(dir),
    ]);
    const vocabSize = num(config, 'vocab_size');
    return new TextGenerationPipeline(config, tokenizer, session, generationConfig, {
      ...(vocabSize !== undefined ? { vocabSize } : {}),
      ...(prefillLogitsBytes !== undefined ? { prefillLogitsBytes } : {}),
      ...(prefillSession ? { prefillSession } : {}),
    });
  }

  /** The session the prefill runs on, on its worker thread; undefined with `prefillThread: false` (then `session`). */
  get prefillSession(): Session | undefined {
    return this.batchOptions.prefillSession;
  }

  /** Validates and tokenizes one request. Throws an Error with a clear message on bad input. */
  prepare(request: TextGenerationRequest): TextGenerationPrepared {
    const { input, returnFullText = false, onToken, maxPromptTokens, ...options } = request;
    let promptText: string;
    let addSpecialTokens: boolean;
    if (typeof input === 'string') {
      if (input.length === 0) throw new Error('input must be a non-empty prompt or chat');
      promptText = input;
      // Python's add_special_tokens=True: what the tokenizer.json post-processor adds (a
      // Llama-2 or Llama-3 BOS), whatever tokenizer_config's add_bos_token says or omits.
      addSpecialTokens = true;
    } else {
      checkChatMessages(input);
      const template = this.tokenizer.chatTemplate;
      if (template === undefined) throw new Error('This model has no chat_template; send a prompt string');
      const specialTokens: Record<string, string> = {};
      for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
        const value = this.tokenizer.specialToken(key);
        if (value !== undefined) specialTokens[key] = value;
      }
      promptText = renderChat(template, input, { addGenerationPrompt: true, specialTokens });
      // The template writes its own BOS: no second one (Python's apply_chat_template).
      addSpecialTokens = false;
    }
    if (maxPromptTokens !== undefined) checkPromptTokens(this.tokenizer, promptText, addSpecialTokens, maxPromptTokens);
    const promptIds = this.tokenizer.encodeWith(promptText, { addSpecialTokens, maxLength: Number.MAX_SAFE_INTEGER }).ids;
    if (promptIds.length === 0) throw new Error('The prompt has no tokens');
    const config = resolveGenerationConfig(
      { ...this.defaults, padTokenId: this.defaults.padTokenId ?? this.tokenizer.padId },
      options,
      promptIds.length,
    );
    config.stopTokenIds = specialTokenIds(this.tokenizer, config.stop);
    if (promptIds.length + config.maxNewTokens > this.maxPositions) {
      throw new Error(
        `The prompt (${promptIds.length} tokens) plus maxNewTokens (${config.maxNewTokens}) is over the model's context of ${this.maxPositions} tokens`,
      );
    }
    fixSeed(config);
    return { promptIds, promptText, config, returnFullText, ...(onToken ? { onToken, stream: new StreamOnce(onToken) } : {}) };
  }

  /** Tokens a request may occupy: its prompt plus every token it may generate, per beam. */
  cost(prepared: TextGenerationPrepared): number {
    const { numBeams, doSample, numReturnSequences } = prepared.config;
    return (prepared.promptIds.length + prepared.config.maxNewTokens) * (doSample ? numReturnSequences : numBeams);
  }

  /** Beam search requests batch only with each other (same beam count). */
  groupKey(prepared: TextGenerationPrepared): string {
    return prepared.config.numBeams > 1 ? `beams:${prepared.config.numBeams}` : 'single';
  }

  /** Generates for a batch of prepared requests; one output per request, in order. */
  async run(batch: readonly TextGenerationPrepared[], options: GenerationRunOptions = {}): Promise<GeneratedText[]> {
    if (batch.length === 0) return [];
    const model = new CausalLmBatch(this.session, batch.map((p) => p.promptIds), this.tokenizer.padId, this.shapes, this.batchOptions);
    const rows = batch.map((p, i) => {
      const toRequest = p.stream?.attempt();
      const onText =
        toRequest || options.onToken
          ? (delta: string) => {
              toRequest?.(delta);
              options.onToken?.(i, delta);
            }
          : undefined;
      return { config: p.config, context: p.promptIds, ...(onText ? { onText } : {}), ...(p.signal ? { signal: p.signal } : {}) };
    });
    const sequences = await generate(model, rows, (ids) => this.tokenizer.decode([...ids]));
    return sequences.map((s, i) => this.output(batch[i] as TextGenerationPrepared, s));
  }

  private output(p: TextGenerationPrepared, s: GeneratedSequence): GeneratedText {
    const one = (x: GeneratedSequence) => ({
      text: p.returnFullText ? p.promptText + x.text : x.text,
      tokenIds: x.tokens,
      finishReason: x.finishReason,
      outputTokens: x.tokens.length,
    });
    return { ...one(s), inputTokens: p.promptIds.length, ...(s.sequences ? { sequences: s.sequences.map(one) } : {}) };
  }

  /**
   * A continuous-batching decode loop over this model ({@link ContinuousBatcher}): requests
   * submitted at any time join the running batch at the next step boundary. Beam search
   * requests are refused (run them with {@link TextGenerationPipeline.run}).
   */
  continuous(options: Omit<ContinuousBatcherOptions<CausalLmBatch>, 'open' | 'decode'> = {}): ContinuousTextGeneration {
    const batcher = new ContinuousBatcher<CausalLmBatch>({
      ...options,
      open: (prompts) => new CausalLmBatch(this.session, prompts, this.tokenizer.padId, this.shapes, this.batchOptions),
      decode: (ids) => this.tokenizer.decode([...ids]),
    });
    return {
      batcher,
      submit: async (p, priority = 0) => {
        const onText = p.stream?.attempt();
        const s = await batcher.submit({
          promptIds: p.promptIds,
          config: p.config,
          priority,
          ...(onText ? { onText } : {}),
          ...(p.signal ? { signal: p.signal } : {}),
        });
        return this.output(p, s);
      },
      close: () => batcher.close(),
    };
  }

  /** Prepares and runs several inputs as one batch (convenience). */
  async generate(inputs: readonly (string | ChatMessage[])[], options: Omit<TextGenerationRequest, 'input'> = {}): Promise<GeneratedText[]> {
    return this.run(inputs.map((input) => this.prepare({ ...options, input })));
  }

  async release(): Promise<void> {
    await Promise.all([this.session.release(), this.batchOptions.prefillSession?.release()]);
  }
}
