/**
 * Issue 13 item 10 (tokenizer edges, as Python transformers' Rust tokenizers behave) and
 * issue 15 item 1 (a long text costs what its kept tokens cost).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_BART_ID, TINY_CLASSIFIER_ID, TINY_LLAMA_ID } from '@inferq/tiny-models';
import { TextTokenizer, longestFirstLengths, type TokenizerConfig } from '../src/index.js';
import { tinyModels } from './helpers.js';

let models: Awaited<ReturnType<typeof tinyModels>>;

beforeAll(async () => {
  models = await tinyModels([TINY_CLASSIFIER_ID, TINY_LLAMA_ID, TINY_BART_ID]);
});
afterAll(() => models.cleanup());

/** A tokenizer of a model folder with its `tokenizer_config.json` changed, and the texts its `tokenize` was given. */
async function loadWith(id: string, change: Partial<TokenizerConfig>, maxPositions?: number) {
  const dir = models.dirs[id] as string;
  const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as object;
  const config = { ...(JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as TokenizerConfig), ...change };
  const inner = new Tokenizer(json, config);
  const tokenized: string[] = [];
  const tokenize = inner.tokenize.bind(inner);
  inner.tokenize = (text, options) => (tokenized.push(text), tokenize(text, options));
  return { tokenizer: new TextTokenizer(inner, config, maxPositions), inner, tokenized };
}

/** Review-like sentences written for this test; mixed punctuation, digits and accents. */
const SENTENCES = [
  'The battery died after 3 days, and support said "wait".',
  'Café prices went up again; the refund never came!',
  'I ordered two chargers (one broken) — please send a label.',
  'ok',
  'Screen is fine... but the app crashes 10x a day?!',
];

function longText(chars: number, seed = 1): string {
  const parts: string[] = [];
  let i = seed;
  let length = 0;
  while (length < chars) {
    const s = SENTENCES[i++ % SENTENCES.length] as string;
    const sep = i % 7 === 0 ? '\n\n' : ' ';
    parts.push(s, sep);
    length += s.length + sep.length;
  }
  return parts.join('').slice(0, chars);
}

describe('issue 13 item 10: tokenizer edges as Python transformers has them', () => {
  it('13.10 a sentinel model_max_length (1e30) falls back to max_position_embeddings, or 512', async () => {
    const withPositions = await loadWith(TINY_CLASSIFIER_ID, { model_max_length: 1e30 }, 128);
    expect(withPositions.tokenizer.maxLength).toBe(128);
    expect(withPositions.tokenizer.encode(longText(5000)).ids).toHaveLength(128);
    const without = await loadWith(TINY_CLASSIFIER_ID, { model_max_length: 1e30 });
    expect(without.tokenizer.maxLength).toBe(512);
    expect(without.tokenizer.encode(longText(20_000)).ids).toHaveLength(512);
    // A real limit is kept as it is.
    const stated = await loadWith(TINY_CLASSIFIER_ID, { model_max_length: 64 }, 128);
    expect(stated.tokenizer.maxLength).toBe(64);
  });

  it('13.10 truncation_side "left" keeps the end of the text and the special tokens', async () => {
    const { tokenizer } = await loadWith(TINY_CLASSIFIER_ID, { truncation_side: 'left' });
    const text = `${longText(3000)} the refund never came`;
    const ids = tokenizer.encode(text, undefined, 16).ids;
    expect(ids).toHaveLength(16);
    expect(ids[0]).toBe(tokenizer.idOf('[CLS]'));
    expect(ids.at(-1)).toBe(tokenizer.idOf('[SEP]'));
    const all = tokenizer.encodeWith(text, { maxLength: Number.MAX_SAFE_INTEGER }).ids;
    expect(ids.slice(1, -1)).toEqual(all.slice(-15, -1));
    expect(tokenizer.decode(ids)).toMatch(/the refund never came$/);
  });

  it('13.10 longest_first splits an odd budget as the Rust tokenizers do (20 + 10 tokens into 15: 8 and 7)', async () => {
    const { tokenizer } = await loadWith(TINY_CLASSIFIER_ID, {});
    const first = 'good '.repeat(20).trim();
    const second = 'bad '.repeat(10).trim();
    // [CLS] first [SEP] second [SEP]: 3 special tokens, 15 content tokens.
    const ids = tokenizer.encode(first, second, 18).ids;
    const good = tokenizer.idOf('good');
    const bad = tokenizer.idOf('bad');
    expect(ids.filter((id) => id === good)).toHaveLength(8);
    expect(ids.filter((id) => id === bad)).toHaveLength(7);
    // A tie gives the second text the odd token; a short text under half the budget stays whole.
    expect(longestFirstLengths(10, 10, 9)).toEqual([4, 5]);
    expect(longestFirstLengths(20, 3, 15)).toEqual([12, 3]);
    expect(longestFirstLengths(3, 20, 15)).toEqual([3, 12]);
    expect(longestFirstLengths(300, 1000, 509)).toEqual([254, 255]);
    expect(longestFirstLengths(4, 5, 9)).toEqual([4, 5]);
  });

  it('13.10 longest_first with two long texts tells which is longer before giving the odd token', async () => {
    const { tokenizer } = await loadWith(TINY_CLASSIFIER_ID, {});
    const first = longText(20_000, 2);
    const second = longText(15_000, 3);
    const ids = tokenizer.encode(first, second, 18).ids;
    const typeIds = tokenizer.encode(first, second, 18).typeIds;
    // 15 content tokens: the first (longer) text keeps 8.
    expect(typeIds.filter((t) => t === 0)).toHaveLength(8 + 2);
    expect(ids).toHaveLength(18);
  });
});

