import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { ApiApp } from '@inferq/api';
import { DEFAULT_TENANT } from '@inferq/contracts';
import { BATCHES_QUEUE, BatchStore, CLUSTERS_QUEUE, ClusterStore, Ownership, WEBHOOKS_QUEUE, batchJobId, newClusterId, bulkQueueNameForModel, bulkQueuesKey, chunkJobId } from '@inferq/queue';
import { BatchReaper, MAINTENANCE_QUEUE } from '@inferq/worker';
import type { BatchView, ResultLine } from './support/batches.js';
import { silent, startStack, until, type InProcessStack } from './support/in-process.js';
import { REDIS_URL } from './support/redis.js';

// The batch reaper (issue 14): what no event expires, finalizes or cleans.
const UNSERVED = 'acme/unserved-classifier';
let stack: InProcessStack;
let api: ApiApp;
let store: BatchStore;
let reaper: BatchReaper;
const redis = new Redis(REDIS_URL);
const queues: Queue[] = [];
const queue = (name: string) => {
  const q = new Queue(name, { connection: redis, prefix: stack.prefix });
  queues.push(q);
  return q;
};

beforeAll(async () => {
  stack = await startStack('batch-reaper');
  // A model the API accepts and no worker serves.
  const dir = join(stack.modelsDir, ...UNSERVED.split('/'));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ architectures: ['BertForSequenceClassification'], model_type: 'bert', id2label: { 0: 'neg', 1: 'pos' } }));
  api = await stack.api({ BATCH_CHUNK_SIZE: '2' });
  store = new BatchStore(redis, stack.prefix);
  reaper = new BatchReaper({ redisUrl: REDIS_URL, prefix: stack.prefix, stuckAfterMs: 60_000, webhookMaxAgeMs: 3_600_000 }, stack.outbox, silent);
});
afterAll(async () => {
  await reaper?.close();
  for (const q of queues) await q.close();
  await stack?.close();
  redis.disconnect();
});

const inputs = (n: number) => Array.from({ length: n }, (_, i) => ({ custom_id: `r${i}`, input: `review ${i}` }));
const readBatch = async (id: string) => (await api.inject({ method: 'GET', url: `/v1/batches/${id}` })).json() as BatchView;
async function results(id: string): Promise<ResultLine[]> {
  const res = await api.inject({ method: 'GET', url: `/v1/batches/${id}/results` });
  return res.body.split('\n').filter(Boolean).map((line) => JSON.parse(line) as ResultLine);
}

/** Stages `n` inputs and creates the record as the API does, `ageMs` ago, with no flow: the API died there. */
async function recordWithoutFlow(n: number, ageMs: number): Promise<string> {
  const id = `batch_${Math.random().toString(16).slice(2).padEnd(32, '0').slice(0, 32)}`;
  const stager = store.stager(2);
  for (const [i, item] of inputs(n).entries()) await stager.add(item.custom_id, item.input, i + 1);
  const staged = await stager.finish();
  await store.create({ id, task: 'classification', model: UNSERVED, parameters: {}, completionWindow: '24h', windowSeconds: 86_400, retentionSeconds: 3600 }, staged, Date.now() - ageMs);
  // Owned as the API would own it (it serves without keys here: the default tenant), so the API reads it.
  await new Ownership(redis, stack.prefix).claim('batch', id, DEFAULT_TENANT, { ttlSeconds: 3600, listed: true });
  return id;
}

