/**
 * Adaptive batching: learns what a batch costs on the device the session runs on, and
 * picks the batch that gives the most throughput there, instead of trusting one static
 * setting. On a small CPU compute is the limit and padding is the enemy (the best batches
 * are small and of near-equal lengths); on a GPU each run has a large fixed cost and the
 * best batches are as large as the caps allow. The policy tells these apart from what it
 * measures.
 *
 * The cost of one batch run is modelled as
 *
 *     durationMs ≈ fixedMs + perPaddedTokenMs · paddedTokens + perInputMs · size
 *                  + perLongestTokenMs · longest
 *
 * (`longest` = padded length of the batch's rows). The last term is work that grows with
 * the sequence length but is paid once per run, whatever the batch size: on a CPU, small
 * matrices use the cores less well, so a run of n equal rows costs about n + 1 rows' worth
 * (measured on 2 cores: ~0.11 ms per padded token plus ~0.11 ms per token of the longest
 * row). That is what makes batching equal lengths pay on a CPU, and padding not.
 * It is fitted by non-negative least squares over a sliding window of the batches observed,
 * with a correction factor per octave of padded tokens (…, 512–1023, 1024–2047, …) for
 * what a linear model misses: on a CPU, batches whose activations outgrow the caches cost
 * more per token (measured on 2 cores: past about 1,000 padded tokens); on a GPU, small
 * launches use it less well. Durations are divided by the machine's recent speed against
 * the model before they are fitted, so a spell of contention (another process on the
 * cores) does not read as the cost of the shapes that happened to run during it.
 * Throughput is counted in real (unpadded) tokens per millisecond, so padding is waste.
 *
 * Decisions, given the pending inputs sorted by length and the one that waited longest:
 * - warm-up: the first batches try sizes 1, 2, 4, ... up to the cap (each the window of
 *   that size, holding the oldest input, with the least padding), so the fit sees
 *   different shapes; never waiting for inputs that are not there.
 * - then: for candidate limits (a batch size, or a token budget, under the caps), cut all
 *   the pending inputs, sorted by length, into consecutive batches as the static
 *   scheduler would, and keep the limits whose batches take the least predicted time per
 *   real token; run the batch of that cut that holds the oldest input. Judging every
 *   batch the pending inputs need, not the next one alone, keeps long inputs from being
 *   left behind to be padded later. A small share of decisions tries half or twice that
 *   batch size, so the fit keeps learning.
 * - waiting: only when the best batch is everything pending and the cap leaves room,
 *   and only if, at the arrival rate seen and with lengths like the recent ones, waiting
 *   for more inputs (idle time counted) is predicted to give at least `minWaitGain` more
 *   throughput than running now; never past `maxDelayMs` after the oldest input arrived.
 *   On a CPU that almost never pays, so an input that finds the session idle runs at once.
 *
 * Pure: no clock, no timers. Times are passed in; `random` is injectable, so decisions
 * can be tested on synthetic cost models.
 */

/** The hard limits, which the policy never passes. */
export interface BatchLimits {
  /** Most inputs in one batch. */
  maxBatchSize: number;
  /** Most tokens in one batch, counted after padding (`size x longest`). */
  maxBatchTokens: number;
  /** Longest an input waits for others to join its batch, in milliseconds. */
  maxDelayMs: number;
}

export interface AdaptiveBatchingOptions {
  /** Batches the cost model is fitted over (the most recent ones). @defaultValue 256 */
  window?: number;
  /**
   * Batches run on the size ladder (1, 2, 4, ... cap) before the fitted model decides.
   * @defaultValue the number of ladder steps (6 for a cap of 32: one pass)
   */
  warmupBatches?: number;
  /** Share of decisions after warm-up that try half or twice the best size. @defaultValue 0.02 */
  exploreRate?: number;
  /** Least predicted throughput gain (0.1 = 10%) that justifies waiting for more inputs. @defaultValue 0.1 */
  minWaitGain?: number;
  /** Source of randomness in [0, 1), for exploration. @defaultValue Math.random */
  random?: () => number;
}

