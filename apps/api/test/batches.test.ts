import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { MAX_BATCH_INPUTS, MAX_INPUT_CHARS, type BatchList, type BatchView, type ErrorBody } from '@inferq/contracts';
import { BATCHES_QUEUE, BatchStore, batchJobId, bulkQueueNameForModel, chunkJobId, createRedis } from '@inferq/queue';
import { createTestEnv, GENERATOR, SENTIMENT, type TestEnv } from './helpers.js';

const CHUNK = 4;
const UPLOAD_LIMIT = 512 * 1024;
let env: TestEnv;
let store: BatchStore;
let bulk: Queue;
let parents: Queue;
const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', 'worker');

beforeAll(async () => {
  env = await createTestEnv({
    BATCH_CHUNK_SIZE: String(CHUNK),
    BATCH_UPLOAD_LIMIT_BYTES: String(UPLOAD_LIMIT),
    BATCH_BODY_LIMIT_BYTES: String(8 * 1024 * 1024),
  });
  store = new BatchStore(redis, env.config.QUEUE_PREFIX);
  bulk = new Queue(bulkQueueNameForModel(SENTIMENT), { connection: redis, prefix: env.config.QUEUE_PREFIX });
  parents = new Queue(BATCHES_QUEUE, { connection: redis, prefix: env.config.QUEUE_PREFIX });
});
afterAll(async () => {
  await bulk?.close();
  await parents?.close();
  await env?.close();
  await redis.quit();
});

const inputs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ custom_id: `c${from + i}`, input: `text number ${from + i}` }));
const ndjson = (items: unknown[]) => items.map((item) => JSON.stringify(item)).join('\n') + '\n';

function postJson(payload: unknown, headers: Record<string, string> = {}, url = '/v1/batches') {
  return env.app.inject({ method: 'POST', url, payload: payload as object, headers });
}

function upload(body: string | Buffer, query = 'task=classification', headers: Record<string, string> = {}) {
  return env.app.inject({
    method: 'POST',
    url: `/v1/batches?${query}`,
    payload: body,
    headers: { 'content-type': 'application/x-ndjson', ...headers },
  });
}

function expectError(res: { statusCode: number; json(): unknown }, status: number, code: string): string {
  const body = res.json() as ErrorBody;
  expect({ status: res.statusCode, code: body.error?.code }).toEqual({ status, code });
  return body.error.message;
}

