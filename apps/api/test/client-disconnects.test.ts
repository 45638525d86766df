import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ErrorBody, JobAccepted } from '@inferq/contracts';
import { createTestEnv, SENTIMENT, writeModel, type TestEnv } from './helpers.js';

/**
 * Clients that connect and leave at once (issue 15, items 5 and 6): their event streams and
 * long-polls must hold nothing afterwards: no listener on the event reader, no hold, no timer,
 * no extra Redis connection.
 */

const NLI = 'acme/nli';
const BART = 'acme/bart';

let env: TestEnv;
let base: string;
beforeAll(async () => {
  env = await createTestEnv({ MAX_STREAMS_PER_CLIENT: '1000', MAX_WAITS_PER_CLIENT: '1000', DEFAULT_MODEL_ZERO_SHOT: NLI, DEFAULT_MODEL_SUMMARIZATION: BART });
  await writeModel(env.config.MODELS_DIR, NLI, {
    architectures: ['BertForSequenceClassification'],
    id2label: { '0': 'entailment', '1': 'neutral', '2': 'contradiction' },
  });
  await writeModel(env.config.MODELS_DIR, BART, { architectures: ['BartForConditionalGeneration'] });
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(env.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await env?.close();
});

async function postJob(): Promise<string> {
  const res = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: 'Nobody serves this.' } });
  expect(res.statusCode).toBe(202);
  return (res.json() as JobAccepted).id;
}

/** Sockets of this process connected to Redis. */
function redisSockets(): number {
  const port = Number(new URL(env.config.REDIS_URL).port || 6379);
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof Socket && h.remotePort === port && !h.destroyed).length;
}

/** Listeners on an event reader for one job. */
function listeners(events: NodeJS.EventEmitter, id: string): number {
  return ['progress', 'active', 'completed', 'failed'].reduce((sum, e) => sum + events.listenerCount(`${e}:${id}`), 0);
}

/**
 * `count` requests that leave early: half close as soon as the request is sent (before the
 * server has read it), the others a few milliseconds later (while the server reads the job,
 * subscribes or already waits).
 */
async function connectAndClose(path: string, count: number): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      new Promise<void>((resolve) => {
        const req = httpRequest(`${base}${path}`, { agent: false });
        req.on('error', () => resolve());
        req.on('close', () => resolve());
        req.on('response', (res: IncomingMessage) => res.resume());
        req.end(() => (i % 2 === 0 ? setImmediate(() => req.destroy()) : setTimeout(() => req.destroy(), i % 50)));
      }),
    ),
  );
}

/** Reads an SSE response whole (until the server ends it) and resolves with its text and status. */
function readStream(path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(`${base}${path}`, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    })
      .on('error', reject)
      .end();
  });
}

describe('event streams (GET /v1/jobs/:id/events)', () => {
  it('200 connect-and-close streams leave no listener, hold or Redis connection behind', { timeout: 20_000 }, async () => {
    const id = await postJob();
    const events = (await env.app.queues.events(SENTIMENT)) as unknown as NodeJS.EventEmitter;
    // One stream first, so the event reader (one per queue) exists in the baseline.
    await connectAndClose(`/v1/jobs/${id}/events`, 2);
    await vi.waitFor(() => expect(env.app.clientLimits.streams.total()).toBe(0), { timeout: 10_000, interval: 20 });
    const baseline = { sockets: redisSockets(), listeners: listeners(events, id) };
    expect(baseline.listeners).toBe(0);

    await connectAndClose(`/v1/jobs/${id}/events`, 200);
    await vi.waitFor(() => expect(env.app.clientLimits.streams.total()).toBe(0), { timeout: 10_000, interval: 20 });
    expect(listeners(events, id)).toBe(0);
    expect(redisSockets()).toBe(baseline.sockets);
  });

  it('a stream ends after SSE_MAX_SECONDS with a retry hint, even for a job nobody runs', async () => {
    const limited = await createTestEnv({ SSE_MAX_SECONDS: '1', SSE_RETRY_MS: '1500' });
    try {
      await limited.app.listen({ port: 0, host: '127.0.0.1' });
      const res = await limited.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: 'Nobody serves this.' } });
      const { id } = res.json() as JobAccepted;
      const url = `http://127.0.0.1:${(limited.app.server.address() as AddressInfo).port}/v1/jobs/${id}/events`;
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        httpRequest(url, { agent: false }, (r) => {
          let body = '';
          r.setEncoding('utf8');
          r.on('data', (c: string) => (body += c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text: body }));
        })
          .on('error', reject)
          .end();
      });
      expect(status).toBe(200);
      expect(text).toMatch(/^retry: 1500\n/);
      expect(text).toContain('event: status');
      expect(text).toContain('"status":"queued"');
      expect(limited.app.clientLimits.streams.total()).toBe(0);
    } finally {
      await limited.close();
    }
  });

  it('a client past MAX_STREAMS_PER_CLIENT gets 429 INFERQ_ERR_TOO_MANY_STREAMS; a closed stream frees its place', async () => {
    const limited = await createTestEnv({ MAX_STREAMS_PER_CLIENT: '2' });
    try {
      await limited.app.listen({ port: 0, host: '127.0.0.1' });
      const res = await limited.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: 'Nobody serves this.' } });
      const { id } = res.json() as JobAccepted;
      const url = `http://127.0.0.1:${(limited.app.server.address() as AddressInfo).port}/v1/jobs/${id}/events`;
      const open = (): Promise<IncomingMessage> =>
        new Promise((resolve, reject) => httpRequest(url, { agent: false }, resolve).on('error', reject).end());
      const first = await open();
      const second = await open();
      expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
      const third = await open();
      expect(third.statusCode).toBe(429);
      const body = await new Promise<string>((resolve) => {
        let text = '';
        third.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
      });
      expect((JSON.parse(body) as ErrorBody).error).toMatchObject({ code: 'INFERQ_ERR_TOO_MANY_STREAMS' });
      first.destroy();
      await vi.waitFor(() => expect(limited.app.clientLimits.streams.total()).toBe(1), { timeout: 5000, interval: 20 });
      const fourth = await open();
      expect(fourth.statusCode).toBe(200);
      second.destroy();
      fourth.destroy();
    } finally {
      await limited.close();
    }
  });
});

