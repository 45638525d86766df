import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchScheduler, type BatchSchedulerOptions } from '../src/batch-scheduler.js';

/** A scheduler over strings whose cost is their length; `run` upper-cases and records each batch. */
function makeScheduler(opts: Partial<BatchSchedulerOptions<string, string, string>> = {}) {
  const batches: string[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const scheduler = new BatchScheduler<string, string, string>({
    prepare: (s) => s,
    cost: (s) => s.length,
    run: async (batch) => {
      batches.push(batch);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await Promise.resolve();
      inFlight--;
      return batch.map((s) => s.toUpperCase());
    },
    maxDelayMs: 60_000,
    adaptive: false,
    ...opts,
  });
  return { scheduler, batches, maxInFlight: () => maxInFlight };
}

/** Like makeScheduler, but the first batch holds the session until `release()`, so later inputs pile up. */
function makeGatedScheduler(opts: Partial<BatchSchedulerOptions<string, string, string>> = {}) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const batches: string[][] = [];
  const scheduler = new BatchScheduler<string, string, string>({
    prepare: (s) => s,
    cost: (s) => s.length,
    run: async (batch) => {
      batches.push(batch);
      if (batches.length === 1) await gate;
      return batch.map((s) => s.toUpperCase());
    },
    maxDelayMs: 0,
    adaptive: false,
    ...opts,
  });
  const blocker = scheduler.submit('blocker');
  return { scheduler, batches, release, blocker };
}

afterEach(() => {
  vi.useRealTimers();
});

