import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adjustedRandIndex } from '@inferq/inference';
import { ensureModel, STARTER_EMBEDDINGS_ID, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { uploadBatch, waitForBatch } from './support/batches.js';
import { issueInputs } from './support/issue-texts.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

interface ClusterRun {
  id: string;
  status: string;
  batch_id: string;
  request_counts: { total: number; completed: number; failed: number };
  result?: {
    clusters: { id: number; size: number; share: number; keywords: string[]; examples: { custom_id: string; input: string }[]; members?: string[] }[];
    outliers: { size: number };
    num_clusters: number;
    chosen_automatically: boolean;
  };
  error?: { code: string; message: string };
}

const prefix = uniquePrefix('e2e-clusters');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
const inputs = issueInputs();
const truth = new Map(inputs.map((i) => [i.custom_id, i.issue]));

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-clusters-'));
  for (const id of [STARTER_EMBEDDINGS_ID, TINY_CLASSIFIER_ID, 'inferq/tiny-llama']) await ensureModel(modelsDir, id);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, DEFAULT_MODEL_EMBEDDING: STARTER_EMBEDDINGS_ID };
  [api, worker] = await Promise.all([startApi({ ...env, BATCH_CHUNK_SIZE: '5' }), startWorker({ ...env, WORKER_MODELS: `${STARTER_EMBEDDINGS_ID},inferq/tiny-llama` })]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function post(body: unknown, init: { query?: string; ndjson?: boolean } = {}): Promise<{ status: number; json: ClusterRun }> {
  const res = await fetch(`${api.url}/v1/clusters${init.query ? `?${init.query}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': init.ndjson ? 'application/x-ndjson' : 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as ClusterRun };
}

async function finished(id: string): Promise<ClusterRun> {
  for (;;) {
    const run = (await (await fetch(`${api.url}/v1/clusters/${id}?wait=20`)).json()) as ClusterRun;
    if (run.status === 'completed' || run.status === 'failed') return run;
  }
}

async function members(id: string): Promise<{ custom_id: string; cluster: number }[]> {
  const res = await fetch(`${api.url}/v1/clusters/${id}/members`);
  expect(res.status).toBe(200);
  return (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { custom_id: string; cluster: number });
}

/** Agreement of the members file with the issues the texts were written for. */
async function agreement(id: string): Promise<number> {
  const lines = await members(id);
  return adjustedRandIndex(lines.map((l) => truth.get(l.custom_id) ?? '?'), lines.map((l) => l.cluster));
}

describe('cluster runs through the API, the bulk path and a worker', () => {
  it('finds the three issues of a JSON list: keywords, examples, members, largest first', async () => {
    const { status, json } = await post({ inputs: inputs.map(({ custom_id, input }) => ({ custom_id, input })), num_clusters: 3 });
    expect(status, JSON.stringify(json)).toBe(202);
    expect(json).toMatchObject({ status: 'embedding', request_counts: { total: 18 } });
    const run = await finished(json.id);
    expect(run.status, JSON.stringify(run.error)).toBe('completed');
    expect(run.request_counts).toEqual({ total: 18, completed: 18, failed: 0 });
    const clusters = run.result!.clusters;
    expect(clusters).toHaveLength(3);
    expect(clusters.map((c) => c.size).reduce((a, b) => a + b, 0) + run.result!.outliers.size).toBe(18);
    expect([...clusters.map((c) => c.size)]).toEqual([...clusters.map((c) => c.size)].sort((a, b) => b - a));
    for (const c of clusters) {
      expect(c.keywords.length).toBeGreaterThan(0);
      expect(c.examples.length).toBeGreaterThan(0);
      expect(c.members).toHaveLength(c.size);
      expect(c.examples[0]?.custom_id).toBe(c.members?.[0]);
      expect(c.share).toBeCloseTo(c.size / 18, 6);
    }
    expect(await agreement(json.id)).toBeGreaterThan(0.5);
    // The shipping cluster is named by shipping words.
    const shipping = clusters.find((c) => c.members?.filter((m) => m.startsWith('shipping')).length === Math.max(...clusters.map((x) => x.members?.filter((m) => m.startsWith('shipping')).length ?? 0)));
    expect(shipping?.keywords.some((k) => ['parcel', 'delivery', 'tracking', 'courier', 'package', 'delivered'].includes(k))).toBe(true);
  });

  it('an NDJSON upload with automatic k', async () => {
    const body = inputs.map(({ custom_id, input }) => JSON.stringify({ custom_id, input })).join('\n') + '\n';
    const { status, json } = await post(body, { ndjson: true, query: 'max_clusters=6' });
    expect(status, JSON.stringify(json)).toBe(202);
    const run = await finished(json.id);
    expect(run.status).toBe('completed');
    expect(run.result!.chosen_automatically).toBe(true);
    expect(run.result!.num_clusters).toBeGreaterThanOrEqual(2);
    expect(run.result!.num_clusters).toBeLessThanOrEqual(6);
    expect((await members(json.id)).map((m) => m.custom_id)).toEqual(inputs.map((i) => i.custom_id));
  });

  it('the inputs of an existing batch (batch_id), after that batch has run', async () => {
    const ndjson = inputs.map(({ custom_id, input }) => JSON.stringify({ custom_id, input })).join('\n') + '\n';
    const batch = await uploadBatch(api.url, ndjson, 'task=embedding');
    expect(batch.status).toBe(202);
    await waitForBatch(api.url, batch.json.id, (v) => v.status === 'completed');
    const { status, json } = await post({ batch_id: batch.json.id, num_clusters: 3 });
    expect(status, JSON.stringify(json)).toBe(202);
    const run = await finished(json.id);
    expect(run.status).toBe('completed');
    expect(await agreement(json.id)).toBeGreaterThan(0.5);
  });

  it('title_model writes a short title per cluster with a generation model', async () => {
    const { status, json } = await post({ inputs: inputs.map(({ custom_id, input }) => ({ custom_id, input })), num_clusters: 3, title_model: 'inferq/tiny-llama' });
    expect(status, JSON.stringify(json)).toBe(202);
    const run = await finished(json.id);
    expect(run.status, JSON.stringify(run.error)).toBe('completed');
    for (const c of run.result!.clusters as { title?: string }[]) {
      expect(typeof c.title).toBe('string');
      expect(c.title!.length).toBeGreaterThan(0);
      expect(c.title!.length).toBeLessThanOrEqual(80);
      expect(c.title).not.toContain('\n');
    }
  });

  it('answers each bad request with its own 4xx code', async () => {
    const two = [
      { custom_id: 'a', input: 'my parcel is late' },
      { custom_id: 'b', input: 'my invoice is wrong' },
    ];
    const cases: [unknown, number, string][] = [
      [{ inputs: two, model: 'nobody/nothing' }, 404, 'INFERQ_ERR_UNKNOWN_MODEL'],
      [{ inputs: two, model: TINY_CLASSIFIER_ID }, 400, 'INFERQ_ERR_TASK_MISMATCH'],
      [{ inputs: two, title_model: STARTER_EMBEDDINGS_ID }, 400, 'INFERQ_ERR_TASK_MISMATCH'],
      [{ inputs: two, num_clusters: 0 }, 400, 'INFERQ_ERR_CLUSTER_K_RANGE'],
      [{ inputs: two, num_clusters: 3 }, 400, 'INFERQ_ERR_CLUSTER_K_RANGE'],
      [{ inputs: two, num_clusters: 5000 }, 400, 'INFERQ_ERR_CLUSTER_K_RANGE'],
      [{ inputs: [] }, 400, 'INFERQ_ERR_CLUSTER_EMPTY'],
      [{ inputs: two.slice(0, 1) }, 400, 'INFERQ_ERR_CLUSTER_EMPTY'],
      [{ inputs: two, batch_id: 'batch_x' }, 400, 'INFERQ_ERR_CLUSTER_SOURCE'],
      [{}, 400, 'INFERQ_ERR_CLUSTER_SOURCE'],
      [{ inputs: [...two, { custom_id: 'a', input: 'again' }] }, 400, 'INFERQ_ERR_BATCH_LINE_INVALID'],
      [{ batch_id: 'batch_00000000000000000000000000000000' }, 404, 'INFERQ_ERR_BATCH_NOT_FOUND'],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(body);
      expect({ body, status: res.status, code: (res.json as unknown as { error?: { code: string } }).error?.code }).toEqual({ body, status, code });
    }
    const unknown = await fetch(`${api.url}/v1/clusters/clu_00000000000000000000000000000000`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('INFERQ_ERR_CLUSTER_NOT_FOUND');
  });
});
