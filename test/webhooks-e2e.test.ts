import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhook } from '@inferq/queue';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { FINAL_BATCH, ndjsonOf, readBatch, uploadBatch, waitForBatch } from './support/batches.js';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';
import { reviewTexts } from './support/texts.js';

const SECRET = 'whsec_test_3f9a1c';
const prefix = uniquePrefix('e2e-webhooks');
let modelsDir: string;
/** Accepts loopback webhook URLs (WEBHOOK_ALLOW_PRIVATE=true), as the worker does. */
let api: { proc: ServiceProcess; url: string };
/** The default: refuses them. */
let strictApi: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };

interface Delivery {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on loopback; `/flaky` answers 503 to its first delivery. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  private waiters: { path: string; count: number; resolve: (d: Delivery[]) => void }[] = [];
  private flakyFailed = false;
  readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      this.deliveries.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (path === '/flaky' && !this.flakyFailed) {
        this.flakyFailed = true;
        res.writeHead(503).end();
      } else {
        res.writeHead(204).end();
      }
      this.wake();
    });
  });

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  /** Resolves once `count` deliveries to `path` have arrived. */
  waitFor(path: string, count = 1): Promise<Delivery[]> {
    return new Promise((resolve) => {
      this.waiters.push({ path, count, resolve });
      this.wake();
    });
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      const got = this.deliveries.filter((d) => d.path === w.path);
      if (got.length < w.count) return true;
      w.resolve(got);
      return false;
    });
  }
}

const receiver = new Receiver();

beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-webhooks-'));
  await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, strictApi, worker] = await Promise.all([
    startApi({ ...env, WEBHOOK_ALLOW_PRIVATE: 'true' }),
    startApi(env),
    startWorker({
      ...env,
      WORKER_MODELS: TINY_CLASSIFIER_ID,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_BACKOFF_MS: '100',
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), strictApi?.proc.stop(), worker?.proc.stop()]);
  await new Promise<void>((resolve) => receiver.server.close(() => resolve()));
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function postJob(base: string, body: object): Promise<{ status: number; json: { id: string; error?: { code: string; message: string } } }> {
  const res = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as { id: string; error?: { code: string; message: string } } };
}

/** What a receiver does: check the signature with the shared secret, then trust the body. */
function expectSigned(delivery: Delivery, event: string): unknown {
  expect(delivery.headers['inferq-event']).toBe(event);
  expect(delivery.headers['content-type']).toBe('application/json');
  const signature = String(delivery.headers['inferq-signature']);
  expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  expect(verifyWebhook(SECRET, delivery.body, signature)).toBe(true);
  expect(verifyWebhook('another-secret', delivery.body, signature)).toBe(false);
  expect(verifyWebhook(SECRET, delivery.body.replace('}', ' }'), signature)).toBe(false);
  return JSON.parse(delivery.body);
}

describe('webhooks', () => {
  it('a job: its final view is POSTed to webhook_url, signed with WEBHOOK_SECRET', async () => {
    const { status, json } = await postJob(api.url, { task: 'classification', input: 'Refund arrived, thanks!', webhook_url: receiver.url('/job') });
    expect(status).toBe(202);
    const [delivery] = await receiver.waitFor('/job');
    const body = expectSigned(delivery as Delivery, 'job.succeeded') as { id: string; status: string; result: unknown };
    const view = (await fetch(`${api.url}/v1/jobs/${json.id}`).then((r) => r.json())) as { id: string; status: string; result: unknown };
    expect(body).toMatchObject({ id: json.id, status: 'succeeded', task: 'classification', model: TINY_CLASSIFIER_ID });
    expect(body.result).toEqual(view.result);
  });

  it('a batch: its final view is POSTed once it completes, signed', async () => {
    const { status, json } = await uploadBatch(api.url, ndjsonOf(reviewTexts(200)), `task=classification&webhook_url=${encodeURIComponent(receiver.url('/batch'))}`);
    expect(status).toBe(202);
    const [delivery] = await receiver.waitFor('/batch');
    const body = expectSigned(delivery as Delivery, 'batch.completed');
    expect(body).toEqual(await readBatch(api.url, json.id));
    expect(body).toMatchObject({ id: json.id, object: 'batch', status: 'completed', request_counts: { total: 200, completed: 200, failed: 0 } });
  });

  it('a delivery the receiver refuses is retried, with the same delivery id and body', async () => {
    const { json } = await uploadBatch(api.url, ndjsonOf(['one', 'two']), `task=classification&webhook_url=${encodeURIComponent(receiver.url('/flaky'))}`);
    const [first, second] = await receiver.waitFor('/flaky', 2);
    expect(first?.headers['inferq-delivery']).toBe(second?.headers['inferq-delivery']);
    expect(second?.body).toBe(first?.body);
    expect((expectSigned(second as Delivery, 'batch.completed') as { id: string }).id).toBe(json.id);
    await waitForBatch(api.url, json.id, (v) => FINAL_BATCH.includes(v.status));
  });

  it('without WEBHOOK_ALLOW_PRIVATE, loopback and private webhook URLs are refused at submit', async () => {
    for (const url of [receiver.url('/job'), 'http://localhost:8080/x', 'http://[::1]:8080/x', 'http://10.0.0.5/x', 'http://169.254.169.254/latest/meta-data']) {
      const job = await postJob(strictApi.url, { task: 'classification', input: 'x', webhook_url: url });
      expect({ status: job.status, code: job.json.error?.code }).toEqual({ status: 400, code: 'INFERQ_ERR_WEBHOOK_URL' });
      const batch = await uploadBatch(strictApi.url, ndjsonOf(['x']), `task=classification&webhook_url=${encodeURIComponent(url)}`);
      expect({ status: batch.status, code: batch.json.error?.code }).toEqual({ status: 400, code: 'INFERQ_ERR_WEBHOOK_URL' });
    }
  });
});
