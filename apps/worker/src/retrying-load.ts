export interface RetryingLoadOptions {
  /** Wait after the first failed load before the next try, in milliseconds; doubled on each failure. */
  baseDelayMs: number;
  /** Longest wait between two tries, in milliseconds. */
  maxDelayMs: number;
  /** The clock, in milliseconds. @defaultValue `Date.now` */
  now?: () => number;
}

/** A load that failed and when it may be tried again. */
export class LoadBackoffError extends Error {
  constructor(
    override readonly cause: unknown,
    /** When the next try is allowed, in milliseconds since the epoch. */
    readonly retryAt: number,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * Something loaded once and kept (a task's pipeline): callers share a load in flight and its
 * success; a failure is not kept forever but retried with exponential backoff. Until the next
 * try is due, `get` rejects at once with a {@link LoadBackoffError} (no disk or session work).
 */
export class RetryingLoad<T> {
  private value: Promise<T> | undefined;
  private failures = 0;
  private retryAt = 0;
  private lastError: unknown;
  private readonly now: () => number;

  constructor(
    private readonly load: () => Promise<T>,
    private readonly options: RetryingLoadOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  get(): Promise<T> {
    if (this.value) return this.value;
    if (this.failures > 0 && this.now() < this.retryAt) return Promise.reject(new LoadBackoffError(this.lastError, this.retryAt));
    const attempt = this.load();
    this.value = attempt;
    attempt.then(
      () => {
        this.failures = 0;
      },
      (err: unknown) => {
        if (this.value !== attempt) return;
        this.value = undefined;
        this.lastError = err;
        const delay = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** this.failures);
        this.failures++;
        this.retryAt = this.now() + delay;
      },
    );
    return attempt;
  }

  /** The loaded value if a load has succeeded, without starting one. */
  loaded(): Promise<T> | undefined {
    return this.value;
  }
}
