import { describe, expect, it } from 'vitest';
import { formatAmount, formatDuration, Progress } from '../src/index.js';
import { Capture } from './helpers.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('Progress', () => {
  it('redraws one bar in place on a terminal, with rate and ETA', () => {
    const stream = new Capture(true, 100);
    const c = clock();
    const progress = new Progress({ stream, total: 1000, label: 'progress', now: c.now });
    c.advance(1000);
    progress.update(100);
    c.advance(1000);
    progress.update(200);
    expect(stream.text).not.toContain('\n');
    const last = stream.text.split('\r\x1b[2K').at(-1) ?? '';
    expect(last).toMatch(/^progress \[#+-+\] 200\/1,000 {2}20% {2}100 items\/s {2}ETA 8s$/);
    progress.finish('done');
    expect(stream.text.endsWith('\ndone\n')).toBe(true);
  });

  it('prints plain lines no more often than asked when not on a terminal', () => {
    const stream = new Capture(false);
    const c = clock();
    const progress = new Progress({ stream, total: 10, label: 'p', lineIntervalMs: 5000, now: c.now });
    for (let i = 1; i <= 10; i++) {
      c.advance(1000);
      progress.update(i, { failed: i > 8 ? 1 : 0 });
    }
    progress.finish();
    const lines = stream.text.trim().split('\n');
    expect(lines).toEqual(['p 1/10  10%  1.0 items/s  ETA 9s', 'p 6/10  60%  1.0 items/s  ETA 4s', 'p 10/10  100%  1.0 items/s  in 10s  1 failed']);
  });

  it('formats bytes and durations', () => {
    expect(formatAmount(1_234_567, 'bytes')).toBe('1.23 MB');
    expect(formatAmount(999, 'bytes')).toBe('999 B');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(7500)).toBe('2h05m');
  });
});
