import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceSession } from 'onnxruntime-node';
import type { Tokenizer } from '@huggingface/tokenizers';
import {
  ensureModel,
  linearTextClassifierOnnx,
  negationScope,
  sentimentLogit,
  sentimentWeights,
  STARTER_SENTIMENT_ID,
  STARTER_TICKETS_ID,
  TICKET_KEYWORDS,
  TICKET_LABELS,
  ticketVocab,
} from '../src/index.js';
import { argmax, createSession, loadTokenizer, logits, softmax } from './helpers.js';

let modelsDir: string;

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'tiny-models-starter-'));
});

afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

/** Token ids of texts, right-padded to one length, with their attention mask. */
function padded(tokenizer: Tokenizer, texts: string[]): { ids: number[][]; mask: number[][] } {
  const rows = texts.map((t) => tokenizer.encode(t).ids);
  const width = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...r, ...new Array<number>(width - r.length).fill(0)]),
    mask: rows.map((r) => [...r.map(() => 1), ...new Array<number>(width - r.length).fill(0)]),
  };
}

describe('negationScope', () => {
  const NOT = 1;
  const DOT = 2;
  it('covers the window after a negator, up to a breaker', () => {
    expect(negationScope([NOT, 5, 6, 7], new Set([NOT]), new Set([DOT]), 2)).toEqual([false, true, true, false]);
    expect(negationScope([NOT, 5, DOT, 6], new Set([NOT]), new Set([DOT]), 4)).toEqual([false, true, true, false]);
    expect(negationScope([5, 6], new Set([NOT]), new Set([DOT]), 4)).toEqual([false, false]);
  });
});

describe('inferq/starter-sentiment', () => {
  let dir: string;
  let session: InferenceSession;
  let tokenizer: Tokenizer;

  beforeAll(async () => {
    const started = performance.now();
    dir = await ensureModel(modelsDir, STARTER_SENTIMENT_ID);
    expect(performance.now() - started).toBeLessThan(5000);
    session = await createSession(dir);
    tokenizer = await loadTokenizer(dir);
  });

  afterAll(async () => {
    await session?.release();
  });

  it('is a BertForSequenceClassification folder in the Hugging Face layout', async () => {
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', 'onnx/model.onnx']) {
      expect((await stat(join(dir, file))).size).toBeGreaterThan(0);
    }
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.architectures).toEqual(['BertForSequenceClassification']);
    expect(config.id2label).toEqual({ 0: 'negative', 1: 'positive' });
    expect(config.vocab_size).toBe(sentimentWeights().vocab.length);
    expect([...session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
    expect(session.outputNames).toEqual(['logits']);
  });

  it('labels obvious reviews right', async () => {
    const positive = [
      'I love this phone, the battery lasts all day and the screen is gorgeous.',
      'Excellent service, friendly staff and the food was delicious.',
      'Best purchase I have made this year. Highly recommended!',
      'The movie was wonderful, funny and moving.',
    ];
    const negative = [
      'Terrible quality, it broke after two days. Total waste of money.',
      'The worst hotel I have ever stayed in: dirty rooms and rude staff.',
      'I am very disappointed, the headphones sound awful.',
      'Boring, predictable and far too long.',
    ];
    const { ids, mask } = padded(tokenizer, [...positive, ...negative]);
    const rows = await logits(session, ids, mask);
    expect(rows.map((r) => argmax(r))).toEqual([...positive.map(() => 1), ...negative.map(() => 0)]);
  });

  it('reads a negation: "not good" is negative, "not bad" leans positive', async () => {
    const { ids, mask } = padded(tokenizer, ['The food was good.', 'The food was not good.', 'The food was bad.', 'The food was not bad.']);
    const [good, notGood, bad, notBad] = (await logits(session, ids, mask)).map((r) => softmax(r)[1] as number);
    expect(notGood).toBeLessThan(0.5);
    expect(notGood).toBeLessThan(good as number);
    expect(notBad).toBeGreaterThan(bad as number);
  });

  it('computes what the training code computes, padding and negation scopes included', async () => {
    const file = sentimentWeights();
    const idOf = new Map(file.vocab.map((t, i) => [t, i]));
    const negators = new Set(file.negation.negators.map((t) => idOf.get(t) as number));
    const breakers = new Set(file.negation.breakers.map((t) => idOf.get(t) as number));
    const texts = [
      "I don't think it works, but the price is fair.",
      'Not great. Not terrible either, never boring, hardly a masterpiece',
      'ok',
      'A long review: the camera is sharp, the battery is weak, shipping was slow and the box was dented, yet I like it.',
    ];
    const { ids, mask } = padded(tokenizer, texts);
    const rows = await logits(session, ids, mask);
    texts.forEach((text, i) => {
      const expected = sentimentLogit(tokenizer.encode(text).ids, { ...file, negatedWeights: file.negated_weights }, negators, breakers, file.negation.window);
      const row = rows[i] as number[];
      expect((row[1] as number) - (row[0] as number)).toBeCloseTo(expected, 3);
    });
  });

  it('ignores padded positions: a text scores the same alone and beside a longer one', async () => {
    const text = 'Great value, works perfectly.';
    const alone = await logits(session, [tokenizer.encode(text).ids]);
    const { ids, mask } = padded(tokenizer, [text, 'This is a much longer text that forces padding onto the first row of the batch, terrible.']);
    const batched = await logits(session, ids, mask);
    expect(batched[0]?.[1]).toBeCloseTo(alone[0]?.[1] as number, 5);
  });

  it('ships its trained weights as a small file', async () => {
    const size = (await stat(new URL('../data/starter-sentiment.json', import.meta.url))).size;
    expect(size).toBeLessThan(1_000_000);
  });
});

