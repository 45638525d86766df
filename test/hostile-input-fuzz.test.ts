// Property-based fuzz of the whole HTTP surface of a real API process (built dist) on real
// Redis: every route, method, query string, header and body shape, uploads included. Never a
// 5xx, every 4xx is {error: {code, message}} with a registered code, the process is alive
// after, and its event loop delay (its own /metrics) stays under 100 ms at p99 throughout.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '@inferq/contracts';
import { startApi, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

const RUNS = 2400;
const SEED = 20_261_202;
const ADMIN = randomBytes(32).toString('hex');
const prefix = uniquePrefix('e2e-fuzz');
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const recent: string[] = [];
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let tenantKey: string;

async function writeModel(id: string, config: object): Promise<void> {
  const dir = join(modelsDir, ...id.split('/'));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw HTTP request (any method, header and body: fetch would refuse some of them). */
function send(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const url = new URL(api.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer in 30 s: ${method} ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function scrapeDelay(): Promise<{ p99: number; windows: number }> {
  const { body } = await send('GET', '/metrics', {});
  const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(body)?.[1] ?? NaN);
  return { p99: value('inferq_api_event_loop_delay_seconds\\{quantile="0.99"\\}'), windows: value('inferq_api_event_loop_windows_total') };
}

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-fuzz-'));
  await writeModel('acme/sentiment', { architectures: ['BertForSequenceClassification'], id2label: { '0': 'negative', '1': 'positive' } });
  await writeModel('acme/nli', { architectures: ['BertForSequenceClassification'], id2label: { '0': 'entailment', '1': 'neutral', '2': 'contradiction' } });
  await writeModel('acme/bart', { architectures: ['BartForConditionalGeneration'], model_type: 'bart' });
  await writeModel('acme/gpt', { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' });
  api = await startApi({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    MODELS_DIR: modelsDir,
    ADMIN_API_KEY: ADMIN,
    RATE_LIMIT_MAX: '1000000',
    MAX_WAIT_SECONDS: '1',
    DEFAULT_MODEL_CLASSIFICATION: 'acme/sentiment',
    DEFAULT_MODEL_ZERO_SHOT: 'acme/nli',
    DEFAULT_MODEL_SUMMARIZATION: 'acme/bart',
    DEFAULT_MODEL_GENERATION: 'acme/gpt',
    LOG_LEVEL: 'info',
  });
  const created = await send('POST', '/v1/admin/keys', { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, Buffer.from('{"tenant":"fuzz"}'));
  expect(created.status).toBe(201);
  tenantKey = (JSON.parse(created.body) as { key: string }).key;
}, 120_000);

afterAll(async () => {
  agent.destroy();
  await api?.proc.stop();
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

// ---- generators -------------------------------------------------------------------------

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
const weirdText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '../../etc/passwd', '%00', '%', '{}', '[]', 'null', 'ticket-', 'batch_', '--', 'a--b--c', '\u202e', '😀'.repeat(30)),
  fc.nat({ max: 3000 }).map((n) => 'x'.repeat(n)),
);
const ids = fc.oneof(
  hex(32).map((h) => `acme--sentiment--${h}`),
  hex(32).map((h) => `ticket-${h}`),
  hex(32).map((h) => `batch_${h}`),
  hex(16).map((h) => `key_${h}`),
  weirdText,
);
const segment = (id: string) => encodeURIComponent(id);
const paths = fc.oneof(
  fc.constantFrom('/v1/jobs', '/v1/tickets', '/v1/batches', '/v1/models', '/v1/admin/keys', '/healthz', '/readyz', '/metrics', '/docs', '/docs/json', '/', '/v1', '/v2/jobs'),
  ids.map((id) => `/v1/jobs/${segment(id)}`),
  ids.map((id) => `/v1/jobs/${segment(id)}/events`),
  ids.map((id) => `/v1/tickets/${segment(id)}`),
  ids.map((id) => `/v1/batches/${segment(id)}`),
  ids.map((id) => `/v1/batches/${segment(id)}/results`),
  ids.map((id) => `/v1/batches/${segment(id)}/cancel`),
  ids.map((id) => `/v1/admin/keys/${segment(id)}`),
  // The OpenAI layer's routes that never wait on a job (a completion would wait for a worker).
  fc.constantFrom('/openai/v1/models', '/openai/v1/files', '/openai/v1/batches', '/openai/v1/nothing'),
  ids.map((id) => `/openai/v1/models/${segment(id)}`),
  ids.map((id) => `/openai/v1/files/${segment(id)}`),
  ids.map((id) => `/openai/v1/files/${segment(id)}/content`),
  ids.map((id) => `/openai/v1/batches/${segment(id)}`),
  ids.map((id) => `/openai/v1/batches/${segment(id)}/cancel`),
  fc.constantFrom('//v1//jobs', '/v1/jobs/', '/v1/jobs/%', '/v1/jobs/%zz', '/v1/../v1/jobs', '/v1/jobs?', '/v1/jobs#x'),
);
const queryValue = fc.oneof(weirdText, fc.integer().map(String), fc.double().map(String), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)));
const queries = fc.dictionary(
  fc.oneof(fc.constantFrom('wait', 'limit', 'after', 'task', 'model', 'parameters', 'metadata', 'completion_window', 'webhook_url', 'x'), fc.string({ maxLength: 10 })),
  queryValue,
  { maxKeys: 4 },
);

const tasks = fc.oneof(fc.constantFrom('classification', 'zero-shot-classification', 'summarization', 'generation', 'embedding'), weirdText);
const labelArrays = fc.oneof(
  fc.array(weirdText, { maxLength: 60 }),
  // Far over maxItems, all the same: once answered in quadratic time.
  fc.integer({ min: 1000, max: 200_000 }).map((n) => Array.from({ length: n }, () => 'a')),
);
const parameters = fc.oneof(
  fc.record({ top_k: fc.oneof(fc.integer(), weirdText) }, { requiredKeys: [] }),
  fc.record({ candidate_labels: labelArrays, hypothesis_template: weirdText, multi_label: fc.jsonValue() }, { requiredKeys: [] }),
  fc.record({ max_new_tokens: fc.integer(), temperature: fc.double(), top_p: fc.double(), seed: fc.integer(), do_sample: fc.boolean() }, { requiredKeys: [] }),
  fc.jsonValue({ maxDepth: 4 }),
);
const input = fc.oneof(
  weirdText,
  fc.array(fc.record({ role: fc.oneof(fc.constantFrom('user', 'system', 'assistant'), weirdText), content: weirdText }), { maxLength: 5 }),
  fc.nat({ max: 200_000 }).map((n) => 'y'.repeat(n)),
  fc.jsonValue({ maxDepth: 3 }),
);
const jobBody = fc.record(
  { task: tasks, model: fc.oneof(fc.constantFrom('acme/sentiment', 'acme/nli', 'acme/gpt', 'nope/none'), weirdText), input, parameters, stream: fc.jsonValue(), webhook_url: fc.oneof(fc.webUrl(), weirdText, fc.constantFrom('http://127.0.0.1/', 'http://[::1]/', 'http://169.254.169.254/')), priority: fc.jsonValue() },
  { requiredKeys: [] },
);
const ticketBody = fc.record({ subject: weirdText, body: input, labels: labelArrays }, { requiredKeys: [] });
const batchItem = fc.oneof(fc.record({ custom_id: weirdText, input: weirdText }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 2 }));
const batchBody = fc.record(
  {
    task: tasks,
    inputs: fc.oneof(
      fc.array(batchItem, { maxLength: 30 }),
      fc.integer({ min: 1, max: 20_000 }).map((n) => Array.from({ length: n }, (_, i) => ({ custom_id: `id-${i % 7}`, input: 'same' }))),
      fc.integer({ min: 1, max: 30_000 }).map((n) => Array.from({ length: n }, () => ({ custom_id: 5, input: [] }))),
    ),
    parameters,
    completion_window: weirdText,
    metadata: fc.jsonValue({ maxDepth: 2 }),
    webhook_url: weirdText,
  },
  { requiredKeys: [] },
);
const deepNesting = fc.integer({ min: 100, max: 200_000 }).map((n) => `{"task":"classification","input":"x","parameters":${'['.repeat(n)}${']'.repeat(n)}}`);
const jsonBodies = fc.oneof(
  jobBody.map((b) => JSON.stringify(b)),
  ticketBody.map((b) => JSON.stringify(b)),
  batchBody.map((b) => JSON.stringify(b)),
  fc.record({ tenant: weirdText }).map((b) => JSON.stringify(b)),
  fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
  deepNesting,
  fc.string({ maxLength: 200 }),
  fc.constantFrom('{', '{"task":', '\u0000', 'null', '[]', '""', '{"__proto__":{"polluted":1},"task":"classification","input":"x"}', '{"constructor":{"prototype":{"x":1}}}'),
);
const ndjsonLine = fc.oneof(
  fc.record({ custom_id: weirdText, input: weirdText }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  weirdText,
);
const ndjsonBodies = fc.oneof(
  fc.array(ndjsonLine, { maxLength: 40 }).map((lines) => lines.join(fc.sample(fc.constantFrom('\n', '\r\n'), 1)[0] ?? '\n')),
  fc.integer({ min: 1, max: 5000 }).map((n) => Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `c${i}`, input: `text ${i}` })).join('\n')),
  fc.integer({ min: 1, max: 400_000 }).map((n) => `{"custom_id":"a","input":"${'z'.repeat(n)}`),
);
const contentTypes = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'application/x-ndjson',
  'application/jsonl',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
  '',
  'application/',
);
const authHeaders = fc.oneof(
  fc.constant<string | undefined>(undefined),
  fc.constant(() => `Bearer ${tenantKey}`),
  fc.constant(() => `Bearer ${ADMIN}`),
  fc.constantFrom('Bearer', 'Bearer ', 'Basic abc', 'bearer iq_xxx', `Bearer ${'k'.repeat(600)}`, 'Bearer iq_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
);
const headerValue = fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~'), maxLength: 300 });

const requests = fc.record({
  method: fc.constantFrom('GET', 'POST', 'POST', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'),
  path: paths,
  query: queries,
  auth: fc.oneof({ weight: 4, arbitrary: fc.constant(() => `Bearer ${tenantKey}`) }, { weight: 1, arbitrary: authHeaders }),
  contentType: contentTypes,
  idempotencyKey: fc.option(headerValue, { nil: undefined }),
  extraHeaders: fc.dictionary(fc.constantFrom('accept', 'origin', 'x-forwarded-for', 'accept-encoding', 'content-encoding', 'transfer-encoding-x', 'last-event-id'), headerValue, { maxKeys: 3 }),
  body: fc.oneof({ weight: 5, arbitrary: jsonBodies }, { weight: 2, arbitrary: ndjsonBodies }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b).toString('latin1')) }, { weight: 1, arbitrary: fc.constant('') }),
});

