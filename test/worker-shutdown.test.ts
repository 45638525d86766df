import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueEvents } from 'bullmq';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { bulkQueueNameForModel } from '@inferq/queue';
import { FINAL_BATCH, ndjsonOf, readResults, uploadBatch, waitForBatch } from './support/batches.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

/**
 * Issue 15 items 9 and 11, with real API and worker processes.
 * Locks last 10 minutes here (JOB_LOCK_MS): a job that only came back after its lock expired
 * would time this test out, so every job finishing shows it was released at shutdown.
 */
const prefix = uniquePrefix('e2e-shutdown');
let modelsDir: string;
let env: Record<string, string>;
let api: { proc: ServiceProcess; url: string };
const workers: ServiceProcess[] = [];

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-shutdown-'));
  await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  api = await startApi(env);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), ...workers.map((w) => w.stop('SIGKILL'))]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

type View = { id: string; status: string };

async function post(input: string): Promise<string> {
  const res = await fetch(`${api.url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task: 'classification', model: TINY_CLASSIFIER_ID, input }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as View).id;
}

const view = (id: string, wait = 0): Promise<View> => fetch(`${api.url}/v1/jobs/${id}?wait=${wait}`).then((r) => r.json() as Promise<View>);

/** Reads the job's events until it is running (SSE: no polling). */
async function runningNow(id: string): Promise<void> {
  const res = await fetch(`${api.url}/v1/jobs/${id}/events`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (!text.includes('"status":"running"')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before the job ran: ${text}`);
      text += decoder.decode(value);
    }
  } finally {
    await reader.cancel();
  }
}

describe('worker shutdown (SIGTERM)', () => {
  it('stops taking jobs at once, and after SHUTDOWN_GRACE_MS gives running ones back for another worker to start at once', async () => {
    // A worker whose batches wait 10 s to fill: a job it takes stays running well past the grace.
    const slow = await startWorker({
      ...env,
      WORKER_MODELS: TINY_CLASSIFIER_ID,
      JOB_LOCK_MS: '600000',
      MAX_DELAY_MS: '10000',
      MAX_BATCH_SIZE: '64',
      BATCHING: 'static',
      SHUTDOWN_GRACE_MS: '1500',
    });
    workers.push(slow.proc);
    const first = await post('The battery lasts all day.');
    await runningNow(first);

    const stopped = slow.proc.stop('SIGTERM');
    await slow.proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('shutting down'));
    // Posted during the grace: the stopping worker must not take it.
    const second = await post('The screen cracked in a week.');
    const released = await slow.proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown grace over'));
    expect(released.released).toBe(1);
    expect(await stopped).toBe(0);
    // Back to waiting, not left running under a stale lock.
    expect((await view(first)).status).toBe('queued');
    expect((await view(second)).status).toBe('queued');

    const rescuer = await startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, JOB_LOCK_MS: '600000' });
    workers.push(rescuer.proc);
    expect((await view(first, 60)).status).toBe('succeeded');
    expect((await view(second, 60)).status).toBe('succeeded');
  });

  it('a job that ends within the grace finishes on the stopping worker', async () => {
    const worker = await startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, MAX_DELAY_MS: '1000', BATCHING: 'static', MAX_BATCH_SIZE: '64', SHUTDOWN_GRACE_MS: '60000' });
    workers.push(worker.proc);
    // The rescuer of the test above is still running: stop it so that only this worker serves.
    for (const w of workers.slice(0, -1)) await w.stop('SIGTERM');
    const id = await post('Arrived on time, works fine.');
    await runningNow(id);
    expect(await worker.proc.stop('SIGTERM')).toBe(0);
    expect((await view(id)).status).toBe('succeeded');
    expect(worker.proc.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown grace over'))).toBe(false);
  });
});

describe('worker shutdown with a bulk chunk running', () => {
  it('gives the chunk back at the end of the grace; another worker completes the batch at once', async () => {
    for (const w of workers) await w.stop('SIGTERM');
    const slow = await startWorker({
      ...env,
      WORKER_MODELS: TINY_CLASSIFIER_ID,
      JOB_LOCK_MS: '600000',
      MAX_DELAY_MS: '10000',
      MAX_BATCH_SIZE: '64',
      BATCHING: 'static',
      SHUTDOWN_GRACE_MS: '1500',
    });
    workers.push(slow.proc);
    const events = new QueueEvents(bulkQueueNameForModel(TINY_CLASSIFIER_ID), { connection: { url: REDIS_URL }, prefix });
    await events.waitUntilReady();
    try {
      const active = new Promise((resolve) => events.once('active', resolve));
      const texts = ['Great value.', 'Broke after a day.', 'Does what it says.'];
      const upload = await uploadBatch(api.url, ndjsonOf(texts), `task=classification&model=${TINY_CLASSIFIER_ID}`);
      expect(upload.status).toBe(202);
      // The chunk is taken; its inputs wait 10 s for their batch to fill, past the 1.5 s grace.
      await active;

      const stopped = slow.proc.stop('SIGTERM');
      const released = await slow.proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown grace over'));
      expect(released.released).toBe(1);
      expect(await stopped).toBe(0);

      // With 10-minute locks, only a released chunk can be run again within the test's time.
      const rescuer = await startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, JOB_LOCK_MS: '600000' });
      workers.push(rescuer.proc);
      const done = await waitForBatch(api.url, upload.json.id, (v) => FINAL_BATCH.includes(v.status));
      expect(done.status).toBe('completed');
      expect(done.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
      const { lines } = await readResults(api.url, upload.json.id);
      expect(lines.map((l) => l.custom_id)).toEqual(['r0', 'r1', 'r2']);
      expect(lines.every((l) => Array.isArray(l.result))).toBe(true);
    } finally {
      await events.close();
    }
  });
});

describe('a model whose config.json is not JSON', () => {
  it('is named in the log and not served; the worker serves its other models', async () => {
    await mkdir(join(modelsDir, 'acme', 'broken'), { recursive: true });
    await writeFile(join(modelsDir, 'acme', 'broken', 'config.json'), '{"architectures": [');
    const worker = await startWorker({ ...env, WORKER_MODELS: `acme/broken,${TINY_CLASSIFIER_ID}` });
    workers.push(worker.proc);
    const error = await worker.proc.waitForLog((l) => l.model === 'acme/broken' && l.level === 50);
    expect(String(error.msg)).toContain('acme/broken');
    expect(JSON.stringify(error.err)).toContain('acme/broken: config.json is not valid JSON');
    const ready = await worker.proc.waitForLog((l) => l.msg === 'worker ready');
    expect(ready.models).toEqual([TINY_CLASSIFIER_ID]);

    const models = (await fetch(`${api.url}/v1/models`).then((r) => r.json())) as { data: { id: string; served: boolean }[] };
    expect(models.data.find((m) => m.id === TINY_CLASSIFIER_ID)?.served).toBe(true);
    expect(models.data.find((m) => m.id === 'acme/broken')?.served ?? false).toBe(false);
    const id = await post('Works as promised.');
    expect((await view(id, 60)).status).toBe('succeeded');
    expect(await worker.proc.stop('SIGTERM')).toBe(0);
  });
});
