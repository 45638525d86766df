import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { ApiApp } from '@inferq/api';
import { BATCHES_QUEUE, BatchStore, batchJobId, bulkQueueNameForModel, chunkJobId, queueNameForModel } from '@inferq/queue';
import { JobError } from '@inferq/worker';
import type { BatchView, ResultLine } from './support/batches.js';
import { MODEL, deferred, startReceiver, startStack, until, type InProcessStack } from './support/in-process.js';
import { REDIS_URL } from './support/redis.js';

// Regression tests of issue 14 on the real API, model worker (runner and ChunkWorker) and
// BatchFinalizer, run in this process so a test can hold an input mid-run.
let stack: InProcessStack;
let api: ApiApp;
let store: BatchStore;
let bulk: Queue;
let parents: Queue;
const redis = new Redis(REDIS_URL);
let run: InProcessStack['worker']['runner']['run'];

beforeAll(async () => {
  // A 1-second job lock: a lost lock is noticed (and the job run again) a second later.
  stack = await startStack('batch-lifecycle', { JOB_LOCK_MS: '1000', BULK_CONCURRENCY: '2' });
  api = await stack.api({ BATCH_CHUNK_SIZE: '2' });
  store = new BatchStore(redis, stack.prefix);
  bulk = new Queue(bulkQueueNameForModel(MODEL), { connection: redis, prefix: stack.prefix });
  parents = new Queue(BATCHES_QUEUE, { connection: redis, prefix: stack.prefix });
  run = stack.worker.runner.run.bind(stack.worker.runner);
});
afterEach(() => vi.restoreAllMocks());
afterAll(async () => {
  await bulk?.close();
  await parents?.close();
  await stack?.close();
  redis.disconnect();
});

const FINAL = ['completed', 'failed', 'cancelled', 'expired'];

async function postBatch(app: ApiApp, inputs: string[], headers: Record<string, string> = {}): Promise<BatchView> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/batches',
    payload: { task: 'classification', inputs: inputs.map((input, i) => ({ custom_id: `r${i}`, input })) },
    headers,
  });
  expect(res.statusCode, res.body).toBe(202);
  return res.json() as BatchView;
}

const readBatch = async (app: ApiApp, id: string) => (await app.inject({ method: 'GET', url: `/v1/batches/${id}` })).json() as BatchView;
const finalBatch = (app: ApiApp, id: string, timeoutMs = 30_000) => until(() => readBatch(app, id), (v) => FINAL.includes(v.status), timeoutMs, `batch ${id}`);

async function results(app: ApiApp, id: string): Promise<ResultLine[]> {
  const res = await app.inject({ method: 'GET', url: `/v1/batches/${id}/results` });
  return res.body.split('\n').filter(Boolean).map((line) => JSON.parse(line) as ResultLine);
}

