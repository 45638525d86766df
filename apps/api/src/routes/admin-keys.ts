import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CreateKeyBody, ErrorBody, KeyCreated, KeyList, KeyParams } from '@inferq/contracts';
import type { ApiKeyRecord } from '@inferq/queue';
import { httpError } from '../errors.js';

const view = (record: ApiKeyRecord) => ({ id: record.id, tenant: record.tenant, created_at: new Date(record.createdAt).toISOString() });

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 500: ErrorBody, 503: ErrorBody };

/** `POST /v1/admin/keys`, `GET /v1/admin/keys`, `DELETE /v1/admin/keys/:id`: tenant keys, with the admin key only. */
export const adminKeyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const config = { access: 'admin' as const };

  app.post(
    '/v1/admin/keys',
    {
      config,
      schema: {
        summary: 'Create a tenant key (admin)',
        description: 'The key is shown once, in this answer; it is stored only as a hash. Everything made with it belongs to `tenant`.',
        tags: ['admin'],
        body: CreateKeyBody,
        response: { 201: KeyCreated, 415: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      const created = await app.apiKeys.create(request.body.tenant);
      request.log.info({ keyId: created.id, tenant: created.tenant }, 'api key created');
      return reply.code(201).send({ ...view(created), key: created.key });
    },
  );

  app.get(
    '/v1/admin/keys',
    {
      config,
      schema: { summary: 'List tenant keys (admin)', description: 'Ids and tenants; never the keys.', tags: ['admin'], response: { 200: KeyList, ...errors } },
    },
    async () => ({ object: 'list' as const, data: (await app.apiKeys.list()).map(view) }),
  );

  app.delete(
    '/v1/admin/keys/:id',
    {
      config,
      schema: {
        summary: 'Revoke a tenant key (admin)',
        description: 'Takes effect at once in every API process.',
        tags: ['admin'],
        params: KeyParams,
        response: { 204: { type: 'null', description: 'Revoked' }, 404: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      if (!(await app.apiKeys.revoke(request.params.id))) throw httpError('INFERQ_ERR_KEY_NOT_FOUND', request.params.id);
      request.log.info({ keyId: request.params.id }, 'api key revoked');
      return reply.code(204).send(null);
    },
  );
};
