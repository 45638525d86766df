import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UnrecoverableError } from 'bullmq';
import { encodeJobError, type ErrorBody, type JobAccepted, type JobView } from '@inferq/contracts';
import { newJobId } from '@inferq/queue';
import { createTestEnv, SENTIMENT, startWorker, type TestEnv } from './helpers.js';

const RESULT = [
  { label: 'positive', score: 0.9 },
  { label: 'negative', score: 0.1 },
];

let env: TestEnv;
const cleanups: Array<() => Promise<void>> = [];
beforeAll(async () => {
  env = await createTestEnv();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await env.app.queues.forModel(SENTIMENT).drain(true);
});
afterAll(async () => {
  await env?.close();
});

async function postJob(headers: Record<string, string> = {}): Promise<string> {
  const res = await env.app.inject({
    method: 'POST',
    url: '/v1/jobs',
    payload: { task: 'classification', model: SENTIMENT, input: 'The battery lasts all day.' },
    headers,
  });
  expect(res.statusCode).toBe(202);
  return (res.json() as JobAccepted).id;
}

/** Listeners a waiting request holds on the queue's event reader for this job. */
async function waiters(id: string): Promise<number> {
  const events = await env.app.queues.events(SENTIMENT);
  return events.listenerCount(`completed:${id}`) + events.listenerCount(`failed:${id}`);
}

/** Resolves once a long-poll for `id` is subscribed (the API's own state, read until true). */
async function subscribed(id: string): Promise<void> {
  await vi.waitFor(async () => expect(await waiters(id)).toBe(2), { timeout: 2000, interval: 10 });
}

