import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, pipeline as hfPipeline, type FeatureExtractionPipeline as HfPipeline } from '@huggingface/transformers';
import { TINY_EMBEDDINGS_CLS_ID, TINY_EMBEDDINGS_ID } from '@inferq/tiny-models';
import { EmbeddingPipeline } from '../src/index.js';
import { TEXTS, tinyModels, useLocalModels } from './helpers.js';

let models: Awaited<ReturnType<typeof tinyModels>>;
const loaded: { ours: EmbeddingPipeline; theirs: HfPipeline; pooling: 'mean' | 'cls' }[] = [];

beforeAll(async () => {
  models = await tinyModels([TINY_EMBEDDINGS_ID, TINY_EMBEDDINGS_CLS_ID]);
  useLocalModels(env, models.modelsDir);
  for (const [id, pooling] of [
    [TINY_EMBEDDINGS_ID, 'mean'],
    [TINY_EMBEDDINGS_CLS_ID, 'cls'],
  ] as const) {
    const ours = await EmbeddingPipeline.load(models.dirs[id]!);
    const theirs = (await hfPipeline('feature-extraction', id, { dtype: 'fp32' })) as HfPipeline;
    loaded.push({ ours, theirs, pooling });
  }
});
afterAll(async () => {
  for (const { ours, theirs } of loaded) {
    await ours.release();
    await theirs.dispose();
  }
  await models.cleanup();
});

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] ?? 0) - (b[i] ?? NaN)));
  return d;
}

describe.each(['mean', 'cls'] as const)('%s pooling matches @huggingface/transformers feature-extraction', (pooling) => {
  const pair = () => loaded.find((l) => l.pooling === pooling)!;

  it('reads its pooling from 1_Pooling/config.json', () => {
    expect(pair().ours.info.pooling).toEqual([pooling]);
    expect(pair().ours.info.normalize).toBe(true);
  });

  it('alone, text by text, within 1e-5', async () => {
    const { ours, theirs } = pair();
    for (const text of TEXTS) {
      const [mine] = await ours.embed([text]);
      const reference = await theirs(text, { pooling, normalize: true });
      expect(maxDiff(mine!, reference.data as Float32Array)).toBeLessThan(1e-5);
    }
  });

  it('batched with inputs of very different lengths, within 1e-5', async () => {
    const { ours, theirs } = pair();
    const texts = [...TEXTS, TEXTS.join(' ')];
    const lengths = texts.map((t) => ours.prepare({ text: t }).encoded.ids.length);
    expect(Math.max(...lengths)).toBeGreaterThan(10 * Math.min(...lengths));
    const mine = await ours.embed(texts);
    const reference = await theirs(texts, { pooling, normalize: true });
    const width = reference.dims[1]!;
    expect(width).toBe(ours.hiddenSize);
    mine.forEach((v, i) => {
      expect(maxDiff(v, (reference.data as Float32Array).subarray(i * width, (i + 1) * width))).toBeLessThan(1e-5);
    });
  });
});
