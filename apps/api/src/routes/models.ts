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
      const serving = (id: string) => workers.filter((w) => w.models.includes(id)).length;
      return { data: models.map((m) => ({ ...m, served: serving(m.id) > 0, workers: serving(m.id) })) };
    },
  );
};
