/**
 * A request's streamed text, handed to its listener once across attempts: the batch
 * scheduler retries a failed batch (split in halves), and a retried request regenerates
 * its text from the start. Greedy decoding and seeded sampling give the same tokens in any
 * batch, so the retry's text repeats what was already sent; only what goes past it is new.
 */
export class StreamOnce {
  /**
   * @param listener - gets each new piece of text once.
   * @param sent - characters an earlier process already streamed (a job retried by the queue).
   */
  constructor(
    private readonly listener: (delta: string) => void,
    private sent = 0,
  ) {}

  /** Characters handed out over all attempts. */
  get streamed(): number {
    return this.sent;
  }

  /** A listener for one attempt: text up to what earlier attempts sent is swallowed. */
  attempt(): (delta: string) => void {
    let seen = 0;
    return (delta) => {
      const start = seen;
      seen += delta.length;
      if (seen <= this.sent) return;
      const fresh = delta.slice(Math.max(0, this.sent - start));
      this.sent = seen;
      this.listener(fresh);
    };
  }
}
