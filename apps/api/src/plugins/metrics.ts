import { monitorEventLoopDelay } from 'node:perf_hooks';
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { modelIdFromJobId } from '@inferq/queue';
import type { QueueDepth } from './queue-inventory.js';

export interface MetricsOptions {
  /** How often the event loop is sampled, in milliseconds. @defaultValue 10 */
  resolutionMs?: number;
  /** Length of the window the event loop delay quantiles describe, in milliseconds. @defaultValue 5000 */
  windowMs?: number;
}

/** The API's Prometheus metrics, in one registry (tests build many apps in one process). */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly requestSeconds = new Histogram({
    name: 'inferq_api_http_request_duration_seconds',
    help: 'Time from request received to response sent, by route pattern (unmatched for 404s), method and status',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly jobsAccepted = new Counter({
    name: 'inferq_api_jobs_accepted_total',
    help: 'Single jobs queued (POST /v1/jobs answered 202), by task and model',
    labelNames: ['task', 'model'] as const,
    registers: [this.registry],
  });
  readonly batchesAccepted = new Counter({
    name: 'inferq_api_batches_accepted_total',
    help: 'Bulk batches accepted (POST /v1/batches answered 202), by task and model',
    labelNames: ['task', 'model'] as const,
    registers: [this.registry],
  });
  readonly batchInputsAccepted = new Counter({
    name: 'inferq_api_batch_inputs_accepted_total',
    help: 'Inputs of accepted bulk batches, by task and model',
    labelNames: ['task', 'model'] as const,
    registers: [this.registry],
  });
  readonly ticketsAccepted = new Counter({
    name: 'inferq_api_tickets_accepted_total',
    help: 'Tickets queued (POST /v1/tickets answered 202); each is two jobs',
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: 'inferq_api_rejections_total',
    help: 'Answers with an error body, by error code (4xx and 5xx)',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly queueJobs = new Gauge({
    name: 'inferq_queue_jobs',
    help: 'Jobs in each queue by state (waiting, active, delayed, failed), read at scrape time (cached briefly); model is set on a model\'s single and bulk queues',
    labelNames: ['queue', 'model', 'state'] as const,
    registers: [this.registry],
  });
  readonly oldestWaiting = new Gauge({
    name: 'inferq_queue_oldest_waiting_age_seconds',
    help: 'Age of the job next in line in each queue (0 when none waits): the autoscaling signal',
    labelNames: ['queue', 'model'] as const,
    registers: [this.registry],
  });
  readonly queueReadFailures = new Counter({
    name: 'inferq_api_queue_read_failures_total',
    help: 'Scrapes whose queue depths could not be read (Redis unavailable); the queue gauges are empty then',
    registers: [this.registry],
  });
  readonly eventLoopDelay = new Gauge({
    name: 'inferq_api_event_loop_delay_seconds',
    help: 'Event loop delay of this API process over the last complete window',
    labelNames: ['quantile'] as const,
    registers: [this.registry],
  });
  readonly eventLoopDelayMax = new Gauge({
    name: 'inferq_api_event_loop_delay_max_seconds',
    help: 'Worst event loop delay since start (complete windows)',
    registers: [this.registry],
  });
  readonly eventLoopWindows = new Counter({
    name: 'inferq_api_event_loop_windows_total',
    help: 'Windows of event loop delay measured',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'inferq_api_' });
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics;
  }
}

const STATES: readonly (keyof QueueDepth)[] = ['waiting', 'active', 'delayed', 'failed'];
const ERROR_CODE = /^\{"error":\{"code":"(INFERQ_ERR_[A-Z_]+)"/;
const DEFAULTS = { resolutionMs: 10, windowMs: 5000 };

function parse(payload: unknown): Record<string, unknown> | undefined {
  if (typeof payload !== 'string') return undefined;
  try {
    return JSON.parse(payload) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * `GET /metrics` (Prometheus text; it holds no tenant's data) and `app.metrics`. Requests are
 * timed and answers counted from hooks (`onSend`, `onResponse`), so routes know nothing of
 * metrics: what was accepted is read from the 202 answers (a job's id carries its model, a
 * batch's view its task, model and input count), rejections from the error body's code. Queue
 * depths and ages are read when Prometheus scrapes, through `app.queueInventory`'s cache.
 */
export const metricsPlugin = fp<MetricsOptions>(
  async (app, opts) => {
    const { resolutionMs, windowMs } = { ...DEFAULTS, ...opts };
    const metrics = new ApiMetrics();
    app.decorate('metrics', metrics);

    // A sample is the time between two ticks of a `resolutionMs` timer: the delay is what exceeds it.
    const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    histogram.enable();
    const delay = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs) / 1000;
    let worst = 0;
    for (const q of ['0.5', '0.99', '1']) metrics.eventLoopDelay.set({ quantile: q }, 0);
    metrics.eventLoopDelayMax.set(0);
    const rotate = (): void => {
      if (histogram.count > 0) {
        const max = delay(histogram.max);
        metrics.eventLoopDelay.set({ quantile: '0.5' }, delay(histogram.percentile(50)));
        metrics.eventLoopDelay.set({ quantile: '0.99' }, delay(histogram.percentile(99)));
        metrics.eventLoopDelay.set({ quantile: '1' }, max);
        worst = Math.max(worst, max);
        metrics.eventLoopDelayMax.set(worst);
      }
      metrics.eventLoopWindows.inc();
      histogram.reset();
    };
    const timer = setInterval(rotate, windowMs);
    timer.unref();
    app.addHook('onClose', async () => {
      clearInterval(timer);
      histogram.disable();
    });

    app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const status = reply.statusCode;
      if (status >= 400) {
        const code = typeof payload === 'string' ? ERROR_CODE.exec(payload)?.[1] : undefined;
        if (code) metrics.rejections.inc({ code });
        return payload;
      }
      if (status !== 202 || request.method !== 'POST') return payload;
      const route = request.routeOptions.url;
      if (route === '/v1/jobs') {
        const id = parse(payload)?.id;
        const model = typeof id === 'string' ? modelIdFromJobId(id) : undefined;
        const task = (request.body as { task?: unknown } | undefined)?.task;
        if (model && typeof task === 'string') metrics.jobsAccepted.inc({ task, model });
      } else if (route === '/v1/batches') {
        const view = parse(payload) as { task?: unknown; model?: unknown; request_counts?: { total?: unknown } } | undefined;
        if (typeof view?.task === 'string' && typeof view.model === 'string') {
          const labels = { task: view.task, model: view.model };
          metrics.batchesAccepted.inc(labels);
          const total = view.request_counts?.total;
          if (typeof total === 'number') metrics.batchInputsAccepted.inc(labels, total);
        }
      } else if (route === '/v1/tickets') {
        metrics.ticketsAccepted.inc();
      }
      return payload;
    });

    app.addHook('onResponse', async (request, reply) => {
      metrics.requestSeconds.observe(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });

    async function readQueues(): Promise<void> {
      metrics.queueJobs.reset();
      metrics.oldestWaiting.reset();
      let snapshot;
      try {
        snapshot = await app.queueInventory.snapshot();
      } catch (err) {
        metrics.queueReadFailures.inc();
        app.log.warn({ err }, 'metrics: cannot read the queues');
        return;
      }
      for (const { name, model, depth, oldestWaitingSeconds } of snapshot) {
        for (const state of STATES) metrics.queueJobs.set({ queue: name, model, state }, depth[state]);
        metrics.oldestWaiting.set({ queue: name, model }, oldestWaitingSeconds);
      }
    }

    // No key: it holds no tenant's data (and public routes are not rate limited).
    app.get('/metrics', { schema: { hide: true }, config: { access: 'public' } }, async (_request, reply) => {
      await readQueues();
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  },
  { name: 'inferq-metrics', dependencies: ['inferq-queue-inventory'] },
);
