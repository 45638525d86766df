import type { QueueEvents, QueueEventsListener } from 'bullmq';

/** Why a watch ended: the job completed or failed, the time ran out, or it was stopped. */
export type JobEndOutcome = 'ended' | 'timeout' | 'stopped';

export interface JobEndWatch {
  /** Settles once, with the first of: the job's `completed`/`failed` event, the timeout, a stop. Never rejects. */
  readonly outcome: Promise<JobEndOutcome>;
  /** Stops watching now; every listener and timer is removed. Idempotent. */
  stop(): void;
}

/** BullMQ's QueueEvents also emits `<event>:<jobId>` for every job event. */
interface PerJobEvents extends QueueEventsListener {
  [event: `completed:${string}`]: () => void;
  [event: `failed:${string}`]: () => void;
}

/**
 * Starts listening for the end of one job, synchronously: an end that happens after this
 * call returns is seen, so a caller reads the job's state after calling it, not before.
 * `signals` (a client that went away, a server that is closing) stop the watch.
 */
export function watchJobEnd(
  events: QueueEvents,
  jobId: string,
  timeoutMs: number,
  signals: readonly AbortSignal[] = [],
): JobEndWatch {
  let settle: (outcome: JobEndOutcome) => void = () => {};
  const outcome = new Promise<JobEndOutcome>((resolve) => {
    settle = resolve;
  });
  if (signals.some((signal) => signal.aborted)) {
    settle('stopped');
    return { outcome, stop: () => {} };
  }

  const completed = `completed:${jobId}` as const;
  const failed = `failed:${jobId}` as const;
  let done = false;
  const finish = (result: JobEndOutcome): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    events.off<PerJobEvents>(completed, onEnd);
    events.off<PerJobEvents>(failed, onEnd);
    for (const signal of signals) signal.removeEventListener('abort', onStop);
    settle(result);
  };
  const onEnd = (): void => finish('ended');
  const onStop = (): void => finish('stopped');
  const timer = setTimeout(() => finish('timeout'), Math.max(0, timeoutMs));

  events.on<PerJobEvents>(completed, onEnd);
  events.on<PerJobEvents>(failed, onEnd);
  for (const signal of signals) signal.addEventListener('abort', onStop, { once: true });
  return { outcome, stop: onStop };
}
