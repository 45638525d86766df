import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, ModelList } from '@inferq/contracts';

/** `GET /v1/models`: the models in `MODELS_DIR` and the tasks each serves. */
export const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/models',
    {
      schema: {
        summary: 'List the models',
        tags: ['models'],
        response: { 200: ModelList, 500: ErrorBody },
      },
    },
    async () => ({ data: await app.models.list() }),
  );
};
