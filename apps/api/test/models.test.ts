import { rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody, ModelList } from '@inferq/contracts';
import { createModelCatalog } from '../src/plugins/model-catalog.js';
import { createTestEnv, GENERATOR, makeModelsDir, SENTIMENT, writeModel, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

describe('GET /v1/models', () => {
  it('lists every model of the folder with its tasks, labels and defaults', async () => {
    const res = await env.app.inject({ url: '/v1/models' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      data: [
        { id: GENERATOR, tasks: ['generation'], architecture: 'GPT2LMHeadModel', default_for: [], path: GENERATOR, served: false, workers: 0 },
        {
          id: SENTIMENT,
          tasks: ['classification'],
          architecture: 'BertForSequenceClassification',
          labels: ['negative', 'positive'],
          default_for: ['classification'],
          path: SENTIMENT,
          served: false,
          workers: 0,
        },
      ],
    } satisfies ModelList);
  });
});

describe('model catalog', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function catalog(cacheTtlMs: number) {
    const modelsDir = await makeModelsDir();
    dirs.push(modelsDir);
    return { modelsDir, models: createModelCatalog({ modelsDir, defaults: { classification: SENTIMENT }, cacheTtlMs }) };
  }

  it('sees a model dropped into the folder without a restart once the cache expires', async () => {
    const { modelsDir, models } = await catalog(0);
    await expect(models.resolve('classification', 'acme/new-one')).rejects.toMatchObject({ code: 'INFERQ_ERR_UNKNOWN_MODEL' });
    await writeModel(modelsDir, 'acme/new-one', { architectures: ['DistilBertForSequenceClassification'] });
    await expect(models.resolve('classification', 'acme/new-one')).resolves.toBe('acme/new-one');
    expect((await models.list()).map((m) => m.id)).toContain('acme/new-one');
  });

  it('resolves the default model, and reports unknown tasks, models and mismatches with their codes', async () => {
    const { models } = await catalog(5000);
    await expect(models.resolve('classification')).resolves.toBe(SENTIMENT);
    await expect(models.resolve('summarize', SENTIMENT)).rejects.toMatchObject({ code: 'INFERQ_ERR_UNKNOWN_TASK', statusCode: 400 });
    await expect(models.resolve('classification', 'acme/none')).rejects.toMatchObject({ code: 'INFERQ_ERR_UNKNOWN_MODEL', statusCode: 404 });
    await expect(models.resolve('classification', GENERATOR)).rejects.toMatchObject({ code: 'INFERQ_ERR_TASK_MISMATCH', statusCode: 400 });
  });

  it('never turns an invalid id into a path', async () => {
    const { modelsDir, models } = await catalog(0);
    await writeModel(modelsDir, 'outside/evil', { architectures: ['BertForSequenceClassification'] });
    for (const id of ['acme/../outside/evil', '../acme/sentiment', 'acme/sentiment/..', 'acme/./sentiment']) {
      expect(await models.get(id)).toBeUndefined();
      await expect(models.resolve('classification', id)).rejects.toMatchObject({ code: 'INFERQ_ERR_UNKNOWN_MODEL' });
    }
  });

  it('ignores a model whose config.json is not JSON', async () => {
    const { modelsDir, models } = await catalog(0);
    await writeModel(modelsDir, 'acme/broken', {});
    await writeFile(`${modelsDir}/acme/broken/config.json`, '{not json');
    expect((await models.list()).map((m) => m.id)).toEqual([GENERATOR, SENTIMENT]);
    const err = await models.resolve('classification', 'acme/broken').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INFERQ_ERR_UNKNOWN_MODEL' } satisfies Partial<ErrorBody['error']>);
  });
});