/** One batch run as the scheduler saw it (`BatchStats` has this shape). */
export interface BatchObservation {
  /** Inputs in the batch. */
  size: number;
  /** Tokens including padding (`size x longest`). */
  paddedTokens: number;
  /** Wall time of the run, in milliseconds. */
  durationMs: number;
  /** Failed runs are not fitted. */
  failed?: boolean;
}

/** The fitted cost of one batch run, in milliseconds. */
export interface CostModel {
  /** Cost of a run whatever its size (launch, synchronisation, fixed overhead). */
  fixedMs: number;
  /** Cost per token after padding. */
  perPaddedTokenMs: number;
  /** Cost per input in the batch. */
  perInputMs: number;
  /** Cost per token of the longest row (the padded length), paid once per run. */
  perLongestTokenMs: number;
  /**
   * Observed / predicted duration per octave of padded tokens (`floor(log2(paddedTokens))`),
   * shrunk towards 1 where few batches were seen.
   */
  correction: Readonly<Record<number, number>>;
  /** Batches the fit is based on. */
  samples: number;
}

/** What the policy sees of the pending inputs that may share a batch. */
export interface PendingView {
  /** Tokens in each pending input, sorted ascending. */
  costs: readonly number[];
  /** Index into `costs` of the input that has waited longest: every batch taken holds it. */
  oldest: number;
  /** How long that input has waited, in milliseconds. */
  waitedMs: number;
  /** No more inputs are coming (the scheduler is closing): run, never wait. */
  final: boolean;
}

export type BatchDecision =
  /** Run `costs.slice(start, end)` now. */
  | { run: true; start: number; end: number; reason: 'warmup' | 'best' | 'explore' }
  /** Run nothing yet; decide again after `waitMs` milliseconds or when an input arrives. */
  | { run: false; waitMs: number };

interface Sample {
  size: number;
  padded: number;
  ms: number;
}

interface Window {
  start: number;
  end: number;
  real: number;
  padded: number;
}

const DEFAULTS = { window: 256, exploreRate: 0.02, minWaitGain: 0.1 };
/** Pseudo-batches (predicted exactly) each octave's correction starts from, so a few batches can't swing it. */
const OCTAVE_PRIOR = 2;
/** Weight of the newest batch in the machine-speed average. */
const SPEED_EWMA = 0.2;
/** Arrival times kept to estimate the arrival rate. */
const ARRIVALS_KEPT = 64;

/** Sizes 1, 2, 4, ... and the cap itself. */
function sizeLadder(cap: number): number[] {
  const ladder: number[] = [];
  for (let s = 1; s < cap; s *= 2) ladder.push(s);
  ladder.push(cap);
  return ladder;
}

const octave = (paddedTokens: number): number => Math.floor(Math.log2(Math.max(1, paddedTokens)));

export class AdaptiveBatchPolicy {
  private readonly opts: Required<AdaptiveBatchingOptions>;
  private readonly ladder: number[];
  private readonly samples: Sample[] = [];
  private observed = 0;
  private ladderStep = 0;
  private model: CostModel | undefined;
  private speed = 1;
  private readonly arrivals: number[] = [];
  private readonly recentCosts: number[] = [];

  constructor(
    private readonly limits: BatchLimits,
    options: AdaptiveBatchingOptions = {},
  ) {
    this.ladder = sizeLadder(limits.maxBatchSize);
    this.opts = { ...DEFAULTS, warmupBatches: this.ladder.length, random: Math.random, ...options };
    const { window, warmupBatches, exploreRate, minWaitGain } = this.opts;
    if (!Number.isInteger(window) || window < 4) throw new Error('adaptive window must be an integer >= 4');
    if (!Number.isInteger(warmupBatches) || warmupBatches < 0) throw new Error('adaptive warmupBatches must be an integer >= 0');
    if (!(exploreRate >= 0 && exploreRate <= 1)) throw new Error('adaptive exploreRate must be in [0, 1]');
    if (!(minWaitGain >= 0)) throw new Error('adaptive minWaitGain must be >= 0');
  }

  /** The fitted cost model; undefined until a first fit succeeded. */
  get costModel(): CostModel | undefined {
    return this.model;
  }

