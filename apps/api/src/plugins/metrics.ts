import { monitorEventLoopDelay } from 'node:perf_hooks';
import fp from 'fastify-plugin';

export interface MetricsOptions {
  /** How often the event loop is sampled, in milliseconds. @defaultValue 10 */
  resolutionMs?: number;
  /** Length of the window the delay quantiles describe, in milliseconds. @defaultValue 5000 */
  windowMs?: number;
}

interface Window {
  p50: number;
  p99: number;
  max: number;
}

const DEFAULTS = { resolutionMs: 10, windowMs: 5000 };

/**
 * `GET /metrics` (Prometheus text, no key needed: it holds no tenant's data): the event loop
 * delay of this API process, measured with `perf_hooks.monitorEventLoopDelay`, as quantiles
 * over the last complete window (`inferq_api_event_loop_delay_seconds`), the worst delay since
 * start, and a count of windows. A delay is how much later than due a timer ran: a request
 * that holds the loop for 80 ms shows as about 0.08.
 */
export const metricsPlugin = fp<MetricsOptions>(
  async (app, opts) => {
    const { resolutionMs, windowMs } = { ...DEFAULTS, ...opts };
    const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    histogram.enable();
    // A sample is the time between two ticks of a `resolutionMs` timer: the delay is what exceeds it.
    const delay = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs) / 1000;
    let last: Window = { p50: 0, p99: 0, max: 0 };
    let worst = 0;
    let windows = 0;
    const rotate = (): void => {
      if (histogram.count > 0) {
        last = { p50: delay(histogram.percentile(50)), p99: delay(histogram.percentile(99)), max: delay(histogram.max) };
        worst = Math.max(worst, last.max);
      }
      windows++;
      histogram.reset();
    };
    const timer = setInterval(rotate, windowMs);
    timer.unref();
    app.addHook('onClose', async () => {
      clearInterval(timer);
      histogram.disable();
    });

    app.get(
      '/metrics',
      { config: { access: 'public', rateLimit: false }, schema: { hide: true } },
      async (_request, reply) => {
        const lines = [
          `# HELP inferq_api_event_loop_delay_seconds Event loop delay of this API process over the last ${windowMs / 1000}-second window.`,
          '# TYPE inferq_api_event_loop_delay_seconds gauge',
          `inferq_api_event_loop_delay_seconds{quantile="0.5"} ${last.p50}`,
          `inferq_api_event_loop_delay_seconds{quantile="0.99"} ${last.p99}`,
          `inferq_api_event_loop_delay_seconds{quantile="1"} ${last.max}`,
          '# HELP inferq_api_event_loop_delay_max_seconds Worst event loop delay since start (complete windows).',
          '# TYPE inferq_api_event_loop_delay_max_seconds gauge',
          `inferq_api_event_loop_delay_max_seconds ${worst}`,
          '# HELP inferq_api_event_loop_windows_total Windows of event loop delay measured.',
          '# TYPE inferq_api_event_loop_windows_total counter',
          `inferq_api_event_loop_windows_total ${windows}`,
          '',
        ];
        return reply.type('text/plain; version=0.0.4; charset=utf-8').send(lines.join('\n'));
      },
    );
  },
  { name: 'inferq-metrics' },
);
