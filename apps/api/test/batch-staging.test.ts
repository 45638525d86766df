import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { Job, Queue } from 'bullmq';
import type { BatchView, ErrorBody } from '@inferq/contracts';
import { BATCHES_QUEUE, BatchStore, bulkQueueNameForModel, createRedis } from '@inferq/queue';
import { createTestEnv, SENTIMENT, type TestEnv } from './helpers.js';

// Regression tests of issue 14: how an upload is staged and turned into a batch.
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'worker');
const envs: TestEnv[] = [];
afterEach(() => vi.restoreAllMocks());
afterAll(async () => {
  for (const env of envs) await env.close();
  await redis.quit();
});

async function newEnv(vars: Record<string, string>): Promise<{ env: TestEnv; store: BatchStore; bulk: Queue; parents: Queue }> {
  const env = await createTestEnv(vars);
  envs.push(env);
  const prefix = env.config.QUEUE_PREFIX;
  return {
    env,
    store: new BatchStore(redis, prefix),
    bulk: new Queue(bulkQueueNameForModel(SENTIMENT), { connection: redis, prefix }),
    parents: new Queue(BATCHES_QUEUE, { connection: redis, prefix }),
  };
}

const line = (id: string, input = `text ${id}`) => JSON.stringify({ custom_id: id, input });

function upload(env: TestEnv, body: string | Readable, headers: Record<string, string> = {}) {
  return env.app.inject({
    method: 'POST',
    url: '/v1/batches?task=classification',
    payload: body,
    headers: { 'content-type': 'application/x-ndjson', ...headers },
  });
}

