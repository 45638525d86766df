import { randomUUID, createHash } from 'node:crypto';
import { isModelId } from '@inferq/contracts';

/** Default BullMQ key prefix. Wrap it in braces (`{inferq}`) for Redis Cluster. */
export const DEFAULT_PREFIX = 'inferq';

const SEP = '--';

/**
 * One queue per model. Model ids never contain `--` (the Hub forbids it, and so do we),
 * so `model--org--name` is unambiguous, and BullMQ queue names must not contain `:`.
 */
export function queueNameForModel(modelId: string): string {
  if (!isModelId(modelId)) throw new Error(`Invalid model id "${modelId}"`);
  return ['model', ...modelId.split('/')].join(SEP);
}

/**
 * Public job ids carry the model they were queued for (`org--name--suffix`), so the API
 * finds a job's queue from its id without a lookup table in Redis.
 * With an idempotency key the suffix is derived from it: the same key gives the same id.
 */
export function newJobId(modelId: string, idempotencyKey?: string): string {
  const [org, name] = modelId.split('/');
  const suffix = idempotencyKey
    ? 'k' + createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)
    : randomUUID().replaceAll('-', '');
  return [org, name, suffix].join(SEP);
}

/** The model a job id belongs to, or undefined when the id is not one of ours. */
export function modelIdFromJobId(jobId: string): string | undefined {
  const parts = jobId.split(SEP);
  if (parts.length !== 3 || !parts[2] || !/^[a-z0-9]+$/.test(parts[2])) return undefined;
  const modelId = `${parts[0]}/${parts[1]}`;
  return isModelId(modelId) ? modelId : undefined;
}

/**
 * The chunk jobs of bulk batches, one queue per model (`bulk--org--name`), apart from the
 * model's single jobs so that a single job never waits in Redis behind queued chunks.
 */
export function bulkQueueNameForModel(modelId: string): string {
  return ['bulk', ...queueNameForModel(modelId).split(SEP).slice(1)].join(SEP);
}

/** The parents of the batches' flows: a parent runs (and finalizes its batch) once every chunk has ended. */
export const BATCHES_QUEUE = 'batches';

/** Webhook deliveries, retried with exponential backoff. */
export const WEBHOOKS_QUEUE = 'webhooks';

/**
 * Batch ids: `batch_<32 hex>`; with an idempotency key the hex is derived from it (prefixed
 * `k`), so a repeated post finds the batch the first one made.
 */
export function newBatchId(idempotencyKey?: string): string {
  return idempotencyKey
    ? 'batch_k' + createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)
    : 'batch_' + randomUUID().replaceAll('-', '');
}

/** Whether a string has the shape of a batch id (checked before it becomes part of a Redis key). */
export function isBatchId(id: string): boolean {
  return /^batch_k?[0-9a-f]{32}$/.test(id);
}
