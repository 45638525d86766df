import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, pipeline, type TextClassificationPipeline } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceSession } from 'onnxruntime-node';
import { ensureModel, TINY_CLASSIFIER_ID } from '../src/index.js';
import { createSession, loadTokenizer, logits, softmax } from './helpers.js';

const SENTENCES = [
  'This product is great, I love it!',
  'Terrible SERVICE... I want a Refund NOW!!!',
  'My login password (the new one) does not work after the update.',
  'Xylophone quantum zebras flummoxed the café owner naïvely',
  'Order #12345 shipped on 2024-05-01; invoice: $19.99',
  '你好 world',
  '',
];

let modelsDir: string;
let dir: string;
let classifier: TextClassificationPipeline;
let session: InferenceSession;

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'tiny-models-hf-'));
  dir = await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  env.localModelPath = modelsDir;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  classifier = (await pipeline('text-classification', TINY_CLASSIFIER_ID, { dtype: 'fp32' })) as TextClassificationPipeline;
  session = await createSession(dir);
});

afterAll(async () => {
  await classifier?.dispose();
  await session?.release();
  await rm(modelsDir, { recursive: true, force: true });
});

describe('transformers.js compatibility', () => {
  it('tokenizes exactly as @huggingface/tokenizers does', async () => {
    const tokenizer = await loadTokenizer(dir);
    for (const text of SENTENCES) {
      expect(classifier.tokenizer.encode(text), text).toEqual(tokenizer.encode(text).ids);
    }
  });

  it('keeps known words whole and maps unknown ones to pieces or [UNK]', async () => {
    const tokenizer = await loadTokenizer(dir);
    expect(tokenizer.encode('Great REFUND, login!').tokens).toEqual(['[CLS]', 'great', 'refund', ',', 'login', '!', '[SEP]']);
    expect(tokenizer.encode('你好').tokens).toEqual(['[CLS]', '[UNK]', '[UNK]', '[SEP]']);
    const vocab = (await readFile(join(dir, 'vocab.txt'), 'utf8')).split('\n');
    expect(tokenizer.encode('zebras').tokens.slice(1, -1).every((t: string) => vocab.includes(t))).toBe(true);
  });

  it('scores texts as running the ONNX model directly does', async () => {
    const tokenizer = await loadTokenizer(dir);
    for (const text of SENTENCES.slice(0, 3)) {
      const [row] = await logits(session, [tokenizer.encode(text).ids]);
      const probs = softmax(row!);
      const result = await classifier(text, { top_k: null });
      const scores = Object.fromEntries((result as { label: string; score: number }[]).map((r) => [r.label, r.score]));
      expect(scores.negative).toBeCloseTo(probs[0]!, 5);
      expect(scores.positive).toBeCloseTo(probs[1]!, 5);
    }
  });
});
