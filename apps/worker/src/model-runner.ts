import type { Logger } from 'pino';
import { tasksForConfig, type ChatMessage, type ErrorCode, type GenerationResult, type JobResult, type TaskName } from '@inferq/contracts';
import {
  BatchScheduler,
  GenerationParameterError,
  EmbeddingPipeline,
  embeddingToBase64,
  SummarizationPipeline,
  TextClassificationPipeline,
  TextGenerationPipeline,
  ZeroShotClassificationPipeline,
  PromptTooLongError,
  cpuTurns,
  modelPath,
  urgentWork,
  readModelConfig,
  topK,
  type BatchStats,
  type EmbeddingOutput,
  type EmbeddingPrepared,
  type PoolingMode,
  type Encoded,
  type GeneratedText,
  type GenerationOptions,
  type LabelScore,
  type PairLogits,
  type PipelineLoadOptions,
} from '@inferq/inference';
import type { WorkerConfig } from './config.js';
import type { WorkerMetrics } from './metrics.js';
import { LoadBackoffError, RetryingLoad } from './retrying-load.js';

/** A failure with a code from the contracts' table, e.g. a parameter the model can't honour. */
export class JobError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Whether retrying could help (a transient failure). */
    readonly retryable = false,
  ) {
    super(message);
  }
}

/**
 * One loaded model and the batch scheduler in front of its session. Every job of the model,
 * single or part of a bulk chunk, goes through `run`, so all of them share batches.
 */
export interface ModelRunner {
  readonly modelId: string;
  /** The API tasks this model serves. */
  readonly tasks: readonly TaskName[];
  /** The device its session runs on (after any fallback). */
  readonly device: string;
  /** Runs one input; rejects with a {@link JobError} for what retrying can't fix. */
  run(task: TaskName, input: unknown, parameters: Record<string, unknown>, options?: RunOptions): Promise<unknown>;
  /** Runs what is pending and releases the sessions. */
  close(): Promise<void>;
}

export interface RunOptions {
  /** Bulk inputs (priority 1) yield to single jobs (priority 0, the default). */
  priority?: number;
  /** Receives each new piece of generated text (summarization, generation), for streaming. */
  onToken?: (delta: string) => void;
  /** Gives up on the input (the job's time limit): it leaves the scheduler's queue if it hasn't run yet. */
  signal?: AbortSignal;
}

/** One task of one model: a pipeline and the scheduler that batches its inputs. */
interface TaskHandler {
  readonly device: string;
  run(input: unknown, parameters: Record<string, unknown>, options: RunOptions): Promise<JobResult>;
  close(): Promise<void>;
}

type Params = Record<string, unknown>;

/** Awaits a generation; a {@link GenerationParameterError} is the caller's input at fault. */
async function generated<T>(result: Promise<T>): Promise<T> {
  try {
    return await result;
  } catch (err) {
    if (err instanceof GenerationParameterError) throw new JobError('INFERQ_ERR_VALIDATION', err.message);
    throw err;
  }
}

/**
 * Calls a pipeline's `prepare` (tokenizes) in its turn of the event loop ({@link cpuTurns}:
 * the inputs of a bulk chunk or of many jobs don't hold the loop all at once); what it
 * rejects is the caller's input, not a model failure.
 */
function validated<T>(prepare: () => T, priority = 0): Promise<T> {
  return cpuTurns.run(() => {
    try {
      return prepare();
    } catch (err) {
      if (err instanceof JobError) throw err;
      if (err instanceof PromptTooLongError) throw new JobError('INFERQ_ERR_PROMPT_TOO_LONG', `${err.message} (MAX_PROMPT_TOKENS)`);
      throw new JobError('INFERQ_ERR_VALIDATION', err instanceof Error ? err.message : String(err));
    }
  }, priority);
}

/** The API's snake_case generation parameters in the pipelines' camelCase. */
export function generationOptions(p: Params): GenerationOptions {
  const pick = <T>(key: string) => p[key] as T | undefined;
  const options: GenerationOptions = {
    maxNewTokens: pick<number>('max_new_tokens'),
    minNewTokens: pick<number>('min_new_tokens'),
    doSample: pick<boolean>('do_sample'),
    temperature: pick<number>('temperature'),
    topK: pick<number>('top_k'),
    topP: pick<number>('top_p'),
    repetitionPenalty: pick<number>('repetition_penalty'),
    noRepeatNgramSize: pick<number>('no_repeat_ngram_size'),
    numBeams: pick<number>('num_beams'),
    numReturnSequences: pick<number>('num_return_sequences'),
    lengthPenalty: pick<number>('length_penalty'),
    seed: pick<number>('seed'),
    stop: pick<string[]>('stop'),
  };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as GenerationOptions;
}

