// The API process SIGKILLed in the middle of an NDJSON upload leaves nothing behind: another
// API process reaps the staged chunks once the upload stops renewing them. No batch appears.
import { request } from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

const prefix = uniquePrefix('e2e-kill-upload');
const redis = new Redis(REDIS_URL);
let modelsDir: string;
const apis: ServiceProcess[] = [];

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-kill-upload-'));
  const dir = join(modelsDir, 'acme', 'sentiment');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ architectures: ['BertForSequenceClassification'], id2label: { '0': 'negative', '1': 'positive' } }));
});

afterAll(async () => {
  for (const api of apis) await api.stop('SIGKILL');
  await deletePrefix(prefix);
  redis.disconnect();
  await rm(modelsDir, { recursive: true, force: true });
});

const env = () => ({ REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, DEFAULT_MODEL_CLASSIFICATION: 'acme/sentiment', BATCH_CHUNK_SIZE: '16', BATCH_STAGING_GRACE_SECONDS: '2' });
const stagingKeys = () => redis.keys(`${prefix}:batch-stage:*`);

describe('the API killed mid-upload', () => {
  it('leaves no staging keys and no batch: another API process reaps them', async () => {
    const first = await startApi(env());
    apis.push(first.proc);
    const url = new URL(`${first.url}/v1/batches?task=classification`);
    const upload = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', headers: { 'content-type': 'application/x-ndjson' } });
    const outcome = new Promise<string>((resolve) => {
      upload.on('response', (res) => resolve(`answered ${res.statusCode}`));
      upload.on('error', (err) => resolve(`cut: ${err.message}`));
    });
    // Send 200 lines (12 full chunks get staged), and keep the request open: the upload is in flight.
    for (let i = 0; i < 200; i++) upload.write(`${JSON.stringify({ custom_id: `line-${i}`, input: `review number ${i}` })}\n`);
    await expect.poll(async () => (await stagingKeys()).length, { timeout: 30_000, interval: 100 }).toBeGreaterThanOrEqual(12);

    expect(await first.proc.stop('SIGKILL')).toBeNull();
    expect(await outcome).toMatch(/^cut/);
    // The killed process left its staging behind, registered for the reaper.
    expect((await stagingKeys()).length).toBeGreaterThan(0);
    expect(await redis.hlen(`${prefix}:batch-staging`)).toBe(1);

    const second = await startApi(env());
    apis.push(second.proc);
    await expect.poll(async () => (await stagingKeys()).length, { timeout: 30_000, interval: 250 }).toBe(0);
    expect(await redis.hlen(`${prefix}:batch-staging`)).toBe(0);
    expect(await redis.keys(`${prefix}:batch:*`)).toEqual([]);
    expect(await redis.zcard(`${prefix}:batch-index`)).toBe(0);
    // The second process serves uploads as usual.
    const res = await fetch(`${second.url}/v1/batches?task=classification`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '{"custom_id":"a","input":"fine"}\n',
    });
    expect(res.status).toBe(202);
  });
});
