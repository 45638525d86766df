/**
 * Issue 15 items 1 and 2 with real processes and Redis: heavy but valid requests don't
 * stall a worker, and generation is bounded by caps in tokens and a per-job time limit.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZeroShotClassificationPipeline } from '@inferq/inference';
import { createRedis, queueNameForModel } from '@inferq/queue';
import { ensureModel } from '@inferq/tiny-models';
import { FINAL_BATCH, ndjsonOf, readResults, uploadBatch, waitForBatch } from './support/batches.js';
import { scrape, sample } from './support/metrics.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';
import { reviewTexts } from './support/texts.js';

interface View {
  id: string;
  status: string;
  result?: unknown;
  error?: { code: string; message: string };
}

const NLI = 'inferq/tiny-nli';
const LLAMA = 'inferq/tiny-llama';
const prefix = uniquePrefix('e2e-bounded');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let nliWorker: { proc: ServiceProcess; metricsPort: number };
let llamaWorker: { proc: ServiceProcess; metricsPort: number };

/** About `chars` characters of review-like text (ours, not a dataset's). */
function longText(chars: number, offset = 0): string {
  const texts = reviewTexts(400);
  const parts: string[] = [];
  for (let i = offset, length = 0; length < chars; i++) {
    const t = texts[i % texts.length] as string;
    parts.push(t);
    length += t.length + 1;
  }
  return parts.join(' ').slice(0, chars);
}

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-bounded-'));
  for (const id of [NLI, LLAMA]) await ensureModel(modelsDir, id);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, nliWorker, llamaWorker] = await Promise.all([
    // The API lets beam requests through, so that the worker's own check (with the model's defaults) is what answers.
    startApi({ ...env, MAX_BEAM_TOKENS: '100000' }),
    // A lock of 1 s: a worker whose event loop stops for longer loses its jobs' locks, and they run again.
    startWorker({ ...env, WORKER_MODELS: NLI, JOB_LOCK_MS: '1000' }),
    startWorker({
      ...env,
      WORKER_MODELS: LLAMA,
      MAX_PROMPT_TOKENS: '1200',
      MAX_BEAM_TOKENS: '4096',
      MAX_REQUEST_TOKENS: '16384',
      JOB_TIMEOUT_MS: '1000',
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), nliWorker?.proc.stop(), llamaWorker?.proc.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function post(body: unknown): Promise<string> {
  const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function waitFor(id: string): Promise<View> {
  for (;;) {
    const view = (await (await fetch(`${api.url}/v1/jobs/${id}?wait=20`)).json()) as View;
    if (view.status !== 'queued' && view.status !== 'running') return view;
  }
}

describe('issue 15 item 1: long inputs do not stall the worker', () => {
  it('15.1 a zero-shot job of 50 labels x 100k characters and a bulk batch of 16 x 100k-character lines run once each, while a job posted meanwhile and /metrics answer', async () => {
    // The classification task of the NLI model loads on first use: load it before the scenario.
    expect((await waitFor(await post({ task: 'classification', model: NLI, input: 'warm up' }))).status).toBe('succeeded');

    const lines = Array.from({ length: 16 }, (_, i) => longText(100_000, i * 7));
    const upload = await uploadBatch(api.url, ndjsonOf(lines), `task=classification&model=${encodeURIComponent(NLI)}`);
    expect(upload.status).toBe(202);
    const premise = longText(100_000, 3);
    const labels = Array.from({ length: 50 }, (_, i) => `topic number ${i}`);
    const zeroShot = await post({ task: 'zero-shot-classification', model: NLI, input: premise, parameters: { candidate_labels: labels } });
    const meanwhile = await post({ task: 'classification', model: NLI, input: 'The refund arrived quickly.' });
    const metrics = await scrape(nliWorker.metricsPort);
    expect(sample(metrics, 'inferq_worker_nodejs_eventloop_lag_max_seconds')).toBeGreaterThanOrEqual(0);

    const [zeroShotView, meanwhileView, batch] = await Promise.all([
      waitFor(zeroShot),
      waitFor(meanwhile),
      waitForBatch(api.url, upload.json.id, (b) => FINAL_BATCH.includes(b.status)),
    ]);
    expect(meanwhileView.status).toBe('succeeded');
    expect(zeroShotView.status, JSON.stringify(zeroShotView.error)).toBe('succeeded');
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 16, completed: 16, failed: 0 });
    const results = await readResults(api.url, upload.json.id);
    expect(results.lines.filter((l) => l.error)).toEqual([]);

    // The same answer as the pipeline gives alone: the cut before tokenizing changed nothing.
    const alone = await ZeroShotClassificationPipeline.load(join(modelsDir, NLI));
    const [expected] = await alone.classify([premise], labels);
    await alone.release();
    const result = zeroShotView.result as { label: string; score: number }[];
    expect(result.map((r) => r.label)).toEqual(expected?.labels);
    result.forEach((r, i) => expect(Math.abs(r.score - (expected?.scores[i] ?? NaN))).toBeLessThan(1e-5));

    // Each job ran once: none lost its 1-second lock to a stalled event loop and ran again.
    const connection = createRedis(REDIS_URL, 'worker');
    const single = new Queue(queueNameForModel(NLI), { connection, prefix });
    try {
      const job = await single.getJob(zeroShot);
      expect({ started: job?.attemptsStarted, stalled: job?.stalledCounter }).toEqual({ started: 1, stalled: 0 });
    } finally {
      await single.close();
      await connection.quit();
    }
    expect(nliWorker.proc.raw.some((l) => /stalled/i.test(l))).toBe(false);
  });
});

describe('issue 15 item 2: generation is bounded', () => {
  it('15.2 a prompt over MAX_PROMPT_TOKENS fails with INFERQ_ERR_PROMPT_TOO_LONG, even at 100,000 characters', async () => {
    const view = await waitFor(await post({ task: 'generation', model: LLAMA, input: longText(100_000), parameters: { max_new_tokens: 4 } }));
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('INFERQ_ERR_PROMPT_TOO_LONG');
    expect(view.error?.message).toContain('1200');
  });

  it('15.2 num_beams x max_new_tokens over MAX_BEAM_TOKENS fails with INFERQ_ERR_BEAMS_TOO_COSTLY', async () => {
    const view = await waitFor(await post({ task: 'generation', model: LLAMA, input: 'Once upon a time', parameters: { num_beams: 16, max_new_tokens: 512 } }));
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('INFERQ_ERR_BEAMS_TOO_COSTLY');
    expect(view.error?.message).toContain('8192');
  });

  it('15.2 a request whose cost ((prompt + new tokens) x beams) passes MAX_REQUEST_TOKENS fails with INFERQ_ERR_REQUEST_TOO_COSTLY', async () => {
    // 16 beams x 256 new tokens is under the beam cap; with a prompt of ~900 tokens it costs ~18,000.
    const view = await waitFor(
      await post({ task: 'generation', model: LLAMA, input: longText(2000), parameters: { num_beams: 16, max_new_tokens: 256 } }),
    );
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('INFERQ_ERR_REQUEST_TOO_COSTLY');
  });

  it('15.2 a job past JOB_TIMEOUT_MS fails with INFERQ_ERR_JOB_TIMEOUT, and the worker serves the next job', async () => {
    // 8 beams x 512 forced tokens on a ~900-token prompt: seconds of work, over a 1-second limit.
    const slow = await post({
      task: 'generation',
      model: LLAMA,
      input: longText(2000),
      parameters: { num_beams: 8, max_new_tokens: 512, min_new_tokens: 512 },
    });
    const view = await waitFor(slow);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('INFERQ_ERR_JOB_TIMEOUT');
    const next = await waitFor(await post({ task: 'generation', model: LLAMA, input: 'Once upon a time', parameters: { max_new_tokens: 3 } }));
    expect(next.status).toBe('succeeded');
  });
});
