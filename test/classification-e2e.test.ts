import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextClassificationPipeline } from '@inferq/inference';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { sample, scrape } from './support/metrics.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';
import { reviewTexts } from './support/texts.js';

interface JobView {
  id: string;
  status: string;
  task: string;
  model: string;
  result?: { label: string; score: number }[];
  error?: { code: string; message: string };
  finished_at: string | null;
}

const prefix = uniquePrefix('e2e-classify');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
let reference: TextClassificationPipeline;

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-'));
  const modelDir = await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  reference = await TextClassificationPipeline.load(modelDir);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker] = await Promise.all([
    startApi(env),
    // A delay long enough for concurrent posts to meet in one batch.
    startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, MAX_BATCH_SIZE: '16', MAX_DELAY_MS: '20' }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await reference?.release();
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function post(body: unknown): Promise<{ status: number; json: { id: string; status: string } }> {
  const res = await fetch(`${api.url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { id: string; status: string } };
}

/** Long-polls until the job is final. */
async function waitForJob(id: string): Promise<JobView> {
  for (;;) {
    const res = await fetch(`${api.url}/v1/jobs/${id}?wait=10`);
    expect(res.status).toBe(200);
    const view = (await res.json()) as JobView;
    if (view.status === 'succeeded') {
      // A finished job always shows its result and when it finished.
      expect(view.result?.length, JSON.stringify(view)).toBeGreaterThan(0);
      expect(view.finished_at, JSON.stringify(view)).toEqual(expect.any(String));
    }
    if (['succeeded', 'failed', 'cancelled'].includes(view.status)) return view;
  }
}

describe('classification through the API, Redis and a worker process', () => {
  it('answers 200 concurrent jobs, each as if classified alone, in batches larger than 1', async () => {
    const texts = reviewTexts(200);
    const accepted = await Promise.all(texts.map((input) => post({ task: 'classification', input })));
    for (const a of accepted) {
      expect(a.status).toBe(202);
      expect(a.json.status).toBe('queued');
    }
    expect(new Set(accepted.map((a) => a.json.id)).size).toBe(200);

    const views = await Promise.all(accepted.map((a) => waitForJob(a.json.id)));
    for (const [i, view] of views.entries()) {
      expect(view).toMatchObject({ status: 'succeeded', task: 'classification', model: TINY_CLASSIFIER_ID });
      const [alone] = await reference.classify([texts[i] ?? '']);
      expect(view.result?.map((s) => s.label)).toEqual(alone?.map((s) => s.label));
      view.result?.forEach((s, k) => expect(Math.abs(s.score - (alone?.[k]?.score ?? NaN))).toBeLessThan(1e-5));
    }

    const metrics = await scrape(worker.metricsPort);
    const batches = sample(metrics, 'inferq_batch_size_count', { model: TINY_CLASSIFIER_ID });
    const singles = sample(metrics, 'inferq_batch_size_bucket', { model: TINY_CLASSIFIER_ID, le: '1' });
    const inputs = sample(metrics, 'inferq_batch_size_sum', { model: TINY_CLASSIFIER_ID });
    expect(inputs).toBeGreaterThanOrEqual(200);
    expect(batches - singles).toBeGreaterThan(0); // some batches held more than one input
    expect(batches).toBeLessThan(200);
  });

  it('honours top_k', async () => {
    const { json } = await post({ task: 'classification', input: 'Great value, fast shipping.', parameters: { top_k: 1 } });
    const view = await waitForJob(json.id);
    expect(view.status).toBe('succeeded');
    expect(view.result).toHaveLength(1);
  });

  it('stops cleanly on SIGTERM', async () => {
    const { json } = await post({ task: 'classification', input: 'One more before closing.' });
    expect((await waitForJob(json.id)).status).toBe('succeeded');
    expect(await worker.proc.stop('SIGTERM')).toBe(0);
    expect(await api.proc.stop('SIGTERM')).toBe(0);
    expect(worker.proc.lines.some((l) => l.msg === 'stopped')).toBe(true);
  });
});
