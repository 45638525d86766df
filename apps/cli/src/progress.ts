/**
 * Progress of a long task: on a terminal, one bar redrawn in place (done/total, percent,
 * rate, ETA); anywhere else (a pipe, a CI log), a plain line every few seconds.
 */

/** Where output goes: `process.stdout`/`stderr`, or a test's buffer. */
export interface OutputStream {
  write(text: string): unknown;
  /** Whether it is a terminal (a bar is drawn only there). */
  isTTY?: boolean;
  /** Terminal width in characters. */
  columns?: number;
}

export interface ProgressOptions {
  /** Where to draw. A TTY gets a bar redrawn in place, anything else plain lines. */
  stream: OutputStream;
  /** Units of work in all (inputs, bytes); 0 when unknown yet. */
  total: number;
  /** What is counted: `items` print as numbers, `bytes` as KB/MB/GB. @defaultValue 'items' */
  unit?: 'items' | 'bytes';
  /** Shown before the numbers, e.g. `batch_1234…` or a file name. @defaultValue '' */
  label?: string;
  /** Least time between two plain lines, in milliseconds. @defaultValue 5000 */
  lineIntervalMs?: number;
  /** Least time between two redraws of the bar, in milliseconds. @defaultValue 100 */
  redrawMs?: number;
  /** Clock in milliseconds (tests pass their own). @defaultValue performance.now */
  now?: () => number;
}

/** How far back the rate looks, in milliseconds. */
const RATE_WINDOW_MS = 10_000;

/** `1,234` for items, `12.3 MB` for bytes. */
export function formatAmount(value: number, unit: 'items' | 'bytes'): string {
  if (unit === 'items') return Math.round(value).toLocaleString('en-US');
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = value;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** `45s`, `3m05s`, `2h07m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class Progress {
  private readonly o: Required<ProgressOptions>;
  private total: number;
  private done = 0;
  private failed = 0;
  private status = '';
  private readonly samples: { t: number; done: number }[] = [];
  private readonly startedAt: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drewBar = false;
  private finished = false;

  constructor(options: ProgressOptions) {
    this.o = { unit: 'items', label: '', lineIntervalMs: 5000, redrawMs: 100, now: () => performance.now(), ...options };
    this.total = options.total;
    this.startedAt = this.o.now();
    this.samples.push({ t: this.startedAt, done: 0 });
  }

  private get tty(): boolean {
    return this.o.stream.isTTY === true;
  }

  /** Work units per second over the last few seconds (0 until some time has passed). */
  rate(): number {
    const last = this.samples.at(-1);
    const first = this.samples[0];
    if (!last || !first || last.t - first.t < 250) return 0;
    return ((last.done - first.done) * 1000) / (last.t - first.t);
  }

  /** Records progress: `done` units of `total` (which may now be known), `failed` of them failed. */
  update(done: number, extra: { total?: number; failed?: number; status?: string } = {}): void {
    if (this.finished) return;
    const t = this.o.now();
    this.done = done;
    if (extra.total !== undefined) this.total = extra.total;
    if (extra.failed !== undefined) this.failed = extra.failed;
    if (extra.status !== undefined) this.status = extra.status;
    this.samples.push({ t, done });
    while (this.samples.length > 2 && t - (this.samples[1] as { t: number }).t >= RATE_WINDOW_MS) this.samples.shift();
    const wait = this.tty ? this.o.redrawMs : this.o.lineIntervalMs;
    if (t - this.lastDraw >= wait) this.draw(t);
  }

  /** Draws the final state and ends the bar's line; `message` follows on its own line. */
  finish(message?: string): void {
    if (this.finished) return;
    this.draw(this.o.now());
    this.finished = true;
    if (this.tty && this.drewBar) this.o.stream.write('\n');
    if (message) this.o.stream.write(`${message}\n`);
  }

  /** The numbers part of a line: `1,234/5,000 25% 310/s ETA 12s`. */
  describe(): string {
    const { unit } = this.o;
    const rate = this.rate();
    const parts = [this.total > 0 ? `${formatAmount(this.done, unit)}/${formatAmount(this.total, unit)}` : formatAmount(this.done, unit)];
    if (this.total > 0) parts.push(`${Math.floor((100 * Math.min(this.done, this.total)) / this.total)}%`);
    if (rate > 0) parts.push(unit === 'bytes' ? `${formatAmount(rate, 'bytes')}/s` : `${rate < 10 ? rate.toFixed(1) : Math.round(rate)} items/s`);
    if (this.total > 0 && this.done < this.total) {
      parts.push(`ETA ${rate > 0 ? formatDuration((this.total - this.done) / rate) : '?'}`);
    } else if (this.total > 0) {
      parts.push(`in ${formatDuration((this.o.now() - this.startedAt) / 1000)}`);
    }
    if (this.failed > 0) parts.push(`${formatAmount(this.failed, 'items')} failed`);
    if (this.status) parts.push(`[${this.status}]`);
    return parts.join('  ');
  }

  private draw(t: number): void {
    this.lastDraw = t;
    const label = this.o.label ? `${this.o.label} ` : '';
    const numbers = this.describe();
    if (!this.tty) {
      this.o.stream.write(`${label}${numbers}\n`);
      return;
    }
    const columns = this.o.stream.columns || 80; // 0 where the terminal size is unknown
    const width = Math.max(10, Math.min(40, columns - label.length - numbers.length - 4));
    const fraction = this.total > 0 ? Math.min(1, this.done / this.total) : 0;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    const line = `${label}${bar} ${numbers}`.slice(0, Math.max(20, columns - 1));
    this.o.stream.write(`\r\x1b[2K${line}`);
    this.drewBar = true;
  }
}
