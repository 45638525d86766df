import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { BatchView, ErrorBody, JobAccepted, KeyCreated } from '@inferq/contracts';
import { buildApp } from '../src/app.js';
import { createTestEnv, SENTIMENT, startWorker, type TestEnv } from './helpers.js';

const ADMIN = randomBytes(32).toString('hex');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function envWith(settings: Record<string, string>): Promise<TestEnv> {
  const env = await createTestEnv({ ADMIN_API_KEY: ADMIN, ...settings });
  closers.push(() => env.close());
  return env;
}

async function key(env: TestEnv, tenant: string): Promise<string> {
  const res = await env.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: { authorization: `Bearer ${ADMIN}` }, payload: { tenant } });
  return (res.json() as KeyCreated).key;
}

const job = (env: TestEnv, key: string, input = 'a review') =>
  env.app.inject({ method: 'POST', url: '/v1/jobs', headers: { authorization: `Bearer ${key}` }, payload: { task: 'classification', model: SENTIMENT, input } });

function expect429(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }, code: string): void {
  expect({ status: res.statusCode, code: (res.json() as ErrorBody).error.code }).toEqual({ status: 429, code });
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
}

describe('quotas', () => {
  it('a key past its request rate gets 429 INFERQ_ERR_RATE_LIMITED with Retry-After, in every API process; other keys and health are not counted', async () => {
    const env = await envWith({ RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' });
    const second = await buildApp(env.config, { logger: false });
    closers.push(() => second.close());
    const [a, b] = [await key(env, 'acme'), await key(env, 'globex')];
    const get = (app: typeof second, k: string) => app.inject({ url: '/v1/batches', headers: { authorization: `Bearer ${k}` } });
    for (let i = 0; i < 3; i++) expect((await get(env.app, a)).statusCode).toBe(200);
    for (let i = 0; i < 2; i++) expect((await get(second, a)).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await env.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const limited = await get(second, a);
    expect429(limited, 'INFERQ_ERR_RATE_LIMITED');
    expect429(await get(env.app, a), 'INFERQ_ERR_RATE_LIMITED');
    expect((await get(env.app, b)).statusCode).toBe(200);
  });

  it('a tenant past its queued inputs gets 429 INFERQ_ERR_QUOTA_QUEUED_INPUTS; once its jobs have run it may queue again; nothing accepted is dropped', async () => {
    const env = await envWith({ TENANT_MAX_QUEUED_INPUTS: '3', RATE_LIMIT_MAX: '0' });
    const [a, b] = [await key(env, 'acme'), await key(env, 'globex')];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await job(env, a, `review ${i}`);
      expect(res.statusCode).toBe(202);
      ids.push((res.json() as JobAccepted).id);
    }
    expect429(await job(env, a), 'INFERQ_ERR_QUOTA_QUEUED_INPUTS');
    const batch = await env.app.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { authorization: `Bearer ${a}` },
      payload: { task: 'classification', inputs: [{ custom_id: 'x', input: 'one more' }] },
    });
    expect429(batch, 'INFERQ_ERR_QUOTA_QUEUED_INPUTS');
    expect((await job(env, b)).statusCode).toBe(202);

    const queue = env.app.queues.forModel(SENTIMENT);
    for (const id of ids) expect(await queue.getJobState(id)).toBe('waiting');
    const worker = startWorker(env.config, SENTIMENT, async () => [{ label: 'positive', score: 1 }]);
    closers.push(() => worker.close());
    await expect.poll(async () => Promise.all(ids.map((id) => queue.getJobState(id))), { timeout: 20_000 }).toEqual(['completed', 'completed', 'completed']);
    expect((await job(env, a)).statusCode).toBe(202);
  });

  it('a tenant past its batches in progress gets 429 INFERQ_ERR_QUOTA_BATCHES until one ends', async () => {
    const env = await envWith({ TENANT_MAX_ACTIVE_BATCHES: '1', RATE_LIMIT_MAX: '0' });
    const a = await key(env, 'acme');
    const post = () =>
      env.app.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: { authorization: `Bearer ${a}` },
        payload: { task: 'classification', inputs: [{ custom_id: 'x', input: 'text' }] },
      });
    const first = await post();
    expect(first.statusCode).toBe(202);
    expect429(await post(), 'INFERQ_ERR_QUOTA_BATCHES');
    // The batch ends (as the worker's finalizer would end it).
    await env.app.batches.store.transition((first.json() as BatchView).id, 'completed', ['validating', 'in_progress']);
    expect((await post()).statusCode).toBe(202);
  });

  it('a model with too many waiting jobs answers 429 INFERQ_ERR_MODEL_BUSY to every tenant', async () => {
    const env = await envWith({ MODEL_MAX_WAITING_JOBS: '2', RATE_LIMIT_MAX: '0' });
    const [a, b] = [await key(env, 'acme'), await key(env, 'globex')];
    expect((await job(env, a)).statusCode).toBe(202);
    expect((await job(env, b)).statusCode).toBe(202);
    expect429(await job(env, a), 'INFERQ_ERR_MODEL_BUSY');
    expect429(await job(env, b), 'INFERQ_ERR_MODEL_BUSY');
    expect(await env.app.queues.forModel(SENTIMENT).getJobCountByTypes('waiting')).toBe(2);
  });
});
