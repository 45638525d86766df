import { Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { encodeJobError } from '@inferq/contracts';
import {
  BatchScheduler,
  TextClassificationPipeline,
  modelPath,
  topK,
  type Encoded,
  type LabelScore,
} from '@inferq/inference';
import { createRedis, queueNameForModel, type InferenceJobData, type InferenceJobResult } from '@inferq/queue';
import type { WorkerConfig } from './config.js';
import type { WorkerMetrics } from './metrics.js';

/**
 * Serves one model: its pipeline (ONNX session + tokenizer), its batch scheduler, and one
 * BullMQ Worker on the model's queue whose processors all feed that scheduler.
 */
export class ModelWorker {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly modelId: string,
    private readonly pipeline: TextClassificationPipeline,
    private readonly scheduler: BatchScheduler<string, Encoded, LabelScore[]>,
    private readonly worker: Worker<InferenceJobData, InferenceJobResult>,
  ) {}

  static async start(modelId: string, config: WorkerConfig, metrics: WorkerMetrics, logger: Logger): Promise<ModelWorker> {
    const queue = queueNameForModel(modelId);
    const log = logger.child({ queue, model: modelId });
    const pipeline = await TextClassificationPipeline.load(modelPath(config.MODELS_DIR, modelId), {
      device: config.DEVICE,
      intraOpThreads: config.THREADS,
      onFallback: (requested, reason) =>
        log.warn({ requested, reason }, `device ${requested} is not available; running ${modelId} on cpu`),
    });
    metrics.device.set({ model: modelId, device: pipeline.session.device, requested: config.DEVICE }, 1);

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

    const processor = async (job: Job<InferenceJobData, InferenceJobResult>): Promise<InferenceJobResult> => {
      const jobLog = log.child({ workerId: worker.id, jobId: job.id });
      const { task, input, parameters } = job.data;
      if (task !== 'classification') {
        throw new UnrecoverableError(encodeJobError('INFERQ_ERR_TASK_MISMATCH', `Model "${modelId}" does not serve task "${task}"`));
      }
      try {
        const scores = await scheduler.submit(input);
        metrics.jobs.inc({ model: modelId, status: 'succeeded' });
        return topK(scores, parameters.top_k);
      } catch (err) {
        metrics.jobs.inc({ model: modelId, status: 'failed' });
        const message = err instanceof Error ? err.message : String(err);
        jobLog.error({ err }, 'inference failed');
        // The same input fails the same way again: don't retry it.
        throw new UnrecoverableError(encodeJobError('INFERQ_ERR_INFERENCE_FAILED', message));
      }
    };

    const worker = new Worker<InferenceJobData, InferenceJobResult>(queue, processor, {
      connection: createRedis(config.REDIS_URL, 'worker'),
      prefix: config.QUEUE_PREFIX,
      concurrency: config.concurrency,
      lockDuration: config.JOB_LOCK_MS,
      stalledInterval: config.JOB_LOCK_MS,
      autorun: false,
    });
    worker.on('error', (err) => log.error({ err }, 'queue error'));
    worker.on('failed', (job, err) => {
      if (job && job.attemptsMade < (job.opts.attempts ?? 1)) log.warn({ jobId: job.id, err }, 'job will be retried');
    });
    void worker.run();
    await worker.waitUntilReady();
    log.info({ device: pipeline.session.device, concurrency: config.concurrency }, 'serving model');
    return new ModelWorker(modelId, pipeline, scheduler, worker);
  }

  /**
   * Stops taking jobs, lets the jobs in flight finish (their batches still run), then
   * releases the session. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.worker.close();
      } catch {
        /* the connection may already be gone; in-flight jobs are retried by another worker */
      }
      try {
        await this.scheduler.close();
      } catch {
        /* nothing pending can fail here */
      }
      try {
        await this.pipeline.release();
      } catch {
        /* the process is exiting anyway */
      }
    })();
    return this.closing;
  }
}
