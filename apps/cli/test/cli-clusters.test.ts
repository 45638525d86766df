// `inferq embed` and `inferq cluster` against a real API and worker (built dist entry points,
// real Redis at REDIS_URL), serving the starter embedding model.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '@inferq/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, cli, startApi, startWorker, type Service } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-cli-clusters-${randomBytes(4).toString('hex')}`;
let dir: string;
let api: { service: Service; url: string };
let worker: Service;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inferq-cli-clusters-'));
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: join(dir, 'models'), DEFAULT_MODEL_EMBEDDING: 'inferq/starter-embeddings' };
  worker = await startWorker({ ...env, WORKER_MODELS: 'inferq/starter-embeddings' });
  api = await startApi(env);
});

afterAll(async () => {
  await Promise.all([api?.service.stop(), worker?.stop()]);
  const redis = new Redis(REDIS_URL);
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
  await rm(dir, { recursive: true, force: true });
});

const run = (argv: string[]) => cli([...argv, '--api', api.url], { cwd: dir });

describe('inferq embed and inferq cluster', () => {
  it('embed writes one vector per input, in input order', async () => {
    await writeFile(join(dir, 'few.csv'), 'id,body\nt1,My parcel is late\nt2,"I was charged twice"\n');
    const done = await run(['embed', 'few.csv', '--column', 'body', '--id-column', 'id', '--out', 'v.jsonl', '--interval', '0.2']);
    expect(done.stderr).not.toContain('inferq:');
    expect(done.code).toBe(0);
    const lines = (await readFile(join(dir, 'v.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; result: { embedding: number[]; dimensions: number } });
    expect(lines.map((l) => l.custom_id)).toEqual(['t1', 't2']);
    expect(lines[0]?.result.embedding).toHaveLength(256);
    expect(lines[0]?.result.dimensions).toBe(256);
  });

  it('cluster prints the common issues of the sample tickets as a table and writes the members', async () => {
    const samples = join(ROOT, 'samples', 'common-issues.jsonl');
    const done = await run(['cluster', samples, '-k', '8', '--out', 'members.jsonl', '--interval', '0.2']);
    expect(done.stderr).not.toContain('inferq:');
    expect(done.code).toBe(0);
    const [headline, header, ...rows] = done.stdout.trim().split('\n');
    expect(headline).toMatch(/^8 clusters \(k = 8\) among 160 inputs/);
    expect(header).toMatch(/^cluster\s+size\s+share\s+example$/);
    expect(rows).toHaveLength(8);
    const sizes = rows.map((r) => Number(/\s(\d+)\s+\d+\.\d%/.exec(r)?.[1]));
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(160);
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
    const members = (await readFile(join(dir, 'members.jsonl'), 'utf8')).trim().split('\n');
    expect(members).toHaveLength(160);
  });

  it('a bad setting is the API\'s 4xx, exit code 4', async () => {
    const samples = join(ROOT, 'samples', 'common-issues.jsonl');
    const bad = await run(['cluster', samples, '--model', 'nobody/nothing']);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain('INFERQ_ERR_UNKNOWN_MODEL');
  });
});