/**
 * The caps of one summarization or generation request (issue 15.2): every beam generates
 * every new token, so `num_beams x max_new_tokens` is capped, and its cost in the batch cost
 * model (the scheduler's: prompt and new tokens, per beam) may not pass `MAX_REQUEST_TOKENS`,
 * so no single request holds the model's session for long while others wait.
 */
function checkGenerationCost(config: WorkerConfig, generation: { numBeams: number; maxNewTokens: number }, cost: number): void {
  const beamTokens = generation.numBeams * generation.maxNewTokens;
  if (beamTokens > config.MAX_BEAM_TOKENS) {
    throw new JobError(
      'INFERQ_ERR_BEAMS_TOO_COSTLY',
      `num_beams (${generation.numBeams}) x max_new_tokens (${generation.maxNewTokens}) is ${beamTokens}; the limit is ${config.MAX_BEAM_TOKENS} (MAX_BEAM_TOKENS)`,
    );
  }
  if (cost > config.MAX_REQUEST_TOKENS) {
    throw new JobError(
      'INFERQ_ERR_REQUEST_TOO_COSTLY',
      `The request costs ${cost} tokens (prompt and new tokens, per beam); one request may cost at most ${config.MAX_REQUEST_TOKENS} (MAX_REQUEST_TOKENS)`,
    );
  }
}

function generationResult(out: GeneratedText): GenerationResult {
  const result: GenerationResult = { text: out.text, finish_reason: out.finishReason, usage: { input_tokens: out.inputTokens, output_tokens: out.outputTokens } };
  if (out.sequences) result.sequences = out.sequences.map((s) => ({ text: s.text, finish_reason: s.finishReason, output_tokens: s.outputTokens }));
  return result;
}

/** A model's `config.json` that can't be read or parsed: the message names the model and the file. */
export class ModelConfigError extends Error {
  constructor(
    readonly modelId: string,
    reason: string,
  ) {
    super(`model ${modelId}: config.json ${reason}`);
  }
}

async function readConfigOf(modelId: string, dir: string): Promise<Awaited<ReturnType<typeof readModelConfig>>> {
  try {
    return await readModelConfig(dir);
  } catch (err) {
    const reason = err instanceof SyntaxError ? `is not valid JSON (${err.message})` : `can't be read (${err instanceof Error ? err.message : String(err)})`;
    throw new ModelConfigError(modelId, reason);
  }
}

