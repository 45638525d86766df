import { describe, expect, it } from 'vitest';
import { RecentBatches } from '../src/recent-batches.js';

const batch = (size: number, durationMs: number, failed = false) => ({ size, paddedTokens: size * 10, realTokens: size * 8, durationMs, failed });

describe('RecentBatches (the heartbeat\'s batch stats)', () => {
  it('sums up the batches of the window per model: sizes, padding, p95 time, failures', () => {
    const recent = new RecentBatches({ windowMs: 60_000 });
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    // Nearest-rank p95 of 21 runs is the 20th slowest: one of the two slow ones.
    for (let i = 0; i < 18; i++) recent.record('a/m', batch(8, 10), t0 + i);
    recent.record('a/m', batch(32, 200), t0 + 18);
    recent.record('a/m', batch(32, 200), t0 + 19);
    recent.record('a/m', batch(4, 5, true), t0 + 20);
    const stats = recent.summary(['a/m', 'a/idle'], t0 + 30)['a/m'];
    expect(stats).toEqual({
      window_seconds: 60,
      batches: 21,
      inputs: 18 * 8 + 64,
      failed_batches: 1,
      mean_batch_size: 10.4,
      max_batch_size: 32,
      mean_padding_ratio: 1.25,
      p95_batch_seconds: 0.2,
      last_batch_at: new Date(t0 + 20).toISOString(),
    });
    expect(recent.summary(['a/idle'], t0)['a/idle']).toMatchObject({ batches: 0, inputs: 0, last_batch_at: null });
  });

  it('forgets batches older than the window, and keeps at most maxPerModel', () => {
    const recent = new RecentBatches({ windowMs: 1000, maxPerModel: 3 });
    recent.record('a/m', batch(1, 1), 0);
    recent.record('a/m', batch(2, 1), 1500);
    expect(recent.summary(['a/m'], 2000)['a/m']).toMatchObject({ batches: 1, inputs: 2 });
    for (let i = 0; i < 5; i++) recent.record('a/m', batch(10, 1), 1600 + i);
    expect(recent.summary(['a/m'], 2000)['a/m']).toMatchObject({ batches: 3, inputs: 30 });
  });
});
