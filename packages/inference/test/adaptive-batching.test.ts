import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveBatchPolicy, fitCostModel, type BatchLimits } from '../src/adaptive-batching.js';
import { BatchScheduler } from '../src/batch-scheduler.js';

/** Synthetic cost of one batch run, in (virtual) milliseconds. */
type CostFn = (size: number, paddedTokens: number) => number;

/** A small CPU: compute is the limit, so cost follows padded tokens; little fixed cost per run. */
const cpuLike: CostFn = (size, padded) => 1.5 + 0.16 * padded + 0.5 * size;
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

const LIMITS: BatchLimits = { maxBatchSize: 32, maxBatchTokens: 32 * 512, maxDelayMs: 5 };

describe('fitCostModel', () => {
  it('recovers fixed, per-token and per-input costs from observed batches', () => {
    const samples = [1, 2, 4, 8, 16, 32].flatMap((size) =>
      [20, 80, 200].map((len) => ({ size, paddedTokens: size * len, durationMs: 3 + 0.1 * size * len + 0.7 * size })),
    );
    const model = fitCostModel(samples);
    expect(model?.fixedMs).toBeCloseTo(3, 6);
    expect(model?.perPaddedTokenMs).toBeCloseTo(0.1, 6);
    expect(model?.perInputMs).toBeCloseTo(0.7, 6);
  });

  it('never fits a negative cost, whatever the noise', () => {
    const r = rng(3);
    const samples = Array.from({ length: 50 }, () => {
      const size = 1 + Math.floor(r() * 8);
      return { size, paddedTokens: size * 50, durationMs: 10 * size * (0.5 + r()) };
    });
    const model = fitCostModel(samples);
    expect(model).toBeDefined();
    for (const v of [model?.fixedMs, model?.perPaddedTokenMs, model?.perInputMs]) expect(v).toBeGreaterThanOrEqual(0);
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

  it('on a CPU-like device (cost follows padded tokens) takes small batches of near-equal lengths', () => {
    const policy = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0, random: rng(2) });
    drive(policy, cpuLike, 60);
    const pool = lengths(64, 99);
    const costs = sorted(pool);
    const d = policy.decide({ costs, oldest: costs.indexOf(pool[0] ?? 0), waitedMs: 100, final: false }, 0);
    if (!d.run) throw new Error('expected a batch');
    const batch = costs.slice(d.start, d.end);
    const padded = batch.length * Math.max(...batch);
    const real = batch.reduce((a, b) => a + b, 0);
    expect(batch.length).toBeLessThan(LIMITS.maxBatchSize);
    expect(padded / real).toBeLessThan(1.1);
    // And that beats the static choice (the cap's worth of sorted inputs) on the true cost.
    const staticBatch = costs.slice(0, LIMITS.maxBatchSize);
    const staticRate = staticBatch.reduce((a, b) => a + b, 0) / cpuLike(32, 32 * Math.max(...staticBatch));
    expect(real / cpuLike(batch.length, padded)).toBeGreaterThan(staticRate);
  });

  it('on a GPU-like device (large fixed cost per run) fills batches to the cap', () => {
    const policy = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0, random: rng(3) });
    drive(policy, gpuLike, 60);
    const pool = lengths(64, 99);
    const costs = sorted(pool);
    const d = policy.decide({ costs, oldest: costs.indexOf(pool[0] ?? 0), waitedMs: 0, final: false }, 0);
    expect(d.run && d.end - d.start).toBe(LIMITS.maxBatchSize);
  });

  it('runs a lone input at once on a CPU-like device, even with inputs arriving far faster than it can serve', () => {
    const policy = new AdaptiveBatchPolicy(LIMITS, { exploreRate: 0 });
    const end = drive(policy, cpuLike, 60);
    // One input a millisecond (1000/s), lengths like the pending one: no padding to fear.
    const now = arrive(policy, end, 1);
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
  ): Promise<number> {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'], loopLimit: 1_000_000 });
    const inputs = lengths(total, 21);
    const scheduler = new BatchScheduler<number, number, number>({
      prepare: (n) => n,
      cost: (n) => n,
      run: async (batch) => {
        await new Promise((r) => setTimeout(r, cost(batch.length, batch.length * Math.max(...batch))));
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
