import { Worker, UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { encodeJobError } from '@inferq/contracts';
import { StreamOnce } from '@inferq/inference';
import { createRedis, queueNameForModel, type InferenceJobData, type InferenceJobResult } from '@inferq/queue';
import type { WorkerConfig } from './config.js';
import type { WorkerMetrics } from './metrics.js';
import { ChunkWorker } from './chunk-worker.js';
import { JobError, createRunner, type ModelRunner } from './model-runner.js';
import type { WebhookOutbox } from './webhook-outbox.js';

/**
 * Serves one model: its runner (pipeline + batch scheduler), one BullMQ Worker on the
 * model's queue whose processors all feed that runner, and a {@link ChunkWorker} on the
 * model's bulk queue feeding the same runner at a lower priority.
 */
export class ModelWorker {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly runner: ModelRunner,
    private readonly worker: Worker<InferenceJobData, InferenceJobResult>,
    private readonly chunks: ChunkWorker,
  ) {}

  get modelId(): string {
    return this.runner.modelId;
  }

  static async start(
    modelId: string,
    config: WorkerConfig,
    metrics: WorkerMetrics,
    logger: Logger,
    /** Queues the webhook of a job that asked for one. */
    outbox?: WebhookOutbox,
  ): Promise<ModelWorker> {
    const queue = queueNameForModel(modelId);
    const log = logger.child({ queue, model: modelId });
    const runner = await createRunner(modelId, config, metrics, log);

    const processor = async (job: Job<InferenceJobData, InferenceJobResult>): Promise<InferenceJobResult> => {
      const { task, input, parameters } = job.data;
      try {
        // A streamed job's text goes out as progress events as it is generated (SSE reads them).
        // A job the queue retries regenerates its text: what an earlier attempt streamed
        // (`sent`, kept in the job's progress) is not sent again, and sampling without a seed
        // gets one from the job id, so the retry samples the same tokens.
        const already = (job.progress as { sent?: unknown } | undefined)?.sent;
        const stream = job.data.stream
          ? new StreamOnce((delta) => void job.updateProgress({ delta, sent: stream?.streamed }).catch(() => {}), typeof already === 'number' ? already : 0)
          : undefined;
        const onToken = stream?.attempt();
        const seeded = parameters?.do_sample === true && parameters.seed === undefined ? { ...parameters, seed: seedOf(job.id ?? '') } : parameters;
        const result = (await runner.run(task, input, seeded, { onToken })) as InferenceJobResult;
        metrics.jobs.inc({ model: modelId, status: 'succeeded' });
        await outbox?.jobEnded(job, { result });
        return result;
      } catch (err) {
        metrics.jobs.inc({ model: modelId, status: 'failed' });
        log.child({ workerId: worker.id, jobId: job.id }).error({ err }, 'job failed');
        const queueError = toQueueError(err);
        const final = queueError instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        if (final) await outbox?.jobEnded(job, { errorReason: queueError.message });
        throw queueError;
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
    void worker.run();
    await worker.waitUntilReady();
    const chunks = await ChunkWorker.start(runner, config, metrics, logger);
    log.info({ device: runner.device, concurrency: config.concurrency }, 'serving model');
    return new ModelWorker(runner, worker, chunks);
  }

  /**
   * Stops taking jobs, lets the jobs in flight finish (their batches still run), then
   * releases the session. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await Promise.all([this.worker.close(), this.chunks.close()]);
      } catch {
        /* the connection may already be gone; jobs in flight return to the queue when their lock expires */
      }
      try {
        await this.runner.close();
      } catch {
        /* the process is exiting anyway */
      }
    })();
    return this.closing;
  }
}

/**
 * What BullMQ should do with a failure: a {@link JobError} that retrying can't fix (bad input,
 * wrong task) fails the job now with its code; anything else is an inference failure, which
 * for the same input would fail the same way again.
 */
/** A sampling seed from a job id (FNV-1a), the same on every attempt of the job. */
export function seedOf(jobId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) h = Math.imul(h ^ jobId.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function toQueueError(err: unknown): Error {
  if (err instanceof JobError) {
    const message = encodeJobError(err.code, err.message);
    return err.retryable ? new Error(message) : new UnrecoverableError(message);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new UnrecoverableError(encodeJobError('INFERQ_ERR_INFERENCE_FAILED', message));
}
