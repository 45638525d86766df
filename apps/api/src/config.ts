import { resolve } from 'node:path';
import envSchema from 'env-schema';
import Type, { type Static } from 'typebox';
import { MODEL_ID_PATTERN } from '@inferq/contracts';
import { DEFAULT_PREFIX } from '@inferq/queue';

/**
 * The API's settings, read from the environment. `MODELS_DIR` defaults to `models` under the
 * working directory, so the schema is built per call.
 */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function configSchema(cwd: string) {
  return Type.Object({
    /** TCP port to listen on. */
    PORT: Type.Integer({ minimum: 0, maximum: 65_535, default: 8080 }),
    /** Address to bind. */
    HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
    /** Redis holding the queues. */
    REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
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
    /** Longest long-poll (`GET /v1/jobs/:id?wait=N`), in seconds. */
    MAX_WAIT_SECONDS: Type.Number({ minimum: 0, maximum: 600, default: 30 }),
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
    /** How long a batch and its results stay readable after it ends, in seconds. */
    BATCH_RETENTION_SECONDS: Type.Integer({ minimum: 1, default: 7 * 86_400 }),
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
  return { ...config, MODELS_DIR: resolve(config.MODELS_DIR) };
}
