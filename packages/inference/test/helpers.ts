import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';

/** Builds the tiny classifier into a fresh temp models folder. */
export async function tinyClassifier(): Promise<{ modelsDir: string; dir: string; id: string; cleanup: () => Promise<void> }> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'inferq-models-'));
  const dir = await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  return { modelsDir, dir, id: TINY_CLASSIFIER_ID, cleanup: () => rm(modelsDir, { recursive: true, force: true }) };
}

/** Review-like texts of very different lengths, written for these tests. */
export const TEXTS = [
  'Great product, works as described.',
  'The login page keeps rejecting my password and support never answered.',
  'bad',
  'I waited three weeks for shipping, the box arrived damaged, and the refund took another month. Never again, although the price was good and the item itself is fine once you replace the broken charger.',
  'Love it!',
  'The app crashes every time I open the settings screen on my phone.',
  'Invoice numbers are wrong on every bill since the last update; please fix the billing export.',
  'ok',
];
