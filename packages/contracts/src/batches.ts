import Type, { type Static } from 'typebox';
import { ErrorDetail } from './errors.js';
import type { JobResult } from './jobs.js';
import { ModelId } from './models.js';
import { ChatMessage } from './task-parameters.js';

/** Most inputs in one batch. */
export const MAX_BATCH_INPUTS = 100_000;

/** Longest `custom_id`, in characters. */
export const MAX_CUSTOM_ID_CHARS = 64;

/** Longest `completion_window`, in seconds (7 days). */
export const MAX_COMPLETION_WINDOW_SECONDS = 7 * 86_400;

/** The `completion_window` of a batch that names none. */
export const DEFAULT_COMPLETION_WINDOW = '24h';

/** Most `metadata` entries, and their longest key and value, in characters (as in OpenAI's Batch API). */
export const MAX_METADATA_ENTRIES = 16;
export const MAX_METADATA_KEY_CHARS = 64;
export const MAX_METADATA_VALUE_CHARS = 512;

/** Content types of a batch upload: one `{custom_id, input}` JSON object per line. */
export const NDJSON_CONTENT_TYPES = ['application/x-ndjson', 'application/jsonl'] as const;

const COMPLETION_WINDOW_PATTERN = '^[1-9][0-9]{0,6}[smhd]$';
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/**
 * Seconds in a completion window such as `"24h"`, `"90m"`, `"7d"`; undefined when it is not
 * one (units s, m, h, d) or is longer than {@link MAX_COMPLETION_WINDOW_SECONDS}.
 */
export function parseCompletionWindow(window: string): number | undefined {
  if (!new RegExp(COMPLETION_WINDOW_PATTERN).test(window)) return undefined;
  const unit = window.slice(-1) as keyof typeof UNIT_SECONDS;
  const seconds = Number(window.slice(0, -1)) * UNIT_SECONDS[unit];
  return seconds <= MAX_COMPLETION_WINDOW_SECONDS ? seconds : undefined;
}

export const BATCH_STATUSES = [
  'validating',
  'in_progress',
  'finalizing',
  'completed',
  'failed',
  'cancelling',
  'cancelled',
  'expired',
] as const;
export const BatchStatus = Type.Enum(BATCH_STATUSES, {
  description:
    'validating: accepted, chunks being queued; in_progress: chunks running; finalizing: every chunk ended, results being closed; completed; failed (no input could be run); cancelling → cancelled; expired (the completion window passed first)',
});
export type BatchStatus = Static<typeof BatchStatus>;

/** Statuses a batch never leaves. */
export const FINAL_BATCH_STATUSES: readonly BatchStatus[] = ['completed', 'failed', 'cancelled', 'expired'];

export const CustomId = Type.String({
  minLength: 1,
  maxLength: MAX_CUSTOM_ID_CHARS,
  description: `Your id for the input, 1 to ${MAX_CUSTOM_ID_CHARS} characters, unique within the batch; its result line carries it`,
  examples: ['review-1'],
});

/** One input of a batch: a JSON array item, or one line of an NDJSON upload. */
export const BatchInput = Type.Object(
  {
    custom_id: CustomId,
    input: Type.Union([Type.String({ examples: ['Arrived broken, no reply from support.'] }), Type.Array(ChatMessage, { minItems: 1, maxItems: 100 })], {
      description: 'The text to process; for `generation` also an array of chat messages `[{role, content}]`',
    }),
  },
  { additionalProperties: false },
);
export type BatchInput = Static<typeof BatchInput>;

export const BatchMetadata = Type.Record(Type.String({ maxLength: MAX_METADATA_KEY_CHARS }), Type.String({ maxLength: MAX_METADATA_VALUE_CHARS }), {
  maxProperties: MAX_METADATA_ENTRIES,
  description: `Up to ${MAX_METADATA_ENTRIES} string pairs of your own, returned with the batch`,
});
export type BatchMetadata = Static<typeof BatchMetadata>;

