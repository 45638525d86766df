import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, pipeline as hfPipeline, type TextClassificationPipeline as HfPipeline } from '@huggingface/transformers';
import { TextClassificationPipeline } from '../src/index.js';
import { TEXTS, tinyClassifier } from './helpers.js';

let ours: TextClassificationPipeline;
let theirs: HfPipeline;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const model = await tinyClassifier();
  cleanup = model.cleanup;
  env.localModelPath = model.modelsDir;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  ours = await TextClassificationPipeline.load(model.dir);
  theirs = (await hfPipeline('text-classification', model.id, { dtype: 'fp32' })) as HfPipeline;
});
afterAll(async () => {
  await ours.release();
  await theirs.dispose();
  await cleanup();
});

describe('classification matches @huggingface/transformers', () => {
  it.each(TEXTS.map((t) => [t]))('%s', async (text) => {
    const [mine] = await ours.classify([text]);
    const reference = (await theirs(text, { top_k: null })) as { label: string; score: number }[];
    expect(mine?.map((s) => s.label)).toEqual(reference.map((s) => s.label));
    mine?.forEach((s, i) => expect(Math.abs(s.score - (reference[i]?.score ?? NaN))).toBeLessThan(1e-5));
  });

  it('tokenizes like transformers.js', () => {
    for (const text of TEXTS) {
      const ids = theirs.tokenizer(text).input_ids.tolist()[0].map(Number);
      expect(ours.encode(text).ids).toEqual(ids);
    }
  });

  it('top_k keeps the best labels in order', async () => {
    const [all] = await ours.classify([TEXTS[0] ?? '']);
    const [one] = await ours.classify([TEXTS[0] ?? ''], { topK: 1 });
    expect(one).toEqual(all?.slice(0, 1));
  });
});
