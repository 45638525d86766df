import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_NLI_ID } from '@inferq/tiny-models';
import { loadWorkerConfig } from '../src/config.js';
import { WorkerMetrics } from '../src/metrics.js';
import { JobError, ModelConfigError, createRunner, type ModelRunner } from '../src/model-runner.js';
import { RetryingLoad } from '../src/retrying-load.js';

/**
 * Issue 15 item 10: a failed load of a model's second task (classification on an NLI model,
 * loaded on first use) was cached until restart. It is retried, with backoff.
 */
let modelsDir: string;
let modelDir: string;
const runners: ModelRunner[] = [];
const log = pino({ level: 'silent' });

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-load-retry-'));
  modelDir = await ensureModel(modelsDir, TINY_NLI_ID);
}, 120_000);
afterAll(async () => {
  for (const r of runners) await r.close();
  await rm(modelsDir, { recursive: true, force: true });
});

async function runner(retryMs: number): Promise<ModelRunner> {
  const config = loadWorkerConfig({ MODELS_DIR: modelsDir, WORKER_MODELS: TINY_NLI_ID, MODEL_LOAD_RETRY_MS: String(retryMs), THREADS: '1' });
  const r = await createRunner(TINY_NLI_ID, config, new WorkerMetrics(), log);
  runners.push(r);
  return r;
}

/** Takes the model's weights away while `work` runs (a file being replaced, a disk hiccup). */
async function withoutWeights<T>(work: () => Promise<T>): Promise<T> {
  const onnx = join(modelDir, 'onnx', 'model.onnx');
  await rename(onnx, `${onnx}.away`);
  try {
    return await work();
  } finally {
    await rename(`${onnx}.away`, onnx);
  }
}

describe('loading a task of a model', () => {
  it('a failed load is retried once its backoff has passed: the task works without a restart', async () => {
    const r = await runner(1);
    expect(r.tasks).toEqual(['zero-shot-classification', 'classification']);
    const failed = await withoutWeights(() => r.run('classification', 'The invoice is wrong.', {}).catch((e: unknown) => e));
    expect(failed).toBeInstanceOf(JobError);
    expect(failed).toMatchObject({ code: 'INFERQ_ERR_MODEL_NOT_LOADED', retryable: true });
    expect((failed as Error).message).toContain(TINY_NLI_ID);
    // The backoff (1 ms here) has passed: the next job loads the task and runs.
    await expect.poll(async () => r.run('classification', 'The invoice is wrong.', {}).then(() => 'ran', () => 'failed'), { timeout: 10_000 }).toBe('ran');
  });

  it('during the backoff a job fails at once with a retryable error saying when the next try is', async () => {
    const r = await runner(60_000);
    await withoutWeights(() => r.run('classification', 'x', {}).catch(() => undefined));
    // The weights are back, but the next try is a minute away: no load now, and the job can be retried.
    const err = await r.run('classification', 'The invoice is wrong.', {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INFERQ_ERR_MODEL_NOT_LOADED', retryable: true });
    expect((err as Error).message).toMatch(/next try in \d+ ms/);
    // The task that loaded at start is not affected.
    await expect(r.run('zero-shot-classification', 'The invoice is wrong.', { candidate_labels: ['billing', 'login'] })).resolves.toHaveLength(2);
  });

  it('backoff doubles per failure up to its cap, and a success clears it', async () => {
    let now = 0;
    let fail = true;
    let loads = 0;
    const load = new RetryingLoad(
      async () => {
        loads++;
        if (fail) throw new Error('broken');
        return 'ok';
      },
      { baseDelayMs: 100, maxDelayMs: 250, now: () => now },
    );
    await expect(load.get()).rejects.toThrow('broken');
    await expect(load.get()).rejects.toMatchObject({ retryAt: 100 });
    now = 100;
    await expect(load.get()).rejects.toThrow('broken'); // second failure: next try 200 ms later
    now = 299;
    await expect(load.get()).rejects.toMatchObject({ retryAt: 300 });
    now = 300;
    await expect(load.get()).rejects.toThrow('broken'); // third: capped at 250 ms
    await expect(load.get()).rejects.toMatchObject({ retryAt: 550 });
    expect(loads).toBe(3);
    fail = false;
    now = 550;
    await expect(load.get()).resolves.toBe('ok');
    await expect(load.get()).resolves.toBe('ok');
    expect(loads).toBe(4);
  });
});

describe('a config.json that is not JSON (issue 15 item 11)', () => {
  it('fails that model with an error naming it', async () => {
    const broken = join(modelsDir, 'acme', 'broken');
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'config.json'), '{"architectures": [');
    const config = loadWorkerConfig({ MODELS_DIR: modelsDir, WORKER_MODELS: 'acme/broken' });
    const err = await createRunner('acme/broken', config, new WorkerMetrics(), log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelConfigError);
    expect((err as Error).message).toMatch(/^model acme\/broken: config.json is not valid JSON/);
  });
});
