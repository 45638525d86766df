/**
 * Issue 13 item 8: zero-shot hypotheses and NLI labels as Python transformers' zero-shot
 * pipeline reads them.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBertClassifier } from '@inferq/tiny-models';
import { TextClassificationPipeline, ZeroShotClassificationPipeline, fillHypothesis, nliLabelIds, softmax } from '../src/index.js';
import { TICKETS } from './helpers.js';

let root: string;
let zeroShot: ZeroShotClassificationPipeline;
let rawLogits: TextClassificationPipeline;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'inferq-zero-shot-rules-'));
  // An NLI model with ENTAILMENT first: Python takes the last logit (NEUTRAL here) as the
  // contradiction side, not the one named CONTRADICTION.
  const nliDir = join(root, 'nli');
  const rawDir = join(root, 'raw');
  for (const dir of [nliDir, rawDir]) await buildBertClassifier({ dir, labels: ['ENTAILMENT', 'CONTRADICTION', 'NEUTRAL'], seed: 99 });
  const configFile = join(rawDir, 'config.json');
  const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
  await writeFile(configFile, JSON.stringify({ ...config, problem_type: 'regression' }));
  zeroShot = await ZeroShotClassificationPipeline.load(nliDir);
  rawLogits = await TextClassificationPipeline.load(rawDir);
});
afterAll(async () => {
  await zeroShot?.release();
  await rawLogits?.release();
  await rm(root, { recursive: true, force: true });
});

describe('issue 13 item 8: zero-shot as Python has it', () => {
  it('13.8 hypothesis_template is filled without $ patterns: a label US$$ stays US$$', () => {
    expect(fillHypothesis('This example is about {}.', 'US$$')).toBe('This example is about US$$.');
    expect(fillHypothesis('Topic: {}', "$& and $' and $1")).toBe("Topic: $& and $' and $1");
    const prepared = zeroShot.prepare({ text: 'prices in dollars', candidateLabels: ['US$$', 'EUR'], hypothesisTemplate: 'Paid in {}.' });
    expect(prepared.pairs[0]?.ids).toEqual(zeroShot.encodePair('prices in dollars', 'Paid in US$$.').ids);
    expect(prepared.pairs[0]?.ids).not.toEqual(zeroShot.encodePair('prices in dollars', 'Paid in US$.').ids);
  });

  it('13.8 the entailment label is the first starting with "entail"; contradiction is the last label when entailment is 0, else label 0', () => {
    const cfg = (labels: string[]) => ({
      id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
      label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    });
    // facebook/bart-large-mnli
    expect(nliLabelIds(cfg(['contradiction', 'neutral', 'entailment']))).toEqual({ entailment: 2, contradiction: 0 });
    // roberta-large-mnli
    expect(nliLabelIds(cfg(['CONTRADICTION', 'NEUTRAL', 'ENTAILMENT']))).toEqual({ entailment: 2, contradiction: 0 });
    // entailment first: contradiction by position, whatever its name
    expect(nliLabelIds(cfg(['entailment', 'neutral', 'contradiction']))).toEqual({ entailment: 0, contradiction: 2 });
    expect(nliLabelIds(cfg(['entailment', 'not_entailment']))).toEqual({ entailment: 0, contradiction: 1 });
    // 'not_entailment' does not start with "entail"; "entails" does
    expect(nliLabelIds(cfg(['not_entailment', 'entails']))).toEqual({ entailment: 1, contradiction: 0 });
    expect(nliLabelIds(cfg(['LABEL_0', 'LABEL_1']))).toBeUndefined();
  });

  it('13.8 multi-label scores softmax [logit 0 or last, entailment] by Python\'s index rule, on a model whose entailment is label 0', async () => {
    expect(zeroShot.entailmentId).toBe(0);
    expect(zeroShot.contradictionId).toBe(2);
    const labels = ['billing', 'shipping', 'praise'];
    for (const text of TICKETS) {
      const prepared = zeroShot.prepare({ text, candidateLabels: labels, multiLabel: true });
      const [out] = await zeroShot.run([prepared]);
      const logits = await rawLogits.run(prepared.pairs);
      const byLabel = new Map(out!.labels.map((l, i) => [l, out!.scores[i] as number]));
      labels.forEach((label, i) => {
        const row = new Map(logits[i]!.map((s) => [s.label, s.score]));
        const expected = softmax([row.get('NEUTRAL') as number, row.get('ENTAILMENT') as number])[1] as number;
        expect(byLabel.get(label)).toBeCloseTo(expected, 6);
      });
    }
  });
});
