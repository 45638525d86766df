export interface BatchSchedulerOptions<I, P, O> {
  /** Turns one input into what a batch is made of (tokenizes). A throw fails that input alone. */
  prepare: (input: I) => P;
  /** Tokens in one prepared input. A batch costs `size x longest` tokens after padding. */
  cost: (prepared: P) => number;
  /** Runs one batch; returns one output per input, in the same order. */
  run: (batch: P[]) => Promise<O[]>;
  /**
   * Inputs share a batch only when their keys are equal (e.g. generation settings that
   * must be the same across a batch). @defaultValue every input has the same key
   */
  groupKey?: (prepared: P) => string;
  /** Most inputs in one batch. @defaultValue 32 */
  maxBatchSize?: number;
  /** Most tokens in one batch, counted after padding (`size x longest`). @defaultValue 8192 */
  maxBatchTokens?: number;
  /** Longest an input waits for others to join its batch, in milliseconds. @defaultValue 5 */
  maxDelayMs?: number;
  /** Called after every batch run, for metrics. */
  onBatch?: (stats: BatchStats) => void;
}

export interface BatchStats {
  /** Inputs in the batch. */
  size: number;
  /** Tokens including padding (`size x longest`). */
  paddedTokens: number;
  /** Tokens without padding. */
  realTokens: number;
  /** Wall time of `run`, in milliseconds. */
  durationMs: number;
  /** Whether the run threw (its inputs are then retried in smaller batches). */
  failed: boolean;
}

interface Entry<P, O> {
  prepared: P;
  key: string;
  cost: number;
  enqueuedAt: number;
  resolve: (value: O) => void;
  reject: (reason: unknown) => void;
}

const DEFAULTS = { maxBatchSize: 32, maxBatchTokens: 8192, maxDelayMs: 5 };

/**
 * Coalesces single inputs into batches for one model session.
 *
 * A batch is flushed when it is full (`maxBatchSize` inputs, or one more input would pass
 * `maxBatchTokens` after padding), or when its oldest input has waited `maxDelayMs`.
 * Pending inputs are sorted by length so that similar lengths share a batch and padding
 * stays small. One batch runs at a time; the next one fills while it runs. Each caller
 * gets its own result or its own error: a batch that throws is split and retried until
 * the failing input is alone.
 */
export class BatchScheduler<I, P, O> {
  private readonly opts: Required<Omit<BatchSchedulerOptions<I, P, O>, 'onBatch' | 'groupKey'>> &
    Pick<BatchSchedulerOptions<I, P, O>, 'onBatch' | 'groupKey'>;
  private pending: Entry<P, O>[] = [];
  private running = false;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(options: BatchSchedulerOptions<I, P, O>) {
    this.opts = { ...DEFAULTS, ...options };
    const { maxBatchSize, maxBatchTokens, maxDelayMs } = this.opts;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new Error('maxBatchSize must be an integer >= 1');
    if (!(maxBatchTokens >= 1)) throw new Error('maxBatchTokens must be >= 1');
    if (!(maxDelayMs >= 0)) throw new Error('maxDelayMs must be >= 0');
  }

  /** Inputs waiting for a batch (not counting the batch running). */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Queues one input; resolves with its own output. */
  submit(input: I): Promise<O> {
    if (this.closing) return Promise.reject(new Error('The batch scheduler is closed'));
    return new Promise<O>((resolve, reject) => {
      let prepared: P;
      try {
        prepared = this.opts.prepare(input);
      } catch (err) {
        reject(err);
        return;
      }
      this.pending.push({
        prepared,
        key: this.opts.groupKey?.(prepared) ?? '',
        cost: Math.max(1, this.opts.cost(prepared)),
        enqueuedAt: performance.now(),
        resolve,
        reject,
      });
      this.pump();
    });
  }

  /** Stops taking inputs, runs every pending one without waiting for more, and resolves when all are done. */
  async close(): Promise<void> {
    this.closing = true;
    this.pump();
    if (!this.running && this.pending.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    if (this.running) return;
    if (this.pending.length === 0) {
      this.clearTimer();
      for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    const waited = performance.now() - (this.pending[0]?.enqueuedAt ?? 0);
    const due = this.closing || waited >= this.opts.maxDelayMs;
    const batch = this.pickBatch(due);
    if (!batch) {
      if (!this.timer) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, Math.max(0, this.opts.maxDelayMs - waited));
      }
      return;
    }
    this.clearTimer();
    const taken = new Set(batch);
    this.pending = this.pending.filter((e) => !taken.has(e));
    this.running = true;
    void this.execute(batch).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  /**
   * Splits the pending inputs, sorted by length, into batches under both limits. Returns a
   * full batch if there is one (the one holding the oldest input), or, when the oldest input
   * is due, the batch that holds it; otherwise undefined (wait for more).
   */
  private pickBatch(due: boolean): Entry<P, O>[] | undefined {
    const { maxBatchSize, maxBatchTokens } = this.opts;
    const sorted = [...this.pending].sort((a, b) => (a.key === b.key ? a.cost - b.cost : a.key < b.key ? -1 : 1));
    const oldest = this.pending[0];
    let current: Entry<P, O>[] = [];
    let fullWithOldest: Entry<P, O>[] | undefined;
    let firstFull: Entry<P, O>[] | undefined;
    let holdingOldest: Entry<P, O>[] | undefined;
    const close = (full: boolean): void => {
      if (current.length === 0) return;
      const hasOldest = current.includes(oldest as Entry<P, O>);
      if (hasOldest) holdingOldest = current;
      if (full) {
        firstFull ??= current;
        if (hasOldest) fullWithOldest = current;
      }
      current = [];
    };
    for (const entry of sorted) {
      if (current.length > 0 && current[0]?.key !== entry.key) close(false);
      // Sorted ascending, so the entry being added is the longest so far.
      if (current.length > 0 && (current.length + 1) * entry.cost > maxBatchTokens) close(true);
      current.push(entry);
      if (current.length === maxBatchSize) close(true);
    }
    close(false);
    if (due) return holdingOldest;
    return fullWithOldest ?? firstFull;
  }

  private async execute(batch: Entry<P, O>[]): Promise<void> {
    const started = performance.now();
    const longest = batch.reduce((m, e) => Math.max(m, e.cost), 0);
    const stats = {
      size: batch.length,
      paddedTokens: longest * batch.length,
      realTokens: batch.reduce((s, e) => s + e.cost, 0),
    };
    let outputs: O[];
    try {
      outputs = await this.opts.run(batch.map((e) => e.prepared));
      if (outputs.length !== batch.length) {
        throw new Error(`run returned ${outputs.length} outputs for ${batch.length} inputs`);
      }
    } catch (err) {
      this.opts.onBatch?.({ ...stats, durationMs: performance.now() - started, failed: true });
      if (batch.length === 1) {
        batch[0]?.reject(err);
        return;
      }
      // Isolate the input that fails: the others still get their results.
      const half = Math.ceil(batch.length / 2);
      await this.execute(batch.slice(0, half));
      await this.execute(batch.slice(half));
      return;
    }
    this.opts.onBatch?.({ ...stats, durationMs: performance.now() - started, failed: false });
    batch.forEach((e, i) => e.resolve(outputs[i] as O));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
