import type { RedisClient } from './connection.js';

/**
 * Deletes every key under `<prefix>:` (a queue prefix's jobs, batches, heartbeats), scanning
 * in pages so a large keyspace never blocks Redis. For tests, benchmarks and the demo, which
 * share a Redis with others and clean up after themselves.
 */
export async function deleteKeysWithPrefix(redis: RedisClient, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}
