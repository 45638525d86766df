import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, ModelList } from '@inferq/contracts';
import { liveWorkers } from '@inferq/queue';

/**
 * `GET /v1/models`: the models in `MODELS_DIR`, the tasks each serves, and how many live
 * workers serve it (from their heartbeats; with Redis down, every model shows unserved).
 */
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
    async () => {
      const [models, workers] = await Promise.all([
        app.models.list(),
        liveWorkers(app.queues.redis, app.config.QUEUE_PREFIX).catch(() => []),
      ]);
      // One pass over the heartbeats, one over the models: linear in both.
      const serving = new Map<string, number>();
      for (const w of workers) for (const id of new Set(w.models)) serving.set(id, (serving.get(id) ?? 0) + 1);
      return { data: models.map((m) => ({ ...m, served: serving.has(m.id), workers: serving.get(m.id) ?? 0 })) };
    },
  );
};
