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

/** A job that runs once the batch has ended (a cluster run's clustering job): the batch's flow becomes its child. */
export interface FlowParent {
  queueName: string;
  name: string;
  jobId: string;
  data: Record<string, unknown>;
}

declare module 'fastify' {
  interface FastifyInstance {
    batches: BatchService;
  }
}

/** `app.batches`: the batch store and the flow producer that queues chunks. Needs `app.queues`. */
export const batchesPlugin = fp<BatchesOptions>(
  async (app, opts) => {
    const { prefix, retentionSeconds, chunkAttempts } = { chunkAttempts: 3, ...opts };
    const redis = app.queues.redis;
    const store = new BatchStore(redis, prefix);
    const flows = new FlowProducer({ connection: redis, prefix });
    flows.on('error', (err) => app.log.debug({ err }, 'flow producer error'));
    const keep = { age: retentionSeconds };

    async function addFlow(record: BatchRecord, parent?: FlowParent): Promise<void> {
      const bulkQueue = bulkQueueNameForModel(record.model);
      const batchFlow = {
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
      };
      if (!parent) {
        await flows.add(batchFlow);
        return;
      }
      const { jobId, ...rest } = parent;
      await flows.add({
        ...rest,
        opts: { jobId, attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: keep, removeOnFail: keep },
        children: [{ ...batchFlow, opts: { ...batchFlow.opts, failParentOnFailure: true } }],
      });
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
          await addFlow(record, parent);
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
