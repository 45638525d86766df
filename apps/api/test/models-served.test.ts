import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelList } from '@inferq/contracts';
import { createRedis, startHeartbeat, workersKey } from '@inferq/queue';
import { createTestEnv, SENTIMENT, type TestEnv } from './helpers.js';

let env: TestEnv;
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'worker');
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
  await redis.quit();
});

const served = async () =>
  ((await env.app.inject({ url: '/v1/models' })).json() as ModelList).data.find((m) => m.id === SENTIMENT);

describe('GET /v1/models with worker heartbeats (one sorted set)', () => {
  it('counts the workers beating for a model, and drops one at once when it stops', async () => {
    const info = (id: string) => ({ id, models: [SENTIMENT], devices: { [SENTIMENT]: 'cpu' }, hostname: 'h', pid: 1, started_at: new Date().toISOString() });
    const stopA = startHeartbeat(redis, env.config.QUEUE_PREFIX, info('w-a'), 60_000);
    const stopB = startHeartbeat(redis, env.config.QUEUE_PREFIX, info('w-b'), 60_000);
    await redis.ping(); // both beats went first
    expect(await redis.zcard(workersKey(env.config.QUEUE_PREFIX))).toBe(2);
    expect(await served()).toMatchObject({ served: true, workers: 2 });
    await stopA();
    expect(await served()).toMatchObject({ served: true, workers: 1 });
    await stopB();
    expect(await served()).toMatchObject({ served: false, workers: 0 });
  });
});
