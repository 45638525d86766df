import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody } from '@inferq/contracts';
import { newJobId } from '@inferq/queue';
import { createTestEnv, SENTIMENT, type TestEnv } from './helpers.js';

describe('with Redis up', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv();
  });
  afterAll(async () => {
    await env?.close();
  });

  it('GET /healthz: 200 ok', async () => {
    const res = await env.app.inject({ url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz: 200 ok', async () => {
    const res = await env.app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });
});

describe('with Redis unreachable (a closed port)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({ REDIS_URL: 'redis://127.0.0.1:1' });
  });
  afterAll(async () => {
    const started = Date.now();
    await env?.close();
    expect(Date.now() - started).toBeLessThan(3000);
  });

  const unavailable = (res: { statusCode: number; body: string; json(): unknown }): void => {
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({
      error: { code: 'INFERQ_ERR_QUEUE_UNAVAILABLE', message: 'The queue (Redis) is unavailable; retry later' },
    } satisfies ErrorBody);
    expect(res.body).not.toMatch(/ECONNREFUSED|writeable|ioredis|at .*\.js/);
  };

  it('GET /healthz still answers 200', async () => {
    expect((await env.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('GET /readyz: 503 INFERQ_ERR_QUEUE_UNAVAILABLE', async () => {
    unavailable(await env.app.inject({ url: '/readyz' }));
  });

  it('POST /v1/jobs: 503 at once, not a hang', async () => {
    unavailable(
      await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: 'x' } }),
    );
  });

  it('GET /v1/jobs/:id: 503 at once, not a hang', async () => {
    unavailable(await env.app.inject({ url: `/v1/jobs/${newJobId(SENTIMENT)}?wait=5` }));
  });

  it('input errors are still reported as such', async () => {
    const res = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', input: ' ' } });
    expect(res.statusCode).toBe(400);
    expect((res.json() as ErrorBody).error.code).toBe('INFERQ_ERR_EMPTY_INPUT');
  });
});
