import type { Redis } from 'ioredis';

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
}

const key = (prefix: string, id: string) => `${prefix}:workers:${id}`;

/**
 * Each worker writes its info under `<prefix>:workers:<id>` with a TTL and refreshes it;
 * a worker that dies drops out when its key expires. Returns a stop function that deletes
 * the key (a clean shutdown leaves at once).
 */
export function startHeartbeat(redis: Redis, prefix: string, info: WorkerInfo, everyMs = 5000): () => Promise<void> {
  const ttlMs = everyMs * 3;
  const beat = () => redis.set(key(prefix, info.id), JSON.stringify(info), 'PX', ttlMs).catch(() => undefined);
  void beat();
  const timer = setInterval(beat, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await redis.del(key(prefix, info.id)).catch(() => undefined);
  };
}

/** The workers alive now (their heartbeat has not expired). */
export async function liveWorkers(redis: Redis, prefix: string): Promise<WorkerInfo[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', key(prefix, '*'), 'COUNT', 200);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  return values.flatMap((v) => {
    if (!v) return [];
    try {
      return [JSON.parse(v) as WorkerInfo];
    } catch {
      return [];
    }
  });
}
