import type { FlowProducer, JobsOptions } from 'bullmq';
import type { BatchRecord } from './batch-store.js';
import { batchJobId, chunkJobId, type BatchJobData, type ChunkJobData } from './batch-jobs.js';
import type { RedisClient } from './connection.js';
import { BATCHES_QUEUE, bulkQueueNameForModel } from './names.js';

export interface BatchFlowOptions {
  /** BullMQ key prefix. */
  prefix: string;
  /** How long finished parent and chunk jobs stay in Redis, in seconds (the batch's retention). */
  retentionSeconds: number;
  /** Attempts per chunk job; a chunk that fails them all gets error lines at finalization. @defaultValue 3 */
  chunkAttempts?: number;
  /** A job that runs once the batch has ended (a cluster run's clustering job): the batch's flow becomes its child. */
  parent?: FlowParent;
}

/** A job above a batch's flow, run by BullMQ once the batch's parent job has completed. */
export interface FlowParent {
  queueName: string;
  name: string;
  jobId: string;
  data: Record<string, unknown>;
}

/** The set of bulk queue names batches were queued on (`P:bulk-queues`), for the reaper. */
export function bulkQueuesKey(prefix: string): string {
  return `${prefix}:bulk-queues`;
}

const PIPELINE_CHUNK = 500;

/**
 * Adds a batch's flow: a parent on `batches` and one chunk job per staged chunk on the model's
 * bulk queue. Idempotent (job ids come from the batch and its staging). BullMQ's
 * `FlowProducer.add` reports an error of the parent's add only; a chunk whose add failed is
 * found by {@link missingChunkJobs}, which this calls: it throws when any chunk job is missing.
 */
export async function addBatchFlow(flows: FlowProducer, redis: RedisClient, record: BatchRecord, options: BatchFlowOptions): Promise<void> {
  const { prefix, retentionSeconds, chunkAttempts } = { chunkAttempts: 3, ...options };
  const keep = { age: retentionSeconds };
  const bulkQueue = bulkQueueNameForModel(record.model);
  await redis.sadd(bulkQueuesKey(prefix), bulkQueue);
  const chunkOpts = (chunk: number): JobsOptions => ({
    jobId: chunkJobId(record.id, record.stage, chunk),
    attempts: chunkAttempts,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: keep,
    removeOnFail: keep,
    // A chunk that fails every attempt must not hold its batch open: the parent runs and
    // writes that chunk's error lines.
    ignoreDependencyOnFailure: true,
  });
  const batchFlow = {
    name: 'batch',
    queueName: BATCHES_QUEUE,
    data: { batch: record.id } satisfies BatchJobData,
    opts: { jobId: batchJobId(record.id, record.stage), attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: keep, removeOnFail: keep } as JobsOptions,
    children: Array.from({ length: record.chunks }, (_, chunk) => ({
      name: 'chunk',
      queueName: bulkQueue,
      data: { batch: record.id, chunk, stage: record.stage } satisfies ChunkJobData,
      opts: chunkOpts(chunk),
    })),
  };
  const { parent } = options;
  if (parent) {
    const { jobId, ...rest } = parent;
    await flows.add({
      ...rest,
      opts: { jobId, attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: keep, removeOnFail: keep },
      children: [{ ...batchFlow, opts: { ...batchFlow.opts, failParentOnFailure: true } }],
    });
  } else {
    await flows.add(batchFlow);
  }
  const missing = await missingChunkJobs(redis, prefix, record);
  if (missing.length > 0) throw new Error(`batch ${record.id}: ${missing.length} chunk job(s) were not added (first: chunk ${missing[0]})`);
}

/**
 * The chunks of a batch whose job does not exist as a child of the batch's parent job (never
 * added, or a stale job of the same id under another parent). One round trip per 500 chunks.
 */
export async function missingChunkJobs(redis: RedisClient, prefix: string, record: BatchRecord): Promise<number[]> {
  const bulkQueue = bulkQueueNameForModel(record.model);
  const parentKey = `${prefix}:${BATCHES_QUEUE}:${batchJobId(record.id, record.stage)}`;
  const missing: number[] = [];
  for (let c = 0; c < record.chunks; c += PIPELINE_CHUNK) {
    const pipeline = redis.pipeline();
    const end = Math.min(record.chunks, c + PIPELINE_CHUNK);
    for (let k = c; k < end; k++) pipeline.hget(`${prefix}:${bulkQueue}:${chunkJobId(record.id, record.stage, k)}`, 'parentKey');
    const replies = (await pipeline.exec()) ?? [];
    replies.forEach(([err, parent], i) => {
      if (err) throw err;
      if (parent !== parentKey) missing.push(c + i);
    });
  }
  return missing;
}
