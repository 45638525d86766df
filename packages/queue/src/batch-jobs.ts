import type { DefaultJobOptions } from 'bullmq';
import type { WebhookEvent } from '@inferq/contracts';

/** A chunk job: K consecutive inputs of a batch, staged in Redis (`BatchStore.stageKey`). */
export interface ChunkJobData {
  /** The batch id. */
  batch: string;
  /** The chunk's index: its inputs are lines `chunk x K + 1` to `(chunk + 1) x K` of the batch. */
  chunk: number;
  /** Where the batch's inputs were staged (the staging id). */
  stage: string;
}

/** What a chunk job returns. */
export interface ChunkJobResult {
  /** Inputs run with a result. */
  completed: number;
  /** Inputs run that failed. */
  failed: number;
  /** Inputs not run: the batch was cancelled or had expired, or the chunk had already been written. */
  skipped: number;
}

/** The parent job of a batch's flow, on {@link BATCHES_QUEUE}: it runs once every chunk has ended. */
export interface BatchJobData {
  batch: string;
}

/** One webhook delivery. The body is fixed at enqueue time, so every retry sends the same bytes. */
export interface WebhookJobData {
  url: string;
  event: WebhookEvent;
  /** The JSON body (the job or batch view). */
  body: string;
}

/**
 * The id of a batch's parent job. It carries the batch's staging id as well as the batch id:
 * BullMQ keeps finished jobs past the record's retention (it removes them by age only when a
 * later job of the queue completes), so an Idempotency-Key reused after the record expired
 * makes the same batch id, and ids from the batch id alone would match the old jobs, and the
 * new flow would add nothing.
 */
export function batchJobId(batchId: string, stage: string): string {
  return `${batchId}-${stage}`;
}

/** The id of a chunk job (see {@link batchJobId}). BullMQ ignores an add whose id exists, so re-adding a flow adds nothing twice. */
export function chunkJobId(batchId: string, stage: string, chunk: number): string {
  return `${batchId}-${stage}-c${chunk}`;
}

/**
 * The id of the webhook delivery for a job's or a batch's final state: one delivery per
 * subject and creation time. The time keeps a subject id reused after retention (the same
 * Idempotency-Key a day later) from matching the old delivery, which lives 7 days.
 */
export function webhookJobId(subject: string, createdAt: number): string {
  return `wh-${subject}-${createdAt}`;
}

export interface WebhookJobOptions {
  /** Deliveries tried before giving up. @defaultValue 10 */
  attempts?: number;
  /** First retry delay, doubled on each retry, in milliseconds. @defaultValue 2000 */
  backoffMs?: number;
  /** How long a finished delivery stays in Redis, in seconds. @defaultValue 604800 (7 days) */
  retentionSeconds?: number;
}

/** Options of a webhook delivery: BullMQ retries it with exponential backoff. */
export function webhookJobOptions(opts: WebhookJobOptions = {}): DefaultJobOptions {
  const { attempts, backoffMs, retentionSeconds } = { attempts: 10, backoffMs: 2000, retentionSeconds: 604_800, ...opts };
  return {
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    removeOnComplete: { age: retentionSeconds },
    removeOnFail: { age: retentionSeconds },
  };
}
