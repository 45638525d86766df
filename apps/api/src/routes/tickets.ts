import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { FlowProducer, Queue } from 'bullmq';
import Type from 'typebox';
import {
  CreateTicketBody,
  DEFAULT_TICKET_LABELS,
  ErrorBody,
  FINAL_STATUSES,
  TicketView,
  decodeJobError,
  type TicketResult,
} from '@inferq/contracts';
import {
  TICKETS_QUEUE,
  inferenceJobOptions,
  isTicketId,
  newJobId,
  newTicketId,
  queueNameForModel,
  statusFromState,
  type InferenceJobData,
  type TicketJobData,
} from '@inferq/queue';
import { clientGone } from '../client-gone.js';
import { httpError } from '../errors.js';
import { watchJobEnd } from '../job-end-watch.js';
import { checkInput } from './jobs.js';
import { ticketEmbeddingChildFor } from '../ticket-embedding.js';

const TicketParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const TicketQuery = Type.Object(
  { wait: Type.Optional(Type.Number({ minimum: 0, description: 'Hold up to this many seconds until the ticket is done' })) },
  { additionalProperties: false },
);

/**
 * `POST /v1/tickets`: issue detection (zero-shot over the ticket labels) and a one-line
 * summary, as one BullMQ flow: a parent on the `tickets` queue and two children on the
 * models' queues (as single jobs, ahead of bulk work). A worker combines the two results
 * when both are done. `GET /v1/tickets/:id` reads it, `?wait=N` long-polls.
 */
