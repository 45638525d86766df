import type { DefaultJobOptions } from 'bullmq';

export interface JobRetentionOptions {
  /** How long finished jobs stay readable, in seconds. @defaultValue 86400 (one day) */
  retentionSeconds?: number;
  /** Attempts per job before it fails; transient errors retry with exponential backoff. @defaultValue 3 */
  attempts?: number;
}

/**
 * Options for every inference job. Finished jobs are kept for `retentionSeconds` so their
 * results can be read; errors that retrying can't fix are thrown as `UnrecoverableError`
 * by the worker and skip the remaining attempts.
 */
export function inferenceJobOptions(opts: JobRetentionOptions = {}): DefaultJobOptions {
  const { retentionSeconds, attempts } = { retentionSeconds: 86_400, attempts: 3, ...opts };
  return {
    attempts,
    backoff: { type: 'exponential', delay: 500 },
    removeOnComplete: { age: retentionSeconds },
    removeOnFail: { age: retentionSeconds },
  };
}
