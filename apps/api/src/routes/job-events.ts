import { FastifySSEPlugin } from 'fastify-sse-v2';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { EventMessage } from 'fastify';
import { ErrorBody, FINAL_STATUSES, JobParams, type JobView } from '@inferq/contracts';
import { modelIdFromJobId, toJobView } from '@inferq/queue';
import { httpError } from '../errors.js';

/**
 * `GET /v1/jobs/:id/events`: Server-Sent Events. `status` with the job view now and at each
 * change, `token` with `{delta}` as a streamed generation job produces text, and the stream
 * ends after the final `status`.
 */
export const jobEventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(FastifySSEPlugin);

  app.get(
    '/v1/jobs/:id/events',
    {
      config: { owned: 'job' },
      schema: {
        summary: 'Stream a job’s changes (SSE)',
        description: 'Events: `status` (the job view, now and at each change), `token` (`{"delta": "..."}` for jobs posted with `"stream": true`). Ends after the final status.',
        tags: ['jobs'],
        params: JobParams,
        response: { 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const modelId = modelIdFromJobId(id);
      if (modelId === undefined || !(await app.queues.hasJob(modelId, id))) throw httpError('INFERQ_ERR_JOB_NOT_FOUND', id);
      const queue = app.queues.forModel(modelId);
      const events = await app.queues.events(modelId);

      const readView = async (): Promise<JobView | undefined> => {
        const state = await queue.getJobState(id);
        const job = await queue.getJob(id);
        return job && state !== 'unknown' ? toJobView(job, state) : undefined;
      };

      // Listen before the first read, so no change falls between the two.
      const inbox: ({ kind: 'token'; delta: string } | { kind: 'change' })[] = [];
      let wake: (() => void) | undefined;
      const push = (item: (typeof inbox)[number]) => {
        inbox.push(item);
        wake?.();
      };
      const onProgress = ({ data }: { data: unknown }) => {
        const delta = (data as { delta?: unknown } | undefined)?.delta;
        if (typeof delta === 'string') push({ kind: 'token', delta });
      };
      const onChange = () => push({ kind: 'change' });
      const names = { progress: `progress:${id}`, active: `active:${id}`, completed: `completed:${id}`, failed: `failed:${id}` };
      const emitter = events as unknown as NodeJS.EventEmitter;
      emitter.on(names.progress, onProgress);
      for (const name of [names.active, names.completed, names.failed]) emitter.on(name, onChange);
      const gone = new AbortController();
      request.raw.once('close', () => gone.abort());
      const stopWaiting = () => wake?.();
      gone.signal.addEventListener('abort', stopWaiting);
      app.queues.closing.addEventListener('abort', stopWaiting);

      async function* stream(): AsyncGenerator<EventMessage> {
        try {
          let view = await readView();
          if (!view) return;
          yield { event: 'status', data: JSON.stringify(view) };
          while (!FINAL_STATUSES.includes(view.status) && !gone.signal.aborted && !app.queues.closing.aborted) {
            if (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            let changed = false;
            for (const item of inbox.splice(0)) {
              if (item.kind === 'token') yield { event: 'token', data: JSON.stringify({ delta: item.delta }) };
              else changed = true;
            }
            if (changed) {
              const next = await readView();
              if (!next) return;
              if (next.status !== view.status) yield { event: 'status', data: JSON.stringify(next) };
              view = next;
            }
          }
        } finally {
          emitter.off(names.progress, onProgress);
          for (const name of [names.active, names.completed, names.failed]) emitter.off(name, onChange);
          gone.signal.removeEventListener('abort', stopWaiting);
          app.queues.closing.removeEventListener('abort', stopWaiting);
        }
      }
      reply.sse(stream());
    },
  );
};
