import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import type { TicketArchive, TicketJobData } from '@inferq/queue';

/**
 * Keeps a triaged ticket's text, issue and embedding (its embedding child's result) in the
 * ticket archive. A ticket without an embedding child, or whose embedding failed, is not kept;
 * that never fails the ticket.
 */
export async function keepTicket(
  archive: TicketArchive,
  job: Job<TicketJobData>,
  issue: string,
  childValue: (queue: string, id: string) => unknown,
  retentionSeconds: number,
  log: Logger,
): Promise<void> {
  const { embedding, text } = job.data;
  if (!embedding || text === undefined || !job.id) return;
  const value = childValue(embedding.queue, embedding.job) as { embedding?: number[] } | undefined;
  if (!value?.embedding) {
    log.warn({ jobId: job.id }, 'ticket embedding missing; the ticket is not kept');
    return;
  }
  await archive.add(
    { id: job.id, text, issue, model: embedding.model, at: Date.now(), embedding: Float32Array.from(value.embedding) },
    retentionSeconds,
  );
}
