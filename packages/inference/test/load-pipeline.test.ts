import { cp, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_BART_ID, TINY_CLASSIFIER_ID, TINY_LLAMA_ID, TINY_NLI_ID } from '@inferq/tiny-models';
import {
  loadPipeline,
  modelTasks,
  readModelConfig,
  SummarizationPipeline,
  TextClassificationPipeline,
  TextGenerationPipeline,
  ZeroShotClassificationPipeline,
} from '../src/index.js';
import { tinyModels } from './helpers.js';

let dirs: Record<string, string>;
let cleanup: () => Promise<void>;
let scratch: string;

beforeAll(async () => {
  const models = await tinyModels([TINY_CLASSIFIER_ID, TINY_NLI_ID, TINY_BART_ID, TINY_LLAMA_ID]);
  dirs = models.dirs;
  cleanup = models.cleanup;
  scratch = await mkdtemp(join(tmpdir(), 'inferq-load-'));
});
afterAll(async () => {
  await cleanup?.();
  await rm(scratch, { recursive: true, force: true });
});

describe('model tasks from config.json', () => {
  it('reads the task from the architecture and the labels', async () => {
    expect(modelTasks(await readModelConfig(dirs[TINY_CLASSIFIER_ID]!))).toEqual(['text-classification']);
    expect(modelTasks(await readModelConfig(dirs[TINY_NLI_ID]!))).toEqual(['zero-shot-classification', 'text-classification']);
    expect(modelTasks(await readModelConfig(dirs[TINY_BART_ID]!))).toEqual(['summarization']);
    expect(modelTasks(await readModelConfig(dirs[TINY_LLAMA_ID]!))).toEqual(['text-generation']);
    expect(modelTasks({ architectures: ['RobertaForSequenceClassification'], label2id: { ENTAILMENT: 0, NOT_ENTAILMENT: 1 } })).toEqual([
      'zero-shot-classification',
      'text-classification',
    ]);
    expect(modelTasks({ architectures: ['Qwen2ForCausalLM'] })).toEqual(['text-generation']);
    expect(modelTasks({ architectures: ['WhateverModel'] })).toEqual(['feature-extraction']);
    expect(modelTasks({ architectures: ['Whatever'] })).toEqual([]);
  });
});

describe('loadPipeline', () => {
  it('loads the pipeline each model serves', async () => {
    const expected = [
      [TINY_CLASSIFIER_ID, 'text-classification', TextClassificationPipeline],
      [TINY_NLI_ID, 'zero-shot-classification', ZeroShotClassificationPipeline],
      [TINY_BART_ID, 'summarization', SummarizationPipeline],
      [TINY_LLAMA_ID, 'text-generation', TextGenerationPipeline],
    ] as const;
    for (const [id, task, cls] of expected) {
      const loaded = await loadPipeline(dirs[id]!);
      expect(loaded.task).toBe(task);
      expect(loaded.pipeline).toBeInstanceOf(cls);
      await loaded.pipeline.release();
    }
  });

  it('loads an NLI model for plain classification when asked, and refuses tasks a model does not serve', async () => {
    const loaded = await loadPipeline(dirs[TINY_NLI_ID]!, { task: 'text-classification' });
    expect(loaded.pipeline).toBeInstanceOf(TextClassificationPipeline);
    await loaded.pipeline.release();
    await expect(loadPipeline(dirs[TINY_LLAMA_ID]!, { task: 'summarization' })).rejects.toThrow(/serves text-generation, not summarization/);
    await expect(ZeroShotClassificationPipeline.load(dirs[TINY_CLASSIFIER_ID]!)).rejects.toThrow(/entailment/);
  });

  it('finds a decoder-only export under its older name, onnx/decoder_model_merged.onnx', async () => {
    const dir = join(scratch, 'old-export');
    await cp(dirs[TINY_LLAMA_ID]!, dir, { recursive: true });
    await rename(join(dir, 'onnx', 'model.onnx'), join(dir, 'onnx', 'decoder_model_merged.onnx'));
    const loaded = await loadPipeline(dir);
    expect(loaded.task).toBe('text-generation');
    if (loaded.task !== 'text-generation') throw new Error('unreachable');
    const [out] = await loaded.pipeline.generate(['Hello there'], { maxNewTokens: 5 });
    expect(out!.tokenIds.length).toBeGreaterThan(0);
    await loaded.pipeline.release();
    await rm(join(dir, 'onnx', 'decoder_model_merged.onnx'));
    await expect(TextGenerationPipeline.load(dir)).rejects.toThrow(/onnx\/model\.onnx or onnx\/decoder_model_merged\.onnx/);
  });
});
