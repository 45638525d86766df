/**
 * Urgent batches running in a process, across every model's schedulers. Sessions of
 * different models share the CPU (or GPU): a bulk batch started on one model while a single
 * job's batch runs on another takes half the cores from it. Schedulers that share one
 * {@link UrgentWork} start a batch of background inputs only when no urgent batch runs.
 */
export class UrgentWork {
  private running = 0;
  private waiters: (() => void)[] = [];

  /** Whether a batch holding an urgent input runs now. */
  get busy(): boolean {
    return this.running > 0;
  }

  /** A batch holding an urgent input starts. */
  begin(): void {
    this.running++;
  }

  /** That batch ended; once none runs, the waiting schedulers are woken (after the current tick, so the scheduler that ended can start its next urgent batch first). */
  end(): void {
    this.running = Math.max(0, this.running - 1);
    if (this.running > 0 || this.waiters.length === 0) return;
    queueMicrotask(() => {
      if (this.running > 0) return;
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Calls `wake` once no urgent batch runs (soon, if none does now). */
  whenIdle(wake: () => void): void {
    this.waiters.push(wake);
    if (this.running === 0) this.end();
  }
}

/** The process's instance: one per event loop, shared by every model's schedulers. */
export const urgentWork = new UrgentWork();
