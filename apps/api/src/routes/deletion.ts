import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Queue } from 'bullmq';
import Type from 'typebox';
import { BatchParams, ErrorBody, JobParams } from '@inferq/contracts';
import {
  BATCHES_QUEUE,
  TICKETS_QUEUE,
  WEBHOOKS_QUEUE,
  batchJobId,
  eraseBatch,
  eraseJobEvents,
  modelIdFromJobId,
  queueNameForModel,
  webhookJobId,
  TicketArchive,
  type TicketJobData,
} from '@inferq/queue';
import { httpError } from '../errors.js';

const TicketParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });
const Deleted = { type: 'null', description: 'Deleted: inputs, results, staging and events are gone' } as const;
const errors = { 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 409: ErrorBody, 500: ErrorBody, 503: ErrorBody };

/**
 * `DELETE /v1/jobs/:id`, `/v1/tickets/:id`, `/v1/batches/:id`: erase a thing and everything
 * that holds its text: the BullMQ job (input, result), its entries in the queue's event stream
 * (results, streamed tokens), a pending webhook, a batch's staged inputs and results. A running
 * job or ticket answers 409 (its worker holds it); a running batch is cancelled first.
 * Then the id answers 404 like any unknown id.
 */
export const deletionRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { QUEUE_PREFIX: prefix } = app.config;
  const redis = app.queues.redis;
  const queues = new Map<string, Queue>();
  const queue = (name: string): Queue => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: redis, prefix });
      q.on('error', (err) => app.log.debug({ err, queue: name }, 'queue error'));
      queues.set(name, q);
    }
    return q;
  };
  app.addHook('onClose', async () => {
    for (const q of queues.values()) await q.close().catch(() => {});
  });

  /** Removes one job (and its children) and its events; throws 409 when a worker holds it. */
  async function eraseJob(queueName: string, id: string, what: string): Promise<void> {
    const job = await queue(queueName).getJob(id);
    const removed = await queue(queueName).remove(id, { removeChildren: true });
    if (removed !== 1 && (await redis.exists(`${prefix}:${queueName}:${id}`)) === 1) throw httpError('INFERQ_ERR_DELETE_RUNNING', what, id);
    await eraseJobEvents(redis, prefix, queueName, id);
    // A pending delivery of its webhook holds the job's final view: named after the job's creation.
    if (job) await queue(WEBHOOKS_QUEUE).remove(webhookJobId(`job-${id}`, job.timestamp)).catch(() => 0);
  }

  app.delete(
    '/v1/jobs/:id',
    {
      config: { owned: 'job' },
      schema: { summary: 'Delete a job', description: 'Erases its input, result and events. 409 while it runs.', tags: ['jobs'], params: JobParams, response: { 204: Deleted, ...errors } },
    },
    async (request, reply) => {
      const { id } = request.params;
      const model = modelIdFromJobId(id);
      if (model === undefined) throw httpError('INFERQ_ERR_JOB_NOT_FOUND', id.slice(0, 300));
      await eraseJob(queueNameForModel(model), id, 'Job');
      await app.owners.store.release('job', id, request.tenant);
      request.log.info({ jobId: id }, 'job deleted');
      return reply.code(204).send(null);
    },
  );

  const archive = new TicketArchive(redis, prefix);
  app.delete(
    '/v1/tickets/:id',
    {
      config: { owned: 'ticket' },
      schema: { summary: 'Delete a ticket', description: 'Erases the ticket, its jobs (text, issue, summary, embedding), their events, and its kept text and embedding. 409 while one runs.', tags: ['tickets'], params: TicketParams, response: { 204: Deleted, ...errors } },
    },
    async (request, reply) => {
      const { id } = request.params;
      const parent = await queue(TICKETS_QUEUE).getJob(id);
      const data = parent?.data as TicketJobData | undefined;
      // The children first (they hold the text): a running child answers 409 and nothing of the ticket is lost yet.
      if (data?.jobs && data.queues) {
        await eraseJob(data.queues.classification, data.jobs.classification, 'Ticket job');
        await eraseJob(data.queues.summary, data.jobs.summary, 'Ticket job');
        await app.owners.store.release('job', data.jobs.classification, request.tenant);
        await app.owners.store.release('job', data.jobs.summary, request.tenant);
      }
      if (data?.embedding) await eraseJob(data.embedding.queue, data.embedding.job, 'Ticket job');
      await eraseJob(TICKETS_QUEUE, id, 'Ticket');
      // Its text and embedding, kept for similar tickets and cluster runs.
      await archive.remove(id);
      await app.owners.store.release('ticket', id, request.tenant);
      request.log.info({ ticketId: id }, 'ticket deleted');
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/v1/batches/:id',
    {
      config: { owned: 'batch' },
      schema: { summary: 'Delete a batch', description: 'Cancels it if it runs, then erases its inputs, results and staging.', tags: ['batches'], params: BatchParams, response: { 204: Deleted, ...errors } },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { store } = app.batches;
      const record = await store.get(id);
      if (!record) throw httpError('INFERQ_ERR_BATCH_NOT_FOUND', id.slice(0, 100));
      // Cancel first: chunks not started are skipped; one in flight finds its batch gone and writes nothing.
      await store.transition(id, 'cancelling', ['validating', 'in_progress']);
      await eraseBatch(store, record, [app.owners.listKey(request, 'batch')]);
      // The flow's jobs hold only ids; remove those not running, and the pending webhook.
      await queue(BATCHES_QUEUE).remove(batchJobId(id, record.stage), { removeChildren: true }).catch(() => 0);
      await queue(WEBHOOKS_QUEUE).remove(webhookJobId(id, record.createdAt)).catch(() => 0);
      await app.owners.store.release('batch', id, request.tenant);
      request.log.info({ batchId: id }, 'batch deleted');
      return reply.code(204).send(null);
    },
  );
};