const CompletionWindow = Type.String({
  pattern: COMPLETION_WINDOW_PATTERN,
  description: `How long the batch may take: a number and a unit (s, m, h, d), at most 7d. Inputs not run by then are not run (status expired). Default ${DEFAULT_COMPLETION_WINDOW}`,
  examples: ['24h'],
});

const WebhookUrl = Type.String({
  description: 'http(s) URL that receives the final state, signed (`Inferq-Signature`); private and loopback addresses are refused',
  examples: ['https://example.com/hooks/inferq'],
});

export const CreateBatchBody = Type.Object(
  {
    task: Type.String({ description: 'One of the supported tasks, e.g. "classification"', examples: ['classification'] }),
    model: Type.Optional(ModelId),
    parameters: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "The task's parameters, as for a single job; the same for every input" }),
    ),
    inputs: Type.Array(BatchInput, {
      minItems: 1,
      maxItems: MAX_BATCH_INPUTS,
      description: `1 to ${MAX_BATCH_INPUTS} inputs; results come back in this order`,
    }),
    metadata: Type.Optional(BatchMetadata),
    completion_window: Type.Optional(CompletionWindow),
    webhook_url: Type.Optional(WebhookUrl),
  },
  { additionalProperties: false, $id: 'CreateBatchBody' },
);
export type CreateBatchBody = Static<typeof CreateBatchBody>;

/** The query string of an NDJSON upload: the batch's settings, the body being the inputs. */
export const CreateBatchQuery = Type.Object(
  {
    task: Type.Optional(Type.String({ description: 'Required with an NDJSON upload' })),
    model: Type.Optional(ModelId),
    parameters: Type.Optional(Type.String({ description: 'JSON-encoded parameters, e.g. {"top_k":1}' })),
    metadata: Type.Optional(Type.String({ description: 'JSON-encoded metadata' })),
    completion_window: Type.Optional(CompletionWindow),
    webhook_url: Type.Optional(WebhookUrl),
  },
  { additionalProperties: false },
);
export type CreateBatchQuery = Static<typeof CreateBatchQuery>;

export const BatchRequestCounts = Type.Object({
  total: Type.Integer({ description: 'Inputs in the batch' }),
  completed: Type.Integer({ description: 'Inputs run with a result' }),
  failed: Type.Integer({ description: 'Inputs run that failed (their result line has an error)' }),
});
export type BatchRequestCounts = Static<typeof BatchRequestCounts>;

const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const BatchView = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('batch'),
    task: Type.String(),
    model: Type.String(),
    status: BatchStatus,
    completion_window: Type.String(),
    request_counts: BatchRequestCounts,
    results_url: Type.String({ description: 'JSONL results, in input order; readable while the batch runs' }),
    created_at: Type.String({ format: 'date-time' }),
    in_progress_at: Timestamp,
    finalizing_at: Timestamp,
    completed_at: Timestamp,
    failed_at: Timestamp,
    cancelling_at: Timestamp,
    cancelled_at: Timestamp,
    expired_at: Timestamp,
    expires_at: Type.String({ format: 'date-time', description: 'created_at + completion_window' }),
    metadata: Type.Union([BatchMetadata, Type.Null()]),
  },
  { $id: 'BatchView' },
);
export type BatchView = Static<typeof BatchView>;

export const BatchParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
export type BatchParams = Static<typeof BatchParams>;

export const BatchListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Batches per page, 1 to 100' })),
    after: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'The last_id of the previous page' })),
  },
  { additionalProperties: false },
);
export type BatchListQuery = Static<typeof BatchListQuery>;

export const BatchList = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(BatchView, { description: 'Newest first' }),
    has_more: Type.Boolean(),
    first_id: Type.Union([Type.String(), Type.Null()]),
    last_id: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'BatchList' },
);
export type BatchList = Static<typeof BatchList>;

/** One line of a batch's results file. */
export type BatchResultLine =
  | { custom_id: string; result: JobResult }
  | { custom_id: string; error: ErrorDetail };
