import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, pipeline as hfPipeline, type ZeroShotClassificationPipeline as HfZeroShot } from '@huggingface/transformers';
import { TINY_NLI_ID } from '@inferq/tiny-models';
import { BatchScheduler, MAX_CANDIDATE_LABELS, ZeroShotClassificationPipeline, type ZeroShotOutput, type ZeroShotPrepared, type ZeroShotRequest } from '../src/index.js';
import { TICKETS, tinyModels, useLocalModels } from './helpers.js';

const LABELS = ['billing', 'shipping', 'account access', 'bug report', 'praise'];

let ours: ZeroShotClassificationPipeline;
let theirs: HfZeroShot;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_NLI_ID]);
  cleanup = models.cleanup;
  useLocalModels(env, models.modelsDir);
  ours = await ZeroShotClassificationPipeline.load(models.dirs[TINY_NLI_ID]!, { maxPairsPerRun: 7 });
  theirs = (await hfPipeline('zero-shot-classification', TINY_NLI_ID, { dtype: 'fp32' })) as HfZeroShot;
});
afterAll(async () => {
  await ours?.release();
  await theirs?.dispose();
  await cleanup?.();
});

type HfOutput = { sequence: string; labels: string[]; scores: number[] };

function expectSame(mine: ZeroShotOutput, reference: HfOutput): void {
  expect(mine.sequence).toBe(reference.sequence);
  expect(mine.labels).toEqual(reference.labels);
  mine.scores.forEach((s, i) => expect(Math.abs(s - reference.scores[i]!)).toBeLessThan(1e-5));
}

describe('zero-shot classification matches @huggingface/transformers', () => {
  it.each(TICKETS.map((t) => [t]))('single-label: %s', async (text) => {
    const [mine] = await ours.classify([text], LABELS);
    expectSame(mine!, (await theirs(text, LABELS)) as HfOutput);
    expect(mine!.scores.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it.each(TICKETS.map((t) => [t]))('multi-label: %s', async (text) => {
    const [mine] = await ours.classify([text], LABELS, { multiLabel: true });
    expectSame(mine!, (await theirs(text, LABELS, { multi_label: true })) as HfOutput);
  });

  it('a custom hypothesis template, and one label (scored on its own, as HF does)', async () => {
    const template = 'The customer writes about {}.';
    const [mine] = await ours.classify([TICKETS[0]!], LABELS, { hypothesisTemplate: template });
    expectSame(mine!, (await theirs(TICKETS[0]!, LABELS, { hypothesis_template: template })) as HfOutput);
    const [one] = await ours.classify([TICKETS[1]!], ['praise']);
    expectSame(one!, (await theirs(TICKETS[1]!, ['praise'])) as HfOutput);
    expect(one!.scores[0]).toBeLessThan(1);
  });

  it('tokenizes each (premise, hypothesis) pair as transformers.js does', () => {
    for (const text of TICKETS) {
      const hypothesis = 'This example is billing.';
      const ids = theirs.tokenizer(text, { text_pair: hypothesis }).input_ids.tolist()[0]!.map(Number);
      expect(ours.encodePair(text, hypothesis).ids).toEqual(ids);
    }
  });
});

describe('zero-shot batching', () => {
  it('the pairs of many requests share ONNX batches and score as each request alone', async () => {
    const requests: ZeroShotRequest[] = TICKETS.map((text, i) => ({ text, candidateLabels: LABELS.slice(0, 2 + i), multiLabel: i % 2 === 1 }));
    const batched = await ours.run(requests.map((r) => ours.prepare(r)));
    for (const [i, r] of requests.entries()) {
      const [alone] = await ours.run([ours.prepare(r)]);
      expect(batched[i]!.labels).toEqual(alone!.labels);
      batched[i]!.scores.forEach((s, k) => expect(Math.abs(s - alone!.scores[k]!)).toBeLessThan(1e-6));
    }
  });

  it('works through the BatchScheduler, pairs counted in the cost', async () => {
    const sizes: number[] = [];
    const scheduler = new BatchScheduler<ZeroShotRequest, ZeroShotPrepared, ZeroShotOutput>({
      prepare: (r) => ours.prepare(r),
      cost: (p) => ours.cost(p),
      groupKey: (p) => ours.groupKey(p),
      run: (batch) => ours.run(batch),
      maxDelayMs: 20,
      onBatch: (s) => sizes.push(s.size),
    });
    const results = await Promise.all(TICKETS.map((text) => scheduler.submit({ text, candidateLabels: LABELS })));
    await scheduler.close();
    expect(Math.max(...sizes)).toBeGreaterThan(1);
    for (const [i, text] of TICKETS.entries()) expectSame(results[i]!, (await theirs(text, LABELS)) as HfOutput);
    const prepared = ours.prepare({ text: TICKETS[0]!, candidateLabels: LABELS });
    expect(ours.cost(prepared)).toBe(LABELS.length * Math.max(...prepared.pairs.map((p) => p.ids.length)));
  });

  it('runPairs and combine let a worker schedule pairs itself', async () => {
    const prepared = ours.prepare({ text: TICKETS[3]!, candidateLabels: LABELS, multiLabel: true });
    const logits = await ours.runPairs(prepared.pairs);
    expect(logits).toHaveLength(LABELS.length);
    expect(ours.combine(prepared, logits)).toEqual((await ours.run([prepared]))[0]);
  });
});

describe('zero-shot parameters', () => {
  it.each([
    [{ candidateLabels: [] }, /at least one label/],
    [{ candidateLabels: Array.from({ length: MAX_CANDIDATE_LABELS + 1 }, (_, i) => `label ${i}`) }, /51 labels; at most 50/],
    [{ candidateLabels: ['a', 'a'] }, /distinct/],
    [{ candidateLabels: ['ok', ' '] }, /non-empty strings/],
    [{ candidateLabels: ['ok'], hypothesisTemplate: 'no placeholder' }, /must contain "\{\}"/],
    [{ candidateLabels: ['ok'], text: '' }, /text must be a non-empty string/],
  ])('rejects %o', (request, message) => {
    expect(() => ours.prepare({ text: 'some text', ...request } as ZeroShotRequest)).toThrow(message);
  });

  it('accepts 50 labels', () => {
    const labels = Array.from({ length: MAX_CANDIDATE_LABELS }, (_, i) => `label ${i}`);
    expect(ours.prepare({ text: 'x', candidateLabels: labels }).pairs).toHaveLength(50);
  });

  it('cuts a long text, never the hypothesis, to fit the model', () => {
    const long = 'refund '.repeat(2000);
    const pair = ours.encodePair(long, 'This example is billing.');
    expect(pair.ids).toHaveLength(ours.tokenizer.maxLength);
    const hypothesis = ours.encodePair('short', 'This example is billing.').ids.slice(3);
    expect(pair.ids.slice(-hypothesis.length)).toEqual(hypothesis);
  });
});
