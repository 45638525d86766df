import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { RecentBatches } from './recent-batches.js';

/** The worker's Prometheus metrics. Labels: `model`, and `device` where it matters. */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly batchSize = new Histogram({
    name: 'inferq_batch_size',
    help: 'Inputs per batch run',
    labelNames: ['model'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'inferq_batch_duration_seconds',
    help: 'Wall time of one batch run (tokenized inputs to scores)',
    labelNames: ['model'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly paddingRatio = new Histogram({
    name: 'inferq_batch_padding_ratio',
    help: 'Padded tokens / real tokens per batch (1 = no padding)',
    labelNames: ['model'] as const,
    buckets: [1, 1.1, 1.25, 1.5, 2, 3, 5],
    registers: [this.registry],
  });
  readonly jobs = new Counter({
    name: 'inferq_jobs_total',
    help: 'Jobs finished by this worker',
    labelNames: ['model', 'status'] as const,
    registers: [this.registry],
  });
  readonly jobWaitSeconds = new Histogram({
    name: 'inferq_job_wait_seconds',
    help: 'Time a job waited in its queue before a worker started it (first attempt), by scheduler priority: 0 single jobs, 1 bulk chunks',
    labelNames: ['model', 'priority'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    registers: [this.registry],
  });
  readonly device = new Gauge({
    name: 'inferq_worker_device_info',
    help: 'The device each model runs on (1 = current); requested differs from device after a fallback',
    labelNames: ['model', 'device', 'requested'] as const,
    registers: [this.registry],
  });

  /** The last minute of batches per model, for the heartbeat (`GET /v1/admin/workers`). */
  readonly recent = new RecentBatches();
  /**
   * Records how long a job waited before its first attempt started: from when it was added (or
   * its delay ended) to now. Retries are not counted again: their wait is the backoff's.
   */
  observeWait(job: { timestamp: number; delay?: number; attemptsMade: number }, model: string, priority: number): void {
    if (job.attemptsMade > 0) return;
    this.jobWaitSeconds.observe({ model, priority: String(priority) }, Math.max(0, Date.now() - job.timestamp - (job.delay ?? 0)) / 1000);
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'inferq_worker_' });
  }
}

/** Serves `GET /metrics`. Resolves with the server once it listens. */
export async function serveMetrics(metrics: WorkerMetrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      metrics.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500).end();
        });
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'INFERQ_ERR_NOT_FOUND', message: 'Only GET /metrics is served here' } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function portOf(server: Server): number {
  return (server.address() as AddressInfo).port;
}
