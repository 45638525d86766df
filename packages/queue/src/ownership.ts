import type { RedisClient } from './connection.js';

/** The things a tenant owns, each readable by id. */
export type OwnedKind = 'job' | 'ticket' | 'batch' | 'cluster' | 'file';

export interface ClaimOptions {
  /** How long the claim lasts, in seconds: at least as long as the thing stays readable. */
  ttlSeconds: number;
  /** Also index the id in the tenant's list of this kind (for kinds that have a list route). @defaultValue false */
  listed?: boolean;
  /** The id's score in that list (newest first), in milliseconds. @defaultValue now */
  now?: number;
}

/**
 * Who owns each job, ticket, batch, cluster run and OpenAI Batch API file, under the BullMQ prefix `P`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P:owner:<kind>:<id>` | string | the owning tenant; expires with the thing (`ttlSeconds`) |
 * | `P:owned:<kind>:<tenant>` | sorted set | ids of that kind the tenant made, by creation time, for lists |
 *
 * A route claims an id before the thing exists (so it is never visible unowned), and checks
 * it before reading anything else: an id that is not the caller's is answered exactly as an
 * unknown one. A claim that is missing (expired, never made) means "not yours" for everyone.
 * Lists read the tenant's sorted set; ids whose thing has expired are dropped by the list
 * reader (`BatchStore.list` does so).
 */
export class Ownership {
  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
  ) {}

  ownerKey(kind: OwnedKind, id: string): string {
    return `${this.prefix}:owner:${kind}:${id}`;
  }

  /** The sorted set listing a tenant's ids of one kind, newest last. */
  indexKey(kind: OwnedKind, tenant: string): string {
    return `${this.prefix}:owned:${kind}:${tenant}`;
  }

  /** Records `tenant` as the owner of each id (one round trip). */
  async claim(kind: OwnedKind, ids: string | readonly string[], tenant: string, options: ClaimOptions): Promise<void> {
    const { ttlSeconds, listed, now } = { listed: false, now: Date.now(), ...options };
    const multi = this.redis.multi();
    for (const id of typeof ids === 'string' ? [ids] : ids) {
      multi.set(this.ownerKey(kind, id), tenant, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
      if (listed) multi.zadd(this.indexKey(kind, tenant), now, id);
    }
    if (listed) {
      // The list lives as long as its newest claim: set an expiry where there is none, else only lengthen it.
      const seconds = Math.max(1, Math.ceil(ttlSeconds));
      multi.expire(this.indexKey(kind, tenant), seconds, 'NX');
      multi.expire(this.indexKey(kind, tenant), seconds, 'GT');
    }
    await multi.exec();
  }

  /** Whether `tenant` owns the id. */
  async owns(kind: OwnedKind, id: string, tenant: string): Promise<boolean> {
    return (await this.redis.get(this.ownerKey(kind, id))) === tenant;
  }

  /** Of `ids`, those `tenant` owns, in their order (one round trip per 500 ids). */
  async ownedAmong(kind: OwnedKind, ids: readonly string[], tenant: string): Promise<string[]> {
    const owned: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      if (part.length === 0) break;
      const owners = await this.redis.mget(...part.map((id) => this.ownerKey(kind, id)));
      part.forEach((id, j) => owners[j] === tenant && owned.push(id));
    }
    return owned;
  }

  /** Extends a claim (a batch kept longer once it ends). */
  async extend(kind: OwnedKind, id: string, ttlSeconds: number): Promise<void> {
    await this.redis.expire(this.ownerKey(kind, id), Math.max(1, Math.ceil(ttlSeconds)));
  }

  /** Forgets the owner of an id and drops it from the tenant's list (the thing was deleted). */
  async release(kind: OwnedKind, id: string, tenant: string): Promise<void> {
    await this.redis.multi().del(this.ownerKey(kind, id)).zrem(this.indexKey(kind, tenant), id).exec();
  }
}
