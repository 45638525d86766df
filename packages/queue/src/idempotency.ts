import { createHash } from 'node:crypto';
import type { RedisClient } from './connection.js';

/** How long an `Idempotency-Key` is remembered, in seconds (24 hours, as Stripe keeps them). */
export const IDEMPOTENCY_TTL_SECONDS = 86_400;

/** What claiming a key found: a fresh claim (go on and create `id`), a repeat of the same request, or a different request. */
export type IdempotencyClaim =
  | { outcome: 'new'; id: string }
  | { outcome: 'repeat'; id: string }
  | { outcome: 'mismatch'; id: string };

/**
 * A fingerprint of a request: SHA-256 over its parts, each JSON-encoded with object keys
 * sorted, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are the same request.
 */
export function requestFingerprint(...parts: unknown[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(canonicalJson(part)).update('\n');
  return hash.digest('hex');
}

/** Text pushed as is by {@link canonicalJson} (brackets, commas, object keys). */
class Token {
  constructor(readonly text: string) {}
}

/** JSON with object keys sorted; iterative, so a deeply nested value can't overflow the stack. */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (item instanceof Token) {
      out.push(item.text);
    } else if (Array.isArray(item)) {
      out.push('[');
      stack.push(new Token(']'));
      for (let i = item.length - 1; i >= 0; i--) {
        stack.push(item[i] === undefined ? null : item[i]);
        if (i > 0) stack.push(new Token(','));
      }
    } else if (item !== null && typeof item === 'object') {
      const entries = Object.entries(item as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      out.push('{');
      stack.push(new Token('}'));
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, v] = entries[i] as [string, unknown];
        stack.push(v);
        stack.push(new Token(`${i > 0 ? ',' : ''}${JSON.stringify(k)}:`));
      }
    } else {
      out.push(JSON.stringify(item) ?? 'null');
    }
  }
  return out.join('');
}

const CLAIM_SCRIPT = `
local found = redis.call('GET', KEYS[1])
if found then return found end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
`;

/**
 * Idempotency keys per tenant, under the BullMQ prefix `P`: `P:idem:<scope>:<sha256 of tenant
 * and key>` holds `<fingerprint> <id>` for 24 hours. The first request with a key claims it
 * with a new id; a repeat with the same fingerprint gets that id back; a different request with
 * the same key is a mismatch. After 24 hours the key is free again.
 */
export class IdempotencyStore {
  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
    readonly ttlSeconds = IDEMPOTENCY_TTL_SECONDS,
  ) {
    if (!('inferqIdemClaim' in redis)) redis.defineCommand('inferqIdemClaim', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
  }

  private key(scope: string, tenant: string, idempotencyKey: string): string {
    const digest = createHash('sha256').update(tenant).update('\0').update(idempotencyKey).digest('hex');
    return `${this.prefix}:idem:${scope}:${digest}`;
  }

  /** Claims `idempotencyKey` for a request with `fingerprint`, with `newId` as the id it creates. */
  async claim(scope: string, tenant: string, idempotencyKey: string, fingerprint: string, newId: string): Promise<IdempotencyClaim> {
    const claim = (this.redis as unknown as Record<string, (...args: unknown[]) => Promise<string | null>>).inferqIdemClaim!;
    const found = await claim.call(this.redis, this.key(scope, tenant, idempotencyKey), `${fingerprint} ${newId}`, this.ttlSeconds);
    if (found === null) return { outcome: 'new', id: newId };
    const [storedFingerprint = '', id = ''] = found.split(' ');
    return { outcome: storedFingerprint === fingerprint ? 'repeat' : 'mismatch', id };
  }

  /** Frees a key whose request failed before creating anything, so a retry can use it. */
  async release(scope: string, tenant: string, idempotencyKey: string, id: string): Promise<void> {
    const key = this.key(scope, tenant, idempotencyKey);
    const found = await this.redis.get(key);
    if (found?.endsWith(` ${id}`)) await this.redis.del(key);
  }
}