  /** Whether warm-up is over and the fitted model (or, before any fit, the prior) decides. */
  get warmedUp(): boolean {
    return this.observed >= this.opts.warmupBatches;
  }

  /** Notes one input arriving at `atMs` with `cost` tokens (for the arrival rate and typical lengths). */
  recordArrival(atMs: number, cost: number): void {
    this.arrivals.push(atMs);
    this.recentCosts.push(cost);
    if (this.arrivals.length > ARRIVALS_KEPT) this.arrivals.shift();
    if (this.recentCosts.length > ARRIVALS_KEPT) this.recentCosts.shift();
  }

  /** Inputs per millisecond over the recent arrivals, decaying while none come. */
  arrivalRate(nowMs: number): number {
    const first = this.arrivals[0];
    if (first === undefined || this.arrivals.length < 2) return 0;
    return (this.arrivals.length - 1) / Math.max(1, nowMs - first);
  }

  /** Learns from one batch run. */
  observe(batch: BatchObservation): void {
    if (batch.failed || !(batch.durationMs >= 0) || batch.size < 1) return;
    // Durations are fitted at the machine's usual speed: divided by the speed of the
    // batches just before, so that a spell of contention (another process on the cores)
    // slows every shape alike instead of looking like the cost of whatever shape ran then.
    let ms = batch.durationMs;
    if (this.model) {
      const ratio = Math.min(5, Math.max(0.2, batch.durationMs / Math.max(1e-6, this.shapeCost(batch.size, batch.paddedTokens))));
      ms = batch.durationMs / this.speed;
      this.speed += SPEED_EWMA * (ratio - this.speed);
    }
    this.samples.push({ size: batch.size, padded: batch.paddedTokens, ms });
    if (this.samples.length > this.opts.window) this.samples.shift();
    this.observed++;
    this.model = fitCostModel(this.samples) ?? this.model;
  }

  /** How slow the machine runs now against the fitted model (1 = as fitted, 2 = twice as slow). */
  get slowdown(): number {
    return this.speed;
  }

  /** Predicted wall time of a run of `size` inputs and `paddedTokens` tokens now, in milliseconds. */
  predictMs(size: number, paddedTokens: number): number {
    return this.speed * this.shapeCost(size, paddedTokens);
  }

  /** The fitted cost of a shape at the machine's usual speed. */
  private shapeCost(size: number, paddedTokens: number): number {
    const m = this.model;
    // Before any fit: a unit of fixed cost per run plus padded tokens (sorted, unpadded, larger batches first).
    if (!m) return 1 + paddedTokens;
    const linear = m.fixedMs + m.perPaddedTokenMs * paddedTokens + m.perInputMs * size + m.perLongestTokenMs * (paddedTokens / Math.max(1, size));
    return linear * (m.correction[octave(paddedTokens)] ?? 1);
  }

  /** Picks the batch to run now, or how long to wait for more inputs. */
  decide(pending: PendingView, nowMs: number): BatchDecision {
    const { costs, oldest } = pending;
    if (costs.length === 0 || oldest < 0 || oldest >= costs.length) throw new Error('decide() needs pending inputs and the oldest among them');
    const prefix = [0];
    for (const c of costs) prefix.push((prefix[prefix.length - 1] ?? 0) + c);

    if (!this.warmedUp) {
      const target = this.ladder[this.ladderStep++ % this.ladder.length] ?? 1;
      return { run: true, ...this.leastPadded(costs, prefix, oldest, target), reason: 'warmup' };
    }

    let plan = this.bestPlan(costs, prefix).plan;
    let reason: 'best' | 'explore' = 'best';
    if (this.opts.exploreRate > 0 && this.opts.random() < this.opts.exploreRate) {
      // Half or twice the batch the plan would take, so the fit keeps seeing other shapes.
      const current = chunkHolding(partition(costs, plan), oldest);
      const size = current.end - current.start;
      const target = this.opts.random() < 0.5 ? Math.max(1, Math.floor(size / 2)) : Math.min(this.limits.maxBatchSize, size * 2);
      if (target !== size) {
        plan = { maxSize: target, maxTokens: this.limits.maxBatchTokens };
        reason = 'explore';
      }
    }
    const chunk = chunkHolding(partition(costs, plan), oldest);
    const best = { ...chunk, real: (prefix[chunk.end] ?? 0) - (prefix[chunk.start] ?? 0), padded: (chunk.end - chunk.start) * (costs[chunk.end - 1] ?? 0) };
    if (reason === 'best') {
      const waitMs = this.waitWorthIt(pending, best, nowMs);
      if (waitMs > 0) return { run: false, waitMs };
    }
    return { run: true, start: best.start, end: best.end, reason };
  }

