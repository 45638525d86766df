import fp from 'fastify-plugin';
import { FlowProducer, Queue } from 'bullmq';
import {
  BATCHES_QUEUE,
  BatchStore,
  StagingLostError,
  addBatchFlow,
  batchJobId,
  type BatchRecord,
  type FlowParent,
  type NewBatch,
  type StagedBatch,
} from '@inferq/queue';
import { httpError } from '../errors.js';

export interface BatchesOptions {
  /** BullMQ key prefix shared with the workers. */
  prefix: string;
  /** How long a batch and its results stay readable after it ends, in seconds. */
  retentionSeconds: number;
  /** Attempts per chunk job; a chunk that fails them all gets error lines at finalization. @defaultValue 3 */
  chunkAttempts?: number;
  /** An upload staging nothing for this long is abandoned; its staging is reaped, in milliseconds. @defaultValue 300000 */
  stagingGraceMs?: number;
}

export interface BatchService {
  /** Batch records, staging and results (on the producer connection: fails fast while Redis is down). */
  readonly store: BatchStore;
  /**
   * Turns a complete staging into a batch: the record (status `validating`), then the flow
   * (a parent on `batches`, one chunk job per staged chunk on the model's bulk queue), then
   * `in_progress`. Resolves with the record and whether it was created, or (same id, an
   * idempotent repeat) the existing one, the staging then discarded.
   */
  start(batch: NewBatch, staged: StagedBatch, parent?: FlowParent): Promise<{ record: BatchRecord; created: boolean }>;
  /** Throws `INFERQ_ERR_QUEUE_UNAVAILABLE` while Redis is down. */
  assertAvailable(): void;
}

export type { FlowParent } from '@inferq/queue';

declare module 'fastify' {
  interface FastifyInstance {
    batches: BatchService;
  }
}

/** `app.batches`: the batch store and the flow producer that queues chunks. Needs `app.queues`. */
export const batchesPlugin = fp<BatchesOptions>(
  async (app, opts) => {
    const { prefix, retentionSeconds, chunkAttempts, stagingGraceMs } = { chunkAttempts: 3, stagingGraceMs: 300_000, ...opts };
    const redis = app.queues.redis;
    const store = new BatchStore(redis, prefix, stagingGraceMs);
    // Any API process deletes the stagings of uploads whose process died mid-upload. (Batches
    // whose process died between their record and their flow are resumed by the workers' reaper.)
    const reaper = setInterval(() => {
      if (redis.status !== 'ready') return;
      store.reapStaging().then(
        (stages) => stages.length > 0 && app.log.info({ stages: stages.length }, 'deleted the staging of abandoned uploads'),
        (err: unknown) => app.log.warn({ err }, 'reaping abandoned uploads failed'),
      );
    }, Math.max(1000, stagingGraceMs / 2));
    reaper.unref();
    app.addHook('onClose', async () => clearInterval(reaper));
    const flows = new FlowProducer({ connection: redis, prefix });
    flows.on('error', (err) => app.log.debug({ err }, 'flow producer error'));
    const parents = new Queue(BATCHES_QUEUE, { connection: redis, prefix });
    parents.on('error', (err) => app.log.debug({ err }, 'batches queue error'));

    /** Undoes a batch that could not start: failed, its staging deleted, any part of its flow removed. */
    async function abandon(record: BatchRecord, parent?: FlowParent): Promise<void> {
      // The record stays, failed, so that a repeated idempotent post answers the same.
      await store.transition(record.id, 'failed', ['validating']).catch(() => {});
      await parents.remove(batchJobId(record.id, record.stage), { removeChildren: true }).catch(() => {});
      if (parent) {
        const above = new Queue(parent.queueName, { connection: redis, prefix });
        await above.remove(parent.jobId, { removeChildren: true }).catch(() => {});
        await above.close().catch(() => {});
      }
      await store.discardStage(record.stage, record.chunks).catch(() => {});
    }
    const service: BatchService = {
      store,
      assertAvailable() {
        if (redis.status !== 'ready') throw httpError('INFERQ_ERR_QUEUE_UNAVAILABLE');
      },
      async start(batch, staged, parent) {
        let created: boolean;
        try {
          created = await store.create(batch, staged);
        } catch (err) {
          await store.discardStage(staged.stage, staged.chunks).catch(() => {});
          if (err instanceof StagingLostError) {
            app.log.error({ err, stage: staged.stage }, 'staged chunks vanished from Redis before the batch started');
            throw httpError('INFERQ_ERR_QUEUE_UNAVAILABLE');
          }
          throw err;
        }
        if (!created) {
          await store.discardStage(staged.stage, staged.chunks);
          const existing = await store.get(batch.id);
          if (!existing) throw new Error(`batch ${batch.id} vanished`);
          return { record: existing, created: false };
        }
        const record = await store.get(batch.id);
        if (!record) throw new Error(`batch ${batch.id} vanished`);
        try {
          await addBatchFlow(flows, redis, record, { prefix, retentionSeconds, chunkAttempts, ...(parent ? { parent } : {}) });
          await store.transition(batch.id, 'in_progress', ['validating']);
        } catch (err) {
          await abandon(record, parent);
          throw err;
        }
        const started = await store.get(batch.id);
        if (!started) throw new Error(`batch ${batch.id} vanished`);
        return { record: started, created: true };
      },
    };
    app.decorate('batches', service);

    app.addHook('onClose', async () => {
      try {
        await Promise.all([flows.close(), parents.close()]);
      } catch (err) {
        app.log.warn({ err }, 'closing the flow producer failed');
      }
    });
  },
  { name: 'inferq-batches', dependencies: ['inferq-queues'] },
);
