import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { ModelInfo } from '@inferq/contracts';
import { httpError } from '../../errors.js';

const OpenAIModel = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer({ description: 'When the model folder’s config.json was written (Unix seconds)' }),
  owned_by: Type.String({ description: 'The organization part of the id' }),
});

/** `GET /models` and `GET /models/:id` (under `/openai/v1`): the models folder, in OpenAI's shape. */
export const openaiModelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const view = async (model: ModelInfo) => {
    const written = await stat(join(app.config.MODELS_DIR, model.path, 'config.json')).catch(() => undefined);
    return {
      id: model.id,
      object: 'model' as const,
      created: written ? Math.floor(written.mtimeMs / 1000) : 0,
      owned_by: model.id.split('/')[0] ?? model.id,
    };
  };

  app.get(
    '/models',
    {
      schema: {
        summary: 'OpenAI model list',
        tags: ['openai'],
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(OpenAIModel) }) },
      },
    },
    async () => ({ object: 'list' as const, data: await Promise.all((await app.models.list()).map(view)) }),
  );

  const retrieve = async (id: string) => {
    const model = await app.models.get(id);
    if (!model) throw Object.assign(httpError('INFERQ_ERR_UNKNOWN_MODEL', id.slice(0, 200)), { param: 'model' });
    return view(model);
  };
  const schema = { summary: 'OpenAI model', tags: ['openai'], response: { 200: OpenAIModel } };
  // Model ids hold a slash (`inferq/tiny-llama`): sent as is (two segments) or encoded as %2F (one).
  app.get('/models/:org/:name', { schema: { ...schema, params: Type.Object({ org: Type.String(), name: Type.String() }) } }, async (request) =>
    retrieve(`${request.params.org}/${request.params.name}`),
  );
  app.get('/models/:id', { schema: { ...schema, params: Type.Object({ id: Type.String() }) } }, async (request) => retrieve(request.params.id));
};
