import type { RecentBatchStats } from '@inferq/contracts';
import type { BatchStats } from '@inferq/inference';

interface Observation {
  at: number;
  size: number;
  paddingRatio: number;
  seconds: number;
  failed: boolean;
}

export interface RecentBatchesOptions {
  /** How far back the stats look, in milliseconds. @defaultValue 60000 */
  windowMs?: number;
  /** Most batches kept per model (the oldest go first). @defaultValue 2000 */
  maxPerModel?: number;
}

const defaults: Required<RecentBatchesOptions> = { windowMs: 60_000, maxPerModel: 2000 };

/**
 * The last minute of batch runs per model, summed up for the worker's heartbeat (read by
 * `GET /v1/admin/workers`). Prometheus has the full histograms; this is what an operator
 * looks at first: is this worker batching, how full, how padded, how slow.
 */
export class RecentBatches {
  private readonly opts: Required<RecentBatchesOptions>;
  private readonly byModel = new Map<string, Observation[]>();

  constructor(options: RecentBatchesOptions = {}) {
    this.opts = { ...defaults, ...options };
    if (this.opts.windowMs <= 0 || this.opts.maxPerModel <= 0) throw new Error('RecentBatches: windowMs and maxPerModel must be positive');
  }

  record(model: string, stats: BatchStats, now = Date.now()): void {
    const list = this.byModel.get(model) ?? [];
    list.push({
      at: now,
      size: stats.size,
      paddingRatio: stats.paddedTokens / Math.max(1, stats.realTokens),
      seconds: stats.durationMs / 1000,
      failed: stats.failed,
    });
    if (list.length > this.opts.maxPerModel) list.splice(0, list.length - this.opts.maxPerModel);
    this.byModel.set(model, list);
  }

  /** The stats of every model that ran a batch, or of `models` (zeros where none ran). */
  summary(models: readonly string[] = [...this.byModel.keys()], now = Date.now()): Record<string, RecentBatchStats> {
    const since = now - this.opts.windowMs;
    const out: Record<string, RecentBatchStats> = {};
    for (const model of models) {
      const list = this.byModel.get(model) ?? [];
      const firstKept = list.findIndex((o) => o.at >= since);
      list.splice(0, firstKept === -1 ? list.length : firstKept);
      const ok = list.filter((o) => !o.failed);
      const seconds = list.map((o) => o.seconds).sort((a, b) => a - b);
      const last = list.at(-1);
      out[model] = {
        window_seconds: Math.round(this.opts.windowMs / 1000),
        batches: list.length,
        inputs: ok.reduce((n, o) => n + o.size, 0),
        failed_batches: list.length - ok.length,
        mean_batch_size: round(ok.length ? ok.reduce((n, o) => n + o.size, 0) / ok.length : 0),
        max_batch_size: ok.reduce((n, o) => Math.max(n, o.size), 0),
        mean_padding_ratio: round(ok.length ? ok.reduce((n, o) => n + o.paddingRatio, 0) / ok.length : 0),
        p95_batch_seconds: round(seconds.length ? seconds[Math.min(seconds.length - 1, Math.ceil(seconds.length * 0.95) - 1)]! : 0, 4),
        last_batch_at: last ? new Date(last.at).toISOString() : null,
      };
    }
    return out;
  }
}

function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