describe('long-polls that the client leaves', () => {
  it('200 connect-and-close job long-polls end at once: no listener or hold stays for MAX_WAIT_SECONDS', { timeout: 20_000 }, async () => {
    const id = await postJob();
    const events = (await env.app.queues.events(SENTIMENT)) as unknown as NodeJS.EventEmitter;
    const sockets = redisSockets();
    await connectAndClose(`/v1/jobs/${id}?wait=30`, 200);
    await vi.waitFor(() => expect(env.app.clientLimits.waits.total()).toBe(0), { timeout: 10_000, interval: 20 });
    expect(listeners(events, id)).toBe(0);
    expect(redisSockets()).toBe(sockets);
  });

  it('ticket long-polls: no MaxListeners warning past 10 waiters, one shared reader, nothing left when clients leave', { timeout: 30_000 }, async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const res = await env.app.inject({ method: 'POST', url: '/v1/tickets', payload: { body: 'My invoice is wrong and nobody answers.' } });
      expect(res.statusCode).toBe(202);
      const { id } = res.json() as { id: string };
      const sockets = redisSockets();
      // 40 waiters that stay until they have subscribed, then leave.
      const controllers = Array.from({ length: 40 }, () => new AbortController());
      const waits = controllers.map((c) => fetch(`${base}/v1/tickets/${id}?wait=30`, { signal: c.signal }).catch(() => undefined));
      const events = (await env.app.queues.eventsForQueue('tickets')) as unknown as NodeJS.EventEmitter;
      await vi.waitFor(() => expect(listeners(events, id)).toBe(80), { timeout: 10_000, interval: 20 });
      // The tickets queue's reader is the only new connection: one blocking reader, nothing unused.
      expect(redisSockets()).toBe(sockets + 1);
      for (const c of controllers) c.abort();
      await Promise.all(waits);
      await connectAndClose(`/v1/tickets/${id}?wait=30`, 100);
      await vi.waitFor(() => expect(env.app.clientLimits.waits.total()).toBe(0), { timeout: 10_000, interval: 20 });
      expect(listeners(events, id)).toBe(0);
      expect(redisSockets()).toBe(sockets + 1);
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a client past MAX_WAITS_PER_CLIENT gets 429 INFERQ_ERR_TOO_MANY_WAITS; a plain read is never refused', async () => {
    const limited = await createTestEnv({ MAX_WAITS_PER_CLIENT: '1' });
    try {
      const res = await limited.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: 'Nobody serves this.' } });
      const { id } = res.json() as JobAccepted;
      const first = limited.app.inject({ url: `/v1/jobs/${id}?wait=1` });
      await vi.waitFor(() => expect(limited.app.clientLimits.waits.total()).toBe(1), { timeout: 5000, interval: 10 });
      const second = await limited.app.inject({ url: `/v1/jobs/${id}?wait=1` });
      expect(second.statusCode).toBe(429);
      expect((second.json() as ErrorBody).error.code).toBe('INFERQ_ERR_TOO_MANY_WAITS');
      const plain = await limited.app.inject({ url: `/v1/jobs/${id}` });
      expect(plain.statusCode).toBe(200);
      expect((await first).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
