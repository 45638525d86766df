import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerList } from '@inferq/contracts';
import { createRedis, startHeartbeat, type WorkerInfo } from '@inferq/queue';
import { createTestEnv, SENTIMENT, type TestEnv } from './helpers.js';

const ADMIN_KEY = 'adm_workers_9d2f4c71e0b3a85f6c21d7e4';
let open: TestEnv;
let guarded: TestEnv;
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'worker');

beforeAll(async () => {
  [open, guarded] = await Promise.all([createTestEnv(), createTestEnv({ ADMIN_API_KEY: ADMIN_KEY })]);
});
afterAll(async () => {
  await Promise.all([open?.close(), guarded?.close()]);
  await redis.quit();
});

const info = (id: string, inputs: number): WorkerInfo => ({
  id,
  models: [SENTIMENT],
  devices: { [SENTIMENT]: 'cpu' },
  hostname: `host-${id}`,
  pid: 42,
  started_at: '2026-01-01T00:00:00.000Z',
  batches: {
    [SENTIMENT]: {
      window_seconds: 60,
      batches: 2,
      inputs,
      failed_batches: 0,
      mean_batch_size: inputs / 2,
      max_batch_size: inputs / 2,
      mean_padding_ratio: 1.2,
      p95_batch_seconds: 0.01,
      last_batch_at: '2026-01-01T00:00:05.000Z',
    },
  },
});

describe('GET /v1/admin/workers', () => {
  it('lists each live worker with its models, devices and recent batches; a stopped one leaves at once', async () => {
    const stopA = startHeartbeat(redis, open.config.QUEUE_PREFIX, info('w-a', 8), 60_000);
    const stopB = startHeartbeat(redis, open.config.QUEUE_PREFIX, () => info('w-b', 16), 60_000);
    await redis.ping(); // both beats went first
    const res = await open.app.inject({ url: '/v1/admin/workers' });
    expect(res.statusCode).toBe(200);
    const { data } = res.json() as WorkerList;
    expect(data.map((w) => w.id)).toEqual(['w-a', 'w-b']);
    expect(data[1]).toMatchObject({
      hostname: 'host-w-b',
      models: [SENTIMENT],
      devices: { [SENTIMENT]: 'cpu' },
      batches: { [SENTIMENT]: { batches: 2, inputs: 16, mean_batch_size: 8 } },
    });
    expect(Date.parse(String(data[1]?.heartbeat_at))).not.toBeNaN();
    await stopA();
    const after = (await open.app.inject({ url: '/v1/admin/workers' })).json() as WorkerList;
    expect(after.data.map((w) => w.id)).toEqual(['w-b']);
    await stopB();
    expect(((await open.app.inject({ url: '/v1/admin/workers' })).json() as WorkerList).data).toEqual([]);
  });

  it('with API keys on (ADMIN_API_KEY): 401 without a bearer key, 403 with any key but the admin key, 200 with it', async () => {
    const cases: [string | undefined, number, string][] = [
      [undefined, 401, 'INFERQ_ERR_UNAUTHORIZED'],
      [`Basic ${ADMIN_KEY}`, 401, 'INFERQ_ERR_UNAUTHORIZED'],
      [ADMIN_KEY, 401, 'INFERQ_ERR_UNAUTHORIZED'],
      ['Bearer wrong', 403, 'INFERQ_ERR_FORBIDDEN'],
      [`Bearer ${ADMIN_KEY}x`, 403, 'INFERQ_ERR_FORBIDDEN'],
    ];
    // A tenant's key is no operator's key either.
    const created = await guarded.app.inject({
      method: 'POST',
      url: '/v1/admin/keys',
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
      payload: { tenant: 'acme' },
    });
    expect(created.statusCode).toBe(201);
    cases.push([`Bearer ${(created.json() as { key: string }).key}`, 403, 'INFERQ_ERR_FORBIDDEN']);
    for (const [authorization, status, code] of cases) {
      const res = await guarded.app.inject({ url: '/v1/admin/workers', headers: authorization ? { authorization } : {} });
      expect({ authorization, status: res.statusCode, code: res.json().error?.code }).toEqual({ authorization, status, code });
    }
    const ok = await guarded.app.inject({ url: '/v1/admin/workers', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ data: [] });
  });
});