  /**
   * The limits (a size, or a token budget) under which the pending inputs, cut in order of
   * length into consecutive batches as the static scheduler cuts them, take the least
   * predicted time per real token. Judging every batch the inputs will need, not only the
   * next one, is what keeps the choice honest: a batch that leaves its long inputs behind
   * only looks cheap until those run.
   */
  private bestPlan(costs: readonly number[], prefix: readonly number[]): { plan: Plan; rate: number } {
    const { maxBatchSize, maxBatchTokens } = this.limits;
    const plans: Plan[] = candidateSizes(Math.min(maxBatchSize, costs.length)).map((maxSize) => ({ maxSize, maxTokens: maxBatchTokens }));
    for (let budget = 2 ** Math.ceil(Math.log2(Math.max(1, costs[0] ?? 1))); budget < maxBatchTokens; budget *= 2) {
      plans.push({ maxSize: maxBatchSize, maxTokens: budget });
    }
    let best = { plan: plans[0] ?? { maxSize: 1, maxTokens: maxBatchTokens }, rate: -1 };
    for (const plan of plans) {
      let ms = 0;
      for (const c of partition(costs, plan)) ms += this.predictMs(c.end - c.start, (c.end - c.start) * (costs[c.end - 1] ?? 0));
      const rate = (prefix[costs.length] ?? 0) / Math.max(1e-9, ms);
      if (rate > best.rate) best = { plan, rate };
    }
    return best;
  }

  /** Real tokens per predicted millisecond. */
  private rate(w: Window): number {
    return w.real / Math.max(1e-6, this.predictMs(w.end - w.start, w.padded));
  }

  private fits(size: number, longest: number): boolean {
    return size === 1 || (size <= this.limits.maxBatchSize && size * longest <= this.limits.maxBatchTokens);
  }

  /** Windows `[start, start + size)` that hold `oldest` and fit the caps (at most 32 of them, spread evenly). */
  private windowsOfSize(costs: readonly number[], prefix: readonly number[], oldest: number, size: number): Window[] {
    const first = Math.max(0, oldest - size + 1);
    const last = Math.min(oldest, costs.length - size);
    const out: Window[] = [];
    if (last < first) return out;
    const step = Math.max(1, Math.ceil((last - first + 1) / 32));
    for (let start = first; start <= last; start += step) {
      const end = start + size;
      const longest = costs[end - 1] ?? 0;
      if (!this.fits(size, longest)) continue;
      out.push({ start, end, real: (prefix[end] ?? 0) - (prefix[start] ?? 0), padded: size * longest });
    }
    return out;
  }

  /** The window holding `oldest` with the least padding, of the largest size up to `target` that fits. */
  private leastPadded(costs: readonly number[], prefix: readonly number[], oldest: number, target: number): Window {
    for (let size = Math.min(target, costs.length, this.limits.maxBatchSize); size > 1; size--) {
      let best: Window | undefined;
      for (const w of this.windowsOfSize(costs, prefix, oldest, size)) {
        if (!best || w.padded - w.real < best.padded - best.real) best = w;
      }
      if (best) return best;
    }
    const c = costs[oldest] ?? 0;
    return { start: oldest, end: oldest + 1, real: c, padded: c };
  }

