import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddingPipeline, embeddingFromBase64 } from '@inferq/inference';
import { ensureModel, TINY_CLASSIFIER_ID, TINY_EMBEDDINGS_CLS_ID, TINY_EMBEDDINGS_ID } from '@inferq/tiny-models';
import { ndjsonOf, readResults, uploadBatch, waitForBatch } from './support/batches.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

interface View {
  status: string;
  model: string;
  result?: { embedding: number[] | string; dimensions: number; usage: { input_tokens: number } };
  error?: { code: string; message: string };
}

const prefix = uniquePrefix('e2e-embeddings');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
let reference: EmbeddingPipeline;

const TEXTS = [
  'I was charged twice for my subscription this month.',
  'The app logs me out every few minutes and I have to type my password again.',
  'Where is my parcel? The tracking page has not changed for a week.',
  'ok',
];

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-embeddings-'));
  for (const id of [TINY_EMBEDDINGS_ID, TINY_EMBEDDINGS_CLS_ID, TINY_CLASSIFIER_ID]) await ensureModel(modelsDir, id);
  reference = await EmbeddingPipeline.load(join(modelsDir, TINY_EMBEDDINGS_ID));
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker] = await Promise.all([
    startApi({ ...env, BATCH_CHUNK_SIZE: '3' }),
    startWorker({ ...env, WORKER_MODELS: [TINY_EMBEDDINGS_ID, TINY_EMBEDDINGS_CLS_ID].join(',') }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await reference?.release();
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function post(body: unknown): Promise<{ status: number; json: { id?: string; error?: { code: string } } }> {
  const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as { id?: string; error?: { code: string } } };
}

async function run(body: unknown): Promise<View> {
  const { status, json } = await post(body);
  expect(status, JSON.stringify(json)).toBe(202);
  for (;;) {
    const view = (await (await fetch(`${api.url}/v1/jobs/${json.id}?wait=20`)).json()) as View;
    if (view.status !== 'queued' && view.status !== 'running') return view;
  }
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs((a[i] ?? 0) - (b[i] ?? NaN))).toBeLessThan(1e-6);
};

describe('embeddings through the API and a worker process', () => {
  it('an embedding job answers the vector the pipeline gives alone, with its size and token count', async () => {
    const view = await run({ task: 'embedding', input: TEXTS[0] });
    expect(view).toMatchObject({ status: 'succeeded', model: TINY_EMBEDDINGS_ID });
    const [expected] = await reference.embed([TEXTS[0]!]);
    const result = view.result!;
    expect(result.dimensions).toBe(32);
    expect(result.usage.input_tokens).toBe(reference.prepare({ text: TEXTS[0]! }).encoded.ids.length);
    close(result.embedding as number[], expected!);
  });

  it('encoding base64 sends the same vector as little-endian float32; dimensions and prompt_name apply', async () => {
    const view = await run({ task: 'embedding', input: TEXTS[1], parameters: { encoding: 'base64', dimensions: 16, prompt_name: 'query' } });
    expect(view.status).toBe('succeeded');
    const [expected] = await reference.embed([TEXTS[1]!], { dimensions: 16, promptName: 'query' });
    expect(typeof view.result!.embedding).toBe('string');
    expect(view.result!.dimensions).toBe(16);
    close(embeddingFromBase64(view.result!.embedding as string), expected!);
  });

  it('the CLS model answers its own vectors', async () => {
    const view = await run({ task: 'embedding', model: TINY_EMBEDDINGS_CLS_ID, input: TEXTS[0] });
    expect(view.status).toBe('succeeded');
    const cls = await EmbeddingPipeline.load(join(modelsDir, TINY_EMBEDDINGS_CLS_ID));
    const [expected] = await cls.embed([TEXTS[0]!]);
    await cls.release();
    close(view.result!.embedding as number[], expected!);
  });

  it('a bulk batch of embeddings gives one vector per line, in input order', async () => {
    const { status, json } = await uploadBatch(api.url, ndjsonOf(TEXTS), 'task=embedding');
    expect(status, JSON.stringify(json)).toBe(202);
    await waitForBatch(api.url, json.id, (v) => v.status === 'completed');
    const { lines } = await readResults(api.url, json.id);
    expect(lines.map((l) => l.custom_id)).toEqual(['r0', 'r1', 'r2', 'r3']);
    const expected = await reference.embed(TEXTS);
    lines.forEach((line, i) => close((line.result as unknown as { embedding: number[] }).embedding, expected[i]!));
  });

  it('GET /v1/models reports the embedding task and the dimension', async () => {
    const { data } = (await (await fetch(`${api.url}/v1/models`)).json()) as { data: { id: string; tasks: string[]; dimension?: number }[] };
    expect(data.find((m) => m.id === TINY_EMBEDDINGS_ID)).toMatchObject({ tasks: ['embedding'], dimension: 32 });
    expect(data.find((m) => m.id === TINY_CLASSIFIER_ID)?.dimension).toBeUndefined();
  });

  it('refuses what it cannot do: a classifier as embedding model, an unknown parameter, a cut wider than the model', async () => {
    expect(await post({ task: 'embedding', model: TINY_CLASSIFIER_ID, input: 'x' })).toMatchObject({ status: 400, json: { error: { code: 'INFERQ_ERR_TASK_MISMATCH' } } });
    expect(await post({ task: 'embedding', input: 'x', parameters: { pooling: 'median' } })).toMatchObject({ status: 400, json: { error: { code: 'INFERQ_ERR_VALIDATION' } } });
    const wide = await run({ task: 'embedding', input: 'x', parameters: { dimensions: 64 } });
    expect(wide).toMatchObject({ status: 'failed', error: { code: 'INFERQ_ERR_VALIDATION' } });
    expect(wide.error?.message).toMatch(/from 1 to 32/);
  });
});
