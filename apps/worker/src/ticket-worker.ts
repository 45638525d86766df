import { Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { GenerationResult, LabelScore, TicketResult } from '@inferq/contracts';
import { TICKETS_QUEUE, TicketArchive, createRedis, type TicketJobData } from '@inferq/queue';
import { keepTicket } from './ticket-keep.js';
import type { WorkerConfig } from './config.js';

/**
 * Combines a ticket's two finished children (issue detection and summary) into its result.
 * The parent only runs once both children have succeeded (BullMQ flows), so this is cheap
 * and any worker process can do it.
 */
export function startTicketWorker(config: WorkerConfig, log: Logger): Worker<TicketJobData, TicketResult> {
  const archive = new TicketArchive(createRedis(config.REDIS_URL, 'worker'), config.QUEUE_PREFIX);
  const processor = async (job: Job<TicketJobData, TicketResult>): Promise<TicketResult> => {
    const values = await job.getChildrenValues<unknown>();
    const byId = (queue: string, id: string) => values[`${config.QUEUE_PREFIX}:${queue}:${id}`];
    const labels = byId(job.data.queues.classification, job.data.jobs.classification) as LabelScore[] | undefined;
    const summary = byId(job.data.queues.summary, job.data.jobs.summary) as GenerationResult | undefined;
    if (!labels?.[0] || !summary) throw new Error(`ticket ${job.id}: a child result is missing`);
    const result = { issue: labels[0], labels, summary: summary.text.trim() };
    await keepTicket(archive, job, labels[0].label, byId, config.TICKET_RETENTION_SECONDS, log);
    return result;
  };
  const worker = new Worker<TicketJobData, TicketResult>(TICKETS_QUEUE, processor, {
    connection: createRedis(config.REDIS_URL, 'worker'),
    prefix: config.QUEUE_PREFIX,
    concurrency: 16,
  });
  worker.on('error', (err) => log.error({ err, queue: TICKETS_QUEUE }, 'queue error'));
  worker.on('closed', () => archive.redis.disconnect());
  return worker;
}
