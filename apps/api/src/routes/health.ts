import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ErrorBody } from '@inferq/contracts';
import { httpError } from '../errors.js';

const Healthy = Type.Object({ status: Type.Literal('ok') });

/** How long `/readyz` waits for Redis to answer `PING`, in milliseconds. */
const READY_PING_TIMEOUT_MS = 1000;

/** `GET /healthz` (the process is up) and `GET /readyz` (Redis answers). */
export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    {
      schema: { summary: 'Liveness: the process answers', tags: ['health'], response: { 200: Healthy, 500: ErrorBody } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: Redis answers PING within a second',
        tags: ['health'],
        response: { 200: Healthy, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async () => {
      if (!(await app.queues.ping(READY_PING_TIMEOUT_MS))) throw httpError('INFERQ_ERR_QUEUE_UNAVAILABLE');
      return { status: 'ok' as const };
    },
  );
};