describe('issue 15 item 1: only what can be kept is tokenized', () => {
  for (const id of [TINY_CLASSIFIER_ID, TINY_LLAMA_ID, TINY_BART_ID]) {
    it(`15.1 a 100,000-character text gives the tokens a whole-text tokenization keeps (${id}), tokenizing a few thousand characters`, async () => {
      const { tokenizer, tokenized } = await loadWith(id, {});
      for (const side of ['right', 'left'] as const) {
        for (const seed of [1, 2, 3]) {
          const text = longText(100_000, seed);
          tokenized.length = 0;
          const cut = tokenizer.encodeWith(text, { maxLength: 510, side, addSpecialTokens: false }).ids;
          expect(tokenized.reduce((s, t) => s + t.length, 0)).toBeLessThan(12_000);
          // The reference: the whole text tokenized, then cut.
          const whole = tokenizer.encodeWith(text, { maxLength: Number.MAX_SAFE_INTEGER, addSpecialTokens: false }).ids;
          expect(whole.length).toBeGreaterThan(5000);
          expect(cut).toEqual(side === 'right' ? whole.slice(0, 510) : whole.slice(-510));
          // With the special tokens: the same content between them.
          const withSpecials = tokenizer.encodeWith(text, { maxLength: 512, side }).ids;
          const added = tokenizer.addedTokens(false);
          expect(withSpecials).toHaveLength(512);
          expect(withSpecials).toEqual(tokenizer.encodeWith(side === 'right' ? text.slice(0, 20_000) : text.slice(-20_000), { maxLength: 512, side }).ids);
          expect(added === 0 ? withSpecials : withSpecials.slice(1, added > 1 ? -1 : undefined)).toEqual(
            side === 'right' ? whole.slice(0, 512 - added) : whole.slice(-(512 - added)),
          );
        }
      }
    });
  }

  it('15.1 a text with no white space for thousands of characters is still cut where it can be', async () => {
    const { tokenizer, tokenized } = await loadWith(TINY_CLASSIFIER_ID, {});
    const text = 'x'.repeat(50_000) + ' ' + longText(50_000);
    tokenized.length = 0;
    const ids = tokenizer.encodeWith(text, { maxLength: 30, addSpecialTokens: false }).ids;
    // The 50,000 x's are one [UNK]: the cut grows past them, but not to the whole text.
    expect(Math.max(...tokenized.map((t) => t.length))).toBeLessThan(text.length);
    const whole = tokenizer.encodeWith(text, { maxLength: Number.MAX_SAFE_INTEGER, addSpecialTokens: false }).ids;
    expect(ids).toEqual(whole.slice(0, 30));
  });

  it('15.1 texts that fit are tokenized whole and give what Tokenizer.encode gives', async () => {
    const { tokenizer, inner } = await loadWith(TINY_LLAMA_ID, {});
    for (const text of SENTENCES) {
      expect(tokenizer.encode(text).ids).toEqual(inner.encode(text).ids);
      expect(tokenizer.encode(text, 'a second text').ids).toEqual(inner.encode(text, { text_pair: 'a second text' }).ids);
    }
  });

  it('15.1 a premise paired with 50 hypotheses is tokenized once', async () => {
    const { tokenizer, tokenized } = await loadWith(TINY_CLASSIFIER_ID, {});
    const premise = longText(100_000);
    const hypotheses = Array.from({ length: 50 }, (_, i) => `This example is about topic ${i}.`);
    tokenized.length = 0;
    const pairs = tokenizer.encodePairs(premise, hypotheses, { truncation: 'only_first' });
    expect(pairs).toHaveLength(50);
    expect(tokenized.filter((t) => t.length > 1000)).toHaveLength(1);
    for (const [i, pair] of pairs.entries()) {
      expect(pair.ids).toEqual(tokenizer.encodeWith(premise, { pair: hypotheses[i] as string, truncation: 'only_first' }).ids);
      expect(pair.ids).toHaveLength(tokenizer.maxLength);
    }
  });
});
