// The starter sentiment model served as inferq serves it: the built folder through
// @inferq/inference's TextClassificationPipeline (tokenizer, padding, ONNX, softmax, id2label).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextClassificationPipeline } from '@inferq/inference';
import { ensureModel, STARTER_SENTIMENT_ID } from '@inferq/tiny-models';
import { ROOT } from './support/processes.js';

/** The UCI "Sentiment Labelled Sentences" (Kotzias et al., KDD 2015), where our machines and CI have them. */
const UCI_DIR = join(process.env.INFERQ_DATA_DIR ?? join(ROOT, '..', 'shared', 'data'), 'sentiment-labelled-sentences');
const UCI_FILES = ['amazon_cells_labelled.txt', 'imdb_labelled.txt', 'yelp_labelled.txt'];

let modelsDir: string;
let pipeline: TextClassificationPipeline;

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-starter-'));
  pipeline = await TextClassificationPipeline.load(await ensureModel(modelsDir, STARTER_SENTIMENT_ID));
});

afterAll(async () => {
  await pipeline?.release();
  await rm(modelsDir, { recursive: true, force: true });
});

async function labelsOf(texts: string[]): Promise<string[]> {
  const results = await pipeline.classify(texts);
  return results.map((scores) => scores[0]?.label ?? '');
}

describe('inferq/starter-sentiment through the classification pipeline', () => {
  it('labels obvious reviews right, alone and in a padded batch', async () => {
    const reviews: [string, 'positive' | 'negative'][] = [
      ['Absolutely love it. Works perfectly and looks great.', 'positive'],
      ['The staff were kind and the room was spotless.', 'positive'],
      ['Fast delivery, good price, happy with it.', 'positive'],
      ['A beautiful, touching film with a brilliant cast.', 'positive'],
      ['Stopped working after a week. Useless.', 'negative'],
      ['Rude waiter, cold food, never again.', 'negative'],
      ['Cheap plastic, awful sound, I want a refund.', 'negative'],
      ['The plot was dull and the acting was terrible.', 'negative'],
      ['It is not good at all.', 'negative'],
    ];
    const batched = await labelsOf(reviews.map(([text]) => text));
    expect(batched).toEqual(reviews.map(([, label]) => label));
    for (const [text, label] of reviews.slice(0, 3)) expect(await labelsOf([text])).toEqual([label]);
  });

  it.skipIf(!existsSync(UCI_DIR))('scores at least 0.81 on the 3,000 UCI sentences (lexicons: 0.794 and 0.809)', async () => {
    let right = 0;
    let total = 0;
    for (const file of UCI_FILES) {
      const rows = (await readFile(join(UCI_DIR, file), 'utf8'))
        .split('\n')
        .map((line) => /^(.*)\t\s*([01])\s*$/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ text: (m[1] as string).trim(), label: m[2] === '1' ? 'positive' : 'negative' }));
      for (let i = 0; i < rows.length; i += 64) {
        const batch = rows.slice(i, i + 64);
        const predicted = await labelsOf(batch.map((r) => r.text));
        right += predicted.filter((label, j) => label === batch[j]?.label).length;
      }
      total += rows.length;
    }
    expect(total).toBe(3000);
    expect(right / total).toBeGreaterThanOrEqual(0.81);
  });
});
