import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { OwnRedis, hasRedisServer } from './support/redis-server.js';
import { reviewTexts } from './support/texts.js';

/** Probes an outside condition every 100 ms, for up to 30 s. */
async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

let redis: OwnRedis;
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };

describe.skipIf(!hasRedisServer)('a Redis restart', () => {
  beforeAll(async () => {
    redis = await OwnRedis.start();
    modelsDir = await mkdtemp(join(tmpdir(), 'inferq-restart-'));
    await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
    const env = { REDIS_URL: redis.url, MODELS_DIR: modelsDir };
    api = await startApi(env);
    // A short lock, so jobs held during the outage come back quickly once it is over.
    worker = await startWorker({ ...env, WORKER_MODELS: 'inferq/tiny-bert-classifier', JOB_LOCK_MS: '2000' });
  });

  afterAll(async () => {
    await Promise.all([api?.proc.stop(), worker?.proc.stop('SIGKILL')]);
    await redis?.destroy();
    await rm(modelsDir, { recursive: true, force: true });
  });

  const post = (input: string) =>
    fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'classification', input }),
    });

  it('loses no accepted job; while it is down the API answers 503 at once, and both recover', async () => {
    // Jobs accepted before the restart; the worker is paused by the outage mid-way.
    const before = await Promise.all(reviewTexts(100).map(async (t) => ((await (await post(t)).json()) as { id: string }).id));
    await redis.down();

    const during = await post('posted while Redis is down');
    expect(during.status).toBe(503);
    expect(((await during.json()) as { error: { code: string } }).error.code).toBe('INFERQ_ERR_QUEUE_UNAVAILABLE');
    expect((await fetch(`${api.url}/readyz`)).status).toBe(503);

    await redis.up();
    // The API reconnects by itself: probe readiness as a load balancer would.
    await until(async () => (await fetch(`${api.url}/readyz`)).status === 200);
    const after = await post('posted after the restart');
    expect(after.status).toBe(202);
    const ids = [...before, ((await after.json()) as { id: string }).id];

    const finals = await Promise.all(
      ids.map(async (id) => {
        for (;;) {
          const res = await fetch(`${api.url}/v1/jobs/${id}?wait=10`);
          if (res.status === 503) continue;
          const view = (await res.json()) as { status: string };
          if (view.status !== 'queued' && view.status !== 'running') return view.status;
        }
      }),
    );
    expect(finals.filter((s) => s === 'succeeded')).toHaveLength(ids.length);
  });
});