  /**
   * Milliseconds worth waiting for more inputs before running `best`, or 0 to run now.
   * The inputs expected to arrive meanwhile (at the recent rate) are taken to be like the
   * recent ones; the best batch among those and the pending ones, counting the idle wait,
   * is compared with running `best` now.
   */
  private waitWorthIt(pending: PendingView, best: Window, nowMs: number): number {
    const { costs, oldest, waitedMs, final } = pending;
    const remaining = this.limits.maxDelayMs - waitedMs;
    const room = this.limits.maxBatchSize - costs.length;
    // Only when the best batch is everything pending and more inputs would fit.
    if (final || remaining <= 0 || room <= 0 || best.start !== 0 || best.end !== costs.length) return 0;
    const lambda = this.arrivalRate(nowMs);
    let waitFor = 0;
    let bestWaitRate = this.rate(best) * (1 + this.opts.minWaitGain);
    for (const fraction of [0.125, 0.25, 0.5, 1]) {
      const w = remaining * fraction;
      const extra = Math.min(room, Math.floor(lambda * w), this.recentCosts.length);
      if (extra < 1) continue;
      const merged = [
        ...costs.map((c, i) => ({ c, oldest: i === oldest })),
        ...this.recentCosts.slice(-extra).map((c) => ({ c, oldest: false })),
      ].sort((a, b) => a.c - b.c);
      const mergedCosts = merged.map((m) => m.c);
      const mergedPrefix = [0];
      for (const c of mergedCosts) mergedPrefix.push((mergedPrefix[mergedPrefix.length - 1] ?? 0) + c);
      const { plan } = this.bestPlan(mergedCosts, mergedPrefix);
      const c = chunkHolding(partition(mergedCosts, plan), merged.findIndex((m) => m.oldest));
      const size = c.end - c.start;
      const real = (mergedPrefix[c.end] ?? 0) - (mergedPrefix[c.start] ?? 0);
      const r = real / (w + this.predictMs(size, size * (mergedCosts[c.end - 1] ?? 0)));
      if (r > bestWaitRate) {
        bestWaitRate = r;
        waitFor = w;
      }
    }
    return waitFor;
  }
}

/** Limits a batch is cut under: at most `maxSize` inputs and `maxTokens` tokens after padding. */
interface Plan {
  maxSize: number;
  maxTokens: number;
}

/**
 * Cuts costs (sorted ascending) into consecutive batches under `plan`, as the static
 * scheduler does: a batch closes when full or when one more input would pass the budget.
 */
function partition(costs: readonly number[], plan: Plan): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let start = 0;
  for (let i = 0; i < costs.length; i++) {
    const size = i - start;
    if (size > 0 && (size === plan.maxSize || (size + 1) * (costs[i] ?? 0) > plan.maxTokens)) {
      out.push({ start, end: i });
      start = i;
    }
  }
  if (start < costs.length) out.push({ start, end: costs.length });
  return out;
}

function chunkHolding(chunks: readonly { start: number; end: number }[], index: number): { start: number; end: number } {
  return chunks.find((c) => c.start <= index && index < c.end) ?? { start: index, end: index + 1 };
}

/** Sizes 1..16, then about 25% apart, then the largest. */
function candidateSizes(max: number): number[] {
  const sizes: number[] = [];
  for (let s = 1; s <= Math.min(16, max); s++) sizes.push(s);
  for (let s = 20; s < max; s = Math.ceil(s * 1.25)) sizes.push(s);
  if (max > 16) sizes.push(max);
  return sizes;
}

/**
 * Fits `ms ≈ fixed + perToken · padded + perInput · size + perLongest · longest` with
 * non-negative coefficients (the least-squares fit over every subset of the four terms
 * whose coefficients are all non-negative, with the smallest error), then the correction
 * per octave of padded tokens.
 */
