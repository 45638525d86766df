import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveBatchPolicy, fitCostModel, type BatchLimits } from '../src/adaptive-batching.js';
import { BatchScheduler } from '../src/batch-scheduler.js';

/** Synthetic cost of one batch run, in (virtual) milliseconds. */
type CostFn = (size: number, paddedTokens: number) => number;

/**
 * A small CPU, as measured on 2 cores: cost follows padded tokens, plus about one row's
 * worth per run (small matrices use the cores less well); little fixed cost.
 */
const cpuLike: CostFn = (size, padded) => 0.3 + 0.11 * padded + 1.1 * size + 0.11 * (padded / size);
/** A GPU: a large fixed cost per run (launch, sync), tokens nearly free. */
const gpuLike: CostFn = (size, padded) => 8 + 0.0005 * padded + 0.01 * size;

/** Deterministic numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Token counts spread like reviews: log-uniform from 10 to 300. */
function lengths(n: number, seed = 7): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.round(10 * 30 ** r()));
}

const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

/**
 * Runs `batches` decisions on a pool of pending inputs that refills to `poolSize`, charging
 * each batch `cost` and feeding it back to the policy: what the scheduler does, without a clock.
 */
function drive(policy: AdaptiveBatchPolicy, cost: CostFn, batches: number, poolSize = 64): number {
  const source = lengths(batches * 64, 11);
  let next = 0;
  let pool: number[] = [];
  let now = 0;
  for (let i = 0; i < batches; i++) {
    while (pool.length < poolSize) {
      const c = source[next++ % source.length] ?? 1;
      pool.push(c);
      policy.recordArrival(now, c);
    }
    const costs = sorted(pool);
    const decision = policy.decide({ costs, oldest: costs.indexOf(pool[0] ?? 0), waitedMs: 100, final: false }, now);
    if (!decision.run) throw new Error('a full pool that waited past the delay must run');
    const batch = costs.slice(decision.start, decision.end);
    const padded = batch.length * Math.max(...batch);
    const ms = cost(batch.length, padded);
    now += ms;
    policy.observe({ size: batch.length, paddedTokens: padded, durationMs: ms });
    for (const c of batch) pool.splice(pool.indexOf(c), 1);
  }
  return now;
}

/** Records 64 arrivals of `cost` tokens, `gapMs` apart, ending at the returned time. */
function arrive(policy: AdaptiveBatchPolicy, from: number, gapMs: number, cost = 60): number {
  let t = from;
  for (let i = 0; i < 64; i++) policy.recordArrival((t += gapMs), cost);
  return t;
}

/** Lets the policy run every input of `pool` (nothing more arrives); returns the true cost, batch sizes and padding. */
function drain(policy: AdaptiveBatchPolicy, cost: CostFn, pool: number[]): { cost: number; sizes: number[]; paddedPerBatch: number[]; padding: number } {
  let left = [...pool];
  let total = 0;
  let padded = 0;
  const sizes: number[] = [];
  const paddedPerBatch: number[] = [];
  while (left.length > 0) {
    const costs = sorted(left);
    const d = policy.decide({ costs, oldest: costs.indexOf(left[0] ?? 0), waitedMs: 100, final: true }, 0);
    if (!d.run) throw new Error('a final pool must run');
    const batch = costs.slice(d.start, d.end);
    const p = batch.length * Math.max(...batch);
    total += cost(batch.length, p);
    padded += p;
    sizes.push(batch.length);
    paddedPerBatch.push(p);
    for (const c of batch) left.splice(left.indexOf(c), 1);
  }
  return { cost: total, sizes, paddedPerBatch, padding: padded / pool.reduce((a, b) => a + b, 0) };
}

const LIMITS: BatchLimits = { maxBatchSize: 32, maxBatchTokens: 32 * 512, maxDelayMs: 5 };

