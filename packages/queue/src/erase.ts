import type { RedisClient } from './connection.js';
import type { BatchRecord, BatchStore } from './batch-store.js';

const PAGE = 1000;

/**
 * Deletes the entries of a queue's event stream (`P:<queue>:events`) that name `jobId`:
 * `completed` carries the result, `progress` a streamed generation's text, `failed` the error.
 * Reads the stream a page at a time (BullMQ trims it to about 10,000 entries), so Redis is
 * never held for long. Resolves with how many entries were deleted.
 */
export async function eraseJobEvents(redis: RedisClient, prefix: string, queueName: string, jobId: string): Promise<number> {
  const key = `${prefix}:${queueName}:events`;
  let start = '-';
  let deleted = 0;
  for (;;) {
    const entries = await redis.xrange(key, start, '+', 'COUNT', PAGE);
    const matching = entries.filter(([, fields]) => {
      for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'jobId' && fields[i + 1] === jobId) return true;
      return false;
    });
    if (matching.length > 0) deleted += await redis.xdel(key, ...matching.map(([id]) => id));
    if (entries.length < PAGE) return deleted;
    start = `(${entries[entries.length - 1]?.[0]}`;
  }
}

/**
 * Deletes every key of a batch: its record, its results, its staged and kept inputs, and its entry in
 * the index of all batches and in `indexKeys` (the owner's list). A chunk still running finds
 * its batch gone and writes nothing (`finishChunk` answers 'gone').
 */
export async function eraseBatch(store: BatchStore, record: BatchRecord, indexKeys: readonly string[] = []): Promise<void> {
  const keys = [store.batchKey(record.id), store.stageIdsKey(record.stage)];
  for (let c = 0; c < record.chunks; c++) keys.push(store.outKey(record.id, c), store.stageKey(record.stage, c), store.inputsKey(record.id, c));
  // The record first: from then on no chunk writes results, and readers answer not-found.
  await store.redis.del(store.batchKey(record.id));
  for (let i = 0; i < keys.length; i += PAGE) await store.redis.del(...keys.slice(i, i + PAGE));
  const pipeline = store.redis.pipeline();
  for (const index of [store.indexKey(), ...indexKeys]) pipeline.zrem(index, record.id);
  await pipeline.exec();
}