// These tests pin the static limits (`adaptive: false`); the adaptive default is covered
// in adaptive-batching.test.ts.
describe('BatchScheduler', () => {
  it('flushes as soon as maxBatchSize inputs are pending, without waiting for the delay', async () => {
    const { scheduler, batches } = makeScheduler({ maxBatchSize: 4 });
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((s) => scheduler.submit(s)));
    expect(results).toEqual(['A', 'B', 'C', 'D']);
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(4);
  });

  it('flushes when one more input would pass the padded token budget', async () => {
    const { scheduler, batches } = makeScheduler({ maxBatchSize: 100, maxBatchTokens: 10 });
    const first = [scheduler.submit('aaaa'), scheduler.submit('bbbb')]; // 2 x 4 = 8 tokens
    await Promise.resolve();
    expect(batches).toHaveLength(0);
    const third = scheduler.submit('cccc'); // 3 x 4 = 12 > 10
    expect(await Promise.all(first)).toEqual(['AAAA', 'BBBB']);
    expect(batches).toEqual([['aaaa', 'bbbb']]);
    expect(scheduler.pendingCount).toBe(1);
    await scheduler.close();
    expect(await third).toBe('CCCC');
  });

  it('counts the budget after padding: a long input does not share a batch with short ones past the budget', async () => {
    const { scheduler, batches } = makeScheduler({ maxBatchSize: 100, maxBatchTokens: 20 });
    const all = ['a', 'b', 'c', 'x'.repeat(15)].map((s) => scheduler.submit(s));
    await scheduler.close();
    await Promise.all(all);
    // 4 x 15 = 60 > 20, so the long one runs apart from the three short ones.
    expect(batches.map((b) => b.length).sort()).toEqual([1, 3]);
    expect(batches.every((b) => b.length * Math.max(...b.map((s) => s.length)) <= 20)).toBe(true);
  });

  it('flushes a partial batch when the oldest input has waited maxDelayMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const { scheduler, batches } = makeScheduler({ maxBatchSize: 8, maxDelayMs: 20 });
    const result = scheduler.submit('late');
    await vi.advanceTimersByTimeAsync(19);
    expect(batches).toHaveLength(0);
    const second = scheduler.submit('later');
    await vi.advanceTimersByTimeAsync(1);
    expect(batches).toEqual([['late', 'later']]);
    expect(await result).toBe('LATE');
    expect(await second).toBe('LATER');
  });

  it('fails only the input whose preprocessing throws', async () => {
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => {
        if (s === 'bad') throw new Error('cannot tokenize');
        return s;
      },
      cost: (s) => s.length,
      run: async (batch) => batch.map((s) => s.toUpperCase()),
      maxBatchSize: 3,
      maxDelayMs: 60_000,
      adaptive: false,
    });
    const settled = await Promise.allSettled(['one', 'bad', 'two', 'six'].map((s) => scheduler.submit(s)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(settled[1]).toMatchObject({ reason: { message: 'cannot tokenize' } });
    expect(settled.filter((s) => s.status === 'fulfilled').map((s) => s.value)).toEqual(['ONE', 'TWO', 'SIX']);
  });

  it('isolates an input that makes the batch run throw; the others still succeed', async () => {
    const runs: string[][] = [];
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => s,
      cost: () => 1,
      run: async (batch) => {
        runs.push(batch);
        if (batch.includes('poison')) throw new Error('session failed');
        return batch.map((s) => s.toUpperCase());
      },
      maxBatchSize: 4,
      maxDelayMs: 60_000,
      adaptive: false,
    });
    const settled = await Promise.allSettled(['a', 'poison', 'b', 'c'].map((s) => scheduler.submit(s)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(runs[0]).toHaveLength(4);
    expect(runs).toContainEqual(['poison']);
  });

  it('gives every caller its own result although batches are sorted by length', async () => {
    const { scheduler, batches, release, blocker } = makeGatedScheduler({ maxBatchSize: 2 });
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const inputs = ['long text here', 'a', 'medium one', 'bb', 'zz top', 'c'];
    const promises = inputs.map((s) => scheduler.submit(s));
    release();
    expect(await blocker).toBe('BLOCKER');
    expect(await Promise.all(promises)).toEqual(inputs.map((s) => s.toUpperCase()));
    // Batches were formed by length, not by arrival.
    expect(batches.slice(1)).toContainEqual(['a', 'c']);
  });

  it('groups similar lengths to cut padding', async () => {
    const { scheduler, batches, release } = makeGatedScheduler({ maxBatchSize: 2 });
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const all = ['x'.repeat(10), 'y', 'z'.repeat(10), 'w'].map((s) => scheduler.submit(s));
    release();
    await Promise.all(all);
    expect(batches.slice(1).map((b) => b.map((s) => s.length)).sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0))).toEqual([
      [1, 1],
      [10, 10],
    ]);
  });

  it('runs one batch at a time and fills the next one while it runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const batches: string[][] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => s,
      cost: () => 1,
      run: async (batch) => {
        batches.push(batch);
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        if (batches.length === 1) await gate;
        inFlight--;
        return batch;
      },
      maxBatchSize: 8,
      maxDelayMs: 0,
      adaptive: false,
    });
    const first = scheduler.submit('first');
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const rest = ['r1', 'r2', 'r3'].map((s) => scheduler.submit(s));
    expect(batches).toHaveLength(1);
    release();
    await Promise.all([first, ...rest]);
    expect(maxInFlight).toBe(1);
    expect(batches).toEqual([['first'], ['r1', 'r2', 'r3']]);
  });

  it('starts the next batch before the callers of the finished one continue', async () => {
    const { scheduler, batches, release, blocker } = makeGatedScheduler({ maxBatchSize: 8 });
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const next = scheduler.submit('next');
    release();
    // When the first caller resumes, the session already holds the next batch.
    await blocker;
    expect(batches).toEqual([['blocker'], ['next']]);
    expect(await next).toBe('NEXT');
  });

  it('still answers every caller when the onBatch callback throws', async () => {
    const { scheduler } = makeScheduler({
      maxBatchSize: 2,
      onBatch: () => {
        throw new Error('metrics broke');
      },
    });
    expect(await Promise.all([scheduler.submit('a'), scheduler.submit('b')])).toEqual(['A', 'B']);
  });

  it('close() runs what is pending at once and refuses new inputs', async () => {
    const { scheduler, batches } = makeScheduler({ maxBatchSize: 10 });
    const pending = scheduler.submit('waiting');
    await scheduler.close();
    expect(await pending).toBe('WAITING');
    expect(batches).toEqual([['waiting']]);
    await expect(scheduler.submit('too late')).rejects.toThrow(/closed/);
  });

  it('never mixes inputs with different group keys in one batch', async () => {
    const { scheduler, batches, release } = makeGatedScheduler({ maxBatchSize: 8, groupKey: (s) => s.slice(0, 1) });
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const all = ['a1', 'b1', 'a2', 'b2', 'a3'].map((s) => scheduler.submit(s));
    release();
    await Promise.all(all);
    expect(batches.slice(1).map((b) => [...b].sort()).sort()).toEqual([
      ['a1', 'a2', 'a3'],
      ['b1', 'b2'],
    ]);
  });

  it.each([false, true])('takes an urgent input into the next batch ahead of bulk ones (adaptive: %s)', async (adaptive) => {
    const { scheduler, batches, release } = makeGatedScheduler({ maxBatchSize: 4, adaptive });
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const bulk = Array.from({ length: 12 }, (_, i) => scheduler.submit(`bulk-${String(i).padStart(2, '0')}`, { priority: 1 }));
    const ticket = scheduler.submit('ticket!');
    release();
    await Promise.all([ticket, ...bulk]);
    expect(batches[1]).toContain('ticket!');
    expect(batches.flat().filter((s) => s.startsWith('bulk'))).toHaveLength(12);
  });

  it.each([false, true])('keeps batches of background inputs small, so an urgent one never waits long (adaptive: %s)', async (adaptive) => {
    const { scheduler, batches, release } = makeGatedScheduler({ maxBatchSize: 64, maxBatchTokens: 100_000, maxBackgroundBatchTokens: 40, adaptive });
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const bulk = Array.from({ length: 30 }, (_, i) => scheduler.submit(`bulk-${String(i).padStart(3, '0')}`, { priority: 1 })); // 8 tokens each
    release();
    await Promise.all(bulk);
    for (const b of batches.slice(1)) expect(b.length * Math.max(...b.map((s) => s.length))).toBeLessThanOrEqual(40);
    expect(batches.slice(1).flat()).toHaveLength(30);
  });

  it.each([false, true])('does not fill the batch of an urgent input with bulk ones past the background budget (adaptive: %s)', async (adaptive) => {
    const { scheduler, batches, release } = makeGatedScheduler({ maxBatchSize: 64, maxBatchTokens: 100_000, maxBackgroundBatchTokens: 40, adaptive });
    await vi.waitFor(() => expect(batches).toHaveLength(1));
    const bulk = Array.from({ length: 30 }, (_, i) => scheduler.submit(`bulk-${String(i).padStart(3, '0')}`, { priority: 1 })); // 8 tokens each
    const ticket = scheduler.submit('ticket!!');
    release();
    await Promise.all([ticket, ...bulk]);
    const withTicket = batches.find((b) => b.includes('ticket!!')) ?? [];
    expect(batches.indexOf(withTicket)).toBe(1);
    expect(withTicket.length * 8).toBeLessThanOrEqual(40);
  });

  it('rejects invalid limits at construction', () => {
    const base = { prepare: (s: string) => s, cost: () => 1, run: async (b: string[]) => b };
    expect(() => new BatchScheduler({ ...base, maxBatchSize: 0 })).toThrow(/maxBatchSize/);
    expect(() => new BatchScheduler({ ...base, maxDelayMs: -1 })).toThrow(/maxDelayMs/);
  });
});
