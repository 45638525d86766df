import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import closeWithGrace from 'close-with-grace';
import { ensureModel, DEFAULT_MODELS } from '@inferq/tiny-models';
import { createRedis, startHeartbeat } from '@inferq/queue';
import { loadWorkerConfig } from './config.js';
import { createLogger } from './logger.js';
import { WorkerMetrics, portOf, serveMetrics } from './metrics.js';
import { BatchFinalizer } from './batch-finalizer.js';
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
let clusterWorker: ClusterWorker | undefined;
let sender: WebhookSender | undefined;
let tickets: ReturnType<typeof startTicketWorker> | undefined;

const metricsServer = await serveMetrics(metrics, config.METRICS_HOST, config.METRICS_PORT);

closeWithGrace({ delay: 30_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error');
  else logger.info({ signal }, 'shutting down: finishing the jobs in flight');
  await stopHeartbeat?.();
  await Promise.all(workers.map((w) => w.close()));
  await tickets?.close();
  await finalizer?.close();
  await clusterWorker?.close();
  await sender?.close();
  await outbox.close();
  await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
  heartbeatRedis.disconnect();
  logger.info('stopped');
});

for (const modelId of config.models) {
  if (config.BUILD_TINY_MODELS && modelId in DEFAULT_MODELS) {
    await ensureModel(config.MODELS_DIR, modelId);
  }
  workers.push(await ModelWorker.start(modelId, config, metrics, logger, outbox));
}
tickets = startTicketWorker(config, logger);
finalizer = await BatchFinalizer.start({ redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX }, outbox, logger);
clusterWorker = await ClusterWorker.start({ redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX }, logger);
if (config.WEBHOOK_SECRET) {
  sender = await WebhookSender.start(
    {
      redisUrl: config.REDIS_URL,
      prefix: config.QUEUE_PREFIX,
      secret: config.WEBHOOK_SECRET,
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    },
    logger,
  );
} else {
  logger.warn('WEBHOOK_SECRET is not set: this worker sends no webhooks (deliveries wait in the queue for a worker that has it)');
}
stopHeartbeat = startHeartbeat(heartbeatRedis, config.QUEUE_PREFIX, {
  id: workerId,
  models: workers.map((w) => w.modelId),
  devices: Object.fromEntries(workers.map((w) => [w.modelId, w.runner.device])),
  hostname: hostname(),
  pid: process.pid,
  started_at: new Date().toISOString(),
});
logger.info({ models: config.models, metricsPort: portOf(metricsServer), device: config.DEVICE }, 'worker ready');
