import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';
import { reviewTexts } from './support/texts.js';

const prefix = uniquePrefix('e2e-crash');
let modelsDir: string;
let env: Record<string, string>;
let api: { proc: ServiceProcess; url: string };
const workers: ServiceProcess[] = [];

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-crash-'));
  await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  // The test long-polls all 300 jobs at once from one address: above the default per-client cap (256).
  api = await startApi({ ...env, MAX_WAITS_PER_CLIENT: '1000' });
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), ...workers.map((w) => w.stop('SIGKILL'))]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

describe('a worker killed mid-run', () => {
  it('loses no accepted job: another worker finishes them all', async () => {
    const texts = reviewTexts(300);
    const ids = await Promise.all(
      texts.map(async (input) => {
        const res = await fetch(`${api.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ task: 'classification', input }),
        });
        expect(res.status).toBe(202);
        return ((await res.json()) as { id: string }).id;
      }),
    );

    // A worker that takes jobs slowly (batches of one, many in flight) and is killed hard
    // while it holds some of them.
    const doomed = await startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, JOB_LOCK_MS: '2000', MAX_BATCH_SIZE: '1', WORKER_CONCURRENCY: '50' });
    workers.push(doomed.proc);
    await doomed.proc.waitForLog((l) => l.msg === 'serving model');
    const firstDone = await fetch(`${api.url}/v1/jobs/${ids[0]}?wait=30`).then((r) => r.json() as Promise<{ status: string }>);
    expect(firstDone.status).toBe('succeeded');
    await doomed.proc.stop('SIGKILL');

    const states = await Promise.all(ids.map((id) => fetch(`${api.url}/v1/jobs/${id}`).then((r) => r.json() as Promise<{ status: string }>)));
    // The kill really left work behind, some of it held (running) by the dead worker.
    expect(states.filter((s) => s.status === 'running').length).toBeGreaterThan(0);
    expect(states.filter((s) => s.status === 'queued').length).toBeGreaterThan(0);

    const rescuer = await startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, JOB_LOCK_MS: '2000' });
    workers.push(rescuer.proc);
    const finals = await Promise.all(
      ids.map(async (id) => {
        for (;;) {
          const view = (await fetch(`${api.url}/v1/jobs/${id}?wait=10`).then((r) => r.json())) as { status: string };
          if (view.status !== 'queued' && view.status !== 'running') return view.status;
        }
      }),
    );
    expect(finals.filter((s) => s === 'succeeded')).toHaveLength(ids.length);
  });
});
