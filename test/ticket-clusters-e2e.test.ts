import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adjustedRandIndex } from '@inferq/inference';
import { ensureModel, STARTER_EMBEDDINGS_ID } from '@inferq/tiny-models';
import { issueInputs } from './support/issue-texts.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('e2e-ticket-clusters');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
const MODELS = ['inferq/starter-tickets', 'inferq/tiny-bart', STARTER_EMBEDDINGS_ID];
const tickets = issueInputs();
const issueOf = new Map<string, string>();
let beforeAnyTicket: { status: number; code: string };

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-ticket-clusters-'));
  for (const id of MODELS) await ensureModel(modelsDir, id);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, DEFAULT_MODEL_EMBEDDING: STARTER_EMBEDDINGS_ID };
  worker = await startWorker({ ...env, WORKER_MODELS: MODELS.join(',') });
  // The API adds a ticket's embedding child only while a worker serves the embedding model.
  api = await startApi({ ...env, TICKET_MODEL: 'inferq/starter-tickets' });
  const empty = await fetch(`${api.url}/v1/clusters`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: 'tickets' }) });
  beforeAnyTicket = { status: empty.status, code: ((await empty.json()) as { error?: { code: string } }).error?.code ?? '' };
  for (const t of tickets) {
    const res = await fetch(`${api.url}/v1/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body: t.input }) });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    issueOf.set(id, t.issue);
  }
  for (const id of issueOf.keys()) {
    for (;;) {
      const view = (await (await fetch(`${api.url}/v1/tickets/${id}?wait=20`)).json()) as { status: string };
      if (view.status === 'succeeded') break;
      if (view.status === 'failed') throw new Error(`ticket ${id} failed`);
    }
  }
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

describe('tickets keep their text and embedding', () => {
  it('GET /v1/tickets/:id/similar answers the most similar kept tickets, best first, with score and issue label', async () => {
    const [first] = [...issueOf.entries()].filter(([, issue]) => issue === 'shipping');
    const res = await fetch(`${api.url}/v1/tickets/${first![0]}/similar?top_k=3`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { id: string; score: number; issue: string }[] };
    expect(body.data).toHaveLength(3);
    expect(body.data.map((d) => d.id)).not.toContain(first![0]);
    expect(body.data.map((d) => d.score)).toEqual([...body.data.map((d) => d.score)].sort((a, b) => b - a));
    expect(body.data.filter((d) => issueOf.get(d.id) === 'shipping').length).toBeGreaterThanOrEqual(2);
    expect(body.data[0]?.issue).toBe('shipping');
    const unknown = await fetch(`${api.url}/v1/tickets/ticket-00000000000000000000000000000000/similar`);
    expect(unknown.status).toBe(404);
  });

  it('a cluster run over source tickets finds their issues', async () => {
    const res = await fetch(`${api.url}/v1/clusters`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ source: 'tickets', since: '1h', num_clusters: 3 }) });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    let run: { status: string; request_counts: { total: number } };
    do run = (await (await fetch(`${api.url}/v1/clusters/${id}?wait=20`)).json()) as typeof run;
    while (run.status !== 'completed' && run.status !== 'failed');
    expect(run).toMatchObject({ status: 'completed', request_counts: { total: tickets.length } });
    const lines = (await (await fetch(`${api.url}/v1/clusters/${id}/members`)).text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { custom_id: string; cluster: number });
    // Tickets come in the order they were triaged, which varies from run to run, and k-means++
    // seeding depends on the order: 0.48 to 1 measured; chance is 0.
    expect(adjustedRandIndex(lines.map((l) => issueOf.get(l.custom_id) ?? '?'), lines.map((l) => l.cluster))).toBeGreaterThan(0.3);
  });

  it('a run over tickets when none is kept is its own 400', () => {
    expect(beforeAnyTicket).toEqual({ status: 400, code: 'INFERQ_ERR_CLUSTER_EMPTY' });
  });
});
