import Type, { type Static } from 'typebox';

/**
 * Every error inferq reports, with the HTTP status it is sent with.
 * The API builds its `@fastify/error` registry from this table, the worker uses the
 * same codes for job failures, and the README lists them.
 */
export const ERRORS = {
  INFERQ_ERR_VALIDATION: { status: 400, message: 'Invalid request: %s' },
  INFERQ_ERR_MALFORMED_JSON: { status: 400, message: 'The request body is not valid JSON: %s' },
  INFERQ_ERR_UNKNOWN_TASK: { status: 400, message: 'Unknown task "%s"; supported tasks: %s' },
  INFERQ_ERR_UNKNOWN_MODEL: { status: 404, message: 'Model "%s" is not in the models folder' },
  INFERQ_ERR_TASK_MISMATCH: { status: 400, message: 'Model "%s" does not serve task "%s"' },
  INFERQ_ERR_EMPTY_INPUT: { status: 400, message: 'The input is empty' },
  INFERQ_ERR_INPUT_TOO_LARGE: { status: 413, message: 'The input is %d characters; the limit is %d' },
  INFERQ_ERR_PROMPT_TOO_LONG: { status: 413, message: 'The prompt is over %d tokens (MAX_PROMPT_TOKENS)' },
  INFERQ_ERR_BEAMS_TOO_COSTLY: { status: 400, message: 'num_beams x max_new_tokens is %d; the limit is %d (MAX_BEAM_TOKENS)' },
  INFERQ_ERR_REQUEST_TOO_COSTLY: { status: 413, message: 'The request costs %d tokens (prompt and new tokens, per beam); one request may cost at most %d (MAX_REQUEST_TOKENS)' },
  INFERQ_ERR_PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is larger than %d bytes' },
  INFERQ_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported Content-Type "%s"; send application/json (or application/x-ndjson to upload a batch)' },
  INFERQ_ERR_JOB_NOT_FOUND: { status: 404, message: 'No job with id "%s"' },
  INFERQ_ERR_TICKET_NOT_FOUND: { status: 404, message: 'No ticket with id "%s"' },
  INFERQ_ERR_WEBHOOK_URL: { status: 400, message: 'Invalid webhook_url: %s' },
  INFERQ_ERR_BATCH_LINE_INVALID: { status: 400, message: 'Line %d is invalid: %s' },
  INFERQ_ERR_BATCH_EMPTY: { status: 400, message: 'The batch has no inputs' },
  INFERQ_ERR_BATCH_TOO_MANY_INPUTS: { status: 413, message: 'The batch has more than %d inputs' },
  INFERQ_ERR_COMPLETION_WINDOW: { status: 400, message: 'Invalid completion_window "%s": use a number and a unit (s, m, h, d), at most 7d' },
  INFERQ_ERR_BATCH_NOT_FOUND: { status: 404, message: 'No batch with id "%s"' },
  INFERQ_ERR_BATCH_NOT_CANCELLABLE: { status: 409, message: 'Batch "%s" is %s and can no longer be cancelled' },
  INFERQ_ERR_BATCH_CANCELLED: { status: 409, message: 'The batch was cancelled before this input ran' },
  INFERQ_ERR_BATCH_EXPIRED: { status: 410, message: 'The batch\'s completion window ended before this input ran' },
  INFERQ_ERR_CLUSTER_SOURCE: { status: 400, message: 'Give exactly one source of inputs: %s' },
  INFERQ_ERR_CLUSTER_EMPTY: { status: 400, message: 'A cluster run needs at least 2 inputs; %s' },
  INFERQ_ERR_CLUSTER_K_RANGE: { status: 400, message: 'num_clusters must be from 1 to %d (the number of inputs, at most 1000); got %s' },
  INFERQ_ERR_CLUSTER_NOT_FOUND: { status: 404, message: 'No cluster run with id "%s"' },
  INFERQ_ERR_CLUSTER_INPUTS_GONE: { status: 409, message: 'The inputs of batch "%s" are no longer kept (they expire with its results)' },
  INFERQ_ERR_CLUSTER_NOT_READY: { status: 409, message: 'Cluster run "%s" is %s; its members can be read once it is completed' },
  INFERQ_ERR_NOT_FOUND: { status: 404, message: 'Route %s %s not found' },
  INFERQ_ERR_UNSUPPORTED_FIELD: { status: 400, message: '%s is not supported by inferq: %s' },
  INFERQ_ERR_FILE_NOT_FOUND: { status: 404, message: 'No file with id "%s"' },
  INFERQ_ERR_WAIT_TIMEOUT: { status: 504, message: 'Job "%s" did not end within %d seconds; read it at GET /v1/jobs/%s' },
  INFERQ_ERR_RATE_LIMITED: { status: 429, message: 'Too many requests: at most %d per %s for this key; retry after %d seconds' },
  INFERQ_ERR_UNAUTHORIZED: { status: 401, message: 'Missing or invalid API key: %s' },
  INFERQ_ERR_FORBIDDEN: { status: 403, message: '%s' },
  INFERQ_ERR_KEY_NOT_FOUND: { status: 404, message: 'No API key with id "%s"' },
  INFERQ_ERR_IDEMPOTENCY_MISMATCH: { status: 422, message: 'Idempotency-Key "%s" was used with a different request in the last 24 hours; use a new key' },
  INFERQ_ERR_DELETE_RUNNING: { status: 409, message: '%s "%s" is running; delete it once it has ended' },
  INFERQ_ERR_QUOTA_QUEUED_INPUTS: { status: 429, message: 'This tenant has %d inputs queued; the cap is %d. Retry once some have run' },
  INFERQ_ERR_QUOTA_BATCHES: { status: 429, message: 'This tenant has %d batches in progress; the cap is %d. Retry once one has ended' },
  INFERQ_ERR_MODEL_BUSY: { status: 429, message: 'Model "%s" has %d jobs waiting; the cap is %d. Retry shortly' },
  INFERQ_ERR_TOO_MANY_STREAMS: { status: 429, message: 'This client already holds %d event streams; the limit is %d' },
  INFERQ_ERR_TOO_MANY_WAITS: { status: 429, message: 'This client already holds %d long-polls; the limit is %d' },
  INFERQ_ERR_QUEUE_UNAVAILABLE: { status: 503, message: 'The queue (Redis) is unavailable; retry later' },
  INFERQ_ERR_INTERNAL: { status: 500, message: 'Internal error' },
  INFERQ_ERR_INFERENCE_FAILED: { status: 500, message: 'Inference failed: %s' },
  INFERQ_ERR_MODEL_NOT_LOADED: { status: 500, message: 'The worker could not load model "%s"' },
  INFERQ_ERR_JOB_TIMEOUT: { status: 500, message: 'The job did not finish in time' },
  INFERQ_ERR_WORKER_CRASHED: {
    status: 500,
    message: 'The worker running this job stopped (crashed or was killed) more times than the stalled-job limit allows; it is not run again, in case this input is what crashes it',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}

export const ErrorDetail = Type.Object(
  {
    code: Type.String({ description: 'Stable machine-readable code, e.g. INFERQ_ERR_VALIDATION' }),
    message: Type.String({ description: 'Human-readable explanation' }),
  },
  { $id: 'ErrorDetail' },
);
export type ErrorDetail = Static<typeof ErrorDetail>;

/** The body of every error response. */
export const ErrorBody = Type.Object({ error: ErrorDetail }, { $id: 'ErrorBody' });
export type ErrorBody = Static<typeof ErrorBody>;

/**
 * A job failure travels through BullMQ as `failedReason`, a plain string. We keep the code
 * by writing it as `CODE: message` and reading it back here.
 */
export function encodeJobError(code: ErrorCode, message: string): string {
  return `${code}: ${message}`;
}

export function decodeJobError(reason: string | undefined): ErrorDetail {
  // BullMQ's own words when a job's worker died on it more often than maxStalledCount allows.
  if (reason === 'job stalled more than allowable limit') return { code: 'INFERQ_ERR_WORKER_CRASHED', message: ERRORS.INFERQ_ERR_WORKER_CRASHED.message };
  const match = /^(INFERQ_ERR_[A-Z_]+): ([\s\S]*)$/.exec(reason ?? '');
  if (match?.[1] && isErrorCode(match[1])) return { code: match[1], message: match[2] ?? '' };
  return { code: 'INFERQ_ERR_INFERENCE_FAILED', message: reason || 'The job failed' };
}
