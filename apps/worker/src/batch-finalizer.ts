import { DelayedError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { WebhookEvent } from '@inferq/contracts';
import { BATCHES_QUEUE, BatchStore, createRedis, toBatchView, type BatchJobData } from '@inferq/queue';
import type { WebhookOutbox } from './webhook-outbox.js';

export interface BatchFinalizerOptions {
  redisUrl: string;
  prefix: string;
}

/**
 * Runs the parents of the batches' flows (queue `batches`): BullMQ starts a parent once every
 * chunk job of its batch has ended. It closes the batch (final status, error lines for chunks
 * that never ran, retention from now) and queues its webhook.
 */
export class BatchFinalizer {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker<BatchJobData, string>,
    private readonly store: BatchStore,
    private readonly log: Logger,
  ) {}

  static async start(options: BatchFinalizerOptions, outbox: WebhookOutbox, logger: Logger): Promise<BatchFinalizer> {
    const log = logger.child({ queue: BATCHES_QUEUE });
    const connection = createRedis(options.redisUrl, 'worker');
    const store = new BatchStore(connection, options.prefix);

    const processor = async (job: Job<BatchJobData, string>, token?: string): Promise<string> => {
      // A chunk job BullMQ failed (stalled too often) may still be running: wait for its results
      // rather than write error lines over them.
      const pending = await store.get(job.data.batch);
      const runningMs = pending ? await store.runningChunksMs(pending.id, pending.chunks) : 0;
      if (runningMs > 0 && token) {
        log.info({ workerId: worker.id, jobId: job.id, runningMs }, 'a chunk is still running: finalizing later');
        await job.moveToDelayed(Date.now() + Math.min(runningMs, 5000), token);
        throw new DelayedError();
      }
      const record = await store.finalize(job.data.batch);
      if (!record) return 'gone';
      log.info(
        { workerId: worker.id, jobId: job.id, batch: record.id, status: record.status, total: record.total, completed: record.completed, failed: record.failed },
        'batch ended',
      );
      if (record.webhookUrl) await outbox.send(record.id, record.webhookUrl, `batch.${record.status}` as WebhookEvent, toBatchView(record));
      return record.status;
    };

    const worker = new Worker<BatchJobData, string>(BATCHES_QUEUE, processor, {
      connection: createRedis(options.redisUrl, 'worker'),
      prefix: options.prefix,
      concurrency: 4,
      autorun: false,
    });
    worker.on('error', (err) => log.error({ err }, 'queue error'));
    void worker.run();
    await worker.waitUntilReady();
    return new BatchFinalizer(worker, store, log);
  }

  /** Stops taking batches and waits for those being finalized. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.worker.close();
      } catch (err) {
        this.log.warn({ err }, 'closing the batch finalizer failed');
      }
      this.store.redis.disconnect();
    })();
    return this.closing;
  }
}