export async function createRunner(modelId: string, config: WorkerConfig, metrics: WorkerMetrics, log: Logger): Promise<ModelRunner> {
  const dir = modelPath(config.MODELS_DIR, modelId);
  const tasks = tasksForConfig(await readConfigOf(modelId, dir));
  if (tasks.length === 0) throw new Error(`Can't tell which task ${modelId} serves from its config.json architectures`);
  const loadOptions: PipelineLoadOptions = {
    device: config.DEVICE,
    intraOpThreads: config.THREADS,
    onFallback: (requested, reason) => log.warn({ requested, reason }, `device ${requested} is not available; running ${modelId} on cpu`),
  };

  const onBatch = (task: TaskName) => (stats: BatchStats) => {
    metrics.batchSize.observe({ model: modelId }, stats.size);
    metrics.batchSeconds.observe({ model: modelId }, stats.durationMs / 1000);
    metrics.paddingRatio.observe({ model: modelId }, stats.paddedTokens / Math.max(1, stats.realTokens));
    metrics.recent.record(modelId, stats);
    log.debug({ task, ...stats }, 'batch');
  };

  function scheduler<P, O>(task: TaskName, run: (batch: P[]) => Promise<O[]>, cost: (p: P) => number, groupKey?: (p: P) => string) {
    return new BatchScheduler<P, P, O>({
      prepare: (p) => p,
      cost,
      groupKey,
      run,
      maxBatchSize: config.MAX_BATCH_SIZE,
      maxBatchTokens: config.MAX_BATCH_TOKENS,
      maxDelayMs: config.MAX_DELAY_MS,
      maxBackgroundBatchTokens: config.BACKGROUND_BATCH_TOKENS,
      adaptive: config.BATCHING === 'adaptive',
      // Every model's sessions share the cores: bulk batches wait while any single job's batch runs.
      urgentWork,
      onBatch: onBatch(task),
    });
  }

  const loaders: Record<TaskName, () => Promise<TaskHandler>> = {
    async classification() {
      const pipeline = await TextClassificationPipeline.load(dir, loadOptions);
      const batches = scheduler<Encoded, LabelScore[]>('classification', (b) => pipeline.run(b), (e) => e.ids.length);
      return {
        device: pipeline.session.device,
        async run(input, p, { priority, signal }) {
          const encoded = await validated(() => pipeline.encode(input as string), priority);
          return topK(await batches.submit(encoded, { priority, signal }), p.top_k as number | undefined);
        },
        close: async () => (await batches.close(), await pipeline.release()),
      };
    },
    async 'zero-shot-classification'() {
      const pipeline = await ZeroShotClassificationPipeline.load(dir, loadOptions);
      type Prepared = ReturnType<typeof pipeline.prepare>;
      const batches = scheduler<Prepared, Awaited<ReturnType<typeof pipeline.run>>[number]>(
        'zero-shot-classification',
        (b) => pipeline.run(b),
        (p) => pipeline.cost(p),
        (p) => pipeline.groupKey(p),
      );
      const pairs = scheduler<Encoded, PairLogits>('zero-shot-classification', (rows) => pipeline.runPairs(rows), (e) => e.ids.length);
      return {
        device: pipeline.session.device,
        async run(input, p, { priority, signal }) {
          const prepared = await validated(
            () =>
              pipeline.prepare({
                text: input as string,
                candidateLabels: p.candidate_labels as string[],
                hypothesisTemplate: p.hypothesis_template as string | undefined,
                multiLabel: p.multi_label as boolean | undefined,
              }),
            priority,
          );
          // A request costing more than a whole batch (50 labels x 512 tokens is 25,600) would
          // hold the session for all of it while every other zero-shot job (tickets) waits:
          // its pairs run as bulk inputs do instead, a few at a time, behind other requests.
          const out =
            pipeline.cost(prepared) > config.MAX_BATCH_TOKENS
              ? pipeline.combine(
                  prepared,
                  await Promise.all(prepared.pairs.map((pair) => pairs.submit(pair, { priority: Math.max(1, priority ?? 0), signal }))),
                )
              : await batches.submit(prepared, { priority, signal });
          return out.labels.map((label, i) => ({ label, score: out.scores[i] ?? 0 }));
        },
        close: async () => (await batches.close(), await pairs.close(), await pipeline.release()),
      };
    },
    async summarization() {
      const pipeline = await SummarizationPipeline.load(dir, loadOptions);
      type Prepared = ReturnType<typeof pipeline.prepare>;
      const batches = scheduler<Prepared, GeneratedText>('summarization', (b) => pipeline.run(b), (p) => pipeline.cost(p), (p) => pipeline.groupKey(p));
      return {
        device: pipeline.decoder.device,
        async run(input, p, { priority, onToken, signal }) {
          const prepared = await validated(() => pipeline.prepare({ text: input as string, onToken, ...generationOptions(p) }), priority);
          for (const warning of prepared.config.warnings) log.warn({ task: 'summarization' }, warning);
          checkGenerationCost(config, prepared.config, pipeline.cost(prepared));
          return generationResult(await generated(batches.submit(signal ? { ...prepared, signal } : prepared, { priority, signal })));
        },
        close: async () => (await batches.close(), await pipeline.release()),
      };
    },
    async generation() {
      const pipeline = await TextGenerationPipeline.load(dir, {
        ...loadOptions,
        prefillThread: config.PREFILL_THREAD,
        prefillLogitsBytes: config.PREFILL_LOGITS_MB * 2 ** 20,
      });
      type Prepared = ReturnType<typeof pipeline.prepare>;
      const batches = scheduler<Prepared, GeneratedText>('generation', (b) => pipeline.run(b), (p) => pipeline.cost(p), (p) => pipeline.groupKey(p));
      // Greedy and sampling requests join one decode loop at step boundaries; beam search
      // (rows reordered within a request) stays on the static scheduler.
      const loop =
        config.GENERATION_BATCHING === 'continuous'
          ? // Its prefills are the batches /metrics and the heartbeat report (newcomers prefilled together).
            pipeline.continuous({ maxRows: config.MAX_BATCH_SIZE, maxTokens: config.MAX_BATCH_TOKENS, onPrefill: onBatch('generation') })
          : undefined;
      const submit = (prepared: Prepared, priority: number | undefined, signal: AbortSignal | undefined) => {
        const p = signal ? { ...prepared, signal } : prepared;
        return loop && prepared.config.numBeams === 1 ? loop.submit(p, priority) : batches.submit(p, { priority, signal });
      };
      return {
        device: pipeline.session.device,
        async run(input, p, { priority, onToken, signal }) {
          const prepared = await validated(
            () =>
              pipeline.prepare({
                input: input as string | ChatMessage[],
                onToken,
                returnFullText: p.return_full_text as boolean | undefined,
                maxPromptTokens: config.MAX_PROMPT_TOKENS,
                ...generationOptions(p),
              }),
            priority,
          );
          for (const warning of prepared.config.warnings) log.warn({ task: 'generation' }, warning);
          checkGenerationCost(config, prepared.config, pipeline.cost(prepared));
          return generationResult(await generated(submit(prepared, priority, signal)));
        },
        close: async () => (await Promise.all([batches.close(), loop?.close()]), await pipeline.release()),
      };
    },
    async embedding() {
      const pipeline = await EmbeddingPipeline.load(dir, loadOptions);
      const batches = scheduler<EmbeddingPrepared, EmbeddingOutput>('embedding', (b) => pipeline.run(b), (p) => pipeline.cost(p));
      return {
        device: pipeline.session.device,
        async run(input, p, { priority, signal }) {
          const prepared = await validated(
            () =>
              pipeline.prepare({
                text: input as string,
                pooling: p.pooling as PoolingMode | undefined,
                normalize: p.normalize as boolean | undefined,
                dimensions: p.dimensions as number | undefined,
                promptName: p.prompt_name as string | undefined,
                prompt: p.prompt as string | undefined,
              }),
            priority,
          );
          const { embedding, inputTokens } = await batches.submit(prepared, { priority, signal });
          return {
            embedding: p.encoding === 'base64' ? embeddingToBase64(embedding) : Array.from(embedding),
            dimensions: embedding.length,
            usage: { input_tokens: inputTokens },
          };
        },
        close: async () => (await batches.close(), await pipeline.release()),
      };
    },
  };

  // The model's first task loads now (a broken model fails this model's start); another task
  // of the same model (classification on an NLI model) loads on first use. A failed load is
  // retried with backoff, not kept until restart: meanwhile its jobs fail with a retryable
  // INFERQ_ERR_MODEL_NOT_LOADED, so BullMQ tries them again later.
  const handlers = new Map<TaskName, RetryingLoad<TaskHandler>>();
  const handler = (task: TaskName): Promise<TaskHandler> => {
    let h = handlers.get(task);
    if (!h) {
      h = new RetryingLoad(() => loaders[task](), { baseDelayMs: config.MODEL_LOAD_RETRY_MS, maxDelayMs: 60_000 });
      handlers.set(task, h);
    }
    return h.get().catch((err: unknown) => {
      const reason = err instanceof Error ? err.message : String(err);
      if (err instanceof LoadBackoffError) {
        const wait = Math.max(0, err.retryAt - Date.now());
        throw new JobError('INFERQ_ERR_MODEL_NOT_LOADED', `model ${modelId} (${task}) could not be loaded: ${reason}; next try in ${wait} ms`, true);
      }
      log.error({ err, task }, 'loading a task of the model failed; it will be retried');
      throw new JobError('INFERQ_ERR_MODEL_NOT_LOADED', `model ${modelId} (${task}) could not be loaded: ${reason}`, true);
    });
  };
  const primary = await loaders[tasks[0] as TaskName]();
  handlers.set(tasks[0] as TaskName, new RetryingLoad(async () => primary, { baseDelayMs: config.MODEL_LOAD_RETRY_MS, maxDelayMs: 60_000 }));
  metrics.device.set({ model: modelId, device: primary.device, requested: config.DEVICE }, 1);

  return {
    modelId,
    tasks,
    device: primary.device,
    async run(task, input, parameters, options = {}) {
      if (!tasks.includes(task)) throw new JobError('INFERQ_ERR_TASK_MISMATCH', `Model "${modelId}" serves ${tasks.join(', ')}, not "${task}"`);
      if (typeof input !== 'string' && task !== 'generation') throw new JobError('INFERQ_ERR_VALIDATION', 'input must be a string');
      return (await handler(task)).run(input, parameters, options);
    },
    async close() {
      for (const h of handlers.values()) {
        const loaded = await h.loaded()?.catch(() => undefined);
        await loaded?.close();
      }
    },
  };
}
