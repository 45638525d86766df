import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody, WorkerList } from '@inferq/contracts';
import { liveWorkers } from '@inferq/queue';

/**
 * `GET /v1/admin/workers`: the live workers (their heartbeat has not expired), the models each
 * serves, the device each model runs on, and its last minute of batches. One read of two
 * keys of one hash tag, so it sees every worker on Redis Cluster too. With API keys on, only
 * the admin key may read it (`access: 'operator'`); an API without keys serves it to anyone.
 */
export const adminWorkerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/admin/workers',
    {
      config: { access: 'operator' },
      schema: {
        summary: 'List the live workers',
        tags: ['admin'],
        response: { 200: WorkerList, 401: ErrorBody, 403: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async () => {
      const workers = await liveWorkers(app.queues.redis, app.config.QUEUE_PREFIX);
      return {
        data: workers
          .map((w) => ({
            id: w.id,
            hostname: w.hostname,
            pid: w.pid,
            started_at: w.started_at,
            models: w.models,
            devices: w.devices,
            batches: w.batches ?? {},
            heartbeat_at: w.heartbeat_at ?? null,
          }))
          .sort((a, b) => a.id.localeCompare(b.id)),
      };
    },
  );
};
