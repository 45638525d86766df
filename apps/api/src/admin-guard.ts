import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { httpError } from './errors.js';

/**
 * A `preHandler` for the admin routes: with `ADMIN_API_KEY` set, the request must carry
 * `Authorization: Bearer <key>` (compared in constant time), else 401
 * `INFERQ_ERR_ADMIN_UNAUTHORIZED`; with it empty, the routes are open. One function, so the
 * API keys of the auth plugin can replace it in one place.
 */
export function adminGuard(adminKey: string): (request: FastifyRequest) => Promise<void> {
  const expected = digest(adminKey);
  return async (request) => {
    if (!adminKey) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) throw httpError('INFERQ_ERR_ADMIN_UNAUTHORIZED');
  };
}

/** Fixed-length digests, so `timingSafeEqual` never sees two lengths. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