async function keys(prefix: string, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:${pattern}`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

describe('staging an upload (issue 14)', () => {
  it('a duplicate custom_id names the line of its first use when the upload has blank lines', async () => {
    const { env } = await newEnv({ BATCH_CHUNK_SIZE: '4' });
    // Chunk 0 holds lines 1, 3, 4, 5; the duplicate of "b" (line 3) is on line 7, in chunk 1.
    const body = [line('a'), '', line('b'), line('c'), line('d'), line('e'), line('b')].join('\n');
    const res = await upload(env, body);
    expect(res.statusCode).toBe(400);
    expect((res.json() as ErrorBody).error.message).toBe('Line 7 is invalid: custom_id "b" was already used on line 3');
  });

  it('two different lone-surrogate custom_ids are two inputs, not a duplicate', async () => {
    const { env } = await newEnv({ BATCH_CHUNK_SIZE: '2' });
    // JSON escapes: the raw line is valid UTF-8, the parsed ids are lone surrogates U+D800 and U+D801.
    const body = ['{"custom_id":"\\ud800","input":"one"}', line('x'), '{"custom_id":"\\ud801","input":"two"}'].join('\n');
    const res = await upload(env, body);
    expect(res.statusCode).toBe(202);
    expect((res.json() as BatchView).request_counts.total).toBe(3);
    // And the same lone surrogate twice is still a duplicate.
    const again = await upload(env, ['{"custom_id":"\\ud800","input":"one"}', line('x'), '{"custom_id":"\\ud800","input":"two"}'].join('\n'));
    expect((again.json() as ErrorBody).error.message).toBe('Line 3 is invalid: custom_id "\\ud800" was already used on line 1');
  });

  it('BATCH_CHUNK_SIZE=10000 (the largest allowed) stages a chunk of 10,000 inputs', async () => {
    const { env, store } = await newEnv({ BATCH_CHUNK_SIZE: '10000', BATCH_UPLOAD_LIMIT_BYTES: String(4 * 1024 * 1024) });
    const body = Array.from({ length: 10_001 }, (_, i) => line(`r${i}`)).join('\n');
    const res = await upload(env, body);
    expect(res.statusCode).toBe(202);
    const view = res.json() as BatchView;
    expect(view.request_counts.total).toBe(10_001);
    const record = await store.get(view.id);
    expect(record?.chunks).toBe(2);
    expect((await store.readChunk(record?.stage ?? '', 0))?.length).toBe(10_000);
  });

  it('an upload that pauses longer than the staging TTL keeps its first chunks: the batch starts with every chunk', async () => {
    // 300 ms stands for the hour a staged chunk lives untouched.
    const { env, store } = await newEnv({ BATCH_CHUNK_SIZE: '2', BATCH_STAGING_TTL_MS: '300' });
    const prefix = env.config.QUEUE_PREFIX;
    async function* slowClient() {
      yield `${line('a')}\n${line('b')}\n${line('c')}\n`;
      // Chunk 0 is staged once "c" arrives; the client then stalls for several TTLs.
      while ((await keys(prefix, 'batch-stage:*:0')).length === 0) await sleep(10);
      await sleep(1500);
      yield `${line('d')}\n${line('e')}\n`;
    }
    const res = await upload(env, Readable.from(slowClient()));
    expect(res.statusCode).toBe(202);
    const view = res.json() as BatchView;
    const record = await store.get(view.id);
    expect(record?.chunks).toBe(3);
    for (let c = 0; c < 3; c++) expect(await store.readChunk(record?.stage ?? '', c), `chunk ${c}`).toBeDefined();
    expect(await redis.pttl(store.stageKey(record?.stage ?? '', 0))).toBeGreaterThan(3600_000);
  });

  it('a staged chunk lost from Redis during the upload: 503, no batch, nothing left staged', async () => {
    const { env, bulk, parents } = await newEnv({ BATCH_CHUNK_SIZE: '2' });
    const prefix = env.config.QUEUE_PREFIX;
    async function* client() {
      yield `${line('a')}\n${line('b')}\n${line('c')}\n`;
      let staged: string[] = [];
      while ((staged = await keys(prefix, 'batch-stage:*:0')).length === 0) await sleep(10);
      await redis.del(...staged); // as an eviction would
      yield `${line('d')}\n`;
    }
    const res = await upload(env, Readable.from(client()));
    expect({ status: res.statusCode, code: (res.json() as ErrorBody).error?.code }).toEqual({ status: 503, code: 'INFERQ_ERR_QUEUE_UNAVAILABLE' });
    expect(await keys(prefix, 'batch-stage:*')).toEqual([]);
    expect(await keys(prefix, 'batch:*')).toEqual([]);
    expect(await bulk.getJobCountByTypes('waiting', 'delayed', 'prioritized')).toBe(0);
    expect(await parents.getJobCountByTypes('waiting', 'waiting-children')).toBe(0);
  });

  it('a chunk job whose add failed inside the flow: the batch fails at once, its flow and staging removed', async () => {
    const { env, store, bulk, parents } = await newEnv({ BATCH_CHUNK_SIZE: '2' });
    const addJob = Job.prototype.addJob;
    // FlowProducer.add runs every add in one MULTI and reports the parent's reply only: make the
    // add of chunk 1 an error reply inside that MULTI.
    vi.spyOn(Job.prototype, 'addJob').mockImplementation(function (this: Job, client, parentOpts) {
      if (this.name === 'chunk' && (this.data as { chunk: number }).chunk === 1) {
        return (client as unknown as { eval(script: string, keys: number): Promise<string> }).eval("return redis.error_reply('ERR forced child add failure')", 0);
      }
      return addJob.call(this, client, parentOpts);
    });
    const res = await upload(env, [line('a'), line('b'), line('c'), line('d'), line('e')].join('\n'), { 'idempotency-key': 'child-add-fails' });
    expect(res.statusCode).toBe(500);
    vi.restoreAllMocks();
    const records = await keys(env.config.QUEUE_PREFIX, 'batch:*');
    expect(records).toHaveLength(1);
    const record = await store.get(records[0]?.split(':batch:')[1] ?? '');
    expect(record?.status).toBe('failed');
    expect(await keys(env.config.QUEUE_PREFIX, 'batch-stage:*')).toEqual([]);
    expect(await bulk.getJobCountByTypes('waiting', 'delayed', 'prioritized')).toBe(0);
    expect(await parents.getJobCountByTypes('waiting', 'waiting-children')).toBe(0);
    // A post that failed holds no idempotency record (as Stripe keeps none for a request that
    // did not execute): the client's retry with the same key starts a batch that runs.
    const again = await upload(env, line('a'), { 'idempotency-key': 'child-add-fails' });
    expect(again.statusCode).toBe(202);
    expect((again.json() as BatchView).id).not.toBe(record?.id);
    expect((again.json() as BatchView).status).toBe('in_progress');
    expect((await store.get(record?.id ?? ''))?.status).toBe('failed');
  });

  it('an Idempotency-Key reused after the batch record expired queues a new flow', async () => {
    // A window of 1 s and a retention of 1 s stand for the record's lifetime.
    const { env, store, bulk } = await newEnv({ BATCH_CHUNK_SIZE: '2', BATCH_RETENTION_SECONDS: '1' });
    const post = () =>
      env.app.inject({
        method: 'POST',
        url: '/v1/batches',
        payload: { task: 'classification', completion_window: '1s', inputs: [{ custom_id: 'a', input: 'one' }, { custom_id: 'b', input: 'two' }, { custom_id: 'c', input: 'three' }] },
        headers: { 'idempotency-key': 'weekly-reviews' },
      });
    const first = (await post()).json() as BatchView;
    while ((await redis.exists(store.batchKey(first.id))) === 1) await sleep(50);
    // No worker ran the first flow: its two chunk jobs wait on, as finished ones would stay too.
    expect(await bulk.getJobCountByTypes('waiting')).toBe(2);
    const second = (await post()).json() as BatchView;
    expect(second.id).toBe(first.id);
    expect(second.status).toBe('in_progress');
    expect(await bulk.getJobCountByTypes('waiting')).toBe(4);
  });
});
