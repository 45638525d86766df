import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import {
  BATCHES_QUEUE,
  TICKETS_QUEUE,
  WEBHOOKS_QUEUE,
  bulkQueueNameForModel,
  createRedis,
  queueNameForModel,
  verifyWebhook,
} from '@inferq/queue';
import { ensureModel, STARTER_TICKETS_ID, TINY_BART_ID, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { FINAL_BATCH, ndjsonOf, type BatchView, type ResultLine } from './support/batches.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { OwnRedisCluster, hasRedisCluster } from './support/redis-cluster.js';
import { reviewTexts } from './support/texts.js';

// Every flow on a real six-node Redis Cluster (three masters, three replicas), with
// QUEUE_PREFIX={inferq}: every key hashes to one slot, so BullMQ's scripts and ours work.
// The second run fails over the master of that slot while a batch runs: nothing is lost.

const PREFIX = '{inferq}';
const SECRET = 'whsec_cluster_7c1d';
const BATCH_SIZE = 2000;
/** API keys are on: tenants' records, ownership and quotas live on the cluster too. */
const ADMIN_KEY = 'adm_cluster_e2e_5e8b1f0c9a7d42e6b3';
let tenantKey: string;

let cluster: OwnRedisCluster;
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };

/** A webhook receiver on loopback that keeps every delivery by path. */
const deliveries = new Map<string, string[]>();
const waiters: { path: string; resolve: (bodies: string[]) => void }[] = [];
const receiver: Server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const path = req.url ?? '';
    const body = Buffer.concat(chunks).toString('utf8');
    if (!verifyWebhook(SECRET, body, String(req.headers['inferq-signature']))) {
      res.writeHead(401).end();
      return;
    }
    deliveries.set(path, [...(deliveries.get(path) ?? []), body]);
    res.writeHead(204).end();
    for (const w of waiters.filter((w) => w.path === path)) w.resolve(deliveries.get(path)!);
  });
});
function delivered(path: string): Promise<string[]> {
  const got = deliveries.get(path);
  if (got) return Promise.resolve(got);
  return new Promise((resolve) => waiters.push({ path, resolve }));
}
const hookUrl = (path: string) => `http://127.0.0.1:${(receiver.address() as AddressInfo).port}${path}`;

/**
 * A read through the API that retries while the cluster moves a slot: a failover can make a
 * request answer 503 (INFERQ_ERR_QUEUE_UNAVAILABLE) for a moment, which a client retries.
 */
async function call(path: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const key = path.startsWith('/v1/admin/') ? ADMIN_KEY : tenantKey;
  const authorized = { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: `Bearer ${key}` } };
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${api.url}${path}`, authorized);
    const body = await res.text();
    if (res.status !== 503 || attempt >= 50) return { status: res.status, body };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
async function json<T>(path: string, init?: RequestInit): Promise<T> {
  const { status, body } = await call(path, init);
  if (status >= 300) throw new Error(`${init?.method ?? 'GET'} ${path}: ${status} ${body}`);
  return JSON.parse(body) as T;
}
const post = <T>(path: string, body: object) =>
  json<T>(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const upload = <T>(query: string, texts: string[]) =>
  json<T>(`/v1/batches?${query}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: ndjsonOf(texts) });

async function results(id: string): Promise<ResultLine[]> {
  const { status, body } = await call(`/v1/batches/${id}/results`);
  if (status !== 200) throw new Error(`results ${id}: ${status} ${body}`);
  return body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ResultLine);
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function finalJob(id: string, kind: 'jobs' | 'tickets'): Promise<{ status: string; result?: unknown }> {
  return until(
    () => json<{ status: string; result?: unknown }>(`/v1/${kind}/${id}?wait=20`),
    (v) => v.status !== 'queued' && v.status !== 'running',
  );
}

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-cluster-'));
  for (const id of [TINY_CLASSIFIER_ID, STARTER_TICKETS_ID, TINY_BART_ID]) await ensureModel(modelsDir, id);
  cluster = await OwnRedisCluster.start();
  const env = { REDIS_URL: cluster.url, QUEUE_PREFIX: PREFIX, MODELS_DIR: modelsDir, WEBHOOK_ALLOW_PRIVATE: 'true' };
  [api, worker] = await Promise.all([
    // Small chunks: the 2,000 inputs are 80 chunk jobs, run one at a time, so the batch is
    // mid-run for a while.
    // No rate limit: the test polls, and a slow machine polls longer.
    startApi({ ...env, BATCH_CHUNK_SIZE: '25', TICKET_MODEL: STARTER_TICKETS_ID, ADMIN_API_KEY: ADMIN_KEY, RATE_LIMIT_MAX: '0' }),
    startWorker({
      ...env,
      WORKER_MODELS: [TINY_CLASSIFIER_ID, STARTER_TICKETS_ID, TINY_BART_ID].join(','),
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_BACKOFF_MS: '100',
      BULK_CONCURRENCY: '1',
      // The batch reaper (a BullMQ job scheduler) runs during the test too.
      REAPER_INTERVAL_MS: '500',
    }),
  ]);
  tenantKey = (await post<{ key: string }>('/v1/admin/keys', { tenant: 'desk' })).key;
}, 300_000);

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await cluster?.destroy();
  if (modelsDir) await rm(modelsDir, { recursive: true, force: true });
});