describe('fitCostModel', () => {
  it('recovers fixed, per-token, per-input and per-longest-token costs from observed batches', () => {
    const samples = [1, 2, 4, 8, 16, 32].flatMap((size) =>
      [20, 80, 200].map((len) => ({ size, paddedTokens: size * len, durationMs: 3 + 0.1 * size * len + 0.7 * size + 0.05 * len })),
    );
    const model = fitCostModel(samples);
    expect(model?.fixedMs).toBeCloseTo(3, 4);
    expect(model?.perPaddedTokenMs).toBeCloseTo(0.1, 4);
    expect(model?.perInputMs).toBeCloseTo(0.7, 4);
    expect(model?.perLongestTokenMs).toBeCloseTo(0.05, 4);
  });

  it('never fits a negative cost, whatever the noise', () => {
    const r = rng(3);
    const samples = Array.from({ length: 50 }, () => {
      const size = 1 + Math.floor(r() * 8);
      return { size, paddedTokens: size * 50, durationMs: 10 * size * (0.5 + r()) };
    });
    const model = fitCostModel(samples);
    expect(model).toBeDefined();
    for (const v of [model?.fixedMs, model?.perPaddedTokenMs, model?.perInputMs, model?.perLongestTokenMs]) expect(v).toBeGreaterThanOrEqual(0);
  });
});

