import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TENANT, MAX_INPUT_CHARS, type JobAccepted, type JobView } from '@inferq/contracts';
import { newJobId } from '@inferq/queue';
import { createTestEnv, SENTIMENT, startWorker, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

/** Bytes the API's Redis connection has received so far. */
const bytesFromRedis = (): number => env.app.queues.redis.stream.bytesRead;

const longInput = (): string => 'The battery lasts all day and the screen is bright. '.repeat(Math.floor(MAX_INPUT_CHARS / 53));

describe('reading a job reads only what its view shows', () => {
  it('a queued 100k-character job: each read costs far less Redis traffic than its input', async () => {
    const input = longInput();
    expect(input.length).toBeGreaterThan(90_000);
    const res = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input } });
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as JobAccepted;

    const reads = 20;
    const before = bytesFromRedis();
    for (let i = 0; i < reads; i++) {
      const view = await env.app.inject({ url: `/v1/jobs/${id}` });
      expect(view.statusCode).toBe(200);
      expect(view.json()).toMatchObject({ id, task: 'classification', model: SENTIMENT, status: 'queued' });
    }
    const perRead = (bytesFromRedis() - before) / reads;
    // The input alone is ~100 KB; the view's fields are a few hundred bytes.
    expect(perRead).toBeLessThan(2_000);
    await env.app.queues.forModel(SENTIMENT).remove(id);
  });

  it('a finished job still shows its result (read only once it succeeded), and a failed one its error', async () => {
    const worker = startWorker(env.config, SENTIMENT, async (job) => {
      if (job.data.input === 'fail me') throw new Error('INFERQ_ERR_INFERENCE_FAILED: it broke');
      return [{ label: 'positive', score: 1 }];
    });
    try {
      const post = async (input: string) =>
        (await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input } })).json() as JobAccepted;
      const ok = await post(longInput());
      const bad = await post('fail me');
      const okView = (await env.app.inject({ url: `/v1/jobs/${ok.id}?wait=10` })).json() as JobView;
      const badView = (await env.app.inject({ url: `/v1/jobs/${bad.id}?wait=10` })).json() as JobView;
      expect(okView).toMatchObject({ status: 'succeeded', task: 'classification', model: SENTIMENT, result: [{ label: 'positive', score: 1 }] });
      expect(okView.finished_at).not.toBeNull();
      expect(badView).toMatchObject({ status: 'failed', error: { code: 'INFERQ_ERR_INFERENCE_FAILED', message: 'it broke' } });
    } finally {
      await worker.close();
    }
  });

  it('a job queued before jobs were named after their task still shows its task', async () => {
    const id = newJobId(SENTIMENT);
    await env.app.queues.forModel(SENTIMENT).add('infer', { task: 'classification', model: SENTIMENT, input: 'old', parameters: {} }, { jobId: id });
    // Owned as the API would have recorded it (this API serves without keys: the default tenant).
    await env.app.owners.store.claim('job', id, DEFAULT_TENANT, { ttlSeconds: 60, listed: false });
    const view = (await env.app.inject({ url: `/v1/jobs/${id}` })).json() as JobView;
    expect(view).toMatchObject({ id, task: 'classification', model: SENTIMENT, status: 'queued' });
    await env.app.queues.forModel(SENTIMENT).remove(id);
  });
});