/**
 * Every flow at once: a 2,000-input batch with a webhook (results read while it runs), single
 * jobs (one with a webhook), a ticket, and a second batch cancelled while it waits. `midBatch`
 * runs once the big batch has some results and not all; jobs and a ticket are posted again
 * after it. Then checks that every input, job and ticket came out, once, and every webhook.
 */
async function everyFlow(run: string, midBatch: () => Promise<void>): Promise<void> {
  const texts = reviewTexts(BATCH_SIZE);
  const batch = await upload<BatchView>(`task=classification&webhook_url=${encodeURIComponent(hookUrl(`/${run}/batch`))}`, texts);
  expect(batch.status).toMatch(/validating|in_progress/);
  const toCancel = await upload<BatchView>('task=classification', reviewTexts(300));

  const postJobs = (n: number, tag: string) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        post<{ id: string }>('/v1/jobs', {
          task: 'classification',
          input: `${tag} ${i}: the refund arrived quickly, thank you`,
          ...(i === 0 ? { webhook_url: hookUrl(`/${run}/job-${tag}`) } : {}),
        }),
      ),
    );
  const postTicket = () => post<{ id: string }>('/v1/tickets', { body: 'You charged my card twice for the same invoice' });

  const jobsBefore = await postJobs(5, 'before');
  // An Idempotency-Key repeated gives the same job, and a deleted job is gone.
  const idem = () =>
    json<{ id: string }>('/v1/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': `${run}-refund` },
      body: JSON.stringify({ task: 'classification', input: 'Where is my refund?' }),
    });
  const [first, again] = [await idem(), await idem()];
  expect(again.id).toBe(first.id);
  const ticketBefore = await postTicket();
  const cancel = await json<{ status: string }>(`/v1/batches/${toCancel.id}/cancel`, { method: 'POST' });
  expect(['cancelling', 'cancelled']).toContain(cancel.status);

  // Results while the batch runs: a prefix of the final file, each line a finished input.
  const partial = await until(
    () => results(batch.id),
    (lines) => lines.length > 0,
  );
  const midView = await json<BatchView>(`/v1/batches/${batch.id}`);
  expect(midView.status).toBe('in_progress');
  expect(partial.length).toBeLessThan(BATCH_SIZE);
  expect(partial.every((l) => Array.isArray(l.result))).toBe(true);

  await midBatch();
  // Whatever midBatch did happened while the batch ran.
  expect((await json<BatchView>(`/v1/batches/${batch.id}`)).status).toBe('in_progress');

  const jobsAfter = await postJobs(5, 'after');
  const ticketAfter = await postTicket();

  const final = await until(
    () => json<BatchView>(`/v1/batches/${batch.id}`),
    (v) => FINAL_BATCH.includes(v.status),
  );
  expect(final.status).toBe('completed');
  expect(final.request_counts).toEqual({ total: BATCH_SIZE, completed: BATCH_SIZE, failed: 0 });
  const lines = await results(batch.id);
  expect(lines).toHaveLength(BATCH_SIZE);
  expect(new Set(lines.map((l) => l.custom_id)).size).toBe(BATCH_SIZE);
  expect(lines.filter((l) => !Array.isArray(l.result))).toEqual([]);
  // What was read mid-run is exactly the start of the final file.
  expect(lines.slice(0, partial.length)).toEqual(partial);

  for (const { id } of [...jobsBefore, ...jobsAfter]) {
    const view = await finalJob(id, 'jobs');
    expect({ id, status: view.status }).toEqual({ id, status: 'succeeded' });
    expect(Array.isArray(view.result)).toBe(true);
  }
  expect((await finalJob(first.id, 'jobs')).status).toBe('succeeded');
  expect((await call(`/v1/jobs/${first.id}`, { method: 'DELETE' })).status).toBe(204);
  expect((await call(`/v1/jobs/${first.id}`)).status).toBe(404);
  for (const { id } of [ticketBefore, ticketAfter]) {
    const view = (await finalJob(id, 'tickets')) as { status: string; result?: { issue: { label: string }; summary: string } };
    expect(view.status).toBe('succeeded');
    expect(view.result?.issue.label).toBe('billing');
  }

  const cancelled = await until(
    () => json<BatchView>(`/v1/batches/${toCancel.id}`),
    (v) => FINAL_BATCH.includes(v.status),
  );
  expect(cancelled.status).toBe('cancelled');
  const cancelledLines = await results(toCancel.id);
  expect(cancelledLines).toHaveLength(300);
  expect(cancelledLines.some((l) => l.error?.code === 'INFERQ_ERR_BATCH_CANCELLED')).toBe(true);

  const [batchHook] = await delivered(`/${run}/batch`);
  expect(JSON.parse(batchHook!)).toMatchObject({ id: batch.id, status: 'completed', request_counts: { completed: BATCH_SIZE } });
  for (const [tag, jobs] of [['before', jobsBefore], ['after', jobsAfter]] as const) {
    const [jobHook] = await delivered(`/${run}/job-${tag}`);
    expect(JSON.parse(jobHook!)).toMatchObject({ id: jobs[0]!.id, status: 'succeeded' });
  }
  // No job of any queue failed (a cross-slot script or a lost write would fail one), and the
  // reaper ran on the cluster.
  const redis = createRedis(cluster.url, 'worker');
  try {
    const names = [TINY_CLASSIFIER_ID, STARTER_TICKETS_ID, TINY_BART_ID].flatMap((m) => [queueNameForModel(m), bulkQueueNameForModel(m)]);
    for (const name of [...names, TICKETS_QUEUE, BATCHES_QUEUE, WEBHOOKS_QUEUE, 'maintenance']) {
      const queue = new Queue(name, { connection: redis, prefix: PREFIX });
      const counts = await queue.getJobCounts('failed', 'completed');
      expect({ name, failed: counts.failed }).toEqual({ name, failed: 0 });
      if (name === 'maintenance') expect(counts.completed).toBeGreaterThan(0);
      await queue.close();
    }
  } finally {
    redis.disconnect();
  }
  // No command was refused for using keys of several slots.
  const crossSlot = [...api.proc.raw, ...worker.proc.raw].filter((l) => /CROSSSLOT/i.test(l));
  expect(crossSlot).toEqual([]);
}