describe('AdaptiveBatchPolicy', () => {
  it('explores the size ladder first, then trusts the fitted model', () => {
    const policy = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0, random: rng(1), warmupBatches: 12 });
    const sizes: number[] = [];
    const costs = new Array<number>(64).fill(40);
    for (let i = 0; i < 12; i++) {
      const d = policy.decide({ costs, oldest: 0, waitedMs: 0, final: false }, 0);
      if (!d.run) throw new Error('warm-up never waits');
      expect(d.reason).toBe('warmup');
      sizes.push(d.end - d.start);
      policy.observe({ size: d.end - d.start, paddedTokens: (d.end - d.start) * 40, durationMs: cpuLike(d.end - d.start, (d.end - d.start) * 40) });
    }
    expect(sizes).toEqual([1, 2, 4, 8, 16, 32, 1, 2, 4, 8, 16, 32]);
    expect(policy.warmedUp).toBe(true);
    const d = policy.decide({ costs, oldest: 0, waitedMs: 0, final: false }, 0);
    expect(d).toMatchObject({ run: true, reason: 'best' });
  });

  it('on a CPU-like device drains mixed lengths in small batches of near-equal lengths, cheaper than batch 1 or the cap', () => {
    const policy = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0, random: rng(2) });
    drive(policy, cpuLike, 60);
    const { cost, sizes, padding } = drain(policy, cpuLike, lengths(64, 99));
    expect(Math.max(...sizes)).toBeLessThan(LIMITS.maxBatchSize);
    expect(padding).toBeLessThan(1.2);
    const costs = sorted(lengths(64, 99));
    const one = costs.reduce((s, c) => s + cpuLike(1, c), 0);
    const cap = [0, 32].reduce((s, i) => s + cpuLike(32, 32 * (costs[i + 31] ?? 0)), 0);
    expect(cost).toBeLessThan(one);
    expect(cost).toBeLessThan(cap);
  });

  it('learns a cost cliff the linear terms miss (per-token cost up 80% past 1024 padded tokens) and stays under it', () => {
    const cliff: CostFn = (size, padded) => cpuLike(size, padded) * (padded > 1024 ? 1.8 : 1);
    const policy = new AdaptiveBatchPolicy(LIMITS, { random: rng(4) });
    drive(policy, cliff, 400);
    // Near-equal lengths: without the cliff, the fullest batch would be cheapest.
    const pool = Array.from({ length: 64 }, (_, i) => 100 + (i % 5));
    const { sizes, paddedPerBatch } = drain(policy, cliff, pool);
    expect(Math.max(...paddedPerBatch)).toBeLessThanOrEqual(1024);
    expect(Math.max(...sizes)).toBeGreaterThan(4);
  });

  it('on a GPU-like device (large fixed cost per run) fills batches to the cap', () => {
    const policy = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0, random: rng(3) });
    drive(policy, gpuLike, 60);
    const pool = lengths(64, 99);
    const costs = sorted(pool);
    const d = policy.decide({ costs, oldest: costs.indexOf(pool[0] ?? 0), waitedMs: 0, final: false }, 0);
    expect(d.run && d.end - d.start).toBe(LIMITS.maxBatchSize);
  });

  it('runs a lone input at once on a CPU-like device when inputs arrive at 100/s, above what it serves one by one', () => {
    const policy = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0 });
    const end = drive(policy, cpuLike, 60);
    // About 70 inputs of 60 tokens a second one by one; at 100/s hardly one more comes within the delay.
    const now = arrive(policy, end, 10);
    const d = policy.decide({ costs: [60], oldest: 0, waitedMs: 0, final: false }, now);
    expect(d).toMatchObject({ run: true, start: 0, end: 1 });
  });

  it('on a GPU-like device waits (within maxDelayMs) for more inputs only when they arrive fast enough to pay', () => {
    const fast = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0 });
    const now = arrive(fast, drive(fast, gpuLike, 60), 0.05);
    const waiting = fast.decide({ costs: [60], oldest: 0, waitedMs: 0, final: false }, now);
    expect(waiting.run).toBe(false);
    if (!waiting.run) {
      expect(waiting.waitMs).toBeGreaterThan(0);
      expect(waiting.waitMs).toBeLessThanOrEqual(LIMITS.maxDelayMs);
    }
    // Past the delay, or with nothing more to come, it runs.
    expect(fast.decide({ costs: [60], oldest: 0, waitedMs: LIMITS.maxDelayMs, final: false }, now + 5).run).toBe(true);
    expect(fast.decide({ costs: [60], oldest: 0, waitedMs: 0, final: true }, now).run).toBe(true);

    // One input every 50 ms: none is expected within the delay, so waiting can't pay.
    const slow = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0 });
    const later = arrive(slow, drive(slow, gpuLike, 60), 50);
    expect(slow.decide({ costs: [60], oldest: 0, waitedMs: 0, final: false }, later).run).toBe(true);
  });

  it('never passes the caps and always takes the oldest input', () => {
    const limits = { maxBatchSize: 16, maxBatchTokens: 2000, maxDelayMs: 5 };
    const r = rng(5);
    for (const cost of [cpuLike, gpuLike]) {
      const policy = new AdaptiveBatchPolicy(limits, { exploreRate: 0.3, random: r });
      for (let i = 0; i < 300; i++) {
        const costs = sorted(lengths(1 + Math.floor(r() * 80), i));
        const oldest = Math.floor(r() * costs.length);
        const d = policy.decide({ costs, oldest, waitedMs: 10, final: false }, i);
        if (!d.run) throw new Error('past the delay it runs');
        const size = d.end - d.start;
        expect(d.start).toBeLessThanOrEqual(oldest);
        expect(d.end).toBeGreaterThan(oldest);
        expect(size).toBeLessThanOrEqual(limits.maxBatchSize);
        if (size > 1) expect(size * (costs[d.end - 1] ?? 0)).toBeLessThanOrEqual(limits.maxBatchTokens);
        policy.observe({ size, paddedTokens: size * (costs[d.end - 1] ?? 0), durationMs: cost(size, size * (costs[d.end - 1] ?? 0)) });
      }
    }
  });
});