async function keys(pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${env.config.QUEUE_PREFIX}:${pattern}`, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

/** What a refused request must leave behind: nothing staged, no job, no batch. */
async function expectNothingQueued(): Promise<void> {
  expect(await keys('batch-stage:*')).toEqual([]);
  expect(await bulk.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed')).toBe(0);
  expect(await parents.getJobCountByTypes('waiting', 'waiting-children', 'active', 'completed', 'failed')).toBe(0);
  expect(await redis.zcard(`${env.config.QUEUE_PREFIX}:batch-index`)).toBe(0);
}

async function clearBatches(): Promise<void> {
  await bulk.obliterate({ force: true });
  await parents.obliterate({ force: true });
  for (const key of await keys('batch*')) await redis.del(key);
}

describe('POST /v1/batches', () => {
  beforeEach(clearBatches);

  it('JSON: 202 with the batch view; a flow of ceil(n/K) chunk jobs under a parent; inputs staged by chunk', async () => {
    const before = Date.now();
    const res = await postJson({ task: 'classification', model: SENTIMENT, inputs: inputs(10), metadata: { team: 'support' }, completion_window: '2h' });
    expect(res.statusCode).toBe(202);
    const view = res.json() as BatchView;
    expect(res.headers.location).toBe(`/v1/batches/${view.id}`);
    expect(view).toMatchObject({
      object: 'batch',
      task: 'classification',
      model: SENTIMENT,
      status: 'in_progress',
      completion_window: '2h',
      request_counts: { total: 10, completed: 0, failed: 0 },
      results_url: `/v1/batches/${view.id}/results`,
      metadata: { team: 'support' },
      completed_at: null,
      cancelled_at: null,
    });
    const created = Date.parse(view.created_at);
    expect(created).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(view.expires_at) - created).toBe(2 * 3600 * 1000);
    expect(view.in_progress_at).not.toBeNull();

    expect(await bulk.getJobCountByTypes('waiting')).toBe(3);
    const record = await store.get(view.id);
    const chunk = await bulk.getJob(chunkJobId(view.id, record?.stage ?? '', 2));
    expect(chunk?.data).toMatchObject({ batch: view.id, chunk: 2 });
    expect(await (await parents.getJob(batchJobId(view.id, record?.stage ?? '')))?.getState()).toBe('waiting-children');
    expect(await store.readChunk(record?.stage ?? '', 2)).toEqual([
      ['c8', 'text number 8'],
      ['c9', 'text number 9'],
    ]);
    // The duplicate check's hash is gone once the batch exists; the inputs live as long as the batch.
    expect(await keys(`batch-stage:${record?.stage}:ids`)).toEqual([]);
    expect(await redis.pttl(store.stageKey(record?.stage ?? '', 0))).toBeGreaterThan(2 * 3600 * 1000);
    expect(await redis.pttl(store.batchKey(view.id))).toBeGreaterThan(2 * 3600 * 1000);
  });

  it('NDJSON upload: settings in the query string, blank lines and CRLF accepted, default window 24h', async () => {
    const body = `${JSON.stringify({ custom_id: 'a', input: 'one' })}\r\n\n  \n${JSON.stringify({ custom_id: 'b', input: 'two' })}`;
    const res = await upload(body, `task=classification&parameters=${encodeURIComponent('{"top_k":1}')}&metadata=${encodeURIComponent('{"source":"csv"}')}`);
    expect(res.statusCode).toBe(202);
    const view = res.json() as BatchView;
    expect(view).toMatchObject({ model: SENTIMENT, completion_window: '24h', request_counts: { total: 2 }, metadata: { source: 'csv' } });
    expect((await store.get(view.id))?.parameters).toEqual({ top_k: 1 });
    expect(await bulk.getJobCountByTypes('waiting')).toBe(1);
  });

  it('with the same Idempotency-Key twice: the same batch, one flow, nothing staged twice', async () => {
    const first = await postJson({ task: 'classification', inputs: inputs(6) }, { 'idempotency-key': 'reviews-2024-06' });
    const second = await upload(ndjson(inputs(6)), 'task=classification', { 'idempotency-key': 'reviews-2024-06' });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect((second.json() as BatchView).id).toBe((first.json() as BatchView).id);
    expect(await bulk.getJobCountByTypes('waiting')).toBe(2);
    expect(await redis.zcard(`${env.config.QUEUE_PREFIX}:batch-index`)).toBe(1);
    const record = await store.get((first.json() as BatchView).id);
    expect((await keys('batch-stage:*')).every((key) => key.includes(record?.stage ?? '?'))).toBe(true);

    const other = await postJson({ task: 'classification', inputs: inputs(6) }, { 'idempotency-key': 'reviews-2024-07' });
    expect((other.json() as BatchView).id).not.toBe((first.json() as BatchView).id);
  });

  describe('bad input: nothing is staged or queued, each with its code and status', () => {
    const cases: [string, () => Promise<{ statusCode: number; json(): unknown }>, number, string, RegExp?][] = [
      ['JSON without task', () => postJson({ inputs: inputs(1) }), 400, 'INFERQ_ERR_VALIDATION', /task/],
      ['unknown task', () => postJson({ task: 'translation', inputs: inputs(1) }), 400, 'INFERQ_ERR_UNKNOWN_TASK', /translation/],
      ['unknown model', () => postJson({ task: 'classification', model: 'acme/missing', inputs: inputs(1) }), 404, 'INFERQ_ERR_UNKNOWN_MODEL'],
      ['model id that is a path', () => postJson({ task: 'classification', model: '../../etc', inputs: inputs(1) }), 400, 'INFERQ_ERR_VALIDATION', /model/],
      ['model without the task', () => postJson({ task: 'classification', model: GENERATOR, inputs: inputs(1) }), 400, 'INFERQ_ERR_TASK_MISMATCH'],
      ['bad parameters', () => postJson({ task: 'classification', parameters: { top_k: 0 }, inputs: inputs(1) }), 400, 'INFERQ_ERR_VALIDATION', /top_k/],
      ['unknown parameter', () => postJson({ task: 'classification', parameters: { temperature: 1 }, inputs: inputs(1) }), 400, 'INFERQ_ERR_VALIDATION', /temperature/],
      ['no inputs', () => postJson({ task: 'classification', inputs: [] }), 400, 'INFERQ_ERR_BATCH_EMPTY'],
      ['unknown top-level property', () => postJson({ task: 'classification', inputs: inputs(1), priority: 1 }), 400, 'INFERQ_ERR_VALIDATION', /priority/],
      ['completion_window with a bad unit', () => postJson({ task: 'classification', inputs: inputs(1), completion_window: '24x' }), 400, 'INFERQ_ERR_COMPLETION_WINDOW', /24x/],
      ['completion_window over 7 days', () => postJson({ task: 'classification', inputs: inputs(1), completion_window: '8d' }), 400, 'INFERQ_ERR_COMPLETION_WINDOW', /8d/],
      ['completion_window in the upload query', () => upload(ndjson(inputs(1)), 'task=classification&completion_window=soon'), 400, 'INFERQ_ERR_COMPLETION_WINDOW'],
      ['metadata with more than 16 keys', () => postJson({ task: 'classification', inputs: inputs(1), metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }), 400, 'INFERQ_ERR_VALIDATION', /metadata/],
      ['metadata that is not strings', () => postJson({ task: 'classification', inputs: inputs(1), metadata: { n: 1 } }), 400, 'INFERQ_ERR_VALIDATION', /metadata/],
      ['ftp webhook_url', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: 'ftp://example.com/x' }), 400, 'INFERQ_ERR_WEBHOOK_URL', /http or https/],
      ['relative webhook_url', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: '/hooks' }), 400, 'INFERQ_ERR_WEBHOOK_URL', /absolute/],
      ['loopback webhook_url', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: 'http://127.0.0.1:8080/hook' }), 400, 'INFERQ_ERR_WEBHOOK_URL', /127\.0\.0\.1/],
      ['IPv6 loopback webhook_url', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: 'http://[::1]/hook' }), 400, 'INFERQ_ERR_WEBHOOK_URL'],
      ['link-local (metadata service) webhook_url', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: 'http://169.254.169.254/latest' }), 400, 'INFERQ_ERR_WEBHOOK_URL'],
      ['private IPv4 in IPv6 webhook_url', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: 'https://[::ffff:10.1.2.3]/x' }), 400, 'INFERQ_ERR_WEBHOOK_URL'],
      ['webhook_url host resolving to loopback', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: 'http://localhost:9/x' }), 400, 'INFERQ_ERR_WEBHOOK_URL', /localhost/],
      ['webhook_url with credentials', () => postJson({ task: 'classification', inputs: inputs(1), webhook_url: 'https://u:p@example.com/' }), 400, 'INFERQ_ERR_WEBHOOK_URL', /credentials/],
      ['query settings with a JSON body', () => postJson({ task: 'classification', inputs: inputs(1) }, {}, '/v1/batches?task=classification'), 400, 'INFERQ_ERR_VALIDATION', /querystring/],
      ['a body that is not JSON nor NDJSON', () => env.app.inject({ method: 'POST', url: '/v1/batches', payload: 'a,b', headers: { 'content-type': 'text/csv' } }), 415, 'INFERQ_ERR_UNSUPPORTED_MEDIA_TYPE'],
      ['malformed JSON body', () => env.app.inject({ method: 'POST', url: '/v1/batches', payload: '{"task":', headers: { 'content-type': 'application/json' } }), 400, 'INFERQ_ERR_MALFORMED_JSON'],
      ['upload without task', () => upload(ndjson(inputs(1)), 'model=acme/sentiment'), 400, 'INFERQ_ERR_VALIDATION', /task/],
      ['upload with parameters that are not JSON', () => upload(ndjson(inputs(1)), 'task=classification&parameters={top_k'), 400, 'INFERQ_ERR_VALIDATION', /parameters is not valid JSON/],
      ['upload with bad parameters', () => upload(ndjson(inputs(1)), `task=classification&parameters=${encodeURIComponent('{"top_k":-1}')}`), 400, 'INFERQ_ERR_VALIDATION', /top_k/],
      ['upload with an unknown query property', () => upload(ndjson(inputs(1)), 'task=classification&inputs=1'), 400, 'INFERQ_ERR_VALIDATION', /inputs/],
      ['empty upload', () => upload(''), 400, 'INFERQ_ERR_BATCH_EMPTY'],
      ['upload of blank lines only', () => upload('\n\n  \r\n'), 400, 'INFERQ_ERR_BATCH_EMPTY'],
      ['upload over the byte limit', () => upload(ndjson(inputs(20_000))), 413, 'INFERQ_ERR_PAYLOAD_TOO_LARGE', new RegExp(String(UPLOAD_LIMIT))],
      ['Idempotency-Key over 255 characters', () => postJson({ task: 'classification', inputs: inputs(1) }, { 'idempotency-key': 'k'.repeat(256) }), 400, 'INFERQ_ERR_VALIDATION', /idempotency-key/],
    ];
    it.each(cases)('%s', async (_name, send, status, code, message) => {
      const text = expectError(await send(), status, code);
      if (message) expect(text).toMatch(message);
      await expectNothingQueued();
    });

    /** A batch of 9 good inputs with `bad` as input number `at` (1-based); JSON and NDJSON. */
    const lineCases: [string, unknown, RegExp][] = [
      ['no custom_id', { input: 'x' }, /custom_id is missing/],
      ['an empty custom_id', { custom_id: '', input: 'x' }, /custom_id must be 1 to 64 characters/],
      ['a custom_id of 65 characters', { custom_id: 'x'.repeat(65), input: 'x' }, /custom_id must be 1 to 64 characters/],
      ['a numeric custom_id', { custom_id: 7, input: 'x' }, /custom_id must be a string/],
      ['no input', { custom_id: 'z' }, /input is missing/],
      ['an empty input', { custom_id: 'z', input: '' }, /input is empty/],
      ['a blank input', { custom_id: 'z', input: ' \n\t' }, /input is empty/],
      ['an input that is not a string', { custom_id: 'z', input: ['a'] }, /input must be a string/],
      [`an input over ${MAX_INPUT_CHARS} characters`, { custom_id: 'z', input: 'a'.repeat(MAX_INPUT_CHARS + 1) }, new RegExp(`input is ${MAX_INPUT_CHARS + 1} characters`)],
      ['an unknown property', { custom_id: 'z', input: 'x', method: 'POST' }, /unknown property "method"/],
      ['an array instead of an object', ['z', 'x'], /must be a JSON object/],
      ['a duplicate custom_id (in another chunk)', { custom_id: 'c1', input: 'again' }, /custom_id "c1" was already used on line 2/],
    ];
    it.each(lineCases)('a line with %s: 400 INFERQ_ERR_BATCH_LINE_INVALID naming the line, JSON and NDJSON', async (_name, bad, reason) => {
      const items: unknown[] = inputs(9);
      items.splice(6, 0, bad); // line 7
      const json = expectError(await postJson({ task: 'classification', inputs: items }), 400, 'INFERQ_ERR_BATCH_LINE_INVALID');
      expect(json).toMatch(/^Line 7 is invalid: /);
      expect(json).toMatch(reason);
      expect(json).toContain('inputs[6]');
      await expectNothingQueued();
      const lines = expectError(await upload(ndjson(items)), 400, 'INFERQ_ERR_BATCH_LINE_INVALID');
      expect(lines).toMatch(/^Line 7 is invalid: /);
      expect(lines).toMatch(reason);
      await expectNothingQueued();
    });

    it('a line that is not JSON, not UTF-8, or a duplicate in the same chunk', async () => {
      const good = ndjson(inputs(3));
      expect(expectError(await upload(`${good}{"custom_id": "x", "input": }\n`), 400, 'INFERQ_ERR_BATCH_LINE_INVALID')).toMatch(/^Line 4 is invalid: it is not valid JSON/);
      const latin1 = Buffer.concat([Buffer.from(good), Buffer.from('{"custom_id":"x","input":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
      expect(expectError(await upload(latin1), 400, 'INFERQ_ERR_BATCH_LINE_INVALID')).toMatch(/^Line 4 is invalid: it is not valid UTF-8/);
      const dup = ndjson([{ custom_id: 'same', input: 'a' }, { custom_id: 'same', input: 'b' }]);
      expect(expectError(await upload(dup), 400, 'INFERQ_ERR_BATCH_LINE_INVALID')).toMatch(/^Line 2 is invalid: custom_id "same" was already used on line 1/);
      await expectNothingQueued();
    });

    it(`more than ${MAX_BATCH_INPUTS} inputs: 413 INFERQ_ERR_BATCH_TOO_MANY_INPUTS (JSON and NDJSON)`, async () => {
      const many = Array.from({ length: MAX_BATCH_INPUTS + 1 }, (_, i) => ({ custom_id: `${i}`, input: 'x' }));
      expect(expectError(await postJson({ task: 'classification', inputs: many }), 413, 'INFERQ_ERR_BATCH_TOO_MANY_INPUTS')).toContain(String(MAX_BATCH_INPUTS));
      await expectNothingQueued();
      // The upload limit of the shared env is too small for 100,001 lines: an env with the default one.
      const roomy = await createTestEnv({ QUEUE_PREFIX: env.config.QUEUE_PREFIX, BATCH_CHUNK_SIZE: '1000' });
      try {
        const res = await roomy.app.inject({
          method: 'POST',
          url: '/v1/batches?task=classification',
          payload: ndjson(many),
          headers: { 'content-type': 'application/x-ndjson' },
        });
        expect(expectError(res, 413, 'INFERQ_ERR_BATCH_TOO_MANY_INPUTS')).toContain(String(MAX_BATCH_INPUTS));
        await expectNothingQueued();
      } finally {
        await roomy.close();
      }
      // Stages 100,000 lines before the one too many: seconds on a loaded 2-core machine.
    }, 60_000);
  });
});

describe('reading, listing and cancelling batches', () => {
  beforeEach(clearBatches);

  async function create(n = 10): Promise<BatchView> {
    const res = await postJson({ task: 'classification', inputs: inputs(n) });
    expect(res.statusCode).toBe(202);
    return res.json() as BatchView;
  }

  /** Writes chunk `c`'s results as a worker would. */
  async function finishChunk(id: string, c: number): Promise<void> {
    const record = await store.get(id);
    const items = (await store.readChunk(record?.stage ?? '', c)) ?? [];
    const lines = items.map(([customId], k) =>
      k === 0 ? { custom_id: customId, error: { code: 'INFERQ_ERR_INFERENCE_FAILED', message: 'boom' } } : { custom_id: customId, result: [{ label: 'positive', score: 1 }] },
    );
    expect(await store.finishChunk(id, record?.stage ?? '', c, lines, { completed: items.length - 1, failed: 1 })).toBe('written');
  }

  it('GET /v1/batches/:id: the view with counts as chunks end; 404 for unknown and malformed ids', async () => {
    const batch = await create(10);
    await finishChunk(batch.id, 1);
    const res = await env.app.inject({ url: `/v1/batches/${batch.id}` });
    expect(res.statusCode).toBe(200);
    expect((res.json() as BatchView).request_counts).toEqual({ total: 10, completed: 3, failed: 1 });
    expectError(await env.app.inject({ url: '/v1/batches/batch_00000000000000000000000000000000' }), 404, 'INFERQ_ERR_BATCH_NOT_FOUND');
    expectError(await env.app.inject({ url: '/v1/batches/..%2F..%2Fetc' }), 404, 'INFERQ_ERR_BATCH_NOT_FOUND');
  });

  it('GET /v1/batches/:id/results: JSONL in input order, only the prefix of chunks written so far', async () => {
    const batch = await create(10);
    const read = async () => {
      const res = await env.app.inject({ url: `/v1/batches/${batch.id}/results` });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
      return { status: res.headers['inferq-batch-status'], lines: res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { custom_id: string }) };
    };
    expect(await read()).toEqual({ status: 'in_progress', lines: [] });
    await finishChunk(batch.id, 1); // chunk 0 not written yet: nothing can be shown past it
    expect((await read()).lines).toEqual([]);
    await finishChunk(batch.id, 0);
    const partial = await read();
    expect(partial.lines.map((l) => l.custom_id)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7']);
    expect(partial.lines[0]).toEqual({ custom_id: 'c0', error: { code: 'INFERQ_ERR_INFERENCE_FAILED', message: 'boom' } });
    expect(partial.lines[1]).toEqual({ custom_id: 'c1', result: [{ label: 'positive', score: 1 }] });
    await finishChunk(batch.id, 2);
    await store.finalize(batch.id);
    const full = await read();
    expect(full.status).toBe('completed');
    expect(full.lines.map((l) => l.custom_id)).toEqual(inputs(10).map((i) => i.custom_id));
    expectError(await env.app.inject({ url: '/v1/batches/batch_00000000000000000000000000000000/results' }), 404, 'INFERQ_ERR_BATCH_NOT_FOUND');
  });

  it('POST /v1/batches/:id/cancel: cancelling, idempotent; cancelled once the flow ends; 409 for an ended batch', async () => {
    const batch = await create(10);
    await finishChunk(batch.id, 0);
    const res = await env.app.inject({ method: 'POST', url: `/v1/batches/${batch.id}/cancel` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'cancelling', request_counts: { completed: 3, failed: 1 } });
    expect((res.json() as BatchView).cancelling_at).not.toBeNull();
    const again = await env.app.inject({ method: 'POST', url: `/v1/batches/${batch.id}/cancel` });
    expect(again.json()).toMatchObject({ status: 'cancelling' });
    const final = await store.finalize(batch.id);
    expect(final?.status).toBe('cancelled');
    expect((await env.app.inject({ method: 'POST', url: `/v1/batches/${batch.id}/cancel` })).json()).toMatchObject({ status: 'cancelled' });

    const done = await create(2);
    await finishChunk(done.id, 0);
    expect((await store.finalize(done.id))?.status).toBe('completed');
    const message = expectError(await env.app.inject({ method: 'POST', url: `/v1/batches/${done.id}/cancel` }), 409, 'INFERQ_ERR_BATCH_NOT_CANCELLABLE');
    expect(message).toContain('completed');
    expectError(await env.app.inject({ method: 'POST', url: '/v1/batches/batch_00000000000000000000000000000000/cancel' }), 404, 'INFERQ_ERR_BATCH_NOT_FOUND');
  });

  it('finalize: a chunk whose job never wrote results gets error lines; every key kept for the retention from then', async () => {
    const batch = await create(6);
    await finishChunk(batch.id, 0);
    const final = await store.finalize(batch.id);
    expect(final).toMatchObject({ status: 'completed', completed: 3, failed: 3 });
    const res = await env.app.inject({ url: `/v1/batches/${batch.id}/results` });
    const lines = res.body.trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; error?: { code: string } });
    expect(lines.map((l) => l.custom_id)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5']);
    expect(lines.slice(4).every((l) => l.error?.code === 'INFERQ_ERR_INFERENCE_FAILED')).toBe(true);
    const ttl = await redis.pttl(store.outKey(batch.id, 1));
    expect(ttl).toBeGreaterThan((env.config.BATCH_RETENTION_SECONDS - 60) * 1000);
    expect(ttl).toBeLessThanOrEqual(env.config.BATCH_RETENTION_SECONDS * 1000);
    expect(await keys('batch-stage:*')).toEqual([]);
  });

  it('GET /v1/batches: newest first, paginated with limit and after; 404 for an unknown after', async () => {
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await create(1)).id);
    const first = (await env.app.inject({ url: '/v1/batches?limit=2' })).json() as BatchList;
    expect(first.data.map((b) => b.id)).toEqual([made[2], made[1]]);
    expect(first).toMatchObject({ object: 'list', has_more: true, first_id: made[2], last_id: made[1] });
    const second = (await env.app.inject({ url: `/v1/batches?limit=2&after=${first.last_id}` })).json() as BatchList;
    expect(second.data.map((b) => b.id)).toEqual([made[0]]);
    expect(second.has_more).toBe(false);
    // A batch past its retention drops out of the list.
    await redis.del(store.batchKey(made[1] ?? ''));
    const all = (await env.app.inject({ url: '/v1/batches' })).json() as BatchList;
    expect(all.data.map((b) => b.id)).toEqual([made[2], made[0]]);
    expectError(await env.app.inject({ url: '/v1/batches?after=batch_00000000000000000000000000000000' }), 404, 'INFERQ_ERR_BATCH_NOT_FOUND');
    expectError(await env.app.inject({ url: '/v1/batches?limit=0' }), 400, 'INFERQ_ERR_VALIDATION');
    expectError(await env.app.inject({ url: '/v1/batches?limit=101' }), 400, 'INFERQ_ERR_VALIDATION');
  });
});

describe('webhook_url on POST /v1/jobs', () => {
  it('is stored with the job when it is a public http(s) URL', async () => {
    const res = await postJson({ task: 'classification', input: 'hi', webhook_url: 'https://93.184.215.14/hooks/inferq' }, {}, '/v1/jobs');
    expect(res.statusCode).toBe(202);
    const job = await env.app.queues.forModel(SENTIMENT).getJob((res.json() as { id: string }).id);
    expect(job?.data.webhook_url).toBe('https://93.184.215.14/hooks/inferq');
  });

  it.each([
    ['gopher://example.com/', /http or https/],
    ['not a url', /absolute URL/],
    ['http://127.0.0.1:3000/hook', /127\.0\.0\.1/],
    ['http://10.0.0.8/hook', /10\.0\.0\.8/],
    ['http://192.168.1.1/hook', /192\.168\.1\.1/],
    ['http://[fe80::1]/hook', /fe80::1/],
    ['http://[fd00::1]/hook', /fd00::1/],
    ['http://localhost/hook', /localhost/],
    [`https://example.com/${'a'.repeat(2100)}`, /longer than 2048/],
  ])('%s: 400 INFERQ_ERR_WEBHOOK_URL, nothing queued', async (url, reason) => {
    const queue = env.app.queues.forModel(SENTIMENT);
    const before = await queue.getJobCountByTypes('waiting');
    const message = expectError(await postJson({ task: 'classification', input: 'hi', webhook_url: url }, {}, '/v1/jobs'), 400, 'INFERQ_ERR_WEBHOOK_URL');
    expect(message).toMatch(reason);
    expect(await queue.getJobCountByTypes('waiting')).toBe(before);
  });
});

