import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextClassificationPipeline } from '@inferq/inference';
import { bulkQueueNameForModel } from '@inferq/queue';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { FINAL_BATCH, ndjsonOf, readBatch, readResults, uploadBatch, waitForBatch } from './support/batches.js';
import { sample, scrape } from './support/metrics.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';
import { reviewTexts } from './support/texts.js';

const CHUNK = 64;
const N = 5000;
const prefix = uniquePrefix('e2e-batches');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
let reference: TextClassificationPipeline;
const redis = new Redis(REDIS_URL);
const texts = reviewTexts(N);

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-batches-'));
  const modelDir = await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  reference = await TextClassificationPipeline.load(modelDir);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker] = await Promise.all([
    startApi({ ...env, BATCH_CHUNK_SIZE: String(CHUNK) }),
    // Small static batches and one chunk at a time: a 5,000-input batch runs for seconds on
    // this tiny model, long enough to be seen mid-run.
    startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, MAX_BATCH_SIZE: '8', BATCHING: 'static', MAX_DELAY_MS: '2', BULK_CONCURRENCY: '1' }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await reference?.release();
  await deletePrefix(prefix);
  redis.disconnect();
  await rm(modelsDir, { recursive: true, force: true });
});

async function keys(pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:${pattern}`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `r${from + i}`);

describe('bulk batches through the API, Redis and a worker process', () => {
  it('a malformed line 4,321 of 5,000 fails the upload naming that line, and nothing is queued or left staged', async () => {
    const lines = ndjsonOf(texts).split('\n');
    lines[4320] = '{"custom_id": "r4320", "input": "unterminated';
    const { status, json } = await uploadBatch(api.url, lines.join('\n'));
    expect(status).toBe(400);
    expect(json.error?.code).toBe('INFERQ_ERR_BATCH_LINE_INVALID');
    expect(json.error?.message).toMatch(/^Line 4321 is invalid: it is not valid JSON/);
    expect(await keys('batch-stage:*')).toEqual([]);
    // No chunk job, no batch parent, no batch record (the workers' own queue bookkeeping aside).
    expect(await keys('bulk--*:batch_*')).toEqual([]);
    expect(await keys('bulk--*:wait')).toEqual([]);
    expect(await keys('batches:batch_*')).toEqual([]);
    expect(await keys('batch:*')).toEqual([]);
    expect(await keys('batch-index')).toEqual([]);
  });

  it('5,000 inputs: mid-run results are a correct prefix; at the end every custom_id is answered once, in input order', async () => {
    const { status, json } = await uploadBatch(api.url, ndjsonOf(texts));
    expect(status).toBe(202);
    expect(json).toMatchObject({ status: 'in_progress', request_counts: { total: N, completed: 0, failed: 0 } });

    // Mid-run: some chunks done, many to go.
    const mid = await waitForBatch(api.url, json.id, (v) => v.request_counts.completed >= 2 * CHUNK);
    expect(mid.status).toBe('in_progress');
    expect(mid.request_counts.completed).toBeLessThan(N - 10 * CHUNK);
    const partial = await readResults(api.url, json.id);
    expect(partial.status).toBe('in_progress');
    expect(partial.lines.length).toBeGreaterThanOrEqual(CHUNK);
    expect(partial.lines.length).toBeLessThan(N);
    expect(partial.lines.length % CHUNK).toBe(0);
    expect(partial.lines.map((l) => l.custom_id)).toEqual(ids(partial.lines.length));
    expect(partial.lines.every((l) => Array.isArray(l.result))).toBe(true);

    const done = await waitForBatch(api.url, json.id, (v) => FINAL_BATCH.includes(v.status));
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: N, completed: N, failed: 0 } });
    expect(done.completed_at).not.toBeNull();
    const full = await readResults(api.url, json.id);
    expect(full.status).toBe('completed');
    expect(full.lines.map((l) => l.custom_id)).toEqual(ids(N));
    // What was read mid-run is exactly the start of the final file.
    expect(full.lines.slice(0, partial.lines.length)).toEqual(partial.lines);
    // Each answer is the model's answer for that very input.
    for (const i of [0, 1, 63, 64, 1234, 2500, 4320, 4999]) {
      const [alone] = await reference.classify([texts[i] ?? '']);
      const got = full.lines[i]?.result ?? [];
      expect(got.map((s) => s.label)).toEqual(alone?.map((s) => s.label));
      got.forEach((s, k) => expect(Math.abs(s.score - (alone?.[k]?.score ?? NaN))).toBeLessThan(1e-5));
    }
    // The inputs are gone once run; the results stay.
    expect(await keys('batch-stage:*')).toEqual([]);
  });

  it('a single job posted while a large batch runs completes while most of the batch is still pending', async () => {
    const { json } = await uploadBatch(api.url, ndjsonOf(texts));
    await waitForBatch(api.url, json.id, (v) => v.request_counts.completed >= CHUNK);
    const res = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'classification', input: 'My login keeps failing, please help.' }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const view = (await fetch(`${api.url}/v1/jobs/${id}?wait=30`).then((r) => r.json())) as { status: string };
    expect(view.status).toBe('succeeded');
    const batch = await readBatch(api.url, json.id);
    expect(batch.status).toBe('in_progress');
    expect(batch.request_counts.completed).toBeLessThan(N / 2);
    await fetch(`${api.url}/v1/batches/${json.id}/cancel`, { method: 'POST' });
    await waitForBatch(api.url, json.id, (v) => FINAL_BATCH.includes(v.status));
  });

  it('cancel mid-run: the chunks not started are not run; status cancelled; finished results stay readable', async () => {
    const { json } = await uploadBatch(api.url, ndjsonOf(texts));
    await waitForBatch(api.url, json.id, (v) => v.request_counts.completed >= 2 * CHUNK);
    const res = await fetch(`${api.url}/v1/batches/${json.id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(['cancelling', 'cancelled']).toContain(((await res.json()) as { status: string }).status);

    const final = await waitForBatch(api.url, json.id, (v) => FINAL_BATCH.includes(v.status));
    expect(final.status).toBe('cancelled');
    expect(final.cancelled_at).not.toBeNull();
    const ran = final.request_counts.completed + final.request_counts.failed;
    expect(ran).toBeGreaterThanOrEqual(2 * CHUNK);
    expect(ran).toBeLessThan(N / 2);

    const { status, lines } = await readResults(api.url, json.id);
    expect(status).toBe('cancelled');
    expect(lines.map((l) => l.custom_id)).toEqual(ids(N));
    const answered = lines.filter((l) => l.result);
    expect(answered).toHaveLength(final.request_counts.completed);
    expect(lines.filter((l) => !l.result).every((l) => l.error?.code === 'INFERQ_ERR_BATCH_CANCELLED')).toBe(true);
    const again = await readBatch(api.url, json.id);
    expect(again.request_counts).toEqual(final.request_counts);
  });

  it('past its completion_window a batch runs no more chunks: status expired, finished results readable', async () => {
    // Hold the bulk queue once some chunks are done, until the window has passed: on a fast
    // machine the whole batch could otherwise finish inside the window.
    const bulk = new Queue(bulkQueueNameForModel(TINY_CLASSIFIER_ID), { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix });
    const { status, json } = await uploadBatch(api.url, ndjsonOf(texts), 'task=classification&completion_window=1s');
    expect(status).toBe(202);
    expect(Date.parse(String(json.expires_at)) - Date.parse(String(json.created_at))).toBe(1000);
    try {
      await waitForBatch(api.url, json.id, (v) => v.request_counts.completed > 0);
      await bulk.pause();
      const left = Date.parse(String(json.expires_at)) - Date.now();
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left + 50)); // the window is a time: wait it out
      await bulk.resume();
    } finally {
      await bulk.close();
    }
    const final = await waitForBatch(api.url, json.id, (v) => FINAL_BATCH.includes(v.status));
    expect(final.status).toBe('expired');
    expect(final.expired_at).not.toBeNull();
    expect(final.request_counts.completed).toBeGreaterThan(0);
    expect(final.request_counts.completed).toBeLessThan(N);
    const { lines } = await readResults(api.url, json.id);
    expect(lines.map((l) => l.custom_id)).toEqual(ids(N));
    expect(lines.filter((l) => l.result)).toHaveLength(final.request_counts.completed);
    expect(lines.filter((l) => !l.result).every((l) => l.error?.code === 'INFERQ_ERR_BATCH_EXPIRED')).toBe(true);
  });

  it('a repeated Idempotency-Key answers the same batch and runs its inputs once', async () => {
    const metric = async () => sample(await scrape(worker.metricsPort), 'inferq_jobs_total', { model: TINY_CLASSIFIER_ID, status: 'succeeded' });
    const before = await metric();
    const body = ndjsonOf(texts.slice(0, 300));
    const headers = { 'idempotency-key': 'nightly-reviews-2024-06-01' };
    const [first, second] = await Promise.all([uploadBatch(api.url, body, undefined, headers), uploadBatch(api.url, body, undefined, headers)]);
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(second.json.id).toBe(first.json.id);
    await waitForBatch(api.url, first.json.id, (v) => FINAL_BATCH.includes(v.status));
    const third = await uploadBatch(api.url, body, undefined, headers);
    expect(third.json).toMatchObject({ id: first.json.id, status: 'completed', request_counts: { total: 300, completed: 300 } });

    expect((await readResults(api.url, first.json.id)).lines.map((l) => l.custom_id)).toEqual(ids(300));
    expect((await metric()) - before).toBe(300);
    const ended = worker.proc.lines.filter((l) => l.msg === 'batch ended' && l.batch === first.json.id);
    expect(ended).toHaveLength(1);
  });
});