async function scanKeys(pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/** Makes `runner.run` wait for `gate` on the input `text` (telling `entered` it got there). */
function holdInput(text: string) {
  const entered = deferred();
  const gate = deferred();
  vi.spyOn(stack.worker.runner, 'run').mockImplementation(async (task, input, parameters, options) => {
    if (input === text) {
      entered.resolve();
      await gate.promise;
    }
    return run(task, input, parameters, options);
  });
  return { entered: entered.promise, release: () => gate.resolve() };
}

describe('a bulk batch end to end (issue 14)', () => {
  it('a chunk BullMQ fails while its attempt still runs: the attempt\'s results win, the batch completes', async () => {
    const held = holdInput('a slow review');
    const view = await postBatch(api, ['a slow review', 'fine', 'also fine', 'good']);
    await held.entered;
    const record = await store.get(view.id);
    const chunkQueue = bulkQueueNameForModel(MODEL);
    const jobId = chunkJobId(view.id, record?.stage ?? '', 0);
    const job = await bulk.getJob(jobId);
    const token = await redis.get(`${stack.prefix}:${chunkQueue}:${jobId}:lock`);
    expect(job && token).toBeTruthy();
    // As BullMQ's stalled-job check does to a chunk that stalled more than allowed.
    job?.discard();
    await job?.moveToFailed(new Error('job stalled more than allowable limit'), token ?? '');
    // The parent runs once chunk 1 ends: it must put itself off, not write chunk 0's lines.
    const parent = await parents.getJob(batchJobId(view.id, record?.stage ?? ''));
    await until(() => parent?.getState() ?? Promise.resolve('missing'), (s) => s === 'delayed' || s === 'completed', 30_000, 'the parent');
    held.release();
    const final = await finalBatch(api, view.id);
    expect(final).toMatchObject({ status: 'completed', request_counts: { total: 4, completed: 4, failed: 0 } });
    const lines = await results(api, view.id);
    expect(lines.map((l) => l.custom_id)).toEqual(['r0', 'r1', 'r2', 'r3']);
    expect(lines.filter((l) => l.error)).toEqual([]);
  });

  it('a cancel after every chunk wrote its results, before the finalizer ran: completed, not cancelled', async () => {
    await parents.pause(); // the finalizer takes nothing until resumed
    try {
      const view = await postBatch(api, ['one', 'two', 'three']);
      await until(() => readBatch(api, view.id), (v) => v.request_counts.completed === 3, 30_000, 'the chunks');
      const cancel = await api.inject({ method: 'POST', url: `/v1/batches/${view.id}/cancel` });
      expect((cancel.json() as BatchView).status).toBe('cancelling');
      await parents.resume();
      const final = await finalBatch(api, view.id);
      expect(final).toMatchObject({ status: 'completed', request_counts: { total: 3, completed: 3, failed: 0 } });
    } finally {
      await parents.resume();
    }
  });

  it('a bulk input that fails with a retryable error is retried, not turned into an error line', async () => {
    let failures = 0;
    vi.spyOn(stack.worker.runner, 'run').mockImplementation(async (task, input, parameters, options) => {
      if (input === 'model still loading' && failures++ === 0) throw new JobError('INFERQ_ERR_MODEL_NOT_LOADED', `The worker could not load model "${MODEL}"`, true);
      return run(task, input, parameters, options);
    });
    const view = await postBatch(api, ['model still loading', 'fine']);
    const final = await finalBatch(api, view.id);
    expect(final).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 } });
    expect((await results(api, view.id)).filter((l) => l.error)).toEqual([]);
    expect(failures).toBe(2);
  });

  it('an Idempotency-Key reused after the batch record expired (retention of a second) runs the new batch', async () => {
    const shortLived = await stack.api({ BATCH_CHUNK_SIZE: '2', BATCH_RETENTION_SECONDS: '1' });
    const first = await postBatch(shortLived, ['a', 'b', 'c'], { 'idempotency-key': 'nightly-reviews' });
    expect((await finalBatch(shortLived, first.id)).status).toBe('completed');
    await until(() => redis.exists(store.batchKey(first.id)), (n) => n === 0, 30_000, 'the record');
    // The same request again (another body with this key is a 422 for 24 hours): the batch is
    // made again, and it runs rather than waiting on the finished jobs of the first.
    const second = await postBatch(shortLived, ['a', 'b', 'c'], { 'idempotency-key': 'nightly-reviews' });
    expect(second.id).toBe(first.id);
    const final = await finalBatch(shortLived, second.id);
    expect(final).toMatchObject({ status: 'completed', request_counts: { total: 3, completed: 3 } });
  });
});