describe('the batch reaper', () => {
  it('expires a batch past its window whose model no worker serves: expired, every line says so, its chunk jobs gone', async () => {
    const res = await api.inject({ method: 'POST', url: '/v1/batches', payload: { task: 'classification', model: UNSERVED, completion_window: '1s', inputs: inputs(5) } });
    const view = res.json() as BatchView;
    expect(view.status).toBe('in_progress');
    const bulk = queue(bulkQueueNameForModel(UNSERVED));
    expect(await bulk.getJobCountByTypes('waiting')).toBe(3);
    // Before the window ends the reaper leaves it alone; a run just after it, expires it.
    expect((await reaper.reapOnce(Date.parse(view.expires_at) - 1)).expiredChunks).toBe(0);
    const report = await reaper.reapOnce(Date.parse(view.expires_at) + 1);
    expect(report.expiredChunks).toBe(3);
    const final = await until(() => readBatch(view.id), (v) => v.status !== 'in_progress' && v.status !== 'finalizing', 30_000, 'the batch');
    expect(final.status).toBe('expired');
    const lines = await results(view.id);
    expect(lines.map((l) => l.custom_id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(new Set(lines.map((l) => l.error?.code))).toEqual(new Set(['INFERQ_ERR_BATCH_EXPIRED']));
    expect(await bulk.getJobCountByTypes('waiting', 'delayed', 'prioritized')).toBe(0);
  });

  it('ends a cancel where no worker serves the model: cancelled, its queued chunks taken out', async () => {
    const view = (await api.inject({ method: 'POST', url: '/v1/batches', payload: { task: 'classification', model: UNSERVED, inputs: inputs(3) } })).json() as BatchView;
    await api.inject({ method: 'POST', url: `/v1/batches/${view.id}/cancel` });
    await reaper.reapOnce();
    const final = await until(() => readBatch(view.id), (v) => v.status !== 'cancelling', 30_000, 'the batch');
    expect(final.status).toBe('cancelled');
    expect(new Set((await results(view.id)).map((l) => l.error?.code))).toEqual(new Set(['INFERQ_ERR_BATCH_CANCELLED']));
    const record = await store.get(view.id);
    expect(await queue(bulkQueueNameForModel(UNSERVED)).getJob(chunkJobId(view.id, record?.stage ?? '', 0))).toBeUndefined();
  });

  it('resumes a batch stuck validating (the API died before its flow): it goes in_progress with every chunk queued', async () => {
    const id = await recordWithoutFlow(3, 120_000);
    expect((await store.get(id))?.status).toBe('validating');
    const report = await reaper.reapOnce();
    expect(report.resumed).toBe(1);
    const record = await store.get(id);
    expect(record?.status).toBe('in_progress');
    const bulk = queue(bulkQueueNameForModel(UNSERVED));
    for (let c = 0; c < 2; c++) expect(await bulk.getJobState(chunkJobId(id, record?.stage ?? '', c))).toBe('waiting');
    // A second run adds nothing twice.
    expect((await reaper.reapOnce()).resumed).toBe(0);
    // A young validating batch is left to the API that is creating it.
    const young = await recordWithoutFlow(1, 0);
    await reaper.reapOnce();
    expect((await store.get(young))?.status).toBe('validating');
  });

  it("resumes a cluster run's embedding batch stuck validating under its clustering job, so the run still ends", async () => {
    const id = await recordWithoutFlow(3, 120_000);
    const cluster = newClusterId();
    await redis.hset(store.batchKey(id), 'metadata', JSON.stringify({ cluster_run: cluster }));
    await new ClusterStore(redis, stack.prefix).create({ id: cluster, batch: id, model: UNSERVED, source: 'inputs', settings: {}, createdAt: Date.now() - 120_000, retentionSeconds: 3600 });
    expect((await reaper.reapOnce()).resumed).toBe(1);
    const run = queue(CLUSTERS_QUEUE);
    expect(await run.getJobState(cluster)).toBe('waiting-children');
    const record = await store.get(id);
    const parentKey = await redis.hget(`${stack.prefix}:${BATCHES_QUEUE}:${batchJobId(id, record?.stage ?? '')}`, 'parentKey');
    expect(parentKey).toBe(`${stack.prefix}:${CLUSTERS_QUEUE}:${cluster}`);
  });

  it('fails a batch stuck validating whose staged chunk was lost from Redis, rather than run it with results cut short', async () => {
    const id = await recordWithoutFlow(3, 120_000);
    const record = await store.get(id);
    await redis.del(store.stageKey(record?.stage ?? '', 0));
    await reaper.reapOnce();
    expect((await store.get(id))?.status).toBe('failed');
    expect(await redis.exists(store.stageKey(record?.stage ?? '', 1))).toBe(0);
  });

  it('finalizes a batch cancelled before its flow was added: cancelled, its inputs marked so', async () => {
    const id = await recordWithoutFlow(3, 120_000);
    expect(await store.transition(id, 'cancelling', ['validating'])).toBe('cancelling');
    const report = await reaper.reapOnce();
    expect(report.finalized).toBe(1);
    expect((await store.get(id))?.status).toBe('cancelled');
    const lines = await results(id);
    expect(lines).toHaveLength(3);
    expect(new Set(lines.map((l) => l.error?.code))).toEqual(new Set(['INFERQ_ERR_BATCH_CANCELLED']));
  });

  it('prunes the batch index and removes chunk, parent and webhook jobs nobody will take', async () => {
    const index = store.indexKey();
    await redis.zadd(index, Date.now() - 1000, 'batch_0000000000000000000000000000dead');
    const orphanQueue = bulkQueueNameForModel('acme/gone-model');
    await redis.sadd(bulkQueuesKey(stack.prefix), orphanQueue);
    const orphans = queue(orphanQueue);
    await orphans.add('chunk', { batch: 'batch_0000000000000000000000000000dead', chunk: 0, stage: 'x' }, { jobId: 'orphan-chunk' });
    const parents = queue(BATCHES_QUEUE);
    await parents.add('batch', { batch: 'batch_0000000000000000000000000000dead' }, { jobId: 'orphan-parent' });
    const webhooks = queue(WEBHOOKS_QUEUE);
    // A delivery waiting for a worker with WEBHOOK_SECRET for longer than its age (an hour here).
    await webhooks.pause(); // the stack's sender would take it otherwise
    await webhooks.add('batch.completed', { url: 'https://example.com/h', event: 'batch.completed', body: '{}' }, { jobId: 'wh-old', timestamp: Date.now() - 2 * 3_600_000 });
    try {
      const report = await reaper.reapOnce();
      expect(report.pruned).toBeGreaterThanOrEqual(1);
      expect(await redis.zscore(index, 'batch_0000000000000000000000000000dead')).toBeNull();
      expect(await orphans.getJob('orphan-chunk')).toBeUndefined();
      expect(await parents.getJob('orphan-parent')).toBeUndefined();
      expect(await webhooks.getJob('wh-old')).toBeUndefined();
      expect(report.orphanJobs).toBeGreaterThanOrEqual(2);
      expect(report.staleWebhooks).toBeGreaterThanOrEqual(1);
    } finally {
      await webhooks.resume();
    }
    // The index itself expires with its longest-kept batch.
    expect(await redis.pttl(index)).toBeGreaterThan(0);
  });

  it('runs by itself as a BullMQ job scheduler', async () => {
    const events = new QueueEvents(MAINTENANCE_QUEUE, { connection: { url: REDIS_URL } as never, prefix: stack.prefix });
    await events.waitUntilReady();
    const scheduled = new BatchReaper({ redisUrl: REDIS_URL, prefix: stack.prefix, intervalMs: 200 }, stack.outbox, silent);
    try {
      const ran = new Promise<unknown>((resolve) => events.once('completed', ({ returnvalue }) => resolve(returnvalue)));
      await scheduled.start();
      const report = await ran;
      expect(typeof report === 'string' ? JSON.parse(report) : report).toHaveProperty('pruned');
    } finally {
      await scheduled.close();
      await events.close();
    }
  });
});
