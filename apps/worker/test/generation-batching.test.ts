/**
 * Issue 11 item 1: the worker's generation policy. `GENERATION_BATCHING=continuous` (the
 * default) and `static` give every job the same answer; beam search and a bad temperature
 * behave the same under both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_LLAMA_ID, ensureModel } from '@inferq/tiny-models';
import { loadWorkerConfig } from '../src/config.js';
import { WorkerMetrics } from '../src/metrics.js';
import { createRunner, type ModelRunner } from '../src/model-runner.js';

let modelsDir: string;
const runners: Record<string, ModelRunner> = {};

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-gen-batching-'));
  await ensureModel(modelsDir, TINY_LLAMA_ID);
  for (const policy of ['continuous', 'static']) {
    const config = loadWorkerConfig({ MODELS_DIR: modelsDir, WORKER_MODELS: TINY_LLAMA_ID, THREADS: '1', GENERATION_BATCHING: policy });
    runners[policy] = await createRunner(TINY_LLAMA_ID, config, new WorkerMetrics(), pino({ level: 'silent' }));
  }
});
afterAll(async () => {
  for (const r of Object.values(runners)) await r.close();
  await rm(modelsDir, { recursive: true, force: true });
});

const JOBS: [unknown, Record<string, unknown>][] = [
  ['The refund never arrived and support is slow', { max_new_tokens: 20, min_new_tokens: 20 }],
  [[{ role: 'user', content: 'Where is my order?' }], { max_new_tokens: 12 }],
  ['Hello there', { max_new_tokens: 16, do_sample: true, seed: 5 }],
  ['bad', { max_new_tokens: 8, num_beams: 2 }],
  ['My password does not work since the update.', { max_new_tokens: 30, stop: ['e'] }],
];

describe('GENERATION_BATCHING', () => {
  it('is continuous by default and refuses an unknown policy', () => {
    expect(loadWorkerConfig({}).GENERATION_BATCHING).toBe('continuous');
    expect(() => loadWorkerConfig({ GENERATION_BATCHING: 'dynamic' })).toThrow(/GENERATION_BATCHING/);
  });

  it('continuous and static answer every concurrent job alike (greedy, chat, seeded sampling, beam search, stop strings)', async () => {
    const run = (policy: string) => Promise.all(JOBS.map(([input, p]) => runners[policy]!.run('generation', input, p)));
    const [continuous, fixed] = [await run('continuous'), await run('static')];
    expect(continuous).toEqual(fixed);
    expect(continuous.some((r) => (r as { finish_reason?: string }).finish_reason === 'stop')).toBe(true);
  });

  it('a temperature whose scores overflow fails that job with a validation error under continuous batching too', async () => {
    const runner = runners.continuous!;
    const [ok, bad] = await Promise.allSettled([
      runner.run('generation', 'Hello there', { max_new_tokens: 6 }),
      runner.run('generation', 'Hello there', { max_new_tokens: 6, do_sample: true, temperature: 1e-45 }),
    ]);
    expect(ok.status).toBe('fulfilled');
    expect((bad as PromiseRejectedResult).reason).toMatchObject({ code: 'INFERQ_ERR_VALIDATION' });
  });
});
