import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextClassificationPipeline } from '../src/index.js';
import { TEXTS, tinyClassifier } from './helpers.js';

let pipeline: TextClassificationPipeline;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const model = await tinyClassifier();
  cleanup = model.cleanup;
  pipeline = await TextClassificationPipeline.load(model.dir);
});
afterAll(async () => {
  await pipeline.release();
  await cleanup();
});

function expectSameScores(actual: { label: string; score: number }[], expected: { label: string; score: number }[]) {
  expect(actual.map((s) => s.label)).toEqual(expected.map((s) => s.label));
  actual.forEach((s, i) => expect(s.score).toBeCloseTo(expected[i]?.score ?? NaN, 6));
}

describe('padding', () => {
  it('a short text batched with a much longer one scores as it does alone', async () => {
    const short = 'bad';
    const long = TEXTS[3] ?? '';
    const [alone] = await pipeline.classify([short]);
    const [batched] = await pipeline.classify([short, long]);
    expect(pipeline.encode(long).ids.length).toBeGreaterThan(8 * pipeline.encode(short).ids.length);
    expectSameScores(batched ?? [], alone ?? []);
  });

  it('every text in a mixed-length batch scores as it does alone', async () => {
    const batched = await pipeline.classify(TEXTS);
    for (const [i, text] of TEXTS.entries()) {
      const [alone] = await pipeline.classify([text]);
      expectSameScores(batched[i] ?? [], alone ?? []);
    }
  });

  it('different texts get different scores (the model is not constant)', async () => {
    const results = await pipeline.classify(TEXTS);
    const positive = results.map((r) => r.find((s) => s.label === 'positive')?.score ?? 0);
    expect(Math.max(...positive) - Math.min(...positive)).toBeGreaterThan(0.05);
  });
});