// Well-formed creates, so the paths that accept (idempotency, quotas, staging) are fuzzed too.
const text = fc.string({ minLength: 1, maxLength: 200 }).filter((t) => t.trim() !== '');
const wellFormed = fc.oneof(
  fc.record({ task: fc.constant('classification'), input: text, parameters: fc.constantFrom({}, { top_k: 1 }) }).map((b) => ({ path: '/v1/jobs', type: 'application/json', body: JSON.stringify(b) })),
  fc.record({ task: fc.constant('zero-shot-classification'), input: text, parameters: fc.record({ candidate_labels: fc.uniqueArray(text, { minLength: 1, maxLength: 5 }) }) }).map((b) => ({ path: '/v1/jobs', type: 'application/json', body: JSON.stringify(b) })),
  fc.record({ subject: text, body: text }).map((b) => ({ path: '/v1/tickets', type: 'application/json', body: JSON.stringify(b) })),
  fc.uniqueArray(fc.record({ custom_id: fc.string({ minLength: 1, maxLength: 64 }), input: text }), { minLength: 1, maxLength: 50, selector: (i) => i.custom_id }).map((inputs) => ({
    path: '/v1/batches',
    type: 'application/json',
    body: JSON.stringify({ task: 'classification', inputs }),
  })),
  fc.uniqueArray(fc.record({ custom_id: fc.string({ minLength: 1, maxLength: 64 }), input: text }), { minLength: 1, maxLength: 50, selector: (i) => i.custom_id }).map((inputs) => ({
    path: '/v1/batches?task=classification',
    type: 'application/x-ndjson',
    body: inputs.map((i) => JSON.stringify(i)).join('\n'),
  })),
);
const wellFormedRequests = fc.record({ create: wellFormed, idempotencyKey: fc.option(fc.constantFrom('k1', 'k2', 'k3'), { nil: undefined }) }).map(({ create, idempotencyKey }) => ({
  method: 'POST',
  path: create.path,
  query: {} as Record<string, string>,
  auth: (() => `Bearer ${tenantKey}`) as string | (() => string) | undefined,
  contentType: create.type,
  idempotencyKey,
  extraHeaders: {} as Record<string, string>,
  body: create.body,
}));
const anyRequest = fc.oneof({ weight: 4, arbitrary: requests }, { weight: 1, arbitrary: wellFormedRequests });

