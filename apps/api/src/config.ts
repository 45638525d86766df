import { resolve } from 'node:path';
import envSchema from 'env-schema';
import Type, { type Static } from 'typebox';
import { MODEL_ID_PATTERN } from '@inferq/contracts';
import { DEFAULT_PREFIX, assertClusterPrefix } from '@inferq/queue';

/**
 * The API's settings, read from the environment. `MODELS_DIR` defaults to `models` under the
 * working directory, so the schema is built per call.
 */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function configSchema(cwd: string) {
  return Type.Object({
    /** TCP port to listen on. */
    PORT: Type.Integer({ minimum: 0, maximum: 65_535, default: 8080 }),
    /** Address to bind. Loopback by default: without `ADMIN_API_KEY` the API serves only there (or with `AUTH=off`). */
    HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
    /**
     * The admin key: manages tenant keys (`/v1/admin/keys`) and opens the queue dashboard (`/admin/queues`). Set, every
     * other route needs a tenant key. At least 32 characters.
     */
    ADMIN_API_KEY: Type.String({ default: '', pattern: '^(?:|[\\x21-\\x7E]{32,512})$' }),
    /** `off`: without `ADMIN_API_KEY`, serve without keys on any address (a trusted network); logged as a warning at start. */
    AUTH: Type.Enum(['on', 'off'], { default: 'on' }),
    /** Redis holding the queues; `redis-cluster://host:port,host:port` for a Redis Cluster. */
    REDIS_URL: Type.String({ pattern: '^rediss?(-cluster)?://', default: 'redis://127.0.0.1:6379' }),
    /** BullMQ key prefix; wrap it in braces (`{inferq}`) for Redis Cluster. */
    QUEUE_PREFIX: Type.String({ pattern: '^\\S+$', default: DEFAULT_PREFIX }),
    /** Folder of models, `<org>/<name>/config.json`. */
    MODELS_DIR: Type.String({ minLength: 1, default: resolve(cwd, 'models') }),
    /** Model used for `classification` when a job names none. */
    DEFAULT_MODEL_CLASSIFICATION: Type.String({ pattern: MODEL_ID_PATTERN, default: 'inferq/tiny-bert-classifier' }),
    /** Model used for `zero-shot-classification` jobs that name none (an NLI model). */
    DEFAULT_MODEL_ZERO_SHOT: Type.String({ pattern: MODEL_ID_PATTERN, default: 'inferq/tiny-nli' }),
    /** Model used for `summarization` jobs that name none (an encoder-decoder). */
    DEFAULT_MODEL_SUMMARIZATION: Type.String({ pattern: MODEL_ID_PATTERN, default: 'inferq/tiny-bart' }),
    /** Model used for `generation` jobs that name none (a decoder-only LM). */
    DEFAULT_MODEL_GENERATION: Type.String({ pattern: MODEL_ID_PATTERN, default: 'inferq/tiny-llama' }),
    /** Model used for `embedding` jobs and cluster runs that name none (a sentence-transformers export). */
    DEFAULT_MODEL_EMBEDDING: Type.String({ pattern: MODEL_ID_PATTERN, default: 'inferq/starter-embeddings' }),
    /**
     * Model that sorts tickets posted without their own labels: a zero-shot (NLI) model over
     * the default labels, or a classifier trained on ticket issues (its own labels), such as
     * `inferq/starter-tickets`. Empty: the zero-shot default model.
     */
    TICKET_MODEL: Type.String({ default: '', pattern: `^(?:|${MODEL_ID_PATTERN.slice(1, -1)})$` }),
    /** Length of a ticket's summary, in tokens. */
    TICKET_SUMMARY_TOKENS: Type.Integer({ minimum: 1, maximum: 512, default: 40 }),
    /** Most tokens a summarization or generation job may ask for (`max_new_tokens`). */
    MAX_NEW_TOKENS: Type.Integer({ minimum: 1, maximum: 32_768, default: 512 }),
    /** Most `num_beams x max_new_tokens` a summarization or generation job may ask for (the worker checks it too, with the model's defaults). */
    MAX_BEAM_TOKENS: Type.Integer({ minimum: 1, default: 2048 }),
    /** Longest long-poll (`GET /v1/jobs/:id?wait=N`), in seconds. */
    MAX_WAIT_SECONDS: Type.Number({ minimum: 0, maximum: 600, default: 30 }),
    /** Longest wait of an OpenAI-protocol request (`/openai/v1/chat/completions`, `/completions`) for its job, in seconds; past it, 504 `INFERQ_ERR_WAIT_TIMEOUT`. */
    OPENAI_WAIT_SECONDS: Type.Number({ minimum: 1, maximum: 3600, default: 600 }),
    /** Longest life of one event stream (`GET /v1/jobs/:id/events`), in seconds; then it ends and `EventSource` reconnects. */
    SSE_MAX_SECONDS: Type.Number({ minimum: 1, maximum: 86_400, default: 300 }),
    /** Reconnect delay sent to `EventSource` clients (`retry:`), in milliseconds. */
    SSE_RETRY_MS: Type.Integer({ minimum: 1, maximum: 600_000, default: 2000 }),
    /** Event streams one client (IP address) may hold open at once; past it, 429 `INFERQ_ERR_TOO_MANY_STREAMS`. */
    MAX_STREAMS_PER_CLIENT: Type.Integer({ minimum: 1, default: 16 }),
    /** Long-polls (`?wait=N` on jobs and tickets) one client (IP address) may hold at once; past it, 429 `INFERQ_ERR_TOO_MANY_WAITS`. */
    MAX_WAITS_PER_CLIENT: Type.Integer({ minimum: 1, default: 256 }),
    /** Largest request body, in bytes. */
    BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 1_048_576 }),
    /** How long finished jobs stay readable, in seconds. */
    JOB_RETENTION_SECONDS: Type.Integer({ minimum: 1, default: 86_400 }),
    /** pino level. */
    LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info' }),
    /** Inputs per chunk job of a batch. */
    BATCH_CHUNK_SIZE: Type.Integer({ minimum: 1, maximum: 10_000, default: 128 }),
    /** Largest NDJSON batch upload, in bytes (read as a stream, never held whole). */
    BATCH_UPLOAD_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 200 * 1024 * 1024 }),
    /** Largest JSON body of `POST /v1/batches`, in bytes (a JSON body is parsed whole: upload NDJSON for big batches). */
    BATCH_BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 16 * 1024 * 1024 }),
    /**
     * How long an upload's staged chunks live after they were last touched, in milliseconds;
     * touched three times per period while the upload goes on, so only an abandoned staging expires.
     */
    BATCH_STAGING_TTL_MS: Type.Integer({ minimum: 100, default: 3_600_000 }),
    /** An upload that stages nothing for this long is taken as abandoned (its API process died) and its staging deleted, in seconds. */
    BATCH_STAGING_GRACE_SECONDS: Type.Number({ minimum: 1, default: 300 }),
    /** How long a batch and its results stay readable after it ends, in seconds. */
    BATCH_RETENTION_SECONDS: Type.Integer({ minimum: 1, default: 7 * 86_400 }),
    /** Requests per key in each `RATE_LIMIT_WINDOW_MS`, counted in Redis across API processes (with keys on only); 0: no limit. */
    RATE_LIMIT_MAX: Type.Integer({ minimum: 0, default: 1200 }),
    /** The rate limit's window, in milliseconds. */
    RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1000, default: 60_000 }),
    /** Most inputs a tenant may have queued and not yet run (single jobs and batch inputs); 0: no cap. */
    TENANT_MAX_QUEUED_INPUTS: Type.Integer({ minimum: 0, default: 250_000 }),
    /** Most batches a tenant may have in progress; 0: no cap. */
    TENANT_MAX_ACTIVE_BATCHES: Type.Integer({ minimum: 0, default: 20 }),
    /** Most single jobs waiting in one model's queue, for all tenants (as TEI's max concurrent requests); 0: no cap. */
    MODEL_MAX_WAITING_JOBS: Type.Integer({ minimum: 0, default: 50_000 }),
    /** Browser origins allowed by CORS, comma-separated (`https://app.example.com`); empty: CORS off. */
    CORS_ORIGINS: Type.String({ default: '' }),
    /** How long queue depths and ages read for `/metrics` and the queue list of the dashboard are reused, in milliseconds. */
    QUEUE_STATS_CACHE_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 2000 }),
    /** Accept webhook URLs on loopback, private and link-local addresses (tests, receivers on the same host). */
    WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false }),
  });
}

export type ApiConfig = Static<ReturnType<typeof configSchema>>;

/**
 * Parses and validates the environment once; throws with every bad variable named.
 * Only `env` is read (not `process.env` as well), so tests can pass their own.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const config = envSchema<ApiConfig>({ schema: configSchema(process.cwd()), data: { ...env }, env: false, dotenv: false });
  assertClusterPrefix(config.REDIS_URL, config.QUEUE_PREFIX);
  return { ...config, MODELS_DIR: resolve(config.MODELS_DIR) };
}