export const ticketRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { QUEUE_PREFIX, JOB_RETENTION_SECONDS, MAX_WAIT_SECONDS, TICKET_SUMMARY_TOKENS, TICKET_MODEL } = app.config;
  const jobOptions = inferenceJobOptions({ retentionSeconds: JOB_RETENTION_SECONDS });
  const flows = new FlowProducer({ connection: app.queues.redis, prefix: QUEUE_PREFIX });
  const tickets = new Queue<TicketJobData, TicketResult>(TICKETS_QUEUE, { connection: app.queues.redis, prefix: QUEUE_PREFIX });
  const ticketEmbeddingChild = ticketEmbeddingChildFor(app);
  app.addHook('onClose', async () => {
    for (const closable of [flows, tickets]) {
      try {
        await closable?.close();
      } catch {
        /* closing anyway */
      }
    }
  });

  async function readView(id: string): Promise<TicketView> {
    const state = await tickets.getJobState(id);
    const job = await tickets.getJob(id);
    if (!job || state === 'unknown') throw httpError('INFERQ_ERR_TICKET_NOT_FOUND', id);
    const status = statusFromState(state);
    const view: TicketView = {
      id,
      object: 'ticket',
      status,
      jobs: job.data.jobs,
      created_at: new Date(job.timestamp).toISOString(),
      finished_at: FINAL_STATUSES.includes(status) && job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    };
    if (status === 'succeeded') view.result = job.returnvalue;
    if (status === 'failed') view.error = decodeJobError(job.failedReason);
    return view;
  }

  app.post(
    '/v1/tickets',
    {
      schema: {
        summary: 'Triage a support ticket',
        description: 'Detects the issue (zero-shot over `labels`, or the default set) and writes a one-line summary; both run as single jobs, ahead of bulk batches.',
        tags: ['tickets'],
        body: CreateTicketBody,
        response: { 202: Type.Object({ id: Type.String(), status: Type.Literal('queued') }), 400: ErrorBody, 404: ErrorBody, 413: ErrorBody, 415: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const { subject, body, labels } = request.body;
      const text = subject?.trim() ? `${subject.trim()}\n\n${body}` : body;
      if (body.trim() === '') throw httpError('INFERQ_ERR_EMPTY_INPUT');
      // Characters (code points), as /v1/jobs counts them, not UTF-16 units.
      checkInput('summarization', text);
      // Labels from the request need zero-shot; without them, TICKET_MODEL may be a plain
      // classifier trained on ticket issues.
      const ticketModel = !labels && TICKET_MODEL ? await app.models.get(TICKET_MODEL) : undefined;
      const task = ticketModel && !ticketModel.tasks.includes('zero-shot-classification') ? 'classification' : 'zero-shot-classification';
      const [classifier, summarizer] = await Promise.all([
        app.models.resolve(task, ticketModel?.id ?? (TICKET_MODEL || undefined)),
        app.models.resolve('summarization'),
      ]);
      const jobs = { classification: newJobId(classifier), summary: newJobId(summarizer) };
      const queues = { classification: queueNameForModel(classifier), summary: queueNameForModel(summarizer) };
      const classify: InferenceJobData =
        task === 'classification'
          ? { task, model: classifier, input: text, parameters: {} }
          : { task, model: classifier, input: text, parameters: { candidate_labels: labels ?? [...DEFAULT_TICKET_LABELS] } };
      const summarize: InferenceJobData = { task: 'summarization', model: summarizer, input: text, parameters: { max_new_tokens: TICKET_SUMMARY_TOKENS } };
      const id = newTicketId();
      await app.quotas.admit(request, { inputs: 2, models: [classifier, summarizer] });
      await app.owners.claim(request, 'ticket', id);
      await app.owners.claim(request, 'job', [jobs.classification, jobs.summary]);
      const childOptions = { ...jobOptions, failParentOnFailure: true };
      const embedding = await ticketEmbeddingChild(text, jobOptions);
      await flows.add({
        name: 'ticket',
        queueName: TICKETS_QUEUE,
        data: { jobs, queues, ...(embedding ? { embedding: embedding.data, text } : {}) } satisfies TicketJobData,
        opts: { jobId: id, removeOnComplete: { age: JOB_RETENTION_SECONDS }, removeOnFail: { age: JOB_RETENTION_SECONDS } },
        children: [
          { name: classify.task, queueName: queues.classification, data: classify, opts: { ...childOptions, jobId: jobs.classification } },
          { name: summarize.task, queueName: queues.summary, data: summarize, opts: { ...childOptions, jobId: jobs.summary } },
          ...(embedding ? [embedding.child] : []),
        ],
      });
      await Promise.all([app.quotas.track(request, 'job', jobs.classification, 1), app.quotas.track(request, 'job', jobs.summary, 1)]);
      return reply.code(202).header('location', `/v1/tickets/${id}`).send({ id, status: 'queued' as const });
    },
  );

  app.get(
    '/v1/tickets/:id',
    {
      config: { owned: 'ticket' },
      schema: {
        summary: 'Read a ticket',
        tags: ['tickets'],
        params: TicketParams,
        querystring: TicketQuery,
        response: { 200: TicketView, 400: ErrorBody, 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      // Before any await: a client that leaves while the ticket is read ends its wait too.
      const waitMs = Math.min(request.query.wait ?? 0, MAX_WAIT_SECONDS) * 1000;
      const gone = waitMs > 0 ? clientGone(reply) : undefined;
      const release = gone ? app.clientLimits.holdWait(request) : undefined;
      try {
        const { id } = request.params;
        if (!isTicketId(id)) throw httpError('INFERQ_ERR_TICKET_NOT_FOUND', id);
        let view = await readView(id);
        if (!gone || FINAL_STATUSES.includes(view.status) || gone.aborted) return view;
        // The API's one shared reader of the tickets queue, reading from the last event
        // already in the stream: an end between the read above and its first block is not lost.
        const events = await app.queues.eventsForQueue(TICKETS_QUEUE);
        const watch = watchJobEnd(events, id, waitMs, [gone, app.queues.closing]);
        try {
          view = await readView(id);
          if (!FINAL_STATUSES.includes(view.status)) {
            await watch.outcome;
            if (!gone.aborted) view = await readView(id);
          }
        } finally {
          watch.stop();
        }
        return view;
      } finally {
        release?.();
      }
    },
  );
};
