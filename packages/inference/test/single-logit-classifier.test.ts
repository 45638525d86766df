/**
 * Issue 13 item 1: single-logit classifiers (cross-encoders, rerankers) and regression heads
 * score as Python transformers' text-classification pipeline scores them.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBertClassifier } from '@inferq/tiny-models';
import { TextClassificationPipeline, scoreFunction } from '../src/index.js';
import { TEXTS } from './helpers.js';

let root: string;
let single: TextClassificationPipeline;
let regression: TextClassificationPipeline;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'inferq-single-logit-'));
  const singleDir = join(root, 'single');
  const regressionDir = join(root, 'regression');
  // One model, two configs: a reranker-style head (num_labels 1) and the same head as regression.
  for (const dir of [singleDir, regressionDir]) await buildBertClassifier({ dir, labels: ['LABEL_0'], seed: 7 });
  const configFile = join(regressionDir, 'config.json');
  const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
  await writeFile(configFile, JSON.stringify({ ...config, problem_type: 'regression' }));
  single = await TextClassificationPipeline.load(singleDir);
  regression = await TextClassificationPipeline.load(regressionDir);
});
afterAll(async () => {
  await single?.release();
  await regression?.release();
  await rm(root, { recursive: true, force: true });
});

describe('issue 13 item 1: single-logit classifiers', () => {
  it('13.1 num_labels == 1 gets a sigmoid: logit -3.2 scores 0.039 (a softmax made it 1.0)', () => {
    expect(scoreFunction(undefined, 1)([-3.2])[0]).toBeCloseTo(0.0392, 4);
    expect(scoreFunction('single_label_classification', 2)([-3.2, 0])[0]).toBeCloseTo(0.0392, 4);
    expect(scoreFunction('regression', 1)([-3.2])).toEqual([-3.2]);
  });

  it('13.1 a one-label model scores each text by the sigmoid of its logit, and a regression head returns the logit', async () => {
    const scores = (await single.classify(TEXTS)).map((r) => r[0]?.score as number);
    const raw = (await regression.classify(TEXTS)).map((r) => r[0]?.score as number);
    expect(new Set(scores.map((s) => s.toFixed(6))).size).toBe(TEXTS.length);
    scores.forEach((score, i) => {
      expect(score).toBeGreaterThan(0);
      expect(score).toBeLessThan(1);
      expect(score).toBeCloseTo(1 / (1 + Math.exp(-(raw[i] as number))), 6);
    });
    expect((await single.classify(TEXTS))[0]?.[0]?.label).toBe('LABEL_0');
  });
});
