import { resolve } from 'node:path';
import Type, { type Static } from 'typebox';
import envSchema from 'env-schema';
import { assertClusterPrefix } from '@inferq/queue';

const Schema = Type.Object({
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', description: 'Redis connection URL; `redis-cluster://host:port,host:port` for a Redis Cluster' }),
  QUEUE_PREFIX: Type.String({ default: 'inferq', minLength: 1, description: 'BullMQ key prefix; `{inferq}` for Redis Cluster' }),
  MODELS_DIR: Type.String({ default: 'models', description: 'Folder of models, `<org>/<name>` each' }),
  WORKER_MODELS: Type.String({
    default: 'inferq/tiny-bert-classifier,inferq/tiny-nli,inferq/tiny-bart,inferq/tiny-llama,inferq/starter-embeddings',
    description: 'Comma-separated model ids this worker loads and serves',
  }),
  DEVICE: Type.Union([Type.Literal('cpu'), Type.Literal('webgpu'), Type.Literal('cuda')], {
    default: 'cpu',
    description: 'Execution provider; falls back to cpu (with a log line) when it cannot load',
  }),
  THREADS: Type.Integer({ default: 0, minimum: 0, description: 'onnxruntime intra-op threads per session; 0 = one per core' }),
  PREFILL_THREAD: Type.Boolean({
    default: true,
    description: 'Run a generation model\'s prefill on a second session on a worker thread (the event loop stays free; the weights load twice)',
  }),
  PREFILL_LOGITS_MB: Type.Integer({
    default: 256,
    minimum: 1,
    description: 'Most MiB of logits one prefill run returns (graphs without num_logits_to_keep prefill in chunks)',
  }),
  MAX_BATCH_SIZE: Type.Integer({ default: 32, minimum: 1, maximum: 4096, description: 'Most inputs in one batch' }),
  MAX_BATCH_TOKENS: Type.Integer({ default: 8192, minimum: 1, description: 'Most tokens in one batch, after padding' }),
  MAX_DELAY_MS: Type.Number({ default: 5, minimum: 0, maximum: 10_000, description: 'Longest wait for a batch to fill, in milliseconds' }),
  BATCHING: Type.Union([Type.Literal('adaptive'), Type.Literal('static')], {
    default: 'adaptive',
    description: 'adaptive: the three batch limits are caps and the scheduler learns which batch shapes pay on this device; static: the limits as they are',
  }),
  GENERATION_BATCHING: Type.Union([Type.Literal('continuous'), Type.Literal('static')], {
    default: 'continuous',
    description:
      'continuous: one decode loop per generation model, new requests join the running batch at the next step (MAX_BATCH_SIZE rows, MAX_BATCH_TOKENS of prompts plus max_new_tokens); static: batches start together and run to their end. Beam search and summarization always batch statically',
  }),
  BACKGROUND_BATCH_TOKENS: Type.Integer({
    default: 512,
    minimum: 1,
    description: 'Most tokens (after padding) in a batch of bulk inputs only: bounds how long a ticket can wait behind one; raise it on a GPU',
  }),
  WORKER_CONCURRENCY: Type.Integer({ default: 0, minimum: 0, description: 'Jobs in flight per model queue; 0 = 2 x MAX_BATCH_SIZE' }),
  JOB_LOCK_MS: Type.Integer({
    default: 30_000,
    minimum: 1000,
    description: 'Lock on a running job, renewed while it runs; a dead worker\'s jobs return to the queue this long after it died (milliseconds)',
  }),
  MAX_PROMPT_TOKENS: Type.Integer({
    default: 2048,
    minimum: 1,
    description: 'Most prompt tokens of a generation job; a longer prompt fails the job with INFERQ_ERR_PROMPT_TOO_LONG (only that many tokens are ever tokenized)',
  }),
  MAX_BEAM_TOKENS: Type.Integer({
    default: 2048,
    minimum: 1,
    description: 'Most num_beams x max_new_tokens of a summarization or generation job, model defaults included (INFERQ_ERR_BEAMS_TOO_COSTLY)',
  }),
  MAX_REQUEST_TOKENS: Type.Integer({
    default: 16_384,
    minimum: 1,
    description: 'Most tokens one summarization or generation request may cost in the batch cost model ((prompt + new tokens) x beams), so one request cannot hold a model for long (INFERQ_ERR_REQUEST_TOO_COSTLY)',
  }),
  JOB_TIMEOUT_MS: Type.Integer({
    default: 120_000,
    minimum: 0,
    description: 'Longest a single job may run on the worker, waiting for its batch included; past it the job fails with INFERQ_ERR_JOB_TIMEOUT (milliseconds; 0: no limit)',
  }),
  SHUTDOWN_GRACE_MS: Type.Integer({
    default: 25_000,
    minimum: 0,
    description: 'On SIGTERM/SIGINT: how long running jobs may take to finish; then they go back to waiting for another worker (milliseconds)',
  }),
  MODEL_LOAD_RETRY_MS: Type.Integer({
    default: 1000,
    minimum: 0,
    description: 'Wait before retrying a model task that failed to load, doubled on each failure up to 60 s (milliseconds)',
  }),
  FAULT_CRASH_ON_INPUT: Type.String({
    default: '',
    description: 'Fault injection for tests, never for production: the process kills itself (SIGKILL, as a crashing session would) when a single job\'s input contains this text',
  }),
  TICKET_RETENTION_SECONDS: Type.Integer({
    default: 30 * 86_400,
    minimum: 1,
    description: 'How long a triaged ticket\'s text and embedding are kept (cluster runs over tickets, similar tickets), in seconds',
  }),
  METRICS_PORT: Type.Integer({ default: 9464, minimum: 0, maximum: 65535, description: 'Port of /metrics (Prometheus); 0 picks a free one' }),
  METRICS_HOST: Type.String({ default: '127.0.0.1', description: 'Address /metrics listens on' }),
  LOG_LEVEL: Type.String({ default: 'info' }),
  BULK_CONCURRENCY: Type.Integer({
    default: 2,
    minimum: 1,
    maximum: 64,
    description: 'Chunk jobs of bulk batches in flight per model; few, so that single jobs find the scheduler free',
  }),
  REAPER_INTERVAL_MS: Type.Integer({
    default: 60_000,
    minimum: 100,
    description: 'How often the batch reaper runs (one worker at a time): expires batches past their window with no worker, resumes stuck ones, removes orphaned jobs (milliseconds)',
  }),
  BATCH_STUCK_MS: Type.Integer({
    default: 600_000,
    minimum: 1000,
    description: 'How long a batch may stay validating (or cancelling with no flow) before the reaper takes it over (milliseconds)',
  }),
  WEBHOOK_SECRET: Type.String({ default: '', description: 'Key of the webhooks\' Inferq-Signature HMAC; empty: this worker sends no webhooks (they wait in the queue)' }),
  WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false, description: 'Let webhooks reach loopback, private and link-local addresses' }),
  WEBHOOK_ATTEMPTS: Type.Integer({ default: 10, minimum: 1, maximum: 100, description: 'Deliveries tried per webhook before giving up' }),
  WEBHOOK_BACKOFF_MS: Type.Integer({ default: 2000, minimum: 1, description: 'First webhook retry delay, doubled on each retry (milliseconds)' }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({
    default: 10_000,
    minimum: 100,
    description: 'Longest one webhook delivery may take in total, connect to last byte read (milliseconds); a slow receiver is cut here',
  }),
  WEBHOOK_MAX_RESPONSE_BYTES: Type.Integer({
    default: 4096,
    minimum: 0,
    description: 'Most bytes of a receiver\'s answer read; then its socket is destroyed (an endless body holds nothing)',
  }),
});

export type WorkerConfig = Omit<Static<typeof Schema>, 'WORKER_MODELS'> & {
  /** Parsed WORKER_MODELS. */
  models: string[];
  /** Jobs in flight per model queue (WORKER_CONCURRENCY resolved). */
  concurrency: number;
};

/** Reads and validates the worker's environment once; throws with every problem listed. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const raw = envSchema<Static<typeof Schema>>({ schema: Schema, data: env, dotenv: false });
  const models = raw.WORKER_MODELS.split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (models.length === 0) throw new Error('WORKER_MODELS names no model');
  assertClusterPrefix(raw.REDIS_URL, raw.QUEUE_PREFIX);
  const { WORKER_MODELS: _unused, ...rest } = raw;
  return {
    ...rest,
    MODELS_DIR: resolve(raw.MODELS_DIR),
    models,
    concurrency: raw.WORKER_CONCURRENCY || 2 * raw.MAX_BATCH_SIZE,
  };
}
