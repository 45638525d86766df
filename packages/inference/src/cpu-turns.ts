/**
 * Synchronous CPU work (tokenizing one input) taken in turns of the event loop, so that
 * many inputs handed over at once (a bulk chunk's `Promise.all`, a zero-shot job's labels)
 * never hold the loop for longer than one of them takes: between turns, timers and I/O run
 * (a job posted meanwhile is fetched, `/metrics` answers, job locks are renewed).
 */

/** Options of {@link CpuTurns}. */
export interface CpuTurnsOptions {
  /**
   * Longest stretch of queued work run in one turn, in milliseconds: small pieces share a
   * turn (so a burst of short inputs still reaches the scheduler together); a piece is never
   * split. @defaultValue 4
   */
  sliceMs?: number;
}

interface Piece {
  priority: number;
  run: () => void;
}

/**
 * A queue of synchronous pieces of work, run one turn of the event loop at a time
 * (`setImmediate`, after pending I/O), most urgent first (lower priority number), in
 * arrival order within a priority.
 */
export class CpuTurns {
  private readonly sliceMs: number;
  private readonly queue: Piece[] = [];
  private scheduled = false;

  constructor(options: CpuTurnsOptions = {}) {
    const { sliceMs } = { sliceMs: 4, ...options };
    if (!(sliceMs >= 0)) throw new Error('sliceMs must be >= 0');
    this.sliceMs = sliceMs;
  }

  /** Pieces waiting for their turn. */
  get pendingCount(): number {
    return this.queue.length;
  }

  /**
   * Runs `work` in a later turn; resolves with what it returns, rejects with what it throws.
   * @param priority - lower runs first; single jobs use 0, bulk inputs 1
   */
  run<T>(work: () => T, priority = 0): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const piece: Piece = {
        priority,
        run: () => {
          try {
            resolve(work());
          } catch (err) {
            reject(err);
          }
        },
      };
      const after = this.queue.findLastIndex((p) => p.priority <= priority);
      this.queue.splice(after + 1, 0, piece);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const started = performance.now();
    do {
      this.queue.shift()?.run();
    } while (this.queue.length > 0 && performance.now() - started < this.sliceMs);
    this.schedule();
  }
}

/** The process's queue: one event loop, so one queue for every model and task. */
export const cpuTurns = new CpuTurns();
