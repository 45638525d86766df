import { Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { ERRORS, type ErrorDetail, type TaskName } from '@inferq/contracts';
import {
  BatchStore,
  bulkQueueNameForModel,
  createRedis,
  type ChunkJobData,
  type ChunkJobResult,
  type ChunkLine,
} from '@inferq/queue';
import type { WorkerConfig } from './config.js';
import type { WorkerMetrics } from './metrics.js';
import { JobError, type ModelRunner } from './model-runner.js';

/** Scheduler priority of bulk inputs: single jobs (priority 0) are batched ahead of them. */
export const BULK_PRIORITY = 1;

function errorDetail(err: unknown): ErrorDetail {
  if (err instanceof JobError) return { code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'INFERQ_ERR_INFERENCE_FAILED', message: `Inference failed: ${message}` };
}

const CANCELLED: ErrorDetail = { code: 'INFERQ_ERR_BATCH_CANCELLED', message: ERRORS.INFERQ_ERR_BATCH_CANCELLED.message };
const EXPIRED: ErrorDetail = { code: 'INFERQ_ERR_BATCH_EXPIRED', message: ERRORS.INFERQ_ERR_BATCH_EXPIRED.message };

/**
 * Marks a chunk as being run ({@link BatchStore.holdChunk}) for twice the job lock, renewed at
 * half the lock, until `release`.
 */
function holdWhileRunning(store: BatchStore, batch: string, chunk: number, lockMs: number): { release(): Promise<void> } {
  const hold = () => store.holdChunk(batch, chunk, 2 * lockMs).catch(() => undefined);
  void hold();
  const timer = setInterval(hold, Math.max(1, Math.floor(lockMs / 2)));
  timer.unref();
  return {
    async release() {
      clearInterval(timer);
      await store.releaseChunk(batch, chunk).catch(() => undefined);
    },
  };
}

interface InFlightChunk {
  job: Job<ChunkJobData, ChunkJobResult>;
  token: string | undefined;
  hold: { release(): Promise<void> };
}

/**
 * Runs the chunk jobs of bulk batches for one model: a BullMQ Worker on `bulk--org--name`
 * with a small concurrency (a few chunks in flight), apart from the model's single jobs.
 * Each input of a chunk goes through the model's runner, so through the same batch scheduler
 * as single jobs, at a lower priority. An input that fails gets an error line; the chunk
 * still completes. A chunk of a cancelled or expired batch is not run: its lines say so.
 */
export class ChunkWorker {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker<ChunkJobData, ChunkJobResult>,
    private readonly store: BatchStore,
    /** Chunks whose processor runs now, with the lock token they hold and their run hold. */
    private readonly inFlight: Map<string, InFlightChunk>,
    private readonly log: Logger,
  ) {}

  static async start(runner: ModelRunner, config: WorkerConfig, metrics: WorkerMetrics, logger: Logger): Promise<ChunkWorker> {
    const modelId = runner.modelId;
    const queue = bulkQueueNameForModel(modelId);
    const log = logger.child({ queue, model: modelId });
    const connection = createRedis(config.REDIS_URL, 'worker');
    const store = new BatchStore(connection, config.QUEUE_PREFIX);

    const inFlight = new Map<string, InFlightChunk>();
    const processor = async (job: Job<ChunkJobData, ChunkJobResult>, token?: string): Promise<ChunkJobResult> => {
      const { batch, chunk, stage } = job.data;
      metrics.observeWait(job, modelId, BULK_PRIORITY);
      const jobLog = log.child({ workerId: worker.id, jobId: job.id, batch });
      const record = await store.get(batch);
      const inputs = record ? await store.readChunk(stage, chunk) : undefined;
      // No batch (past its retention) or no inputs (this chunk's results are written): nothing to do.
      if (!record || !inputs) return { completed: 0, failed: 0, skipped: 0 };

      const cancelled = record.status === 'cancelling' || record.status === 'cancelled';
      const expired = !cancelled && Date.now() >= record.expiresAt;
      if (cancelled || expired) {
        const error = cancelled ? CANCELLED : EXPIRED;
        const lines = inputs.map(([customId]) => ({ custom_id: customId, error }));
        await store.finishChunk(batch, stage, chunk, lines, { completed: 0, failed: 0, expired, cancelled });
        jobLog.debug({ chunk, reason: cancelled ? 'cancelled' : 'expired' }, 'chunk not run');
        return { completed: 0, failed: 0, skipped: inputs.length };
      }

      const task = record.task as TaskName;
      const hold = holdWhileRunning(store, batch, chunk, config.JOB_LOCK_MS);
      inFlight.set(String(job.id), { job, token, hold });
      let retryable: unknown;
      const lines: ChunkLine[] = await Promise.all(
        inputs.map(async ([customId, input]): Promise<ChunkLine> => {
          try {
            return { custom_id: customId, result: await runner.run(task, input, record.parameters, { priority: BULK_PRIORITY }) };
          } catch (err) {
            if (err instanceof JobError && err.retryable) retryable ??= err;
            return { custom_id: customId, error: errorDetail(err) };
          }
        }),
      );
      const failed = lines.filter((line) => 'error' in line).length;
      const completed = lines.length - failed;
      // A failure that a retry could fix (a model that could not load yet) retries the chunk
      // while it has attempts left, instead of becoming a permanent error line.
      if (retryable && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) {
        inFlight.delete(String(job.id));
        await hold.release();
        throw retryable;
      }
      // Released at shutdown: another worker runs this chunk now, and its results are the ones written.
      if (!inFlight.delete(String(job.id))) return { completed: 0, failed: 0, skipped: inputs.length };
      const written = await store.finishChunk(batch, stage, chunk, lines, { completed, failed }).finally(() => hold.release());
      if (written !== 'written') return { completed: 0, failed: 0, skipped: inputs.length };
      metrics.jobs.inc({ model: modelId, status: 'succeeded' }, completed);
      if (failed > 0) {
        metrics.jobs.inc({ model: modelId, status: 'failed' }, failed);
        jobLog.warn({ chunk, failed }, 'inputs of a chunk failed');
      }
      return { completed, failed, skipped: 0 };
    };

    const worker = new Worker<ChunkJobData, ChunkJobResult>(queue, processor, {
      connection: createRedis(config.REDIS_URL, 'worker'),
      prefix: config.QUEUE_PREFIX,
      concurrency: config.BULK_CONCURRENCY,
      lockDuration: config.JOB_LOCK_MS,
      stalledInterval: config.JOB_LOCK_MS,
      autorun: false,
    });
    worker.on('error', (err) => log.error({ err }, 'queue error'));
    void worker.run();
    await worker.waitUntilReady();
    log.info({ concurrency: config.BULK_CONCURRENCY }, 'serving bulk chunks');
    return new ChunkWorker(worker, store, inFlight, log);
  }

  /** Chunks whose processor is running now. */
  get chunksInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * Gives every chunk still running back to the bulk queue (active to waiting, lock and run hold
   * dropped, no attempt counted), so another worker runs it at once rather than after the lock
   * expires. The inputs already computed here are dropped: the chunk is rerun whole, and its
   * results are written once, by whichever attempt finishes. For the end of a shutdown grace.
   * Resolves with the number of chunks released.
   */
  async releaseInFlight(): Promise<number> {
    let released = 0;
    for (const [id, { job, token, hold }] of this.inFlight) {
      this.inFlight.delete(id);
      try {
        await hold.release();
        await job.moveToWait(token);
        released++;
        this.log.warn({ jobId: id }, 'chunk released at shutdown: back to waiting for another worker');
      } catch (err) {
        this.log.warn({ err, jobId: id }, 'could not release a chunk at shutdown; it returns to the queue when its lock expires');
      }
    }
    return released;
  }

  /** Stops taking chunks and waits for those in flight (their inputs still run). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.worker.close();
      } catch {
        /* the connection may already be gone; a chunk in flight returns to the queue when its lock expires */
      }
      this.store.redis.disconnect();
    })();
    return this.closing;
  }
}
