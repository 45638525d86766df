import { AdaptiveBatchPolicy, type AdaptiveBatchingOptions } from './adaptive-batching.js';
import type { UrgentWork } from './urgent-work.js';

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
  /**
   * Most tokens (after padding) in a batch of background inputs only (priority above 0).
   * A batch can't be interrupted, so an urgent input that arrives while one runs waits for
   * it: this bounds that wait. @defaultValue 512
   */
  maxBackgroundBatchTokens?: number;
  /** Called after every batch run, for metrics. */
  onBatch?: (stats: BatchStats) => void;
  /**
   * Shared with the schedulers of other sessions in the process: a batch of background
   * inputs only waits while a batch holding an urgent input runs in any of them (they share
   * the cores), and this scheduler's urgent batches count there. @defaultValue none
   */
  urgentWork?: UrgentWork;
  /**
   * Learn which batch shapes pay on this device ({@link AdaptiveBatchPolicy}): the three
   * limits above become caps, and the batch run is the one with the most predicted
   * throughput under the cost measured so far; an input that finds the session idle runs
   * at once unless waiting is predicted to pay. Options tune the policy. `false` runs
   * the limits as they are (static batching).
   * @defaultValue true
   */
  adaptive?: boolean | AdaptiveBatchingOptions;
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

/** Options of one {@link BatchScheduler.submit}. */
export interface SubmitOptions {
  /**
   * Lower runs first: an input waits only behind inputs of the same or a lower priority,
   * and one of a lower number than others pending is taken into the next batch at once.
   * @defaultValue 0 (interactive); bulk work uses 1
   */
  priority?: number;
  /**
   * Gives up on the input (a job's time limit): while it is pending it leaves the queue and
   * the promise rejects with the signal's reason; once its batch runs, the batch finishes.
   * @defaultValue none
   */
  signal?: AbortSignal;
}

interface Entry<P, O> {
  prepared: P;
  key: string;
  priority: number;
  cost: number;
  enqueuedAt: number;
  resolve: (value: O) => void;
  reject: (reason: unknown) => void;
}

const DEFAULTS = { maxBatchSize: 32, maxBatchTokens: 8192, maxDelayMs: 5, maxBackgroundBatchTokens: 512 };

/**
 * Coalesces single inputs into batches for one model session.
 *
 * Static (`adaptive: false`): a batch is flushed when it is full (`maxBatchSize` inputs,
 * or one more input would pass `maxBatchTokens` after padding), or when its oldest input
 * has waited `maxDelayMs`.
 * Adaptive (the default): those limits are caps; {@link AdaptiveBatchPolicy} measures what
 * batches cost on this device and picks, among the pending inputs sorted by length, the
 * batch holding the oldest input with the most predicted throughput, waiting for more
 * inputs only when that is predicted to pay.
 *
 * Either way, pending inputs are sorted by length so that similar lengths share a batch
 * and padding stays small. One batch runs at a time; the next one fills while it runs.
 * Each caller gets its own result or its own error: a batch that throws is split and
 * retried until the failing input is alone.
 */
export class BatchScheduler<I, P, O> {
  private readonly opts: Required<Omit<BatchSchedulerOptions<I, P, O>, 'onBatch' | 'groupKey' | 'adaptive' | 'urgentWork'>> &
    Pick<BatchSchedulerOptions<I, P, O>, 'onBatch' | 'groupKey' | 'adaptive' | 'urgentWork'>;
  /** The adaptive policy (its fitted cost model, for logs and metrics); undefined with `adaptive: false`. */
  readonly policy: AdaptiveBatchPolicy | undefined;
  private pumpQueued = false;
  private pending: Entry<P, O>[] = [];
  private running = false;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private waitingForUrgent = false;

  constructor(options: BatchSchedulerOptions<I, P, O>) {
    this.opts = { ...DEFAULTS, ...options };
    const { maxBatchSize, maxBatchTokens, maxDelayMs } = this.opts;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new Error('maxBatchSize must be an integer >= 1');
    if (!(maxBatchTokens >= 1)) throw new Error('maxBatchTokens must be >= 1');
    if (!(maxDelayMs >= 0)) throw new Error('maxDelayMs must be >= 0');
    const adaptive = this.opts.adaptive ?? true;
    this.policy =
      adaptive === false
        ? undefined
        : new AdaptiveBatchPolicy({ maxBatchSize, maxBatchTokens, maxDelayMs }, adaptive === true ? {} : adaptive);
  }