describe('uploads through to results (issue 14)', () => {
  it('an upload paused longer than the staging TTL completes with every result, none cut off', async () => {
    // 300 ms stands for the hour a staged chunk lives untouched.
    const slowApi = await stack.api({ BATCH_CHUNK_SIZE: '2', BATCH_STAGING_TTL_MS: '300' });
    const line = (i: number) => `${JSON.stringify({ custom_id: `r${i}`, input: `review number ${i}` })}\n`;
    async function* pausingClient() {
      yield line(0) + line(1) + line(2);
      // Chunk 0 is staged once line 3 starts it; then the client stalls for several TTLs.
      await until(() => scanKeys(`${stack.prefix}:batch-stage:*:0`), (k) => k.length > 0, 10_000, 'chunk 0');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      yield line(3) + line(4);
    }
    const res = await slowApi.inject({ method: 'POST', url: '/v1/batches?task=classification', payload: Readable.from(pausingClient()), headers: { 'content-type': 'application/x-ndjson' } });
    expect(res.statusCode, res.body).toBe(202);
    const view = res.json() as BatchView;
    const final = await finalBatch(slowApi, view.id);
    expect(final).toMatchObject({ status: 'completed', request_counts: { total: 5, completed: 5, failed: 0 } });
    expect((await results(slowApi, view.id)).map((l) => l.custom_id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
  });

  it('BATCH_CHUNK_SIZE=10000 (the largest allowed): a batch of 10,001 inputs runs to the end', async () => {
    const bigChunks = await stack.api({ BATCH_CHUNK_SIZE: '10000' });
    const view = await postBatch(bigChunks, Array.from({ length: 10_001 }, (_, i) => `short review ${i % 50}`));
    const final = await finalBatch(bigChunks, view.id, 100_000);
    expect(final).toMatchObject({ status: 'completed', request_counts: { total: 10_001, completed: 10_001, failed: 0 } });
    const lines = await results(bigChunks, view.id);
    expect(lines).toHaveLength(10_001);
    expect(lines.at(-1)?.custom_id).toBe('r10000');
  });
});

describe('job webhooks (issue 14)', () => {
  it('a job whose completion was lost (its lock expired) sends no webhook until it really completed', async () => {
    const seen: string[] = [];
    const receiver = await startReceiver(async (_path, body) => {
      const { id } = JSON.parse(body) as { id: string };
      seen.push(((await api.inject({ method: 'GET', url: `/v1/jobs/${id}` })).json() as { status: string }).status);
    });
    try {
      const held = holdInput('lose my lock');
      const res = await api.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', input: 'lose my lock', webhook_url: receiver.url('/job') } });
      const { id } = res.json() as { id: string };
      await held.entered;
      // The lock is gone (as when a worker stalls past it): this attempt's completion will be refused.
      await redis.del(`${stack.prefix}:${queueNameForModel(MODEL)}:${id}:lock`);
      held.release();
      await receiver.waitFor('/job', 1, 30_000);
      expect(seen).toEqual(['succeeded']);
    } finally {
      await receiver.close();
    }
  });

  it('a job Idempotency-Key reused after the job was removed (retention of a second) gets its webhook again', async () => {
    const receiver = await startReceiver();
    const shortLived = await stack.api({ JOB_RETENTION_SECONDS: '1' });
    const post = (headers: Record<string, string>, input: string) =>
      shortLived.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', input, webhook_url: receiver.url(headers['idempotency-key'] ? '/keyed' : '/other') }, headers });
    const jobs = new Queue(queueNameForModel(MODEL), { connection: redis, prefix: stack.prefix });
    try {
      const { id } = (await post({ 'idempotency-key': 'ticket-7731' }, 'first')).json() as { id: string };
      await receiver.waitFor('/keyed', 1, 30_000);
      // BullMQ removes a job past its age when a later job of the queue completes.
      while ((await jobs.getJob(id)) !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, 1100));
        const other = (await post({}, 'another')).json() as { id: string };
        await until(() => jobs.getJobState(other.id), (s) => s === 'completed', 30_000, 'the other job');
      }
      // The same request again, after the job was removed: it is made again, with its webhook.
      const again = (await post({ 'idempotency-key': 'ticket-7731' }, 'first')).json() as { id: string };
      expect(again.id).toBe(id);
      const deliveries = await receiver.waitFor('/keyed', 2, 30_000);
      const bodies = deliveries.map((d) => JSON.parse(d.body) as { id: string; status: string });
      expect(bodies.map((b) => [b.id, b.status])).toEqual([
        [id, 'succeeded'],
        [id, 'succeeded'],
      ]);
    } finally {
      await jobs.close();
      await receiver.close();
    }
  });
});

