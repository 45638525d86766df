import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { IdempotencyStore, requestFingerprint } from '@inferq/queue';
import { httpError } from '../errors.js';

export interface IdempotencyOptions {
  /** BullMQ key prefix. */
  prefix: string;
  /** How long a key is remembered, in seconds. @defaultValue 86400 */
  ttlSeconds?: number;
}

/** What a create route does next: create `id`, or answer the thing a first request created (`repeat`). */
export interface IdempotentCreate {
  /** The id to create (new) or to answer (repeat). */
  id: string;
  /** The same key and request came before: create nothing, answer `id`. */
  repeat: boolean;
  /** Frees the key again when creating failed (a retry may use it); a no-op without a key or on a repeat. */
  release(): Promise<void>;
}

export interface IdempotencyService {
  /**
   * Claims the request's `Idempotency-Key` (if it has one) for `newId`, keyed by its tenant and
   * `scope`; `parts` make the request's fingerprint (the body, settings). Throws
   * `INFERQ_ERR_IDEMPOTENCY_MISMATCH` when the key came with a different request in the last 24 hours.
   */
  claim(request: FastifyRequest, scope: string, parts: unknown[], newId: string): Promise<IdempotentCreate>;
}

declare module 'fastify' {
  interface FastifyInstance {
    idempotency: IdempotencyService;
  }
}

/** `app.idempotency`: `Idempotency-Key` per tenant, remembered 24 hours with the request's fingerprint (as Stripe does). */
export const idempotencyPlugin = fp<IdempotencyOptions>(
  async (app, { prefix, ttlSeconds }) => {
    const store = new IdempotencyStore(app.queues.redis, prefix, ttlSeconds);
    app.decorate('idempotency', {
      async claim(request, scope, parts, newId) {
        const header = request.headers['idempotency-key'];
        const key = typeof header === 'string' ? header : undefined;
        if (key === undefined) return { id: newId, repeat: false, release: async () => {} };
        const claim = await store.claim(scope, request.tenant, key, requestFingerprint(...parts), newId);
        if (claim.outcome === 'mismatch') throw httpError('INFERQ_ERR_IDEMPOTENCY_MISMATCH', key.slice(0, 100));
        return {
          id: claim.id,
          repeat: claim.outcome === 'repeat',
          release: async () => {
            if (claim.outcome === 'new') await store.release(scope, request.tenant, key, claim.id).catch(() => {});
          },
        };
      },
    } satisfies IdempotencyService);
  },
  { name: 'inferq-idempotency', dependencies: ['inferq-queues', 'inferq-auth'] },
);
