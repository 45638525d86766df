import type { FastifyInstance } from 'fastify';
import type { FlowChildJob, JobsOptions } from 'bullmq';
import { liveWorkers, newJobId, queueNameForModel, type InferenceJobData, type TicketJobData } from '@inferq/queue';

/**
 * The embedding child of a ticket's flow, so the ticket's text and vector are kept (for
 * `source: "tickets"` cluster runs and `GET /v1/tickets/:id/similar`). Only when a live worker
 * serves the embedding model: a ticket must never wait on a model nobody runs. Its failure
 * does not fail the ticket (the ticket is then just not kept).
 */
export function ticketEmbeddingChildFor(app: FastifyInstance) {
  const { QUEUE_PREFIX, DEFAULT_MODEL_EMBEDDING } = app.config;
  let cached: { at: number; served: boolean } | undefined;
  async function served(): Promise<boolean> {
    if (cached && Date.now() - cached.at < 2000) return cached.served;
    const workers = await liveWorkers(app.queues.redis, QUEUE_PREFIX).catch(() => []);
    cached = { at: Date.now(), served: workers.some((w) => w.models.includes(DEFAULT_MODEL_EMBEDDING)) };
    return cached.served;
  }
  return async (text: string, jobOptions: JobsOptions): Promise<{ child: FlowChildJob; data: NonNullable<TicketJobData['embedding']> } | undefined> => {
    if (!(await served()) || !(await app.models.get(DEFAULT_MODEL_EMBEDDING))?.tasks.includes('embedding')) return undefined;
    const model = DEFAULT_MODEL_EMBEDDING;
    const job = newJobId(model);
    const queue = queueNameForModel(model);
    const data: InferenceJobData = { task: 'embedding', model, input: text, parameters: {} };
    return {
      child: { name: 'embedding', queueName: queue, data, opts: { ...jobOptions, jobId: job, ignoreDependencyOnFailure: true } },
      data: { job, queue, model },
    };
  };
}
