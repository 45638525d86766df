import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, type Processor } from 'bullmq';
import { createRedis, deleteKeysWithPrefix, queueNameForModel, type InferenceJobData, type InferenceJobResult } from '@inferq/queue';
import { buildApp, type ApiApp } from '../src/app.js';
import { loadConfig, type ApiConfig } from '../src/config.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A classifier the catalog accepts, and a generator that can't classify. */
export const SENTIMENT = 'acme/sentiment';
export const GENERATOR = 'acme/gpt';

/** Writes `<dir>/<id>/config.json`: the only file of a model the API reads. */
export async function writeModel(modelsDir: string, modelId: string, config: object): Promise<void> {
  const dir = join(modelsDir, ...modelId.split('/'));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
}

export async function makeModelsDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'inferq-api-models-'));
  await writeModel(dir, SENTIMENT, {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    id2label: { '0': 'negative', '1': 'positive' },
  });
  await writeModel(dir, GENERATOR, { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' });
  return dir;
}

/** Deletes every key under `prefix:`. */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = createRedis(redisUrl, 'worker');
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    await redis.quit();
  }
}

export interface TestEnv {
  app: ApiApp;
  config: ApiConfig;
  /** Closes the app, deletes the prefix's keys and the models folder. */
  close(): Promise<void>;
}

/** An app on real Redis with its own queue prefix and a temporary models folder. */
export async function createTestEnv(env: Record<string, string> = {}): Promise<TestEnv> {
  const modelsDir = await makeModelsDir();
  const config = loadConfig({
    REDIS_URL,
    QUEUE_PREFIX: `test-api-${randomBytes(6).toString('hex')}`,
    MODELS_DIR: modelsDir,
    DEFAULT_MODEL_CLASSIFICATION: SENTIMENT,
    LOG_LEVEL: 'silent',
    ...env,
  });
  const app = await buildApp(config);
  return {
    app,
    config,
    async close() {
      await app.close();
      if (config.REDIS_URL === REDIS_URL) await deleteKeys(REDIS_URL, config.QUEUE_PREFIX);
      await rm(modelsDir, { recursive: true, force: true });
    },
  };
}

/**
 * A real BullMQ worker on the env's queue for `modelId`, standing in for apps/worker.
 * Close it (and its connection) with the returned function.
 */
export function startWorker(
  config: ApiConfig,
  modelId: string,
  processor: Processor<InferenceJobData, InferenceJobResult>,
): { worker: Worker<InferenceJobData, InferenceJobResult>; close(): Promise<void> } {
  const connection = createRedis(config.REDIS_URL, 'worker');
  const worker = new Worker<InferenceJobData, InferenceJobResult>(queueNameForModel(modelId), processor, {
    connection,
    prefix: config.QUEUE_PREFIX,
  });
  return {
    worker,
    async close() {
      await worker.close();
      await connection.quit();
    },
  };
}
