/** Issue 15 item 1: many inputs handed over at once don't hold the event loop all at once. */
import { describe, expect, it } from 'vitest';
import { CpuTurns } from '../src/index.js';

/** Busy work standing in for tokenizing one long input. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* busy */
  }
}

describe('CpuTurns', () => {
  it('15.1 lets a timer and I/O run between the pieces of a burst (a Promise.all of 20 inputs)', async () => {
    const turns = new CpuTurns({ sliceMs: 0 });
    const events: string[] = [];
    const all = Promise.all(Array.from({ length: 20 }, (_, i) => turns.run(() => (spin(5), events.push(`piece ${i}`)))));
    const timer = new Promise<void>((resolve) => setTimeout(() => (events.push('timer'), resolve()), 1));
    const io = new Promise<void>((resolve) => setImmediate(() => process.nextTick(() => (events.push('immediate'), resolve()))));
    await Promise.all([all, timer, io]);
    expect(events.indexOf('timer')).toBeLessThan(events.indexOf('piece 19'));
    expect(events.indexOf('immediate')).toBeLessThan(events.indexOf('piece 19'));
    expect(events.filter((e) => e.startsWith('piece'))).toEqual(Array.from({ length: 20 }, (_, i) => `piece ${i}`));
  });

  it('15.1 runs an urgent piece before the background pieces queued ahead of it', async () => {
    const turns = new CpuTurns({ sliceMs: 0 });
    const order: string[] = [];
    const bulk = Array.from({ length: 10 }, (_, i) => turns.run(() => order.push(`bulk ${i}`), 1));
    await new Promise<void>((resolve) => setImmediate(resolve));
    const urgent = turns.run(() => order.push('ticket'), 0);
    await Promise.all([...bulk, urgent]);
    expect(order.indexOf('ticket')).toBeLessThan(3);
    expect(order.indexOf('ticket')).toBeGreaterThan(-1);
  });

  it('shares a turn among small pieces, and hands each caller its own error', async () => {
    const turns = new CpuTurns({ sliceMs: 1000 });
    const results = await Promise.allSettled([turns.run(() => 1), turns.run(() => { throw new Error('bad input'); }), turns.run(() => 3)]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([1, 'bad input', 3]);
    expect(turns.pendingCount).toBe(0);
  });
});