export function fitCostModel(samples: readonly BatchObservation[] | readonly Sample[]): CostModel | undefined {
  const rows = samples.map((s) => ('ms' in s ? s : { size: s.size, padded: s.paddedTokens, ms: s.durationMs }));
  if (rows.length < 2) return undefined;
  const features = (r: Sample): number[] => [1, r.padded, r.size, r.padded / Math.max(1, r.size)];
  // Scale columns to comparable magnitudes before solving.
  const scale = [0, 1, 2, 3].map((j) => Math.sqrt(rows.reduce((s, r) => s + (features(r)[j] ?? 0) ** 2, 0) / rows.length) || 1);
  let best: { coef: number[]; sse: number } | undefined;
  for (let mask = 1; mask < 16; mask++) {
    const cols = [0, 1, 2, 3].filter((j) => mask & (1 << j));
    if (rows.length < cols.length) continue;
    const x = rows.map((r) => cols.map((j) => (features(r)[j] ?? 0) / (scale[j] ?? 1)));
    const coefScaled = leastSquares(
      x,
      rows.map((r) => r.ms),
    );
    if (!coefScaled || coefScaled.some((c) => c < 0)) continue;
    const coef = [0, 0, 0, 0];
    cols.forEach((j, k) => (coef[j] = (coefScaled[k] ?? 0) / (scale[j] ?? 1)));
    const sse = rows.reduce((s, r) => s + (r.ms - dot(coef, features(r))) ** 2, 0);
    if (!best || sse < best.sse) best = { coef, sse };
  }
  if (!best) return undefined;
  const [fixedMs = 0, perPaddedTokenMs = 0, perInputMs = 0, perLongestTokenMs = 0] = best.coef;
  const byOctave = new Map<number, { observed: number; predicted: number; n: number }>();
  for (const r of rows) {
    const o = octave(r.padded);
    const acc = byOctave.get(o) ?? { observed: 0, predicted: 0, n: 0 };
    acc.observed += r.ms;
    acc.predicted += dot(best.coef, features(r));
    acc.n++;
    byOctave.set(o, acc);
  }
  const correction: Record<number, number> = {};
  for (const [o, acc] of byOctave) {
    const prior = (OCTAVE_PRIOR * acc.predicted) / acc.n;
    if (acc.predicted > 0) correction[o] = Math.min(3, Math.max(0.5, (acc.observed + prior) / (acc.predicted + prior)));
  }
  return { fixedMs, perPaddedTokenMs, perInputMs, perLongestTokenMs, correction, samples: rows.length };
}

function dot(a: readonly number[], b: readonly number[]): number {
  return a.reduce((s, v, i) => s + v * (b[i] ?? 0), 0);
}

/** Solves the normal equations with a tiny ridge; undefined when singular. */
function leastSquares(x: readonly number[][], y: readonly number[]): number[] | undefined {
  const k = x[0]?.length ?? 0;
  const a = Array.from({ length: k }, () => new Array<number>(k + 1).fill(0));
  x.forEach((row, i) => {
    for (let p = 0; p < k; p++) {
      const ap = a[p] as number[];
      for (let q = 0; q < k; q++) ap[q] = (ap[q] ?? 0) + (row[p] ?? 0) * (row[q] ?? 0);
      ap[k] = (ap[k] ?? 0) + (row[p] ?? 0) * (y[i] ?? 0);
    }
  });
  for (let p = 0; p < k; p++) (a[p] as number[])[p] = ((a[p] as number[])[p] ?? 0) * (1 + 1e-9) + 1e-12;
  // Gaussian elimination with partial pivoting.
  for (let c = 0; c < k; c++) {
    let pivot = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r]?.[c] ?? 0) > Math.abs(a[pivot]?.[c] ?? 0)) pivot = r;
    [a[c], a[pivot]] = [a[pivot] as number[], a[c] as number[]];
    const row = a[c] as number[];
    const diag = row[c] ?? 0;
    if (Math.abs(diag) < 1e-9 * x.length) return undefined;
    for (let r = c + 1; r < k; r++) {
      const other = a[r] as number[];
      const f = (other[c] ?? 0) / diag;
      for (let q = c; q <= k; q++) other[q] = (other[q] ?? 0) - f * (row[q] ?? 0);
    }
  }
  const out = new Array<number>(k).fill(0);
  for (let r = k - 1; r >= 0; r--) {
    const row = a[r] as number[];
    let s = row[k] ?? 0;
    for (let q = r + 1; q < k; q++) s -= (row[q] ?? 0) * (out[q] ?? 0);
    out[r] = s / (row[r] ?? 1);
  }
  return out;
}
