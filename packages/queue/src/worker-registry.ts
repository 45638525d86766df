import type { RecentBatchStats } from '@inferq/contracts';
import type { RedisClient } from './connection.js';

/** What a worker process says about itself in its heartbeat. */
export interface WorkerInfo {
  id: string;
  /** Models it serves. */
  models: string[];
  /** The device it runs on per model (after any fallback). */
  devices: Record<string, string>;
  hostname: string;
  pid: number;
  started_at: string;
  /** Recent batch stats per model, as of this beat. */
  batches?: Record<string, RecentBatchStats>;
  /** When this beat was sent (ISO 8601). */
  heartbeat_at?: string;
}

/** The heartbeats: a sorted set of worker ids scored by when each beat expires (milliseconds). */
export const workersKey = (prefix: string): string => `${prefix}:workers`;
/** Each worker's {@link WorkerInfo} as JSON, by worker id. */
export const workersInfoKey = (prefix: string): string => `${prefix}:workers:info`;

/**
 * KEYS: workers zset, info hash. ARGV: now ms, expires-at ms, ttl ms, id, info JSON.
 * Beats, drops the workers whose beat expired, and keeps both keys alive as long as a worker beats.
 */
const BEAT = `
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(dead) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return #dead`;

/**
 * Each worker keeps its id in one sorted set, `<prefix>:workers`, scored by when its beat
 * expires, and its info in the hash `<prefix>:workers:info`: two keys of one hash tag, so
 * reading them sees every worker even on Redis Cluster (a `SCAN` there sees one node). A worker
 * that dies drops out when its score passes. `info` may be a function: it is read at each beat
 * (recent batch stats change). Returns a stop function that removes it at once.
 */
export function startHeartbeat(
  redis: RedisClient,
  prefix: string,
  info: WorkerInfo | (() => WorkerInfo),
  everyMs = 5000,
): () => Promise<void> {
  const ttlMs = everyMs * 3;
  const read = typeof info === 'function' ? info : () => info;
  const id = read().id;
  const beat = () => {
    const now = Date.now();
    const json = JSON.stringify({ ...read(), heartbeat_at: new Date(now).toISOString() });
    return redis.eval(BEAT, 2, workersKey(prefix), workersInfoKey(prefix), now, now + ttlMs, ttlMs, id, json).catch(() => undefined);
  };
  void beat();
  const timer = setInterval(beat, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis
      .multi()
      .zrem(workersKey(prefix), id)
      .hdel(workersInfoKey(prefix), id)
      .exec()
      .catch(() => undefined);
  };
}

/** The workers alive now (their heartbeat has not expired). */
export async function liveWorkers(redis: RedisClient, prefix: string, now = Date.now()): Promise<WorkerInfo[]> {
  const ids = await redis.zrangebyscore(workersKey(prefix), `(${now}`, '+inf');
  if (ids.length === 0) return [];
  const values = await redis.hmget(workersInfoKey(prefix), ...ids);
  return values.flatMap((v) => {
    if (!v) return [];
    try {
      return [JSON.parse(v) as WorkerInfo];
    } catch {
      return [];
    }
  });
}
