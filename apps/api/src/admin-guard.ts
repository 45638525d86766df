import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { secretsEqual } from '@inferq/queue';
import { httpError } from './errors.js';

/**
 * The key a request presents: `Authorization: Bearer <key>` (scripts, the API's other admin
 * routes), or HTTP Basic with the key as password and any user name (what a browser prompts
 * for when a page answers 401 with `WWW-Authenticate: Basic`).
 */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const bearer = /^Bearer +(\S+)$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!basic?.[1]) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/**
 * An `onRequest` hook that lets through only requests presenting `adminKey`; others get 401
 * `INFERQ_ERR_UNAUTHORIZED` with `WWW-Authenticate` (Bearer for scripts, Basic so that a browser
 * asks for the key). The answer is sent from the hook, not thrown, so a plugin with its own
 * error handler (bull-board's) can't turn it into something else.
 */
export function adminKeyGuard(adminKey: string, realm = 'inferq admin'): onRequestHookHandler {
  return async function requireAdminKey(request: FastifyRequest, reply: FastifyReply) {
    const key = presentedKey(request);
    if (key !== undefined && secretsEqual(key, adminKey)) return;
    const error = httpError('INFERQ_ERR_UNAUTHORIZED', key === undefined ? 'send the admin key (ADMIN_API_KEY) as Authorization: Bearer <key>' : 'this is not the admin key');
    return reply
      .code(error.statusCode)
      .header('www-authenticate', [`Basic realm="${realm}", charset="UTF-8"`, `Bearer realm="${realm}"`])
      .send({ error: { code: error.code, message: error.message } });
  };
}
