// The logs of a real run (API and worker processes, debug level, keys on) hold no input text,
// no result text and no key: everything a tenant sends or gets back is data, not log material.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('e2e-logs');
const ADMIN = `admin-${randomBytes(24).toString('hex')}`;
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-logs-'));
  await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, LOG_LEVEL: 'debug' };
  [api, worker] = await Promise.all([
    startApi({ ...env, ADMIN_API_KEY: ADMIN, BATCH_CHUNK_SIZE: '4' }),
    startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

const secret = (what: string) => `${what}-${randomBytes(6).toString('hex')}`;

async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(typeof body === 'string' ? { 'content-type': 'application/x-ndjson' } : body ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text && res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : text };
}

describe('logs', () => {
  it('hold none of the inputs, results or keys of a run, its failures included', async () => {
    const created = await call('POST', '/v1/admin/keys', ADMIN, { tenant: 'acme' });
    expect(created.status).toBe(201);
    const { key, id: keyId } = created.json as { key: string; id: string };
    const texts: string[] = [];
    const results: string[] = [];

    // A job to the end, read with a long-poll.
    const jobText = secret('job input');
    texts.push(jobText);
    const job = await call('POST', '/v1/jobs', key, { task: 'classification', input: jobText }, { 'idempotency-key': secret('idem') });
    expect(job.status).toBe(202);
    const jobId = (job.json as { id: string }).id;
    const done = await call('GET', `/v1/jobs/${jobId}?wait=30`, key);
    expect((done.json as { status: string }).status).toBe('succeeded');
    results.push(JSON.stringify((done.json as { result: unknown }).result));

    // Refusals: an empty-looking input, a bad parameter, a bad batch line, an idempotency mismatch.
    const badText = secret('bad input');
    texts.push(badText);
    expect((await call('POST', '/v1/jobs', key, { task: 'classification', input: badText, parameters: { top_k: -1 } })).status).toBe(400);
    const lineText = secret('line input');
    texts.push(lineText);
    expect((await call('POST', '/v1/batches?task=classification', key, `{"custom_id":"a","input":"${lineText}"}\n{"custom_id":"a","input":"${lineText}"}`)).status).toBe(400);
    const idem = secret('idem');
    expect((await call('POST', '/v1/jobs', key, { task: 'classification', input: jobText }, { 'idempotency-key': idem })).status).toBe(202);
    expect((await call('POST', '/v1/jobs', key, { task: 'classification', input: badText }, { 'idempotency-key': idem })).status).toBe(422);

    // A batch to the end, results read, then deleted.
    const batchTexts = Array.from({ length: 10 }, (_, i) => secret(`batch input ${i}`));
    texts.push(...batchTexts);
    const batch = await call('POST', '/v1/batches?task=classification', key, batchTexts.map((t, i) => JSON.stringify({ custom_id: `r${i}`, input: t })).join('\n'));
    expect(batch.status).toBe(202);
    const batchId = (batch.json as { id: string }).id;
    await expect
      .poll(async () => ((await call('GET', `/v1/batches/${batchId}`, key)).json as { status: string }).status, { timeout: 60_000, interval: 200 })
      .toBe('completed');
    const lines = ((await call('GET', `/v1/batches/${batchId}/results`, key)).json as string).trim().split('\n');
    expect(lines).toHaveLength(10);
    expect((await call('DELETE', `/v1/batches/${batchId}`, key)).status).toBe(204);
    expect((await call('DELETE', `/v1/jobs/${jobId}`, key)).status).toBe(204);

    // Wrong and revoked keys.
    const wrongKey = `iq_${randomBytes(32).toString('base64url')}`;
    expect((await call('GET', '/v1/batches', wrongKey)).status).toBe(401);
    expect((await call('DELETE', `/v1/admin/keys/${keyId}`, ADMIN)).status).toBe(204);
    expect((await call('GET', '/v1/batches', key)).status).toBe(401);

    const logs = [...api.proc.raw, ...worker.proc.raw].join('\n');
    expect(logs.length).toBeGreaterThan(1000);
    expect(logs).toContain(jobId); // the logs do name what happened
    for (const text of texts) expect(logs, 'an input text').not.toContain(text);
    for (const result of results) expect(logs, 'a result').not.toContain(result);
    for (const k of [key, ADMIN, wrongKey]) expect(logs, 'a key').not.toContain(k);
    // Nor a recognisable piece of one (a prefix long enough to guess from).
    expect(logs).not.toContain(key.slice(0, 20));
  });
});
