import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { DEFAULT_TENANT, type ErrorCode } from '@inferq/contracts';
import { ApiKeyStore, Ownership, secretsEqual, type OwnedKind } from '@inferq/queue';
import type { AuthMode } from '../auth-mode.js';
import { httpError } from '../errors.js';

export interface AuthOptions {
  /** From `authMode(config)`. */
  mode: AuthMode;
  /** BullMQ key prefix: keys and ownership records live under it. */
  prefix: string;
  /** How long a job's or ticket's owner is kept, in seconds: its retention plus a margin for time queued. */
  jobOwnerTtlSeconds: number;
}

/**
 * Who may call a route: anyone (health, docs), the admin key (key management), the admin key
 * when keys are on and anyone on an API without keys (`operator`: views for operators, such as
 * the live workers), or a tenant key (the rest).
 */
export type RouteAccess = 'public' | 'admin' | 'operator' | 'tenant';

/** A kind's not-found answer, so an id that is not the caller's reads exactly as an unknown id. */
const NOT_FOUND: Partial<Record<OwnedKind, [ErrorCode, number]>> = {
  job: ['INFERQ_ERR_JOB_NOT_FOUND', 300],
  ticket: ['INFERQ_ERR_TICKET_NOT_FOUND', 200],
  batch: ['INFERQ_ERR_BATCH_NOT_FOUND', 100],
  file: ['INFERQ_ERR_FILE_NOT_FOUND', 120],
  cluster: ['INFERQ_ERR_CLUSTER_NOT_FOUND', 100],
};

export interface OwnerService {
  /** The ownership records (Redis). */
  readonly store: Ownership;
  /**
   * Records the caller's tenant as the owner of `ids`; call it before the thing exists.
   * `ttlSeconds` defaults to the jobs' owner TTL; `listed` adds the ids to the tenant's list.
   */
  claim(request: FastifyRequest, kind: OwnedKind, ids: string | readonly string[], options?: { ttlSeconds?: number; listed?: boolean }): Promise<void>;
  /** Throws the kind's not-found error unless the caller's tenant owns `id`. */
  assert(request: FastifyRequest, kind: OwnedKind, id: string): Promise<void>;
  /** The sorted set listing the caller's ids of a kind (for `BatchStore.list` and the like). */
  listKey(request: FastifyRequest, kind: OwnedKind): string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the request acts for: its key's, or `default` when the API runs without keys. */
    tenant: string;
    /** The id of the request's key (`admin` for the admin key); undefined without keys. */
    apiKeyId: string | undefined;
  }
  interface FastifyInstance {
    apiKeys: ApiKeyStore;
    owners: OwnerService;
  }
  interface FastifyContextConfig {
    /** Who may call the route. @defaultValue 'tenant' (or 'public' for /healthz, /readyz and /docs) */
    access?: RouteAccess;
    /** The kind of thing `:id` names: the caller must own it, else the route answers the kind's not-found. */
    owned?: OwnedKind;
  }
}

const PUBLIC_PATHS = new Set(['/healthz', '/readyz']);

/** Who may call the request's route (its `config.access`, or by path). */
export function routeAccess(request: FastifyRequest): RouteAccess {
  const declared = request.routeOptions.config.access;
  if (declared) return declared;
  // A CORS preflight carries no key (browsers never send one); @fastify/cors answers it.
  if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) return 'public';
  const url = request.routeOptions.url;
  if (url !== undefined && (PUBLIC_PATHS.has(url) || url === '/docs' || url.startsWith('/docs/'))) return 'public';
  return 'tenant';
}

/** The key of `Authorization: Bearer <key>`, or the reason there is none. */
function bearerKey(request: FastifyRequest): { key: string } | { problem: string } {
  const header = request.headers.authorization;
  if (header === undefined) return { problem: 'send Authorization: Bearer <key>' };
  const match = /^Bearer +([\x21-\x7E]{1,512})$/i.exec(header);
  if (!match?.[1]) return { problem: 'the Authorization header must be "Bearer <key>"' };
  return { key: match[1] };
}

