import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { openaiBatchRoutes } from './batch-api.js';
import { openaiEmbeddingRoutes } from './embeddings.js';
import { openaiGenerationRoutes } from './generation-routes.js';
import { openaiModelRoutes } from './models.js';
import { sendOpenAIError } from './openai-errors.js';

/**
 * The OpenAI protocol, registered under `/openai/v1`: a layer over inferq's jobs (chat and
 * text completions are `generation` jobs; the Batch API is bulk batches). Its own scope, so its errors (schema, auth, quota,
 * unknown route) are sent in OpenAI's shape, `{error: {message, type, param, code}}`, with the
 * status and `INFERQ_ERR_*` code the rest of the API uses.
 */
export const openaiRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.setErrorHandler((error, request, reply) => sendOpenAIError(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendOpenAIError(Object.assign(new Error(`Route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)} not found`), { code: 'INFERQ_ERR_NOT_FOUND', statusCode: 404 }), request, reply),
  );
  await app.register(openaiModelRoutes);
  await app.register(openaiGenerationRoutes);
  await app.register(openaiBatchRoutes);
  await app.register(openaiEmbeddingRoutes);
};
