import { FastifySSEPlugin } from 'fastify-sse-v2';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { EventMessage } from 'fastify';
import { ErrorBody, FINAL_STATUSES, JobParams, type JobView } from '@inferq/contracts';
import { modelIdFromJobId } from '@inferq/queue';
import { clientGone } from '../client-gone.js';
import { httpError } from '../errors.js';

/**
 * `GET /v1/jobs/:id/events`: Server-Sent Events. `status` with the job view now and at each
 * change, `token` with `{delta}` as a streamed generation job produces text, and the stream
 * ends after the final `status`. A stream lives at most `SSE_MAX_SECONDS` (then it ends and
 * `EventSource` reconnects after the `retry:` hint it got first), and one client holds at most
 * `MAX_STREAMS_PER_CLIENT` streams at once.
 */
export const jobEventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { SSE_MAX_SECONDS, SSE_RETRY_MS, MAX_STREAMS_PER_CLIENT } = app.config;
  await app.register(FastifySSEPlugin, { retryDelay: SSE_RETRY_MS });

  app.get(
    '/v1/jobs/:id/events',
    {
      config: { owned: 'job' },
      schema: {
        summary: 'Stream a job’s changes (SSE)',
        description:
          'Events: `status` (the job view, now and at each change), `token` (`{"delta": "..."}` for jobs posted with `"stream": true`). ' +
          `Ends after the final status, or after ${SSE_MAX_SECONDS} s (reconnect to go on; \`EventSource\` does). At most ${MAX_STREAMS_PER_CLIENT} streams per client.`,
        tags: ['jobs'],
        params: JobParams,
        response: { 404: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      // Everything that ends the stream is attached before the first await: a client that
      // connects and leaves at once holds nothing (no listener, no hold, no timer).
      const gone = clientGone(reply);
      const release = app.clientLimits.holdStream(request);
      const ended = new AbortController();
      const lifetime = setTimeout(() => ended.abort(), SSE_MAX_SECONDS * 1000);
      const cleanups: (() => void)[] = [];
      let cleaned = false;
      const cleanup = (): void => {
        if (cleaned) return;
        cleaned = true;
        clearTimeout(lifetime);
        release();
        for (const undo of cleanups.splice(0)) undo();
      };
      gone.addEventListener('abort', () => ended.abort(), { once: true });
      app.queues.closing.addEventListener('abort', () => ended.abort(), { once: true, signal: ended.signal });
      ended.signal.addEventListener('abort', cleanup, { once: true });
      if (gone.aborted) ended.abort();

      let events: Awaited<ReturnType<typeof app.queues.events>>;
      const { id } = request.params;
      const modelId = modelIdFromJobId(id);
      try {
        if (modelId === undefined || !(await app.queues.hasJob(modelId, id))) throw httpError('INFERQ_ERR_JOB_NOT_FOUND', id);
        events = await app.queues.events(modelId);
      } catch (err) {
        cleanup();
        throw err;
      }
      if (ended.signal.aborted) return reply.hijack();

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
      const stopWaiting = () => wake?.();
      ended.signal.addEventListener('abort', stopWaiting, { once: true });
      cleanups.push(() => {
        emitter.off(names.progress, onProgress);
        for (const name of [names.active, names.completed, names.failed]) emitter.off(name, onChange);
      });
      // A read that fails (Redis gone, the API closing after the client left) ends the stream:
      // nothing awaits the generator's rejection once the response is streaming.
      const readView = (): Promise<JobView | undefined> =>
        app.queues.readView(modelId, id).catch((err: unknown) => {
          if (!ended.signal.aborted) request.log.warn({ err, jobId: id }, 'job events: reading the job failed; the stream ends');
          return undefined;
        });

      async function* stream(): AsyncGenerator<EventMessage> {
        try {
          let view = await readView();
          if (!view || ended.signal.aborted) return;
          yield { event: 'status', data: JSON.stringify(view) };
          while (!FINAL_STATUSES.includes(view.status) && !ended.signal.aborted) {
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
          cleanup();
        }
      }
      reply.sse(stream());
    },
  );
};
