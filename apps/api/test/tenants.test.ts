import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchList, BatchView, ErrorBody, JobAccepted, KeyCreated, KeyList, TicketView } from '@inferq/contracts';
import { TicketArchive } from '@inferq/queue';
import { buildApp, type ApiApp } from '../src/app.js';
import { createTestEnv, SENTIMENT, writeModel, type TestEnv } from './helpers.js';

const ADMIN = `admin-${randomBytes(24).toString('hex')}`;
const NLI = 'acme/nli';
const BART = 'acme/bart';
const EMBED = 'acme/embed';

let env: TestEnv;
let second: ApiApp;
let keyA: KeyCreated;
let keyB: KeyCreated;

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  env = await createTestEnv({ ADMIN_API_KEY: ADMIN, DEFAULT_MODEL_ZERO_SHOT: NLI, DEFAULT_MODEL_SUMMARIZATION: BART });
  await writeModel(env.config.MODELS_DIR, NLI, {
    architectures: ['BertForSequenceClassification'],
    id2label: { '0': 'entailment', '1': 'neutral', '2': 'contradiction' },
  });
  await writeModel(env.config.MODELS_DIR, BART, { architectures: ['BartForConditionalGeneration'], model_type: 'bart' });
  await writeModel(env.config.MODELS_DIR, EMBED, { architectures: ['BertModel'], model_type: 'bert' });
  // A second API process on the same Redis (as behind a load balancer).
  second = await buildApp(env.config, { logger: false });
  keyA = await createKey('acme');
  keyB = await createKey('globex');
});
afterAll(async () => {
  await second?.close();
  await env?.close();
});

async function createKey(tenant: string): Promise<KeyCreated> {
  const res = await env.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: auth(ADMIN), payload: { tenant } });
  expect(res.statusCode).toBe(201);
  return res.json() as KeyCreated;
}

function as(key: KeyCreated, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object, headers: Record<string, string> = {}) {
  return env.app.inject({ method, url, headers: { ...auth(key.key), ...headers }, ...(payload ? { payload } : {}) });
}

function errorOf(res: { statusCode: number; json(): unknown }): { status: number; code: string; message: string } {
  const body = res.json() as ErrorBody;
  return { status: res.statusCode, code: body.error.code, message: body.error.message };
}

/** What an id the server never made answers, with `id` put where that id was (same shape, random). */
function sameAsUnknown(foreign: { statusCode: number; json(): unknown }, unknown: { statusCode: number; json(): unknown }, foreignId: string, unknownId: string): void {
  const a = errorOf(foreign);
  const b = errorOf(unknown);
  expect(a).toEqual({ ...b, message: b.message.replace(unknownId, foreignId) });
  expect(a.status).toBe(404);
}

const randomHex = (n: number) => randomBytes(n / 2).toString('hex');