describe('inferq/starter-tickets', () => {
  let dir: string;
  let session: InferenceSession;
  let tokenizer: Tokenizer;

  beforeAll(async () => {
    const started = performance.now();
    dir = await ensureModel(modelsDir, STARTER_TICKETS_ID);
    expect(performance.now() - started).toBeLessThan(5000);
    session = await createSession(dir);
    tokenizer = await loadTokenizer(dir);
  });

  afterAll(async () => {
    await session?.release();
  });

  it('has the ticket labels in its config', async () => {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { id2label: Record<string, string>; architectures: string[] };
    expect(Object.values(config.id2label)).toEqual([...TICKET_LABELS]);
    expect(config.architectures).toEqual(['BertForSequenceClassification']);
  });

  it('files obvious tickets under the right issue', async () => {
    const tickets: [string, (typeof TICKET_LABELS)[number]][] = [
      ['I was charged twice for my subscription this month, can you check the invoice?', 'billing'],
      ['Why is there a VAT line on my bill?', 'billing'],
      ["I can't log in: the password reset email never comes.", 'login and account'],
      ['My account is locked after too many attempts.', 'login and account'],
      ['The app crashes every time I open the settings page.', 'bug'],
      ['Getting an error when I save a document, nothing happens.', 'bug'],
      ['It would be great if you could add a dark mode.', 'feature request'],
      ['Suggestion: an option to export reports as spreadsheets.', 'feature request'],
      ['My package has not arrived and the tracking number shows nothing.', 'shipping'],
      ['The courier delivered the parcel to the wrong address.', 'shipping'],
      ['I returned the kettle two weeks ago and I am still waiting for my refund.', 'refund'],
      ['I want my money back.', 'refund'],
      ['Do you have an office in Berlin?', 'other'],
      ['Who can I talk to about a partnership?', 'other'],
    ];
    const { ids, mask } = padded(tokenizer, tickets.map(([t]) => t));
    const rows = await logits(session, ids, mask);
    expect(rows.map((r) => TICKET_LABELS[argmax(r)])).toEqual(tickets.map(([, label]) => label));
  });

  it('knows every keyword as one token', () => {
    const vocab = new Set(ticketVocab());
    const words = Object.values(TICKET_KEYWORDS).flatMap((table) => Object.keys(table).flatMap((k) => k.split(' ')));
    expect(words.filter((w) => !vocab.has(w))).toEqual([]);
  });
});

describe('linearTextClassifierOnnx', () => {
  it('rejects weights that do not match the vocabulary', () => {
    const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'good'];
    expect(() => linearTextClassifierOnnx({ vocab, labels: ['a', 'b'], weights: new Float32Array(11), bias: [0, 0] })).toThrow(/needs 12/);
    expect(() =>
      linearTextClassifierOnnx({ vocab, labels: ['a', 'b'], weights: new Float32Array(12), bias: [0, 0], phrases: [{ tokens: ['good', 'bad'], weights: [1, 0] }] }),
    ).toThrow(/"bad" is not in the vocabulary/);
  });
});
