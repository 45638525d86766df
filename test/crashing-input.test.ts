// An input that crashes the worker process every time it runs (as an aborting ONNX session
// would) fails its job after BullMQ's stalled-job limit, with a clear error, instead of
// crash-looping the fleet: the restarted worker then stays up and serves the next job.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('e2e-crashing-input');
const MARKER = 'segfault-me-please';
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let current: ServiceProcess | undefined;
let crashes = 0;
let stopping = false;
let supervisor: Promise<void>;

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-crash-'));
  await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  api = await startApi({ ...env, DEFAULT_MODEL_CLASSIFICATION: TINY_CLASSIFIER_ID });
  // A supervisor, as docker's restart policy: a worker that dies is started again.
  const workerEnv = { ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, JOB_LOCK_MS: '1500', FAULT_CRASH_ON_INPUT: MARKER };
  current = (await startWorker(workerEnv)).proc;
  supervisor = (async () => {
    while (!stopping && current) {
      const code = await current.exited;
      if (stopping) return;
      if (current.child.signalCode === 'SIGKILL') crashes++;
      else throw new Error(`worker exited with ${code}`);
      current = (await startWorker(workerEnv)).proc;
    }
  })();
});

afterAll(async () => {
  stopping = true;
  await Promise.all([api?.proc.stop(), current?.stop()]);
  await supervisor?.catch(() => {});
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function post(input: string): Promise<string> {
  const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ task: 'classification', input }) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function finalView(id: string): Promise<{ status: string; error?: { code: string; message: string } }> {
  for (;;) {
    const res = await fetch(`${api.url}/v1/jobs/${id}?wait=10`);
    const view = (await res.json()) as { status: string; error?: { code: string; message: string } };
    if (view.status === 'succeeded' || view.status === 'failed') return view;
  }
}

describe('an input that crashes the worker every time', () => {
  it('fails its job with INFERQ_ERR_WORKER_CRASHED after the stalled limit; the fleet then stays up', async () => {
    const id = await post(`please classify this: ${MARKER}`);
    const view = await finalView(id);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('INFERQ_ERR_WORKER_CRASHED');
    expect(view.error?.message).toMatch(/stopped.*stalled-job limit/);
    // BullMQ's default maxStalledCount is 1: the second crash ends it, not the tenth.
    expect(crashes).toBe(2);

    // No more crashes: the restarted worker serves the next job.
    const next = await finalView(await post('a perfectly ordinary review'));
    expect(next.status).toBe('succeeded');
    expect(crashes).toBe(2);
    expect(current?.child.exitCode).toBeNull();
  }, 180_000);
});