/**
 * Authentication and ownership. `onRequest`: every route but health and docs needs
 * `Authorization: Bearer <key>`: the admin key for `/v1/admin/*` (route config
 * `access: 'admin'`), a tenant key elsewhere, looked up in Redis on every request (so a
 * revoked key fails at once in every API process); `request.tenant` is its tenant. Without keys
 * (loopback, or AUTH=off) every request is tenant `default`. `preHandler`: a route with
 * `config.owned` answers not-found unless the caller owns `params.id`.
 */
export const authPlugin = fp<AuthOptions>(
  async (app, { mode, prefix, jobOwnerTtlSeconds }) => {
    const apiKeys = new ApiKeyStore(app.queues.redis, prefix);
    const store = new Ownership(app.queues.redis, prefix);
    app.decorate('apiKeys', apiKeys);
    app.decorateRequest('tenant', DEFAULT_TENANT);
    app.decorateRequest('apiKeyId', undefined);

    const notFound = (kind: OwnedKind, id: string): Error => {
      const [code, max] = NOT_FOUND[kind] ?? ['INFERQ_ERR_NOT_FOUND', 100];
      return code === 'INFERQ_ERR_NOT_FOUND' ? httpError(code, 'GET', `${kind} ${id.slice(0, max)}`) : httpError(code, id.slice(0, max));
    };
    const owners: OwnerService = {
      store,
      async claim(request, kind, ids, options = {}) {
        await store.claim(kind, ids, request.tenant, { ttlSeconds: options.ttlSeconds ?? jobOwnerTtlSeconds, listed: options.listed ?? false });
      },
      async assert(request, kind, id) {
        if (!(await store.owns(kind, id, request.tenant))) throw notFound(kind, id);
      },
      listKey: (request, kind) => store.indexKey(kind, request.tenant),
    };
    app.decorate('owners', owners);

    if (mode.kind === 'open') {
      const where = mode.reason === 'loopback' ? 'bound to a loopback address' : 'AUTH=off';
      const message = `serving WITHOUT authentication (${where}): every request acts as tenant "${DEFAULT_TENANT}"; set ADMIN_API_KEY to require API keys`;
      if (mode.reason === 'trusted') app.log.warn({ auth: 'off' }, message);
      else app.log.info({ auth: 'loopback' }, message);
    } else {
      app.log.info({ auth: 'keys' }, 'API keys required (Authorization: Bearer <key>) on every route but /healthz, /readyz and /docs');
    }

    app.addHook('onRequest', async (request, reply) => {
      const access = routeAccess(request);
      if (access === 'public') return;
      if (mode.kind === 'open') {
        if (access === 'admin') throw httpError('INFERQ_ERR_FORBIDDEN', 'This API runs without keys (no ADMIN_API_KEY): there are no keys to manage');
        return;
      }
      const bearer = bearerKey(request);
      if ('problem' in bearer) {
        reply.header('www-authenticate', 'Bearer');
        throw httpError('INFERQ_ERR_UNAUTHORIZED', bearer.problem);
      }
      const isAdmin = secretsEqual(bearer.key, mode.adminKey);
      if (access === 'admin' || access === 'operator') {
        if (!isAdmin) throw httpError('INFERQ_ERR_FORBIDDEN', `${access === 'admin' ? 'Key management' : 'This operator route'} needs the admin key (ADMIN_API_KEY)`);
        request.apiKeyId = 'admin';
        return;
      }
      if (isAdmin) throw httpError('INFERQ_ERR_FORBIDDEN', 'The admin key only manages keys; send a tenant key (create one with POST /v1/admin/keys)');
      const record = await apiKeys.lookup(bearer.key);
      if (!record) {
        reply.header('www-authenticate', 'Bearer error="invalid_token"');
        throw httpError('INFERQ_ERR_UNAUTHORIZED', 'the key is unknown or was revoked');
      }
      request.tenant = record.tenant;
      request.apiKeyId = record.id;
    });

    app.addHook('preHandler', async (request) => {
      const kind = request.routeOptions.config.owned;
      if (kind === undefined) return;
      const id = (request.params as { id?: unknown }).id;
      if (typeof id !== 'string') throw notFound(kind, '');
      await owners.assert(request, kind, id);
    });
  },
  { name: 'inferq-auth', dependencies: ['inferq-queues'] },
);
