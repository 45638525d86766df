import { randomUUID } from 'node:crypto';
import closeWithGrace from 'close-with-grace';
import { ensureModel, DEFAULT_MODELS } from '@inferq/tiny-models';
import { loadWorkerConfig } from './config.js';
import { createLogger } from './logger.js';
import { WorkerMetrics, portOf, serveMetrics } from './metrics.js';
import { ModelWorker } from './model-worker.js';

const config = loadWorkerConfig();
const logger = createLogger(config.LOG_LEVEL, 'inferq-worker').child({ workerId: `${process.pid}-${randomUUID().slice(0, 8)}` });
const metrics = new WorkerMetrics();
const workers: ModelWorker[] = [];

const metricsServer = await serveMetrics(metrics, config.METRICS_HOST, config.METRICS_PORT);

closeWithGrace({ delay: 30_000, logger }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error');
  else logger.info({ signal }, 'shutting down: finishing the jobs in flight');
  await Promise.all(workers.map((w) => w.close()));
  await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
  logger.info('stopped');
});

for (const modelId of config.models) {
  if (config.BUILD_TINY_MODELS && modelId in DEFAULT_MODELS) {
    await ensureModel(config.MODELS_DIR, modelId);
  }
  workers.push(await ModelWorker.start(modelId, config, metrics, logger));
}
logger.info({ models: config.models, metricsPort: portOf(metricsServer), device: config.DEVICE }, 'worker ready');