describe('BatchScheduler with the adaptive policy (virtual clock)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /**
   * Pushes `total` inputs through a scheduler the way the worker does (a fixed number of
   * jobs in flight, 2 x maxBatchSize, each replaced when it finishes), with batch runs that
   * take `cost` virtual milliseconds. Returns inputs per virtual second.
   */
  async function throughput(
    cost: CostFn,
    settings: { maxBatchSize: number; maxBatchTokens: number; adaptive: boolean },
    total = 10_000,
    slowdown: (nowMs: number) => number = () => 1,
  ): Promise<number> {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'], loopLimit: 1_000_000 });
    const inputs = lengths(total, 21);
    const scheduler = new BatchScheduler<number, number, number>({
      prepare: (n) => n,
      cost: (n) => n,
      run: async (batch) => {
        const ms = cost(batch.length, batch.length * Math.max(...batch)) * slowdown(performance.now());
        await new Promise((r) => setTimeout(r, ms));
        return batch;
      },
      maxDelayMs: 5,
      ...settings,
      ...(settings.adaptive ? { adaptive: { random: rng(9) } } : {}),
    });
    let next = 0;
    const client = async (): Promise<void> => {
      while (next < inputs.length) {
        const n = inputs[next++] ?? 1;
        expect(await scheduler.submit(n)).toBe(n);
      }
    };
    const started = performance.now();
    const done = Promise.all(Array.from({ length: 2 * settings.maxBatchSize }, client));
    await vi.runAllTimersAsync();
    await done;
    return (total / (performance.now() - started)) * 1000;
  }

  it.each([
    ['CPU-like', cpuLike],
    ['GPU-like', gpuLike],
  ])('on a %s device, the adaptive default does at least as well as the better of batch 1 and fixed large batches', async (_name, cost) => {
    const one = await throughput(cost, { maxBatchSize: 1, maxBatchTokens: 8192, adaptive: false });
    const large = await throughput(cost, { maxBatchSize: 64, maxBatchTokens: 64 * 512, adaptive: false });
    const adaptive = await throughput(cost, { maxBatchSize: 64, maxBatchTokens: 64 * 512, adaptive: true });
    expect(adaptive).toBeGreaterThanOrEqual(0.97 * Math.max(one, large));
  });

  it('still does when the machine slows down 3x in spells (another process taking the cores)', async () => {
    // 0.7 s at full speed, then 0.5 s three times slower, and so on (virtual time).
    const spells = (now: number): number => (now % 1200 < 700 ? 1 : 3);
    const one = await throughput(cpuLike, { maxBatchSize: 1, maxBatchTokens: 8192, adaptive: false }, 10_000, spells);
    const large = await throughput(cpuLike, { maxBatchSize: 64, maxBatchTokens: 64 * 512, adaptive: false }, 10_000, spells);
    const adaptive = await throughput(cpuLike, { maxBatchSize: 64, maxBatchTokens: 64 * 512, adaptive: true }, 10_000, spells);
    expect(adaptive).toBeGreaterThanOrEqual(0.97 * Math.max(one, large));
  });

  it('runs an input that finds the session idle at once, without waiting for maxDelayMs', async () => {
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => s,
      cost: (s) => s.length,
      run: async (batch) => batch.map((s) => s.toUpperCase()),
      maxDelayMs: 3_600_000,
    });
    // With a one-hour delay, this resolves only if the scheduler does not wait.
    expect(await scheduler.submit('alone')).toBe('ALONE');
  });

  it('coalesces inputs submitted together, gives each caller its own result, and isolates a failing input', async () => {
    const runs: string[][] = [];
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => s,
      cost: (s) => s.length,
      run: async (batch) => {
        runs.push(batch);
        if (batch.includes('poison')) throw new Error('session failed');
        return batch.map((s) => s.toUpperCase());
      },
      adaptive: { warmupBatches: 0 },
    });
    const inputs = ['a', 'poison', 'b', 'c'];
    const settled = await Promise.allSettled(inputs.map((s) => scheduler.submit(s)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(settled.filter((s) => s.status === 'fulfilled').map((s) => s.value)).toEqual(['A', 'B', 'C']);
    expect(runs[0]?.length).toBeGreaterThan(1);
    expect(runs).toContainEqual(['poison']);
  });

  it('never mixes group keys, and close() runs what is pending', async () => {
    const batches: string[][] = [];
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => s,
      cost: (s) => s.length,
      groupKey: (s) => s.slice(0, 1),
      run: async (batch) => {
        batches.push(batch);
        return batch;
      },
    });
    const all = ['a1', 'b1', 'a2', 'b2', 'a3'].map((s) => scheduler.submit(s));
    await scheduler.close();
    expect(await Promise.all(all)).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
    for (const b of batches) expect(new Set(b.map((s) => s[0])).size).toBe(1);
    await expect(scheduler.submit('late')).rejects.toThrow(/closed/);
  });
});
