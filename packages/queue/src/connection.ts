import { Redis, type RedisOptions } from 'ioredis';

/**
 * `producer`: the API. Commands fail at once while Redis is down (no offline queue), so a
 * request gets a 503 instead of hanging.
 * `worker`: BullMQ workers and blocking readers. Commands wait and retry forever
 * (`maxRetriesPerRequest: null`), as BullMQ requires, so a Redis restart is survived.
 */
export type ConnectionRole = 'producer' | 'worker';

export function createRedis(url: string, role: ConnectionRole, extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, ...extra }
      : { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra };
  return new Redis(url, options);
}