describe('API keys', () => {
  it('every route but /healthz, /readyz and /docs needs a key: 401 with WWW-Authenticate', async () => {
    for (const url of ['/v1/models', '/v1/batches', '/v1/jobs/acme--sentiment--abc', '/v1/no-such-route']) {
      const res = await env.app.inject({ url });
      expect(errorOf(res)).toMatchObject({ status: 401, code: 'INFERQ_ERR_UNAUTHORIZED' });
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
    const post = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', input: 'x' } });
    expect(errorOf(post).status).toBe(401);
    for (const url of ['/healthz', '/readyz', '/docs/json', '/docs/']) {
      expect((await env.app.inject({ url })).statusCode, url).toBe(200);
    }
  });

  it('a wrong key, a malformed header, and the admin key on a tenant route are refused', async () => {
    const wrong = await env.app.inject({ url: '/v1/models', headers: auth(`iq_${randomBytes(32).toString('base64url')}`) });
    expect(errorOf(wrong)).toMatchObject({ status: 401, code: 'INFERQ_ERR_UNAUTHORIZED' });
    const basic = await env.app.inject({ url: '/v1/models', headers: { authorization: `Basic ${keyA.key}` } });
    expect(errorOf(basic)).toMatchObject({ status: 401, code: 'INFERQ_ERR_UNAUTHORIZED' });
    const admin = await env.app.inject({ url: '/v1/models', headers: auth(ADMIN) });
    expect(errorOf(admin)).toMatchObject({ status: 403, code: 'INFERQ_ERR_FORBIDDEN' });
    const tenantOnAdmin = await env.app.inject({ url: '/v1/admin/keys', headers: auth(keyA.key) });
    expect(errorOf(tenantOnAdmin)).toMatchObject({ status: 403, code: 'INFERQ_ERR_FORBIDDEN' });
    expect((await as(keyA, 'GET', '/v1/models')).statusCode).toBe(200);
  });

  it('keys are random 32 bytes, listed without the key, and stored only as a hash', async () => {
    expect(Buffer.from(keyA.key.replace(/^iq_/, ''), 'base64url')).toHaveLength(32);
    expect(keyA.key).not.toBe(keyB.key);
    const list = (await env.app.inject({ url: '/v1/admin/keys', headers: auth(ADMIN) })).json() as KeyList;
    expect(list.data.map((k) => [k.id, k.tenant])).toEqual(expect.arrayContaining([[keyA.id, 'acme'], [keyB.id, 'globex']]));
    expect(JSON.stringify(list)).not.toContain(keyA.key);
    const redis = env.app.queues.redis;
    const keys = await redis.keys(`${env.config.QUEUE_PREFIX}:*`);
    for (const key of keys) {
      expect(key).not.toContain(keyA.key);
      const type = await redis.type(key);
      const dump = type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type === 'string' ? ((await redis.get(key)) ?? '') : '';
      expect(dump).not.toContain(keyA.key);
    }
  });

  it('a bad tenant name is a 400; revoking an unknown id is a 404', async () => {
    const bad = await env.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: auth(ADMIN), payload: { tenant: '../x' } });
    expect(errorOf(bad)).toMatchObject({ status: 400, code: 'INFERQ_ERR_VALIDATION' });
    const gone = await env.app.inject({ method: 'DELETE', url: '/v1/admin/keys/key_0000000000000000', headers: auth(ADMIN) });
    expect(errorOf(gone)).toMatchObject({ status: 404, code: 'INFERQ_ERR_KEY_NOT_FOUND' });
  });

  it('a revoked key fails at once, in every API process', async () => {
    const key = await createKey('initech');
    expect((await second.inject({ url: '/v1/models', headers: auth(key.key) })).statusCode).toBe(200);
    const revoke = await env.app.inject({ method: 'DELETE', url: `/v1/admin/keys/${key.id}`, headers: auth(ADMIN) });
    expect(revoke.statusCode).toBe(204);
    for (const app of [env.app, second]) {
      const res = await app.inject({ url: '/v1/models', headers: auth(key.key) });
      expect(errorOf(res)).toMatchObject({ status: 401, code: 'INFERQ_ERR_UNAUTHORIZED' });
    }
    const list = (await env.app.inject({ url: '/v1/admin/keys', headers: auth(ADMIN) })).json() as KeyList;
    expect(list.data.map((k) => k.id)).not.toContain(key.id);
  });
});

