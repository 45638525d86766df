import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel } from '@inferq/tiny-models';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('e2e-triage');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-triage-'));
  for (const id of ['inferq/starter-tickets', 'inferq/tiny-bart']) await ensureModel(modelsDir, id);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker] = await Promise.all([
    startApi({ ...env, TICKET_MODEL: 'inferq/starter-tickets' }),
    startWorker({ ...env, WORKER_MODELS: 'inferq/starter-tickets,inferq/tiny-bart' }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function triage(body: string): Promise<{ status: string; result?: { issue: { label: string } } }> {
  const res = await fetch(`${api.url}/v1/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body }) });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  for (;;) {
    const view = (await (await fetch(`${api.url}/v1/tickets/${id}?wait=20`)).json()) as { status: string; result?: { issue: { label: string } } };
    if (view.status !== 'queued' && view.status !== 'running') return view;
  }
}

describe('ticket triage with a ticket classifier (TICKET_MODEL)', () => {
  it.each([
    ['I cannot log in, the password reset email never arrives', 'login and account'],
    ['You charged my card twice for the same invoice', 'billing'],
    ['My parcel is stuck in transit and tracking has not moved for a week', 'shipping'],
    ['The app crashes with an error every time I open settings', 'bug'],
  ])('%s -> %s', async (text, label) => {
    const view = await triage(text);
    expect(view.status).toBe('succeeded');
    expect(view.result?.issue.label).toBe(label);
  });
});
