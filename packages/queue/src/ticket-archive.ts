import type { RedisClient } from './connection.js';

/**
 * The tickets kept for `TICKET_RETENTION_SECONDS` after they were triaged, with their text,
 * issue label and embedding, so that "the common issues of the last 7 days" and "tickets
 * similar to this one" need no new upload. Keys, under the BullMQ prefix `P`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P:ticket-archive` | sorted set | ticket ids scored by when they were triaged (ms) |
 * | `P:ticket-archive:<id>` | hash | `text`, `issue`, `model`, `at`, `embedding` (little-endian float32) |
 *
 * Each hash expires at the end of its retention; ids older than the retention are dropped
 * from the set whenever a ticket is added.
 */
export interface ArchivedTicket {
  id: string;
  text: string;
  issue: string;
  /** The embedding model. */
  model: string;
  /** When it was triaged, in milliseconds since the epoch. */
  at: number;
  embedding: Float32Array;
}

export class TicketArchive {
  constructor(
    readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  indexKey(): string {
    return `${this.prefix}:ticket-archive`;
  }

  key(id: string): string {
    return `${this.prefix}:ticket-archive:${id}`;
  }

  async add(ticket: ArchivedTicket, retentionSeconds: number): Promise<void> {
    const until = ticket.at + retentionSeconds * 1000;
    const e = ticket.embedding;
    await this.redis
      .multi()
      .hset(this.key(ticket.id), {
        text: ticket.text,
        issue: ticket.issue,
        model: ticket.model,
        at: ticket.at,
        embedding: Buffer.from(e.buffer, e.byteOffset, e.byteLength),
      })
      .pexpireat(this.key(ticket.id), until)
      .zadd(this.indexKey(), ticket.at, ticket.id)
      .zremrangebyscore(this.indexKey(), '-inf', Date.now() - retentionSeconds * 1000)
      .pexpireat(this.indexKey(), until)
      .exec();
  }

  private parse(id: string, h: Record<string, Buffer>): ArchivedTicket | undefined {
    if (!h.text || !h.embedding) return undefined;
    const bytes = h.embedding;
    const embedding = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < embedding.length; i++) embedding[i] = bytes.readFloatLE(i * 4);
    return { id, text: h.text.toString('utf8'), issue: h.issue?.toString('utf8') ?? '', model: h.model?.toString('utf8') ?? '', at: Number(h.at?.toString() ?? 0), embedding };
  }

  /** Forgets a ticket: its text and embedding (a deleted ticket). */
  async remove(id: string): Promise<void> {
    await this.redis.multi().del(this.key(id)).zrem(this.indexKey(), id).exec();
  }

  async get(id: string): Promise<ArchivedTicket | undefined> {
    return this.parse(id, await this.redis.hgetallBuffer(this.key(id)));
  }

  /**
   * Tickets triaged at or after `fromMs` still kept, oldest first; with `only`, just those of
   * the ids it keeps (a tenant's own, see `Ownership.ownedAmong`).
   */
  async since(fromMs: number, only?: (ids: string[]) => Promise<string[]>): Promise<ArchivedTicket[]> {
    const all = await this.redis.zrangebyscore(this.indexKey(), fromMs, '+inf');
    const ids = only ? await only(all) : all;
    const out: ArchivedTicket[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const pipeline = this.redis.pipeline();
      const part = ids.slice(i, i + 500);
      for (const id of part) pipeline.hgetallBuffer(this.key(id));
      const replies = (await pipeline.exec()) ?? [];
      replies.forEach(([err, h], j) => {
        if (err) throw err;
        const t = this.parse(part[j]!, h as Record<string, Buffer>);
        if (t) out.push(t);
      });
    }
    return out;
  }

  /** The `topK` kept tickets most similar to `of` (cosine over embeddings of the same model), best first; `only` as in {@link since}. */
  async similar(of: ArchivedTicket, topK: number, only?: (ids: string[]) => Promise<string[]>): Promise<{ ticket: ArchivedTicket; score: number }[]> {
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
    const n0 = norm(of.embedding);
    const scored: { ticket: ArchivedTicket; score: number }[] = [];
    for (const t of await this.since(0, only)) {
      if (t.id === of.id || t.model !== of.model || t.embedding.length !== of.embedding.length) continue;
      let dot = 0;
      for (let i = 0; i < t.embedding.length; i++) dot += t.embedding[i]! * of.embedding[i]!;
      scored.push({ ticket: t, score: dot / (n0 * norm(t.embedding)) });
    }
    return scored.sort((a, b) => b.score - a.score || (a.ticket.id < b.ticket.id ? -1 : 1)).slice(0, topK);
  }
}