  /** Inputs waiting for a batch (not counting the batch running). */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** Queues one input; resolves with its own output. */
  submit(input: I, options: SubmitOptions = {}): Promise<O> {
    if (this.closing) return Promise.reject(new Error('The batch scheduler is closed'));
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<O>((resolve, reject) => {
      let prepared: P;
      try {
        prepared = this.opts.prepare(input);
      } catch (err) {
        reject(err);
        return;
      }
      const onAbort = (): void => {
        const at = this.pending.indexOf(entry);
        if (at < 0) return; // running: its batch finishes
        this.pending.splice(at, 1);
        reject(signal?.reason);
      };
      const entry: Entry<P, O> = {
        prepared,
        key: this.opts.groupKey?.(prepared) ?? '',
        priority: options.priority ?? 0,
        cost: Math.max(1, this.opts.cost(prepared)),
        enqueuedAt: performance.now(),
        resolve: (value) => (signal?.removeEventListener('abort', onAbort), resolve(value)),
        reject: (reason) => (signal?.removeEventListener('abort', onAbort), reject(reason)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Pending stays in (priority, arrival) order: pending[0] is the oldest most urgent input.
      const after = this.pending.findLastIndex((e) => e.priority <= entry.priority);
      this.pending.splice(after + 1, 0, entry);
      if (!this.policy) {
        this.pump();
        return;
      }
      this.policy.recordArrival(entry.enqueuedAt, entry.cost);
      // Decide once the current burst of submits (same tick) is in, so it can share a batch.
      if (this.pumpQueued) return;
      this.pumpQueued = true;
      queueMicrotask(() => {
        this.pumpQueued = false;
        this.pump();
      });
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
    // Pending is in priority order: background inputs only wait while urgent work runs elsewhere.
    const shared = this.opts.urgentWork;
    if (shared?.busy && (this.pending[0]?.priority ?? 0) > 0 && !this.closing) {
      if (!this.waitingForUrgent) {
        this.waitingForUrgent = true;
        shared.whenIdle(() => {
          this.waitingForUrgent = false;
          this.pump();
        });
      }
      return;
    }
    const waited = performance.now() - (this.pending[0]?.enqueuedAt ?? 0);
    // An urgent input with less urgent ones pending needn't wait for company: they fill its batch.
    const urgent = (this.pending[0]?.priority ?? 0) < (this.pending.at(-1)?.priority ?? 0);
    let batch: Entry<P, O>[] | undefined;
    if (this.policy) {
      batch = this.pickAdaptive(this.policy, waited, urgent);
    } else {
      const due = this.closing || urgent || waited >= this.opts.maxDelayMs;
      batch = this.pickBatch(due);
      if (!batch && !this.timer) this.setTimer(Math.max(0, this.opts.maxDelayMs - waited));
    }
    if (!batch) return;
    batch = this.boundBackground(batch);
    this.clearTimer();
    const taken = new Set(batch);
    this.pending = this.pending.filter((e) => !taken.has(e));
    this.running = true;
    const holdsUrgent = batch.some((e) => e.priority <= 0);
    if (holdsUrgent) this.opts.urgentWork?.begin();
    void this.execute(batch).then(
      (settle) => {
        // Start the next batch before the callers' continuations run (their jobs complete,
        // new ones are fetched), so that work overlaps the session instead of delaying it.
        this.running = false;
        if (holdsUrgent) this.opts.urgentWork?.end();
        this.pump();
        settle();
      },
      () => {
        this.running = false;
        if (holdsUrgent) this.opts.urgentWork?.end();
        this.pump();
      },
    );
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

  /**
   * Asks the adaptive policy for the batch to run, among the inputs that may share a batch
   * with the oldest one (sorted by length); undefined, with a timer set, when it says wait.
   */
  private pickAdaptive(policy: AdaptiveBatchPolicy, waited: number, urgent: boolean): Entry<P, O>[] | undefined {
    const oldest = this.pending[0] as Entry<P, O>;
    const group = this.pending.filter((e) => e.key === oldest.key).sort((a, b) => a.cost - b.cost);
    const decision = policy.decide(
      { costs: group.map((e) => e.cost), oldest: group.indexOf(oldest), waitedMs: waited, final: this.closing || urgent },
      performance.now(),
    );
    if (decision.run) return group.slice(decision.start, decision.end);
    this.clearTimer();
    this.setTimer(decision.waitMs);
    return undefined;
  }

  /**
   * Bounds the background inputs (priority above 0) of a batch: a batch of them only is cut
   * to `maxBackgroundBatchTokens` after padding, shortest first, and a batch holding an urgent
   * input takes none; the rest stay pending. Urgent inputs are never cut, and a batch of
   * background inputs keeps at least one. A running batch can't be interrupted, so this
   * bounds how long an urgent input waits behind bulk work, and keeps bulk work from
   * slowing the batch that carries an urgent input.
   */
  private boundBackground(batch: Entry<P, O>[]): Entry<P, O>[] {
    const kept = batch.filter((e) => e.priority <= 0);
    const background = batch.filter((e) => e.priority > 0).sort((a, b) => a.cost - b.cost);
    let longest = kept.reduce((m, e) => Math.max(m, e.cost), 0);
    // An urgent input's batch takes no background input: every one would make it wait longer.
    const cap = kept.length > 0 ? kept.length * longest : this.opts.maxBackgroundBatchTokens;
    for (const e of background) {
      const next = Math.max(longest, e.cost);
      if (kept.length > 0 && (kept.length + 1) * next > cap) break;
      kept.push(e);
      longest = next;
    }
    return kept;
  }

  /**
   * Runs one batch; resolves, once the session is free, with a function that hands every
   * caller its output or error. A batch that throws is split in halves and retried (those
   * callers are settled as their halves finish).
   */
  private async execute(batch: Entry<P, O>[]): Promise<() => void> {
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
      this.report({ ...stats, durationMs: performance.now() - started, failed: true });
      if (batch.length === 1) return () => batch[0]?.reject(err);
      // Isolate the input that fails: the others still get their results.
      const half = Math.ceil(batch.length / 2);
      (await this.execute(batch.slice(0, half)))();
      return this.execute(batch.slice(half));
    }
    this.report({ ...stats, durationMs: performance.now() - started, failed: false });
    return () => batch.forEach((e, i) => e.resolve(outputs[i] as O));
  }

  private report(stats: BatchStats): void {
    this.policy?.observe(stats);
    try {
      this.opts.onBatch?.(stats);
    } catch {
      // A metrics callback must not cost the callers their results.
    }
  }

  private setTimer(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
