/** Issue 15: bulk work on one model's session yields to a single job's batch on another. */
import { describe, expect, it } from 'vitest';
import { BatchScheduler, UrgentWork } from '../src/index.js';

function gated(name: string, log: string[]) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  return {
    release,
    running,
    run: async (batch: string[]) => {
      log.push(`${name} starts ${batch.join(',')}`);
      started();
      await gate;
      log.push(`${name} ends`);
      return batch;
    },
  };
}

function scheduler(run: (b: string[]) => Promise<string[]>, urgentWork?: UrgentWork) {
  return new BatchScheduler<string, string, string>({ prepare: (s) => s, cost: () => 1, run, adaptive: false, maxDelayMs: 0, ...(urgentWork ? { urgentWork } : {}) });
}

describe('UrgentWork shared by schedulers', () => {
  it('15.1 a bulk batch on model B waits while a single job runs on model A, and starts when it ends', async () => {
    const shared = new UrgentWork();
    const log: string[] = [];
    const a = gated('A', log);
    const b = gated('B', log);
    const modelA = scheduler(a.run, shared);
    const modelB = scheduler(b.run, shared);
    const ticket = modelA.submit('ticket');
    await a.running;
    const bulk = modelB.submit('line', { priority: 1 });
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(log).toEqual(['A starts ticket']);
    a.release();
    expect(await ticket).toBe('ticket');
    await b.running;
    b.release();
    expect(await bulk).toBe('line');
    expect(log).toEqual(['A starts ticket', 'A ends', 'B starts line', 'B ends']);
  });

  it('a single job on model B does not wait, and without a shared UrgentWork nothing waits', async () => {
    const shared = new UrgentWork();
    const log: string[] = [];
    const a = gated('A', log);
    const b = gated('B', log);
    const c = gated('C', log);
    const modelA = scheduler(a.run, shared);
    const modelB = scheduler(b.run, shared);
    const modelC = scheduler(c.run);
    const first = modelA.submit('ticket 1');
    await a.running;
    const second = modelB.submit('ticket 2');
    const bulk = modelC.submit('line', { priority: 1 });
    await Promise.all([b.running, c.running]);
    expect(log).toEqual(['A starts ticket 1', 'B starts ticket 2', 'C starts line']);
    a.release();
    b.release();
    c.release();
    expect(await Promise.all([first, second, bulk])).toEqual(['ticket 1', 'ticket 2', 'line']);
  });
});