// ---- the property -----------------------------------------------------------------------

describe('hostile input', () => {
  it(`${RUNS} generated requests: no 5xx, every 4xx is {error: {code, message}}, the API stays up, event loop p99 < 100 ms`, async () => {
    const delays: number[] = [];
    const statuses = new Map<number, number>();
    let scraping = true;
    const scraper = (async () => {
      while (scraping) {
        delays.push((await scrapeDelay()).p99);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    })();
    const start = await scrapeDelay();

    await fc.assert(
      fc.asyncProperty(anyRequest, async (r) => {
        const search = new URLSearchParams(r.query).toString();
        const path = `${r.path}${search ? (r.path.includes('?') ? '&' : '?') + search : ''}`;
        const headers: Record<string, string> = { ...r.extraHeaders };
        const auth = typeof r.auth === 'function' ? r.auth() : r.auth;
        if (auth !== undefined) headers.authorization = auth;
        if (r.contentType) headers['content-type'] = r.contentType;
        if (r.idempotencyKey !== undefined) headers['idempotency-key'] = r.idempotencyKey;
        const body = r.method === 'GET' || r.method === 'HEAD' ? undefined : Buffer.from(r.body);
        recent.push(`${r.method} ${path.slice(0, 120)} ${JSON.stringify(headers).slice(0, 300)} body ${body?.length} ${JSON.stringify(body?.toString('latin1').slice(0, 80))}`);
        if (recent.length > 3) recent.shift();
        const answer = await send(r.method, path, headers, body).catch((err: unknown) => {
          console.log(recent.join('\n'));
          throw err;
        });
        recent[recent.length - 1] += ` -> ${answer.status} ${JSON.stringify(answer.headers).slice(0, 200)}`;
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const what = `${r.method} ${path.slice(0, 200)} -> ${answer.status} ${answer.body.slice(0, 300)}`;
        expect(answer.status, what).toBeLessThan(500);
        if (answer.status >= 400 && r.method !== 'HEAD') {
          const parsed = JSON.parse(answer.body) as { error?: { code?: unknown; message?: unknown } };
          expect(ERROR_CODES as readonly unknown[], what).toContain(parsed.error?.code);
          expect(typeof parsed.error?.message, what).toBe('string');
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    ).catch((err: unknown) => {
      console.log(api.proc.raw.filter((l) => l.includes('malformed')).slice(-5).join('\n'));
      throw err;
    });

    // One more complete window after the last request, so its delays are measured too.
    const end = await scrapeDelay();
    await expect.poll(async () => (await scrapeDelay()).windows, { timeout: 20_000, interval: 500 }).toBeGreaterThan(end.windows);
    scraping = false;
    await scraper;
    delays.push((await scrapeDelay()).p99);
    expect(end.windows).toBeGreaterThan(start.windows);

    expect(api.proc.child.exitCode).toBeNull();
    expect((await send('GET', '/healthz', {})).status).toBe(200);
    const list = await send('GET', '/v1/batches', { authorization: `Bearer ${tenantKey}` });
    expect(list.status).toBe(200);
    console.log(`fuzz: ${RUNS} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; event loop p99 per window (s): max ${Math.max(...delays).toFixed(4)}`);
    expect(Math.max(...delays.filter(Number.isFinite))).toBeLessThan(0.1);
  }, 600_000);
});
