import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApp, loadConfig, type ApiApp } from '@inferq/api';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { BatchFinalizer, ModelWorker, WebhookOutbox, WebhookSender, WorkerMetrics, loadWorkerConfig, type WorkerConfig } from '@inferq/worker';
import { REDIS_URL, deletePrefix, uniquePrefix } from './redis.js';

/** Silent logs for services run inside the test process. */
export const silent = pino({ level: 'silent' });

export const MODEL = TINY_CLASSIFIER_ID;
export const WEBHOOK_SECRET = 'whsec_in_process';

/**
 * The real API app, model worker (runner, chunk worker), batch finalizer and webhook sender,
 * run inside the test process on one queue prefix, so a test can hold an input mid-run (spy on
 * `worker.runner.run`) or fail a job while its attempt still runs. Close with `close()`.
 */
export interface InProcessStack {
  prefix: string;
  modelsDir: string;
  workerConfig: WorkerConfig;
  /** Builds an API app on the stack's prefix with extra settings; closed with the stack. */
  api(env?: Record<string, string>): Promise<ApiApp>;
  worker: ModelWorker;
  finalizer: BatchFinalizer;
  outbox: WebhookOutbox;
  close(): Promise<void>;
}

export async function startStack(name: string, workerEnv: Record<string, string> = {}): Promise<InProcessStack> {
  const prefix = uniquePrefix(name);
  const modelsDir = await mkdtemp(join(tmpdir(), `inferq-${name}-`));
  await ensureModel(modelsDir, MODEL);
  const workerConfig = loadWorkerConfig({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    MODELS_DIR: modelsDir,
    WORKER_MODELS: MODEL,
    MAX_DELAY_MS: '1',
    METRICS_PORT: '0',
    ...workerEnv,
  });
  const outbox = new WebhookOutbox({ redisUrl: REDIS_URL, prefix, attempts: 3, backoffMs: 100 }, silent);
  const worker = await ModelWorker.start(MODEL, workerConfig, new WorkerMetrics(), silent, outbox);
  const finalizer = await BatchFinalizer.start({ redisUrl: REDIS_URL, prefix }, outbox, silent);
  const sender = await WebhookSender.start({ redisUrl: REDIS_URL, prefix, secret: WEBHOOK_SECRET, allowPrivate: true, timeoutMs: 5000 }, silent);
  const apps: ApiApp[] = [];
  return {
    prefix,
    modelsDir,
    workerConfig,
    worker,
    finalizer,
    outbox,
    async api(env = {}) {
      const config = loadConfig({
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        MODELS_DIR: modelsDir,
        DEFAULT_MODEL_CLASSIFICATION: MODEL,
        WEBHOOK_ALLOW_PRIVATE: 'true',
        LOG_LEVEL: 'silent',
        ...env,
      });
      const app = await buildApp(config);
      apps.push(app);
      return app;
    },
    async close() {
      for (const app of apps) await app.close();
      await worker.close();
      await finalizer.close();
      await sender.close();
      await outbox.close();
      await deletePrefix(prefix);
      await rm(modelsDir, { recursive: true, force: true });
    },
  };
}

/** A webhook receiver on loopback; `onDelivery` runs before it answers. */
export async function startReceiver(onDelivery: (path: string, body: string) => Promise<void> | void = () => {}): Promise<{
  url(path: string): string;
  deliveries: { path: string; body: string }[];
  /** Resolves once `count` deliveries to `path` have arrived; rejects after `timeoutMs`. */
  waitFor(path: string, count: number, timeoutMs: number): Promise<{ path: string; body: string }[]>;
  close(): Promise<void>;
}> {
  const deliveries: { path: string; body: string }[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      const body = Buffer.concat(chunks).toString('utf8');
      void Promise.resolve(onDelivery(path, body)).finally(() => {
        deliveries.push({ path, body });
        res.writeHead(204).end();
        for (const wake of waiters) wake();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    deliveries,
    url: (path) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`,
    waitFor(path, count, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${deliveries.filter((d) => d.path === path).length} of ${count} deliveries to ${path} after ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          const got = deliveries.filter((d) => d.path === path);
          if (got.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(got);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A promise with its resolve, to hold a test step until another one has happened. */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Polls `read` until `done` holds or `timeoutMs` passes (then rejects with the last value).
 * For states that no event announces (a batch record's status), bounded by the timeout.
 */
export async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
