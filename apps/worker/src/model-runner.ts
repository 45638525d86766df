import type { Logger } from 'pino';
import type { ErrorCode, TaskName } from '@inferq/contracts';
import { BatchScheduler, TextClassificationPipeline, modelPath, topK, type Encoded, type LabelScore } from '@inferq/inference';
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
  run(task: TaskName, input: unknown, parameters: Record<string, unknown>): Promise<unknown>;
  /** Runs what is pending and releases the session. */
  close(): Promise<void>;
}

export async function createRunner(modelId: string, config: WorkerConfig, metrics: WorkerMetrics, log: Logger): Promise<ModelRunner> {
  const dir = modelPath(config.MODELS_DIR, modelId);
  const pipeline = await TextClassificationPipeline.load(dir, {
    device: config.DEVICE,
    intraOpThreads: config.THREADS,
    onFallback: (requested, reason) => log.warn({ requested, reason }, `device ${requested} is not available; running ${modelId} on cpu`),
  });
  const device = pipeline.session.device;
  metrics.device.set({ model: modelId, device, requested: config.DEVICE }, 1);

  const scheduler = new BatchScheduler<string, Encoded, LabelScore[]>({
    prepare: (text) => pipeline.encode(text),
    cost: (encoded) => encoded.ids.length,
    run: (batch) => pipeline.run(batch),
    maxBatchSize: config.MAX_BATCH_SIZE,
    maxBatchTokens: config.MAX_BATCH_TOKENS,
    maxDelayMs: config.MAX_DELAY_MS,
    onBatch: (stats) => {
      metrics.batchSize.observe({ model: modelId }, stats.size);
      metrics.batchSeconds.observe({ model: modelId }, stats.durationMs / 1000);
      metrics.paddingRatio.observe({ model: modelId }, stats.paddedTokens / Math.max(1, stats.realTokens));
      log.debug(stats, 'batch');
    },
  });

  return {
    modelId,
    tasks: ['classification'],
    device,
    async run(task, input, parameters) {
      if (task !== 'classification') throw new JobError('INFERQ_ERR_TASK_MISMATCH', `Model "${modelId}" does not serve task "${task}"`);
      if (typeof input !== 'string') throw new JobError('INFERQ_ERR_VALIDATION', 'input must be a string');
      const scores = await scheduler.submit(input);
      return topK(scores, parameters.top_k as number | undefined);
    },
    async close() {
      await scheduler.close();
      await pipeline.release();
    },
  };
}
