/**
 * Counts what each client holds open (event streams, long-polls), by a key such as its IP
 * address, and refuses a hold past `limit`. A hold is given back once with `release`.
 */
export class ClientHolds {
  private readonly held = new Map<string, number>();

  constructor(
    /** Most holds one client may have at once. */
    readonly limit: number,
  ) {}

  /** Takes one hold for `client`; returns its release (idempotent), or `{held}` when the client is at the limit. */
  acquire(client: string): { release: () => void } | { held: number } {
    const held = this.held.get(client) ?? 0;
    if (held >= this.limit) return { held };
    this.held.set(client, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const now = (this.held.get(client) ?? 1) - 1;
        if (now <= 0) this.held.delete(client);
        else this.held.set(client, now);
      },
    };
  }

  /** Holds of one client now. */
  count(client: string): number {
    return this.held.get(client) ?? 0;
  }

  /** Holds of every client now. */
  total(): number {
    let sum = 0;
    for (const n of this.held.values()) sum += n;
    return sum;
  }
}
