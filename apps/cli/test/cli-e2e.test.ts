// The CLI against a real API and worker (built dist entry points, real Redis at REDIS_URL),
// serving the starter models.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '@inferq/queue';
import { ensureModel } from '@inferq/tiny-models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, startApi, startWorker, type Service } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-cli-${randomBytes(4).toString('hex')}`;
let dir: string;
let api: { service: Service; url: string };
let worker: Service;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inferq-cli-e2e-'));
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: join(dir, 'models') };
  // The worker loads what MODELS_DIR holds; the test builds the models, as `npm start` does.
  const models = ['inferq/starter-sentiment', 'inferq/starter-tickets', 'inferq/tiny-nli', 'inferq/tiny-bart'];
  for (const id of models) await ensureModel(env.MODELS_DIR, id);
  worker = await startWorker({ ...env, WORKER_MODELS: models.join(',') });
  api = await startApi({ ...env, DEFAULT_MODEL_CLASSIFICATION: 'inferq/starter-sentiment' });
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

const REVIEWS: [string, 'positive' | 'negative'][] = [
  ['Fantastic quality, I love it.', 'positive'],
  ['Broke after one day. Awful.', 'negative'],
  ['The staff were friendly and the room was clean.', 'positive'],
  ['Terrible service and cold food.', 'negative'],
  ['Works perfectly, great value.', 'positive'],
  ['Disappointing, poor sound and a flimsy case.', 'negative'],
];

describe('inferq against a running API and worker', () => {
  it('models list shows the starter models and their labels', async () => {
    const list = await run(['models', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/inferq\/starter-sentiment\s+classification\s+1\s+negative, positive\s+classification/);
    expect(list.stdout).toMatch(/inferq\/starter-tickets\s+classification\s+1\s+billing, login and account/);
  });

  it('classify answers with the labels, best first', async () => {
    const positive = await run(['classify', 'I love it, it works great and looks beautiful.']);
    expect(positive.code).toBe(0);
    expect(positive.stdout.split('\n')[1]).toMatch(/^positive\s+0\.\d{3}$/);
    const ticket = await run(['classify', '--model', 'inferq/starter-tickets', '--top-k', '1', 'I was charged twice, please fix my invoice.']);
    expect(ticket.code).toBe(0);
    expect(ticket.stdout).toMatch(/^label\s+score\nbilling\s+/);
    const json = await run(['classify', '--json', 'Terrible, it broke at once.']);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'succeeded', model: 'inferq/starter-sentiment', result: [{ label: 'negative' }, { label: 'positive' }] });
  });

  it('an API error exits 4 with its code and what to do', async () => {
    const missing = await run(['classify', '--model', 'nobody/nothing', 'hello']);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('INFERQ_ERR_UNKNOWN_MODEL (HTTP 404)');
    expect(missing.stderr).toContain('inferq models list');
  });

  it('submit uploads a JSONL file, reports progress, and writes the results in input order', async () => {
    const file = join(dir, 'reviews.jsonl');
    const lines = REVIEWS.map(([text], i) => JSON.stringify(i % 2 === 0 ? { custom_id: `r${i}`, input: text } : { text }));
    await writeFile(file, `${lines.join('\n')}\n`);
    const submitted = await run(['submit', 'reviews.jsonl', '--task', 'classification', '--interval', '0.2']);
    expect(submitted.stderr).not.toContain('inferq:');
    expect(submitted.code).toBe(0);
    expect(submitted.stderr).toMatch(/reviews\.jsonl: 6 inputs; uploading/);
    expect(submitted.stderr).toMatch(/progress 6\/6 {2}100%.*\[completed\]/);
    const id = /batch (batch_[0-9a-f]+) completed: 6 succeeded, 0 failed of 6/.exec(submitted.stdout)?.[1];
    expect(id).toBeDefined();

    const results = (await readFile(`${file}.results.jsonl`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; result: { label: string }[] });
    expect(results.map((r) => r.custom_id)).toEqual(['r0', 'line-2', 'r2', 'line-4', 'r4', 'line-6']);
    expect(results.map((r) => r.result[0]?.label)).toEqual(REVIEWS.map(([, label]) => label));

    const status = await run(['status', id as string]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/completed\s+6\/6 \(100%\)\s+0\s+inferq\/starter-sentiment/);
    const fetched = await run(['results', id as string]);
    expect(fetched.stdout).toBe(await readFile(`${file}.results.jsonl`, 'utf8'));
  });

  it('triage waits for the ticket\'s issue and summary (tiny zero-shot and summarization models here)', async () => {
    const run = await cli(['triage', '--json', 'My parcel never arrived and tracking shows nothing.', '--api', api.url]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const ticket = JSON.parse(run.stdout) as { status: string; result: { issue: { label: string }; summary: string } };
    expect(ticket.status).toBe('succeeded');
    expect(['billing', 'login and account', 'bug', 'feature request', 'shipping', 'refund', 'other']).toContain(ticket.result.issue.label);
    expect(typeof ticket.result.summary).toBe('string');
    const text = await cli(['triage', '--labels', 'delivery,payment', 'Where is my parcel?', '--api', api.url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^issue: {3}(delivery|payment) \(0\.\d{3}\)\nsummary: /);
  });

  it('submit reads a CSV column into the tickets model', async () => {
    const file = join(dir, 'tickets.csv');
    await writeFile(file, 'ticket_id,subject,message\nt1,Invoice,"I was charged twice for my subscription, please check the invoice"\nt2,Login,"I cannot log in, my password reset email never arrives"\n');
    const submitted = await run(['submit', file, '-t', 'classification', '-m', 'inferq/starter-tickets', '--column', 'message', '--id-column', 'ticket_id', '--out', 'tickets.out.jsonl', '--interval', '0.2']);
    expect(submitted.code).toBe(0);
    const results = (await readFile(join(dir, 'tickets.out.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; result: { label: string }[] });
    expect(results.map((r) => [r.custom_id, r.result[0]?.label])).toEqual([
      ['t1', 'billing'],
      ['t2', 'login and account'],
    ]);
  });
});