describe('GET /v1/jobs/:id', () => {
  it('unknown job id: 404 INFERQ_ERR_JOB_NOT_FOUND', async () => {
    const res = await env.app.inject({ url: `/v1/jobs/${newJobId(SENTIMENT)}` });
    expect(res.statusCode).toBe(404);
    expect((res.json() as ErrorBody).error.code).toBe('INFERQ_ERR_JOB_NOT_FOUND');
  });

  it.each(['nonsense', 'acme--sentiment', 'acme--sentiment--UPPER', '..--..--abc', 'a--b--c--d'])(
    'malformed job id %j: 404 INFERQ_ERR_JOB_NOT_FOUND',
    async (id) => {
      const res = await env.app.inject({ url: `/v1/jobs/${encodeURIComponent(id)}` });
      expect(res.statusCode).toBe(404);
      expect((res.json() as ErrorBody).error.code).toBe('INFERQ_ERR_JOB_NOT_FOUND');
    },
  );

  it('?wait with a bad value: 400 INFERQ_ERR_VALIDATION', async () => {
    for (const wait of ['abc', '-1']) {
      const res = await env.app.inject({ url: `/v1/jobs/${newJobId(SENTIMENT)}?wait=${wait}` });
      expect(res.statusCode).toBe(400);
      expect((res.json() as ErrorBody).error).toMatchObject({ code: 'INFERQ_ERR_VALIDATION' });
      expect((res.json() as ErrorBody).error.message).toContain('querystring.wait');
    }
  });

  it('?wait answers as soon as the job completes, with the result', async () => {
    const id = await postJob();
    const sent = Date.now();
    // 20 s is far beyond this test's 5 s timeout: only the completion can end the wait.
    const pending = env.app.inject({ url: `/v1/jobs/${id}?wait=20` });
    await subscribed(id);

    const worker = startWorker(env.config, SENTIMENT, async () => RESULT);
    cleanups.push(worker.close);
    const res = await pending;
    const answered = Date.now();

    expect(res.statusCode).toBe(200);
    const view = res.json() as JobView;
    expect(view).toMatchObject({ id, task: 'classification', model: SENTIMENT, status: 'succeeded', result: RESULT });
    expect(view.error).toBeUndefined();
    expect(view.started_at).not.toBeNull();
    expect(view.finished_at).not.toBeNull();
    // The answer came after the worker finished, and long before the 20 s were up.
    expect(Date.parse(view.finished_at as string)).toBeLessThanOrEqual(answered);
    expect(answered - sent).toBeLessThan(4000);
    expect(await waiters(id)).toBe(0);
  });

  it('?wait=1 on a job nobody runs answers queued after about a second', async () => {
    const id = await postJob();
    const sent = Date.now();
    const res = await env.app.inject({ url: `/v1/jobs/${id}?wait=1` });
    expect(res.statusCode).toBe(200);
    expect((res.json() as JobView).status).toBe('queued');
    expect(Date.now() - sent).toBeGreaterThanOrEqual(950);
    expect(await waiters(id)).toBe(0);
  });

  it('a failed job shows error.code and error.message', async () => {
    const id = await postJob();
    const pending = env.app.inject({ url: `/v1/jobs/${id}?wait=20` });
    await subscribed(id);
    const worker = startWorker(env.config, SENTIMENT, async () => {
      throw new UnrecoverableError(encodeJobError('INFERQ_ERR_INFERENCE_FAILED', 'boom'));
    });
    cleanups.push(worker.close);

    const res = await pending;
    expect(res.statusCode).toBe(200);
    const view = res.json() as JobView;
    expect(view).toMatchObject({ id, status: 'failed', error: { code: 'INFERQ_ERR_INFERENCE_FAILED', message: 'boom' } });
    expect(view.result).toBeUndefined();
    expect(view.finished_at).not.toBeNull();

    // Without ?wait, the same view.
    const again = await env.app.inject({ url: `/v1/jobs/${id}` });
    expect(again.json()).toEqual(view);
  });

  it('a finished job answers at once even with ?wait', async () => {
    const worker = startWorker(env.config, SENTIMENT, async () => RESULT);
    cleanups.push(worker.close);
    const id = await postJob();
    await new Promise<void>((resolve) => {
      worker.worker.on('completed', (job) => {
        if (job.id === id) resolve();
      });
    });
    const sent = Date.now();
    const res = await env.app.inject({ url: `/v1/jobs/${id}?wait=20` });
    expect((res.json() as JobView).status).toBe('succeeded');
    expect(Date.now() - sent).toBeLessThan(4000);
  });

  it('an idempotent repeat of a finished job answers with its status and does not run it again', async () => {
    const queue = env.app.queues.forModel(SENTIMENT);
    const before = await queue.getJobCounts('completed');
    const worker = startWorker(env.config, SENTIMENT, async () => RESULT);
    cleanups.push(worker.close);
    let runs = 0;
    worker.worker.on('completed', () => runs++);
    const key = { 'idempotency-key': 'review-42' };
    const id = await postJob(key);
    const done = await env.app.inject({ url: `/v1/jobs/${id}?wait=20` });
    expect((done.json() as JobView).status).toBe('succeeded');

    const repeat = await env.app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { task: 'classification', model: SENTIMENT, input: 'The battery lasts all day.' },
      headers: key,
    });
    expect(repeat.statusCode).toBe(202);
    expect(repeat.json()).toEqual({ id, status: 'succeeded' });
    expect(runs).toBe(1);
    const counts = await queue.getJobCounts('waiting', 'active', 'completed');
    expect(counts).toMatchObject({ waiting: 0, active: 0, completed: (before.completed ?? 0) + 1 });
  });

  it('a client that disconnects stops its long-poll (listeners removed at once)', async () => {
    const id = await postJob();
    const address = await env.app.listen({ port: 0, host: '127.0.0.1' }).then(() => env.app.server.address() as AddressInfo);
    const req = httpRequest({ host: '127.0.0.1', port: address.port, path: `/v1/jobs/${id}?wait=20` });
    req.on('error', () => {}); // the abort below
    req.end();
    await subscribed(id);
    req.destroy();
    await vi.waitFor(async () => expect(await waiters(id)).toBe(0), { timeout: 1000, interval: 10 });
  });
});

describe('closing the server', () => {
  it('answers open long-polls with the current view instead of holding the shutdown', async () => {
    const own = await createTestEnv();
    try {
      await own.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = own.app.server.address() as AddressInfo;
      const posted = await own.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        payload: { task: 'classification', input: 'still queued' },
      });
      const { id } = posted.json() as JobAccepted;
      const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: `/v1/jobs/${id}?wait=20` }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      const events = await own.app.queues.events(SENTIMENT);
      await vi.waitFor(() => expect(events.listenerCount(`completed:${id}`)).toBe(1), { timeout: 2000, interval: 10 });

      const started = Date.now();
      await own.app.close();
      const { status, body } = await response;
      expect(status).toBe(200);
      expect(JSON.parse(body)).toMatchObject({ id, status: 'queued' });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await own.close();
    }
  });
});
