import type { Logger } from 'pino';
import { tasksForConfig, type ChatMessage, type ErrorCode, type GenerationResult, type JobResult, type TaskName } from '@inferq/contracts';
import {
  BatchScheduler,
  EmbeddingPipeline,
  embeddingToBase64,
  SummarizationPipeline,
  TextClassificationPipeline,
  TextGenerationPipeline,
  ZeroShotClassificationPipeline,
  modelPath,
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
  type PipelineLoadOptions,
} from '@inferq/inference';
import type { WorkerConfig } from './config.js';
import type { WorkerMetrics } from './metrics.js';

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
}

/** One task of one model: a pipeline and the scheduler that batches its inputs. */
interface TaskHandler {
  readonly device: string;
  run(input: unknown, parameters: Record<string, unknown>, options: RunOptions): Promise<JobResult>;
  close(): Promise<void>;
}

type Params = Record<string, unknown>;

/** Calls a pipeline's `prepare`; what it rejects is the caller's input, not a model failure. */
function validated<T>(prepare: () => T): T {
  try {
    return prepare();
  } catch (err) {
    throw new JobError('INFERQ_ERR_VALIDATION', err instanceof Error ? err.message : String(err));
  }
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
    lengthPenalty: pick<number>('length_penalty'),
    seed: pick<number>('seed'),
    stop: pick<string[]>('stop'),
  };
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as GenerationOptions;
}

function generationResult(out: GeneratedText): GenerationResult {
  return { text: out.text, finish_reason: out.finishReason, usage: { input_tokens: out.inputTokens, output_tokens: out.outputTokens } };
}

export async function createRunner(modelId: string, config: WorkerConfig, metrics: WorkerMetrics, log: Logger): Promise<ModelRunner> {
  const dir = modelPath(config.MODELS_DIR, modelId);
  const tasks = tasksForConfig(await readModelConfig(dir));
  if (tasks.length === 0) throw new Error(`Can't tell which task ${modelId} serves from its config.json architectures`);
  const loadOptions: PipelineLoadOptions = {
    device: config.DEVICE,
    intraOpThreads: config.THREADS,
    onFallback: (requested, reason) => log.warn({ requested, reason }, `device ${requested} is not available; running ${modelId} on cpu`),
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
      onBatch: (stats: BatchStats) => {
        metrics.batchSize.observe({ model: modelId }, stats.size);
        metrics.batchSeconds.observe({ model: modelId }, stats.durationMs / 1000);
        metrics.paddingRatio.observe({ model: modelId }, stats.paddedTokens / Math.max(1, stats.realTokens));
        log.debug({ task, ...stats }, 'batch');
      },
    });
  }

  const loaders: Record<TaskName, () => Promise<TaskHandler>> = {
    async classification() {
      const pipeline = await TextClassificationPipeline.load(dir, loadOptions);
      const batches = scheduler<Encoded, LabelScore[]>('classification', (b) => pipeline.run(b), (e) => e.ids.length);
      return {
        device: pipeline.session.device,
        async run(input, p, { priority }) {
          const encoded = validated(() => pipeline.encode(input as string));
          return topK(await batches.submit(encoded, { priority }), p.top_k as number | undefined);
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
      return {
        device: pipeline.session.device,
        async run(input, p, { priority }) {
          const prepared = validated(() =>
            pipeline.prepare({
              text: input as string,
              candidateLabels: p.candidate_labels as string[],
              hypothesisTemplate: p.hypothesis_template as string | undefined,
              multiLabel: p.multi_label as boolean | undefined,
            }),
          );
          const out = await batches.submit(prepared, { priority });
          return out.labels.map((label, i) => ({ label, score: out.scores[i] ?? 0 }));
        },
        close: async () => (await batches.close(), await pipeline.release()),
      };
    },
    async summarization() {
      const pipeline = await SummarizationPipeline.load(dir, loadOptions);
      type Prepared = ReturnType<typeof pipeline.prepare>;
      const batches = scheduler<Prepared, GeneratedText>('summarization', (b) => pipeline.run(b), (p) => pipeline.cost(p), (p) => pipeline.groupKey(p));
      return {
        device: pipeline.decoder.device,
        async run(input, p, { priority, onToken }) {
          const prepared = validated(() => pipeline.prepare({ text: input as string, onToken, ...generationOptions(p) }));
          return generationResult(await batches.submit(prepared, { priority }));
        },
        close: async () => (await batches.close(), await pipeline.release()),
      };
    },
    async generation() {
      const pipeline = await TextGenerationPipeline.load(dir, loadOptions);
      type Prepared = ReturnType<typeof pipeline.prepare>;
      const batches = scheduler<Prepared, GeneratedText>('generation', (b) => pipeline.run(b), (p) => pipeline.cost(p), (p) => pipeline.groupKey(p));
      return {
        device: pipeline.session.device,
        async run(input, p, { priority, onToken }) {
          const prepared = validated(() =>
            pipeline.prepare({
              input: input as string | ChatMessage[],
              onToken,
              returnFullText: p.return_full_text as boolean | undefined,
              ...generationOptions(p),
            }),
          );
          return generationResult(await batches.submit(prepared, { priority }));
        },
        close: async () => (await batches.close(), await pipeline.release()),
      };
    },
    async embedding() {
      const pipeline = await EmbeddingPipeline.load(dir, loadOptions);
      const batches = scheduler<EmbeddingPrepared, EmbeddingOutput>('embedding', (b) => pipeline.run(b), (p) => pipeline.cost(p));
      return {
        device: pipeline.session.device,
        async run(input, p, { priority }) {
          const prepared = validated(() =>
            pipeline.prepare({
              text: input as string,
              pooling: p.pooling as PoolingMode | undefined,
              normalize: p.normalize as boolean | undefined,
              dimensions: p.dimensions as number | undefined,
              promptName: p.prompt_name as string | undefined,
              prompt: p.prompt as string | undefined,
            }),
          );
          const { embedding, inputTokens } = await batches.submit(prepared, { priority });
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

  // The model's first task loads now (a broken model fails the worker at start); another
  // task of the same model (classification on an NLI model) loads on first use.
  const handlers = new Map<TaskName, Promise<TaskHandler>>();
  const handler = (task: TaskName): Promise<TaskHandler> => {
    let h = handlers.get(task);
    if (!h) {
      h = loaders[task]();
      handlers.set(task, h);
    }
    return h;
  };
  const primary = await handler(tasks[0] as TaskName);
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
      for (const h of handlers.values()) await (await h).close();
    },
  };
}
