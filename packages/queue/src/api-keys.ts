import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RedisClient } from './connection.js';

/** A tenant key as stored: its id, tenant and creation time; the key itself only as a hash. */
export interface ApiKeyRecord {
  id: string;
  tenant: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** The SHA-256 of a key, hex. Keys are 32 random bytes, so an unsalted hash is as strong as the key. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Whether two secrets are equal, in time that depends on neither (both are hashed to 32 bytes first). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * Tenant API keys in Redis, under the BullMQ prefix `P`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P:apikey:<sha256 of the key>` | hash | `id`, `tenant`, `created_at` |
 * | `P:apikeys` | hash | key id → SHA-256 of the key (for listing and revoking) |
 *
 * Keys live until revoked (no expiry: they are configuration). Nothing is cached in a
 * process: every request reads its key's hash, so a revocation holds at once in every API
 * process.
 */
export class ApiKeyStore {
  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
  ) {}

  private keyKey(hash: string): string {
    return `${this.prefix}:apikey:${hash}`;
  }

  private idsKey(): string {
    return `${this.prefix}:apikeys`;
  }

  /** Makes a key for `tenant`; resolves with its record and the key, which is not kept. */
  async create(tenant: string, now = Date.now()): Promise<ApiKeyRecord & { key: string }> {
    const key = `iq_${randomBytes(32).toString('base64url')}`;
    const id = `key_${randomBytes(8).toString('hex')}`;
    const hash = hashApiKey(key);
    await this.redis
      .multi()
      .hset(this.keyKey(hash), { id, tenant, created_at: now })
      .hset(this.idsKey(), id, hash)
      .exec();
    return { id, tenant, createdAt: now, key };
  }

  /** The record of a presented key, or undefined when it is unknown or revoked. */
  async lookup(key: string): Promise<ApiKeyRecord | undefined> {
    const hash = hashApiKey(key);
    const fields = await this.redis.hgetall(this.keyKey(hash));
    if (!fields.id || !fields.tenant) return undefined;
    // The stored id maps back to this very hash (a revoked key has no entry in the id index).
    const stored = await this.redis.hget(this.idsKey(), fields.id);
    if (stored === null || !timingSafeEqual(Buffer.from(stored), Buffer.from(hash))) return undefined;
    return { id: fields.id, tenant: fields.tenant, createdAt: Number(fields.created_at) };
  }

  /** Every key, oldest first. */
  async list(): Promise<ApiKeyRecord[]> {
    const ids = await this.redis.hgetall(this.idsKey());
    const entries = Object.entries(ids);
    if (entries.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const [, hash] of entries) pipeline.hgetall(this.keyKey(hash));
    const replies = (await pipeline.exec()) ?? [];
    const records: ApiKeyRecord[] = [];
    for (const [err, value] of replies) {
      if (err) throw err;
      const fields = value as Record<string, string>;
      if (fields.id && fields.tenant) records.push({ id: fields.id, tenant: fields.tenant, createdAt: Number(fields.created_at) });
    }
    return records.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** Revokes a key at once; resolves false when there is no key with that id. */
  async revoke(id: string): Promise<boolean> {
    const hash = await this.redis.hget(this.idsKey(), id);
    if (hash === null) return false;
    await this.redis.multi().hdel(this.idsKey(), id).del(this.keyKey(hash)).exec();
    return true;
  }
}
