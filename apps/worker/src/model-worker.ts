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
    /** Jobs whose processor runs now, with the lock token they hold. */
    private readonly inFlight: Map<string, { job: Job<InferenceJobData, InferenceJobResult>; token: string | undefined }>,
    private readonly log: Logger,
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

    const inFlight = new Map<string, { job: Job<InferenceJobData, InferenceJobResult>; token: string | undefined }>();
    const processor = async (job: Job<InferenceJobData, InferenceJobResult>, token?: string): Promise<InferenceJobResult> => {
      const { task, input, parameters } = job.data;
      if (config.FAULT_CRASH_ON_INPUT && JSON.stringify(input).includes(config.FAULT_CRASH_ON_INPUT)) process.kill(process.pid, 'SIGKILL');
      const deadline = jobDeadline(config.JOB_TIMEOUT_MS);
      const key = String(job.id);
      inFlight.set(key, { job, token });
      metrics.observeWait(job, modelId, 0);
      try {
        // A streamed job's text goes out as progress events as it is generated (SSE reads them).
        // A job the queue retries regenerates its text: what an earlier attempt streamed
        // (`sent`, kept in the job's progress) is not sent again, and sampling without a seed
        // gets one from the job id, so the retry samples the same tokens. Nothing streams once
        // the job's time limit passed.
        const already = (job.progress as { sent?: unknown } | undefined)?.sent;
        const stream = job.data.stream
          ? new StreamOnce(
              (delta) => void (deadline.signal.aborted ? undefined : job.updateProgress({ delta, sent: stream?.streamed }).catch(() => {})),
              typeof already === 'number' ? already : 0,
            )
          : undefined;
        const onToken = stream?.attempt();
        const seeded = parameters?.do_sample === true && parameters.seed === undefined ? { ...parameters, seed: seedOf(job.id ?? '') } : parameters;
        const run = runner.run(task, input, seeded, { onToken, signal: deadline.signal });
        const result = (await Promise.race([run, deadline.expired])) as InferenceJobResult;
        metrics.jobs.inc({ model: modelId, status: 'succeeded' });
        return result;
      } catch (err) {
        metrics.jobs.inc({ model: modelId, status: 'failed' });
        log.child({ workerId: worker.id, jobId: job.id }).error({ err }, 'job failed');
        throw toQueueError(err);
      } finally {
        deadline.clear();
        inFlight.delete(key);
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
    // The webhook is queued once BullMQ has marked the job completed (or failed for good), so a
    // receiver that reads the job on delivery sees it ended, never `running`.
    if (outbox) {
      worker.on('completed', (job, result) => void outbox.jobEnded(job, { result }));
      worker.on('failed', (job, err) => {
        // finishedOn is set only when the failure is final (no retry left, or unrecoverable).
        if (job?.finishedOn) void outbox.jobEnded(job, { errorReason: err.message });
      });
    }
    void worker.run();
    await worker.waitUntilReady();
    const chunks = await ChunkWorker.start(runner, config, metrics, logger);
    log.info({ device: runner.device, concurrency: config.concurrency }, 'serving model');
    return new ModelWorker(runner, worker, chunks, inFlight, log);
  }

  /** Jobs and bulk chunks of this model whose processor is running now. */
  get jobsInFlight(): number {
    return this.inFlight.size + this.chunks.chunksInFlight;
  }

  /**
   * Stops fetching new jobs, at once (single jobs and bulk chunks). The jobs in flight go on;
   * {@link close} waits for them, {@link releaseInFlight} gives them back.
   */
  stopTaking(): void {
    void this.close();
  }

  /**
   * Gives every job and bulk chunk still running back to its queue (moved from active to waiting, its lock
   * dropped, no attempt counted), so another worker starts it at once instead of after the
   * lock expires. For the end of a shutdown grace: this process stops working on them.
   * Resolves with the number of jobs released.
   */
  async releaseInFlight(): Promise<number> {
    let released = 0;
    for (const [id, { job, token }] of this.inFlight) {
      try {
        await job.moveToWait(token);
        released++;
        this.log.warn({ jobId: id }, 'job released at shutdown: back to waiting for another worker');
      } catch (err) {
        this.log.warn({ err, jobId: id }, 'could not release a job at shutdown; it returns to the queue when its lock expires');
      }
    }
    this.inFlight.clear();
    return released + (await this.chunks.releaseInFlight());
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
 * A single job's time limit (`JOB_TIMEOUT_MS`, 0: none): `expired` rejects with
 * `INFERQ_ERR_JOB_TIMEOUT` when it passes, and `signal` aborts then, taking the job's input
 * out of the scheduler's queue if its batch hasn't started (a running batch can't be
 * interrupted; its cost is bounded by the token caps).
 */
export function jobDeadline(timeoutMs: number): { signal: AbortSignal; expired: Promise<never>; clear: () => void } {
  const controller = new AbortController();
  if (timeoutMs <= 0) return { signal: controller.signal, expired: new Promise<never>(() => {}), clear: () => {} };
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new JobError('INFERQ_ERR_JOB_TIMEOUT', `The job ran past JOB_TIMEOUT_MS (${timeoutMs} ms)`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  expired.catch(() => {}); // a job that ends in time never reads it
  return { signal: controller.signal, expired, clear: () => clearTimeout(timer) };
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