describe.skipIf(!hasRedisCluster)('on a six-node Redis Cluster with QUEUE_PREFIX={inferq}, API keys on', () => {
  it('jobs (one idempotent, one deleted), a 2,000-input batch read mid-run, a ticket, a cancel and webhooks all work', async () => {
    await everyFlow('steady', async () => {});
  }, 300_000);

  it('GET /v1/admin/workers shows the worker, its models and devices, and the batches it ran (from its heartbeats)', async () => {
    expect((await fetch(`${api.url}/v1/admin/workers`)).status).toBe(401);
    expect((await fetch(`${api.url}/v1/admin/workers`, { headers: { authorization: `Bearer ${tenantKey}` } })).status).toBe(403);
    type Workers = { data: { id: string; models: string[]; devices: Record<string, string>; batches: Record<string, { inputs: number; batches: number }> }[] };
    // The heartbeat carries the stats every 5 s: read until the run above shows.
    const { data } = await until(
      () => json<Workers>('/v1/admin/workers'),
      (v) => (v.data[0]?.batches[TINY_CLASSIFIER_ID]?.inputs ?? 0) >= BATCH_SIZE,
    );
    expect(data).toHaveLength(1);
    expect([...data[0]!.models].sort()).toEqual([STARTER_TICKETS_ID, TINY_BART_ID, TINY_CLASSIFIER_ID].sort());
    expect(data[0]!.devices).toEqual({ [STARTER_TICKETS_ID]: 'cpu', [TINY_BART_ID]: 'cpu', [TINY_CLASSIFIER_ID]: 'cpu' });
    expect(data[0]!.batches[TINY_CLASSIFIER_ID]!.batches).toBeGreaterThan(0);
  }, 60_000);

  it('the same, with the master of the {inferq} slot failed over mid-batch: nothing is lost', async () => {
    let moved: { from: number; to: number } | undefined;
    await everyFlow('failover', async () => {
      moved = await cluster.failover(`${PREFIX}:any`);
    });
    expect(moved && moved.from !== moved.to).toBe(true);
    // The workers and the API went on with the new master: no restart was needed.
    expect(worker.proc.child.exitCode).toBeNull();
    expect(api.proc.child.exitCode).toBeNull();
  }, 300_000);
});
