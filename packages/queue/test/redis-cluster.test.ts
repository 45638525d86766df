import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Cluster, Redis } from 'ioredis';
import { assertClusterPrefix, createRedis, hasHashTag, liveWorkers, parseClusterUrl, startHeartbeat, workersKey, type WorkerInfo } from '../src/index.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('Redis Cluster settings', () => {
  it('a redis-cluster:// URL gives an ioredis Cluster over its seed nodes; redis:// a standalone client', () => {
    const cluster = createRedis('redis-cluster://user:s%40cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002', 'producer', { lazyConnect: true });
    try {
      expect(cluster).toBeInstanceOf(Cluster);
      expect((cluster as Cluster).startupNodes).toEqual([
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ]);
      expect((cluster as Cluster).options.redisOptions).toMatchObject({ username: 'user', password: 's@cret', maxRetriesPerRequest: 1 });
      expect((cluster as Cluster).options.enableOfflineQueue).toBe(false);
    } finally {
      cluster.disconnect();
    }
    expect(parseClusterUrl('rediss-cluster://h:1').tls).toBe(true);
    const standalone = createRedis('redis://127.0.0.1:1', 'worker', { lazyConnect: true });
    expect(standalone).toBeInstanceOf(Redis);
    standalone.disconnect();
  });

  it('refuses an untagged QUEUE_PREFIX on a cluster, saying what to use; accepts a tagged one, and any prefix on one Redis', () => {
    expect(() => assertClusterPrefix('redis-cluster://h:7000', 'inferq')).toThrow(/QUEUE_PREFIX "inferq" has no hash tag.*QUEUE_PREFIX=\{inferq\}/);
    expect(() => assertClusterPrefix('redis-cluster://h:7000', 'a{}b')).toThrow(/hash tag/);
    expect(() => assertClusterPrefix('redis-cluster://h:7000', '{inferq}')).not.toThrow();
    expect(() => assertClusterPrefix('redis-cluster://h:7000', 'prod:{inferq}')).not.toThrow();
    expect(() => assertClusterPrefix('redis://h:6379', 'inferq')).not.toThrow();
    expect(hasHashTag('{}x{y}')).toBe(false); // Redis hashes the whole key when the first tag is empty
  });
});

describe('worker heartbeats', () => {
  const prefix = `test-heartbeat-${randomBytes(6).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  afterAll(async () => {
    await redis.del(workersKey(prefix), `${prefix}:workers:info`);
    redis.disconnect();
  });

  const info = (id: string): WorkerInfo => ({ id, models: ['acme/m'], devices: { 'acme/m': 'cpu' }, hostname: 'h', pid: 1, started_at: new Date(0).toISOString() });

  it('live in one sorted set by expiry: listed while beating, dropped when stopped or when the beat expires, with no SCAN', async () => {
    const stopA = startHeartbeat(redis, prefix, info('a'), 60_000);
    const stopB = startHeartbeat(redis, prefix, info('b'), 60_000);
    await redis.ping(); // both beats were sent before this reply
    expect((await liveWorkers(redis, prefix)).map((w) => w.id).sort()).toEqual(['a', 'b']);
    expect(await redis.zcard(workersKey(prefix))).toBe(2);
    // A worker that died: its score passes, it is no longer listed (3 minutes later by the clock passed in).
    expect(await liveWorkers(redis, prefix, Date.now() + 180_001)).toEqual([]);
    await stopA();
    expect((await liveWorkers(redis, prefix)).map((w) => w.id)).toEqual(['b']);
    await stopB();
    expect(await liveWorkers(redis, prefix)).toEqual([]);
  });
});
