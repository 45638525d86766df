// The queue dashboard as an operator opens it: real headless Chromium (Debian's package, driven
// by playwright-core) on a real API with ADMIN_API_KEY set, after a real worker ran a batch.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCHES_QUEUE, bulkQueueNameForModel, queueNameForModel } from '@inferq/queue';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { ndjsonOf, uploadBatch, waitForBatch } from './support/batches.js';
import { requireBinary } from './support/binaries.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';
import { reviewTexts } from './support/texts.js';

const ADMIN_KEY = `admin-${'0123456789abcdef'.repeat(3)}`;
const N = 200;
const CHUNK = 50;
const prefix = uniquePrefix('e2e-dashboard');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
let browser: Browser;
const redis = new Redis(REDIS_URL);
/** A tenant's key, made by the first test: it runs batches but does not open the dashboard. */
let tenantKey = '';

beforeAll(async () => {
  const executablePath = requireBinary('chromium', 'chromium');
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-dashboard-'));
  await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker, browser] = await Promise.all([
    startApi({ ...env, ADMIN_API_KEY: ADMIN_KEY, BATCH_CHUNK_SIZE: String(CHUNK), QUEUE_STATS_CACHE_MS: '0' }),
    startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID }),
    // As root (CI containers) Chromium needs --no-sandbox.
    chromium.launch({ executablePath, args: ['--no-sandbox'] }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await deletePrefix(prefix);
  redis.disconnect();
  await rm(modelsDir, { recursive: true, force: true });
});

/** The count a queue's card on the overview shows ("4 Jobs"), as the operator reads it. */
async function cardCount(page: Page, queue: string): Promise<number> {
  const main = page.locator('main');
  await main.getByText(queue, { exact: true }).first().waitFor();
  const text = await main.innerText();
  const escaped = queue.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped}\\n(?:.*\\n)?(\\d+) Jobs?$`, 'm').exec(text);
  if (!match) throw new Error(`no count for ${queue} on the overview:\n${text}`);
  return Number(match[1]);
}

describe('/admin/queues in headless Chromium', () => {
  it('after a batch ran, lists inferq queues with their counts, given the admin key', async () => {
    // Keys are on: a tenant's key runs the batch.
    const created = await fetch(`${api.url}/v1/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'desk' }),
    });
    expect(created.status).toBe(201);
    tenantKey = ((await created.json()) as { key: string }).key;
    const asTenant = { authorization: `Bearer ${tenantKey}` };
    const { status, json } = await uploadBatch(api.url, ndjsonOf(reviewTexts(N)), `task=classification&model=${TINY_CLASSIFIER_ID}`, asTenant);
    expect(status).toBe(202);
    await waitForBatch(api.url, json.id, (v) => v.status === 'completed', asTenant);
    const bulk = bulkQueueNameForModel(TINY_CLASSIFIER_ID);
    const bulkQueue = new Queue(bulk, { connection: redis, prefix });
    expect((await bulkQueue.getJobCounts('completed')).completed).toBe(N / CHUNK);
    await bulkQueue.close();

    // The browser's own prompt for credentials, answered with the key as password.
    const context = await browser.newContext({ httpCredentials: { username: 'operator', password: ADMIN_KEY } });
    const page = await context.newPage();
    const res = await page.goto(`${api.url}/admin/queues`);
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe('inferq queues');

    // Every inferq queue has its card: the model's bulk queue holds the batch's chunk jobs,
    // `batches` its parent; the others exist with what they hold.
    expect(await cardCount(page, bulk)).toBe(N / CHUNK);
    expect(await cardCount(page, BATCHES_QUEUE)).toBe(1);
    for (const queue of [queueNameForModel(TINY_CLASSIFIER_ID), 'tickets', 'webhooks', 'maintenance']) {
      expect(await cardCount(page, queue), queue).toBeGreaterThanOrEqual(0);
    }

    // The bulk queue's page: its completed tab counts the chunks, and lists this batch's jobs.
    await page.locator('main').getByText(bulk, { exact: true }).first().click();
    await page.waitForURL(/\/admin\/queues\/queue\/bulk--/);
    await page.getByText(`${json.id}-`).first().waitFor();
    const main = await page.locator('main').innerText();
    expect(main).toMatch(new RegExp(`^COMPLETED\\n${N / CHUNK}$`, 'm'));
    const chunkIds = main.split('\n').filter((line) => line.startsWith(`${json.id}-`));
    expect(chunkIds.length).toBe(N / CHUNK);
    await context.close();
  });

  it('is refused without the admin key, or with a wrong one', async () => {
    const url = `${api.url}/admin/queues`;
    // No key, a wrong password at the browser's credentials prompt, a wrong Bearer token, a tenant's key.
    expect(tenantKey).not.toBe('');
    const attempts = [
      {},
      { httpCredentials: { username: 'operator', password: `${ADMIN_KEY}-not` } },
      { extraHTTPHeaders: { authorization: `Bearer ${ADMIN_KEY}-not` } },
      { extraHTTPHeaders: { authorization: `Bearer ${tenantKey}` } },
    ];
    for (const options of attempts) {
      const context = await browser.newContext(options);
      const page = await context.newPage();
      const answer = page.waitForResponse((r) => r.url() === url);
      // The page answers 401 with a Basic challenge. With no key Chromium shows the error body;
      // with a wrong one it has nothing better to offer and ends the navigation with this error
      // (a headed browser would prompt again). Either way the dashboard never loads.
      const outcome = await page.goto(url).then(
        (r) => String(r?.status()),
        (err: Error) => err.message,
      );
      expect(outcome).toMatch(/^401$|ERR_INVALID_AUTH_CREDENTIALS/);
      const response = await answer;
      expect(response.status()).toBe(401);
      expect(response.headers()['www-authenticate']).toMatch(/Basic realm="inferq admin"/);
      expect(await page.getByText('inferq queues').count()).toBe(0);
      // The same requests outside navigation (no prompt): the error body, for the page and its JSON API.
      for (const path of ['', '/api/queues']) {
        const res = await page.request.get(`${url}${path}`);
        expect(res.status(), JSON.stringify(options)).toBe(401);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INFERQ_ERR_UNAUTHORIZED');
      }
      await context.close();
    }
  });
});
