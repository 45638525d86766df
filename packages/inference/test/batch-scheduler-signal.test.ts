/** Issue 15 item 2: a job's time limit takes its input out of the scheduler's queue. */
import { describe, expect, it } from 'vitest';
import { BatchScheduler } from '../src/index.js';

describe('BatchScheduler submit with a signal', () => {
  it('15.2 an input given up while pending never runs, and its caller gets the signal reason', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const ran: string[][] = [];
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => s,
      cost: () => 1,
      run: async (batch) => (ran.push([...batch]), await gate, batch.map((s) => s.toUpperCase())),
      maxBatchSize: 1,
      adaptive: false,
      maxDelayMs: 0,
    });
    const first = scheduler.submit('first');
    const controller = new AbortController();
    const second = scheduler.submit('second', { signal: controller.signal });
    const third = scheduler.submit('third');
    controller.abort(new Error('job timed out'));
    await expect(second).rejects.toThrow('job timed out');
    release();
    expect(await first).toBe('FIRST');
    expect(await third).toBe('THIRD');
    expect(ran.flat()).toEqual(['first', 'third']);
    await expect(scheduler.submit('late', { signal: controller.signal })).rejects.toThrow('job timed out');
    await scheduler.close();
  });

  it('15.2 an input whose batch already runs still gets its result', async () => {
    let started!: () => void;
    const running$ = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const scheduler = new BatchScheduler<string, string, string>({
      prepare: (s) => s,
      cost: () => 1,
      run: async (b) => (started(), await gate, b),
      adaptive: false,
      maxDelayMs: 0,
    });
    const controller = new AbortController();
    const running = scheduler.submit('x', { signal: controller.signal });
    await running$;
    controller.abort(new Error('late'));
    release();
    expect(await running).toBe('x');
    await scheduler.close();
  });
});