describe('WEBHOOK_ALLOW_PRIVATE=true', () => {
  it('accepts loopback webhook URLs (a receiver on the same host)', async () => {
    const allowing = await createTestEnv({ WEBHOOK_ALLOW_PRIVATE: 'true' });
    try {
      const res = await allowing.app.inject({
        method: 'POST',
        url: '/v1/batches',
        payload: { task: 'classification', inputs: inputs(1), webhook_url: 'http://127.0.0.1:9999/hook' },
      });
      expect(res.statusCode).toBe(202);
    } finally {
      await allowing.close();
    }
  });
});

describe('OpenAPI', () => {
  it('documents the batch routes: both request body types, the results as NDJSON', async () => {
    const doc = (await env.app.inject({ url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }; responses: Record<string, { content?: Record<string, unknown> }> }>>;
    };
    const create = doc.paths['/v1/batches']?.post;
    expect(Object.keys(create?.requestBody?.content ?? {})).toEqual(expect.arrayContaining(['application/json', 'application/x-ndjson']));
    expect(Object.keys(create?.responses ?? {})).toEqual(expect.arrayContaining(['202', '400', '404', '413', '415']));
    expect(Object.keys(doc.paths['/v1/batches/{id}/results']?.get?.responses['200']?.content ?? {})).toEqual(['application/x-ndjson']);
    expect(doc.paths['/v1/batches/{id}/cancel']?.post?.responses).toHaveProperty('409');
    expect(doc.paths['/v1/batches']?.get).toBeDefined();
  });
});
