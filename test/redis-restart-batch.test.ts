// Redis restarted (AOF on, as docker-compose runs it) in the middle of a 5,000-input batch:
// every input gets exactly one result line.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { FINAL_BATCH, ndjsonOf, readResults, uploadBatch, type BatchView } from './support/batches.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { OwnRedis, hasRedisServer } from './support/redis-server.js';
import { reviewTexts } from './support/texts.js';

const N = 5000;
let redis: OwnRedis;
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };

/** The batch's view, or undefined while the API can't reach Redis (503) or the read fails. */
async function tryRead(id: string): Promise<BatchView | undefined> {
  try {
    const res = await fetch(`${api.url}/v1/batches/${id}`);
    return res.status === 200 ? ((await res.json()) as BatchView) : undefined;
  } catch {
    return undefined;
  }
}

describe.skipIf(!hasRedisServer)('a Redis restart during a batch', () => {
  beforeAll(async () => {
    redis = await OwnRedis.start();
    modelsDir = await mkdtemp(join(tmpdir(), 'inferq-restart-batch-'));
    await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
    const env = { REDIS_URL: redis.url, MODELS_DIR: modelsDir };
    api = await startApi({ ...env, BATCH_CHUNK_SIZE: '64' });
    // Small static batches, one chunk at a time, a short lock: the batch runs for seconds, and
    // chunks held during the outage come back quickly.
    worker = await startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, JOB_LOCK_MS: '2000', MAX_BATCH_SIZE: '8', BATCHING: 'static', BULK_CONCURRENCY: '1' });
  });

  afterAll(async () => {
    await Promise.all([api?.proc.stop(), worker?.proc.stop('SIGKILL')]);
    await redis?.destroy();
    await rm(modelsDir, { recursive: true, force: true });
  });

  it('every input of a 5,000-input batch gets exactly one result', async () => {
    const upload = await uploadBatch(api.url, ndjsonOf(reviewTexts(N)));
    expect(upload.status).toBe(202);
    const { id } = upload.json;
    // Mid-run: some chunks done, most not.
    await expect.poll(async () => (await tryRead(id))?.request_counts.completed ?? 0, { timeout: 60_000, interval: 50 }).toBeGreaterThan(0);
    const before = await tryRead(id);
    expect(before?.request_counts.completed).toBeLessThan(N);

    await redis.down();
    await redis.up();

    await expect.poll(async () => (await tryRead(id))?.status, { timeout: 240_000, interval: 250 }).toSatisfy((s: string | undefined) => s !== undefined && FINAL_BATCH.includes(s));
    const final = await tryRead(id);
    expect(final?.status).toBe('completed');
    expect(final?.request_counts).toEqual({ total: N, completed: N, failed: 0 });
    const { lines } = await readResults(api.url, id);
    expect(lines).toHaveLength(N);
    const ids = lines.map((l) => l.custom_id);
    expect(new Set(ids).size).toBe(N);
    expect(ids).toEqual(Array.from({ length: N }, (_, i) => `r${i}`));
    expect(lines.filter((l) => l.error)).toEqual([]);
  }, 300_000);
});
