import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BENCH_CLASSIFIER_ID,
  BENCH_EMBEDDINGS_ID,
  BENCH_LLAMA_ID,
  BENCH_LLAMA_152K_ID,
  DEFAULT_MODELS,
  ensureModel,
  STARTER_EMBEDDINGS_ID,
  STARTER_SENTIMENT_ID,
  STARTER_TICKETS_ID,
  TINY_BART,
  TINY_BART_ID,
  TINY_CLASSIFIER,
  TINY_CLASSIFIER_ID,
  TINY_EMBEDDINGS_CLS_ID,
  TINY_EMBEDDINGS_ID,
  TINY_LLAMA_ID,
  TINY_NLI_ID,
} from '../src/index.js';

let modelsDir: string;

beforeEach(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'tiny-models-ensure-'));
});

afterEach(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

describe('ensureModel', () => {
  it('knows the default model ids', () => {
    expect(Object.keys(DEFAULT_MODELS).sort()).toEqual(
      [BENCH_CLASSIFIER_ID, BENCH_LLAMA_ID, BENCH_LLAMA_152K_ID, TINY_CLASSIFIER_ID, TINY_NLI_ID, TINY_BART_ID, TINY_LLAMA_ID, STARTER_SENTIMENT_ID, STARTER_TICKETS_ID, TINY_EMBEDDINGS_ID, TINY_EMBEDDINGS_CLS_ID, STARTER_EMBEDDINGS_ID, BENCH_EMBEDDINGS_ID].sort(),
    );
    expect(TINY_CLASSIFIER_ID).toBe('inferq/tiny-bert-classifier');
    expect(BENCH_CLASSIFIER_ID).toBe('inferq/bench-bert-classifier');
    expect([TINY_NLI_ID, TINY_BART_ID, TINY_LLAMA_ID]).toEqual(['inferq/tiny-nli', 'inferq/tiny-bart', 'inferq/tiny-llama']);
  });

  it('builds a model once under <org>/<name> and reuses it after', async () => {
    const dir = await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
    expect(dir).toBe(join(modelsDir, 'inferq', 'tiny-bert-classifier'));
    const first = await stat(join(dir, 'onnx', 'model.onnx'));
    expect(await ensureModel(modelsDir, TINY_CLASSIFIER_ID)).toBe(dir);
    const second = await stat(join(dir, 'onnx', 'model.onnx'));
    expect(second.ino).toBe(first.ino);
    expect(second.mtimeMs).toBe(first.mtimeMs);
  });

  it('leaves one complete folder and no temp folders when builds race', async () => {
    const dirs = await Promise.all([1, 2, 3].map(() => ensureModel(modelsDir, 'acme/raced', { ...TINY_CLASSIFIER, seed: 5 })));
    expect(new Set(dirs).size).toBe(1);
    expect(await readdir(join(modelsDir, 'acme'))).toEqual(['raced']);
    expect((await readdir(dirs[0]!)).length).toBe(6);
  });

  it('replaces a folder that has no model in it', async () => {
    const dir = join(modelsDir, 'acme', 'broken');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), '{}');
    await ensureModel(modelsDir, 'acme/broken', TINY_CLASSIFIER);
    expect((await stat(join(dir, 'onnx', 'model.onnx'))).size).toBeGreaterThan(0);
    expect(await readdir(join(modelsDir, 'acme'))).toEqual(['broken']);
  });

  it('builds the NLI, BART and Llama models by id, each file under 1 MB', async () => {
    const expected: Record<string, string[]> = {
      [TINY_NLI_ID]: ['model.onnx'],
      [TINY_BART_ID]: ['decoder_model_merged.onnx', 'encoder_model.onnx'],
      [TINY_LLAMA_ID]: ['model.onnx'],
    };
    for (const [id, files] of Object.entries(expected)) {
      const dir = await ensureModel(modelsDir, id);
      expect((await readdir(join(dir, 'onnx'))).sort()).toEqual(files);
      for (const f of files) expect((await stat(join(dir, 'onnx', f))).size).toBeLessThan(1024 * 1024);
    }
    const nli = JSON.parse(await readFile(join(modelsDir, 'inferq', 'tiny-nli', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(nli.id2label).toEqual({ '0': 'contradiction', '1': 'neutral', '2': 'entailment' });
    expect(nli.label2id).toEqual({ contradiction: 0, neutral: 1, entailment: 2 });
  });

  it('rebuilds an encoder-decoder folder whose merged decoder is missing', async () => {
    const dir = join(modelsDir, 'acme', 'half-bart');
    await mkdir(join(dir, 'onnx'), { recursive: true });
    await writeFile(join(dir, 'onnx', 'encoder_model.onnx'), 'partial');
    await ensureModel(modelsDir, 'acme/half-bart', { kind: 'bart', ...TINY_BART });
    expect((await stat(join(dir, 'onnx', 'decoder_model_merged.onnx'))).size).toBeGreaterThan(0);
    expect((await stat(join(dir, 'onnx', 'encoder_model.onnx'))).size).toBeGreaterThan(1000);
  });

  it('rejects unknown ids without a preset, and malformed ids', async () => {
    await expect(ensureModel(modelsDir, 'acme/unknown')).rejects.toThrow(/no preset/);
    await expect(ensureModel(modelsDir, '../escape', TINY_CLASSIFIER)).rejects.toThrow(/<org>\/<name>/);
    await expect(ensureModel(modelsDir, 'a/b/c', TINY_CLASSIFIER)).rejects.toThrow(/<org>\/<name>/);
  });
});
