import fp from 'fastify-plugin';
import { FlowProducer } from 'bullmq';
import {
  BATCHES_QUEUE,
  BatchStore,
  bulkQueueNameForModel,
  chunkJobId,
  type BatchJobData,
  type BatchRecord,
  type ChunkJobData,
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
  start(batch: NewBatch, staged: StagedBatch): Promise<{ record: BatchRecord; created: boolean }>;
  /** Throws `INFERQ_ERR_QUEUE_UNAVAILABLE` while Redis is down. */
  assertAvailable(): void;
  /** Queues the batches left `validating` by an API process that died after their record (the reaper runs it); resolves with how many. */
  resumeStalledStarts(now?: number): Promise<number>;
}

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
    // Any API process deletes the stagings of uploads whose process died mid-upload, and
    // finishes starting the batches whose process died between their record and their flow.
    const reaper = setInterval(() => {
      if (redis.status !== 'ready') return;
      store.reapStaging().then(
        (stages) => stages.length > 0 && app.log.info({ stages: stages.length }, 'deleted the staging of abandoned uploads'),
        (err: unknown) => app.log.warn({ err }, 'reaping abandoned uploads failed'),
      );
      resumeStalledStarts().catch((err: unknown) => app.log.warn({ err }, 'resuming batches left validating failed'));
    }, Math.max(1000, stagingGraceMs / 2));
    reaper.unref();
    app.addHook('onClose', async () => clearInterval(reaper));
    const flows = new FlowProducer({ connection: redis, prefix });
    flows.on('error', (err) => app.log.debug({ err }, 'flow producer error'));
    const keep = { age: retentionSeconds };

    async function addFlow(record: BatchRecord): Promise<void> {
      const bulkQueue = bulkQueueNameForModel(record.model);
      await flows.add({
        name: 'batch',
        queueName: BATCHES_QUEUE,
        data: { batch: record.id } satisfies BatchJobData,
        opts: { jobId: record.id, attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: keep, removeOnFail: keep },
        children: Array.from({ length: record.chunks }, (_, chunk) => ({
          name: 'chunk',
          queueName: bulkQueue,
          data: { batch: record.id, chunk, stage: record.stage } satisfies ChunkJobData,
          opts: {
            jobId: chunkJobId(record.id, chunk),
            attempts: chunkAttempts,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: keep,
            removeOnFail: keep,
            // A chunk that fails every attempt must not hold its batch open: the parent runs and
            // writes that chunk's error lines.
            ignoreDependencyOnFailure: true,
          },
        })),
      });
    }

    /**
     * A batch still `validating` well after its creation lost its API process between the
     * record and the flow: its inputs are all staged (the record is made only from a complete
     * staging), so the flow is added now (BullMQ ignores job ids that exist) and it runs.
     * Batches created in the last hour are looked at, those older than the grace period resumed.
     */
    async function resumeStalledStarts(now = Date.now()): Promise<number> {
      const settle = Math.max(60_000, stagingGraceMs);
      const ids = await redis.zrangebyscore(store.indexKey(), now - 3_600_000, now - settle);
      if (ids.length === 0) return 0;
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hget(store.batchKey(id), 'status');
      const statuses = ((await pipeline.exec()) ?? []).map(([, status]) => status);
      let resumed = 0;
      for (const [i, id] of ids.entries()) {
        if (statuses[i] !== 'validating') continue;
        const record = await store.get(id);
        if (!record) continue;
        await addFlow(record);
        await store.transition(id, 'in_progress', ['validating']);
        app.log.warn({ batchId: id }, 'resumed a batch whose API process stopped before queueing it');
        resumed++;
      }
      return resumed;
    }

    const service: BatchService = {
      store,
      resumeStalledStarts,
      assertAvailable() {
        if (redis.status !== 'ready') throw httpError('INFERQ_ERR_QUEUE_UNAVAILABLE');
      },
      async start(batch, staged) {
        let created: boolean;
        try {
          created = await store.create(batch, staged);
        } catch (err) {
          await store.discardStage(staged.stage, staged.chunks).catch(() => {});
          throw err;
        }
        if (!created) {
          await store.discardStage(staged.stage, staged.chunks);
          const existing = await store.get(batch.id);
          if (!existing) throw new Error(`batch ${batch.id} vanished`);
          return { record: existing, created: false };
        }
        try {
          const record = await store.get(batch.id);
          if (!record) throw new Error(`batch ${batch.id} vanished`);
          await addFlow(record);
          await store.transition(batch.id, 'in_progress', ['validating']);
        } catch (err) {
          // The record stays, failed, so that a repeated idempotent post answers the same.
          await store.transition(batch.id, 'failed', ['validating']).catch(() => {});
          throw err;
        }
        const record = await store.get(batch.id);
        if (!record) throw new Error(`batch ${batch.id} vanished`);
        return { record, created: true };
      },
    };
    app.decorate('batches', service);

    app.addHook('onClose', async () => {
      try {
        await flows.close();
      } catch (err) {
        app.log.warn({ err }, 'closing the flow producer failed');
      }
    });
  },
  { name: 'inferq-batches', dependencies: ['inferq-queues'] },
);
