import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchView, ErrorBody, JobAccepted } from '@inferq/contracts';
import { createTestEnv, SENTIMENT, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const postJob = (payload: object, key: string) =>
  env.app.inject({ method: 'POST', url: '/v1/jobs', payload, headers: { 'idempotency-key': key } });
const postBatch = (payload: object, key: string) =>
  env.app.inject({ method: 'POST', url: '/v1/batches', payload, headers: { 'idempotency-key': key } });
const upload = (lines: object[], query: string, key: string) =>
  env.app.inject({
    method: 'POST',
    url: `/v1/batches?${query}`,
    payload: lines.map((l) => JSON.stringify(l)).join('\n'),
    headers: { 'content-type': 'application/x-ndjson', 'idempotency-key': key },
  });

async function idempotencyKeys(): Promise<string[]> {
  return env.app.queues.redis.keys(`${env.config.QUEUE_PREFIX}:idem:*`);
}

describe('Idempotency-Key', () => {
  it('the same key with the same body (keys in any order) answers the first job; one job queued', async () => {
    const first = await postJob({ task: 'classification', model: SENTIMENT, input: 'great', parameters: { top_k: 1 } }, 'job-same');
    const again = await postJob({ parameters: { top_k: 1 }, input: 'great', model: SENTIMENT, task: 'classification' }, 'job-same');
    expect(first.statusCode).toBe(202);
    expect(again.statusCode).toBe(202);
    expect((again.json() as JobAccepted).id).toBe((first.json() as JobAccepted).id);
    expect(await env.app.queues.forModel(SENTIMENT).getJobCountByTypes('waiting')).toBe(1);
  });

  it('the same key with a different body is a 422 INFERQ_ERR_IDEMPOTENCY_MISMATCH and queues nothing', async () => {
    const queue = env.app.queues.forModel(SENTIMENT);
    const first = await postJob({ task: 'classification', input: 'one text' }, 'job-mismatch');
    expect(first.statusCode).toBe(202);
    const before = await queue.getJobCountByTypes('waiting');
    const other = await postJob({ task: 'classification', input: 'another text' }, 'job-mismatch');
    expect(other.statusCode).toBe(422);
    expect((other.json() as ErrorBody).error.code).toBe('INFERQ_ERR_IDEMPOTENCY_MISMATCH');
    expect(await queue.getJobCountByTypes('waiting')).toBe(before);
  });

  it('batches: a JSON body and an upload of the same inputs are one request; other inputs are a 422', async () => {
    const inputs = [
      { custom_id: 'a', input: 'first' },
      { custom_id: 'b', input: 'second' },
    ];
    const first = await postBatch({ task: 'classification', inputs }, 'batch-key');
    const same = await upload(inputs, 'task=classification', 'batch-key');
    expect(first.statusCode).toBe(202);
    expect(same.statusCode).toBe(202);
    expect((same.json() as BatchView).id).toBe((first.json() as BatchView).id);
    const changed = await upload([...inputs, { custom_id: 'c', input: 'third' }], 'task=classification', 'batch-key');
    expect(changed.statusCode).toBe(422);
    expect((changed.json() as ErrorBody).error.code).toBe('INFERQ_ERR_IDEMPOTENCY_MISMATCH');
    const otherSettings = await postBatch({ task: 'classification', inputs, parameters: { top_k: 1 } }, 'batch-key');
    expect(otherSettings.statusCode).toBe(422);
    // Nothing of the refused uploads stays staged.
    const record = await env.app.batches.store.get((first.json() as BatchView).id);
    const staged = await env.app.queues.redis.keys(`${env.config.QUEUE_PREFIX}:batch-stage:*`);
    expect(staged.every((key) => key.includes(record?.stage ?? '?'))).toBe(true);
  });

  it('a request refused before anything is created leaves the key free', async () => {
    const bad = await postJob({ task: 'classification', input: '   ' }, 'job-free');
    expect(bad.statusCode).toBe(400);
    const good = await postJob({ task: 'classification', input: 'now with text' }, 'job-free');
    expect(good.statusCode).toBe(202);
  });

  it('keys are remembered 24 hours, then free for a new request', async () => {
    const first = await postJob({ task: 'classification', input: 'day one' }, 'job-expiry');
    const firstId = (first.json() as JobAccepted).id;
    const redis = env.app.queues.redis;
    const keys = await idempotencyKeys();
    const ttls = await Promise.all(keys.map((key) => redis.ttl(key)));
    for (const ttl of ttls) {
      expect(ttl).toBeGreaterThan(86_400 - 120);
      expect(ttl).toBeLessThanOrEqual(86_400);
    }
    // A day later (the keys expire), the same key with another body is a new job, not a 422.
    for (const key of keys) await redis.pexpire(key, 1);
    await expect.poll(async () => (await idempotencyKeys()).length).toBe(0);
    const later = await postJob({ task: 'classification', input: 'day two' }, 'job-expiry');
    expect(later.statusCode).toBe(202);
    expect((later.json() as JobAccepted).id).not.toBe(firstId);
  });
});