describe('tenant isolation', () => {
  let jobId: string;
  let ticketId: string;
  let ticketJobs: string[];
  let batchId: string;
  let clusterId: string;

  beforeAll(async () => {
    const job = await as(keyA, 'POST', '/v1/jobs', { task: 'classification', model: SENTIMENT, input: 'acme private review' });
    expect(job.statusCode).toBe(202);
    jobId = (job.json() as JobAccepted).id;
    const ticket = await as(keyA, 'POST', '/v1/tickets', { subject: 'Invoice', body: 'acme private ticket body' });
    expect(ticket.statusCode).toBe(202);
    ticketId = (ticket.json() as { id: string }).id;
    const ticketView = (await as(keyA, 'GET', `/v1/tickets/${ticketId}`)).json() as TicketView;
    ticketJobs = [ticketView.jobs.classification, ticketView.jobs.summary];
    const batch = await as(keyA, 'POST', '/v1/batches', { task: 'classification', inputs: [{ custom_id: 'a', input: 'acme private line' }] });
    expect(batch.statusCode).toBe(202);
    batchId = (batch.json() as BatchView).id;
    const cluster = await as(keyA, 'POST', '/v1/clusters', {
      model: EMBED,
      inputs: [
        { custom_id: 'a', input: 'acme private complaint' },
        { custom_id: 'b', input: 'acme private praise' },
      ],
    });
    expect(cluster.statusCode).toBe(202);
    clusterId = (cluster.json() as { id: string }).id;
  });

  it('the owner reads each of its ids', async () => {
    for (const url of [`/v1/jobs/${jobId}`, `/v1/tickets/${ticketId}`, `/v1/batches/${batchId}`, `/v1/batches/${batchId}/results`, `/v1/clusters/${clusterId}`, ...ticketJobs.map((id) => `/v1/jobs/${id}`)]) {
      expect((await as(keyA, 'GET', url)).statusCode, url).toBe(200);
    }
  });

  it("another tenant guessing an id gets exactly what an unknown id gets, on every route that takes one", async () => {
    const unknownJob = `acme--sentiment--${randomHex(32)}`;
    const unknownTicket = `ticket-${randomHex(32)}`;
    const unknownBatch = `batch_${randomHex(32)}`;
    const unknownCluster = `clu_${randomHex(32)}`;
    const cases: [string, 'GET' | 'POST' | 'DELETE', string, string][] = [
      ['/v1/jobs/:id', 'GET', jobId, unknownJob],
      ['/v1/jobs/:id?wait=1', 'GET', jobId, unknownJob],
      ['/v1/jobs/:id/events', 'GET', jobId, unknownJob],
      ...ticketJobs.map((id): [string, 'GET', string, string] => ['/v1/jobs/:id', 'GET', id, `${id.split('--').slice(0, 2).join('--')}--${randomHex(32)}`]),
      ['/v1/tickets/:id', 'GET', ticketId, unknownTicket],
      ['/v1/tickets/:id?wait=1', 'GET', ticketId, unknownTicket],
      ['/v1/batches/:id', 'GET', batchId, unknownBatch],
      ['/v1/batches/:id/results', 'GET', batchId, unknownBatch],
      ['/v1/batches/:id/cancel', 'POST', batchId, unknownBatch],
      ['/v1/jobs/:id', 'DELETE', jobId, unknownJob],
      ['/v1/tickets/:id', 'DELETE', ticketId, unknownTicket],
      ['/v1/clusters/:id', 'GET', clusterId, unknownCluster],
      ['/v1/clusters/:id?wait=1', 'GET', clusterId, unknownCluster],
      ['/v1/clusters/:id/members', 'GET', clusterId, unknownCluster],
      ['/v1/tickets/:id/similar', 'GET', ticketId, unknownTicket],
      ['/v1/batches/:id', 'DELETE', batchId, unknownBatch],
    ];
    for (const [route, method, foreignId, unknownId] of cases) {
      const foreign = await as(keyB, method, route.replace(':id', foreignId));
      const unknown = await as(keyB, method, route.replace(':id', unknownId));
      sameAsUnknown(foreign, unknown, foreignId, unknownId);
    }
    // A's batch as the inputs of B's cluster run: exactly an unknown batch_id.
    const inputs = (id: string) => as(keyB, 'POST', '/v1/clusters', { model: EMBED, batch_id: id });
    sameAsUnknown(await inputs(batchId), await inputs(unknownBatch), batchId, unknownBatch);
    // B's cancel and deletes changed nothing.
    expect(((await as(keyA, 'GET', `/v1/batches/${batchId}`)).json() as BatchView).status).not.toMatch(/cancel/);
    for (const url of [`/v1/jobs/${jobId}`, `/v1/tickets/${ticketId}`, `/v1/batches/${batchId}/results`]) {
      expect((await as(keyA, 'GET', url)).statusCode, url).toBe(200);
    }
  });

  it("tickets kept with their embeddings: similar tickets and cluster runs over tickets see only the tenant's own", async () => {
    const archive = new TicketArchive(env.app.queues.redis, env.config.QUEUE_PREFIX);
    const post = async (key: KeyCreated, body: string) => ((await as(key, 'POST', '/v1/tickets', { subject: 'Login', body })).json() as { id: string }).id;
    const secondA = await post(keyA, 'acme cannot log in');
    const ticketB = await post(keyB, 'globex cannot log in');
    // As the worker keeps them once triaged (same model, near vectors: B's is the closest to A's).
    const keep = (id: string, text: string, v: number[]) =>
      archive.add({ id, text, issue: 'login', model: EMBED, at: Date.now(), embedding: Float32Array.from(v) }, 3600);
    await keep(ticketId, 'acme private ticket body', [1, 0, 0]);
    await keep(secondA, 'acme cannot log in', [0.5, 0.5, 0]);
    await keep(ticketB, 'globex cannot log in', [0.99, 0.01, 0]);
    const similar = (await as(keyA, 'GET', `/v1/tickets/${ticketId}/similar?top_k=5`)).json() as { data: { id: string }[] };
    expect(similar.data.map((t) => t.id)).toEqual([secondA]);
    const overTickets = (key: KeyCreated) => as(key, 'POST', '/v1/clusters', { model: EMBED, source: 'tickets', since: '1h' });
    expect((await overTickets(keyA)).statusCode).toBe(202);
    // B has one ticket of its own: too few to cluster, whatever A has.
    expect(errorOf(await overTickets(keyB))).toMatchObject({ status: 400, code: 'INFERQ_ERR_CLUSTER_EMPTY' });
  });

  it('lists show only one’s own, and a foreign id as the cursor is unknown', async () => {
    const own = await as(keyB, 'POST', '/v1/batches', { task: 'classification', inputs: [{ custom_id: 'b', input: 'globex line' }] });
    const ownId = (own.json() as BatchView).id;
    const listB = (await as(keyB, 'GET', '/v1/batches?limit=100')).json() as BatchList;
    expect(listB.data.map((b) => b.id)).toEqual([ownId]);
    const listA = (await as(keyA, 'GET', '/v1/batches?limit=100')).json() as BatchList;
    expect(listA.data.map((b) => b.id)).toContain(batchId);
    expect(listA.data.map((b) => b.id)).not.toContain(ownId);
    const cursor = await as(keyB, 'GET', `/v1/batches?after=${batchId}`);
    sameAsUnknown(cursor, await as(keyB, 'GET', `/v1/batches?after=batch_${'0'.repeat(32)}`), batchId, `batch_${'0'.repeat(32)}`);
  });

  it('idempotency keys are per tenant: the same key from two tenants makes two jobs', async () => {
    const body = { task: 'classification', model: SENTIMENT, input: 'same text' };
    const a = await as(keyA, 'POST', '/v1/jobs', body, { 'idempotency-key': 'shared-key' });
    const b = await as(keyB, 'POST', '/v1/jobs', body, { 'idempotency-key': 'shared-key' });
    expect(a.statusCode).toBe(202);
    expect(b.statusCode).toBe(202);
    const idA = (a.json() as JobAccepted).id;
    const idB = (b.json() as JobAccepted).id;
    expect(idA).not.toBe(idB);
    expect((await as(keyB, 'GET', `/v1/jobs/${idB}`)).statusCode).toBe(200);
    expect((await as(keyB, 'GET', `/v1/jobs/${idA}`)).statusCode).toBe(404);
  });
});
