import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import closeWithGrace from 'close-with-grace';
import { createRedis, startHeartbeat } from '@inferq/queue';
import { loadWorkerConfig } from './config.js';
import { createLogger } from './logger.js';
import { WorkerMetrics, portOf, serveMetrics } from './metrics.js';
import { BatchFinalizer } from './batch-finalizer.js';
import { BatchReaper } from './batch-reaper.js';
import { ClusterWorker } from './cluster-worker.js';
import { ModelWorker } from './model-worker.js';
import { startTicketWorker } from './ticket-worker.js';
import { WebhookOutbox } from './webhook-outbox.js';
import { WebhookSender } from './webhook-sender.js';

const config = loadWorkerConfig();
const workerId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
const logger = createLogger(config.LOG_LEVEL, 'inferq-worker').child({ workerId });
const heartbeatRedis = createRedis(config.REDIS_URL, 'worker');
let stopHeartbeat: (() => Promise<void>) | undefined;
const metrics = new WorkerMetrics();
const workers: ModelWorker[] = [];
const outbox = new WebhookOutbox(
  { redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX, attempts: config.WEBHOOK_ATTEMPTS, backoffMs: config.WEBHOOK_BACKOFF_MS },
  logger,
);
let finalizer: BatchFinalizer | undefined;
let reaper: BatchReaper | undefined;
let clusterWorker: ClusterWorker | undefined;
let sender: WebhookSender | undefined;
let tickets: ReturnType<typeof startTicketWorker> | undefined;

const metricsServer = await serveMetrics(metrics, config.METRICS_HOST, config.METRICS_PORT);

/** Settles with true once `work` is done, or with false after `ms` milliseconds. */
function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Each step of the shutdown on its own: one failing doesn't skip the others. */
async function step(what: string, work: () => Promise<unknown> | undefined): Promise<void> {
  try {
    await work();
  } catch (err) {
    logger.warn({ err, what }, 'shutdown step failed');
  }
}

// SIGTERM/SIGINT: stop taking work at once, give running jobs SHUTDOWN_GRACE_MS to finish, then
// move what is still running back to waiting (another worker starts it at once, not after its
// lock expires) and exit. The hard kill comes only well after the grace.
closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS + 15_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error');
  else logger.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutting down: no new jobs; finishing the jobs in flight');
  await step('heartbeat', () => stopHeartbeat?.());
  for (const w of workers) w.stopTaking();
  void tickets?.close();
  const drained = Promise.all(workers.map((w) => w.close()));
  if (!(await within(drained, config.SHUTDOWN_GRACE_MS))) {
    const released = await Promise.all(workers.map((w) => w.releaseInFlight()));
    logger.warn({ released: released.reduce((a, b) => a + b, 0) }, 'shutdown grace over: jobs still running were released to other workers');
  }
  await step('tickets', () => within(tickets?.close() ?? Promise.resolve(), 2000));
  await step('finalizer', () => within(finalizer?.close() ?? Promise.resolve(), 2000));
  await step('clusters', () => within(clusterWorker?.close() ?? Promise.resolve(), 2000));
  await step('reaper', () => within(reaper?.close() ?? Promise.resolve(), 2000));
  await step('webhooks', () => within(sender?.close() ?? Promise.resolve(), 2000));
  await step('outbox', () => within(outbox.close(), 2000));
  await step('metrics', () => new Promise<void>((resolve) => metricsServer.close(() => resolve())));
  heartbeatRedis.disconnect();
  logger.info('stopped');
});

// One model that can't start (a config.json that is not JSON, a missing file) is logged by name
// and not served; the others are. Only a worker with no model at all stops.
for (const modelId of config.models) {
  try {
    workers.push(await ModelWorker.start(modelId, config, metrics, logger, outbox));
  } catch (err) {
    logger.error({ err, model: modelId }, `model ${modelId} could not be loaded; this worker does not serve it`);
  }
}
if (workers.length === 0) {
  logger.fatal({ models: config.models }, 'no model could be loaded; stopping');
  process.exit(1);
}
tickets = startTicketWorker(config, logger);
finalizer = await BatchFinalizer.start({ redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX }, outbox, logger);
reaper = await new BatchReaper(
  { redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX, intervalMs: config.REAPER_INTERVAL_MS, stuckAfterMs: config.BATCH_STUCK_MS },
  outbox,
  logger,
).start();
clusterWorker = await ClusterWorker.start({ redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX }, logger);
if (config.WEBHOOK_SECRET) {
  sender = await WebhookSender.start(
    {
      redisUrl: config.REDIS_URL,
      prefix: config.QUEUE_PREFIX,
      secret: config.WEBHOOK_SECRET,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      maxResponseBytes: config.WEBHOOK_MAX_RESPONSE_BYTES,
    },
    logger,
  );
} else {
  logger.warn('WEBHOOK_SECRET is not set: this worker sends no webhooks (deliveries wait in the queue for a worker that has it)');
}
const workerInfo = {
  id: workerId,
  models: workers.map((w) => w.modelId),
  devices: Object.fromEntries(workers.map((w) => [w.modelId, w.runner.device])),
  hostname: hostname(),
  pid: process.pid,
  started_at: new Date().toISOString(),
};
stopHeartbeat = startHeartbeat(heartbeatRedis, config.QUEUE_PREFIX, () => ({ ...workerInfo, batches: metrics.recent.summary(workerInfo.models) }));
logger.info({ models: workers.map((w) => w.modelId), metricsPort: portOf(metricsServer), device: config.DEVICE }, 'worker ready');
