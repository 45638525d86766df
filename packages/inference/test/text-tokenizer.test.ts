import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextTokenizer, padBatch } from '../src/index.js';
import { tinyClassifier } from './helpers.js';

let tokenizer: TextTokenizer;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const model = await tinyClassifier();
  cleanup = model.cleanup;
  tokenizer = await TextTokenizer.load(model.dir, 512);
});
afterAll(() => cleanup());

describe('TextTokenizer', () => {
  const cls = () => tokenizer.idOf('[CLS]');
  const sep = () => tokenizer.idOf('[SEP]');

  it('truncates to model_max_length and keeps [CLS] and [SEP]', () => {
    const encoded = tokenizer.encode('refund '.repeat(2000));
    expect(encoded.ids).toHaveLength(tokenizer.maxLength);
    expect(encoded.ids[0]).toBe(cls());
    expect(encoded.ids.at(-1)).toBe(sep());
  });

  it('truncates a pair longest-first and keeps both separators', () => {
    const encoded = tokenizer.encode('good '.repeat(600), 'bad service', 32);
    expect(encoded.ids).toHaveLength(32);
    expect(encoded.ids.filter((id) => id === sep())).toHaveLength(2);
    expect(encoded.typeIds.at(-1)).toBe(1);
    expect(encoded.ids.slice(-3, -1)).toEqual(tokenizer.encode('bad service').ids.slice(1, -1));
  });

  it('truncates only the first text of a pair when told, keeping the second whole', () => {
    const hypothesis = tokenizer.encode('x', 'this is about billing').ids.slice(3);
    const encoded = tokenizer.encodeWith('good '.repeat(600), { pair: 'this is about billing', maxLength: 32, truncation: 'only_first' });
    expect(encoded.ids).toHaveLength(32);
    expect(encoded.ids.slice(-hypothesis.length)).toEqual(hypothesis);
    expect(() => tokenizer.encodeWith('a b', { pair: 'word '.repeat(40), maxLength: 16, truncation: 'only_first' })).toThrow(/can't cut enough/);
  });

  it('leaves the special tokens out when asked', () => {
    const encoded = tokenizer.encodeWith('great battery', { addSpecialTokens: false });
    expect(encoded.ids).toEqual(tokenizer.encode('great battery').ids.slice(1, -1));
  });

  it('does not touch texts that fit', () => {
    const encoded = tokenizer.encode('great battery');
    expect(encoded.ids.length).toBeLessThan(10);
    expect(tokenizer.decode(encoded.ids)).toBe('great battery');
  });

  it('pads right with [PAD] and masks the padding', () => {
    const a = tokenizer.encode('ok');
    const b = tokenizer.encode('the screen is great but the battery is bad');
    const batch = padBatch([a, b], { padId: tokenizer.padId });
    expect(batch.inputIds.dims).toEqual([2, b.ids.length]);
    const mask = Array.from(batch.attentionMask.data as BigInt64Array, Number);
    expect(mask.slice(0, b.ids.length)).toEqual([...a.ids.map(() => 1), ...new Array(b.ids.length - a.ids.length).fill(0)]);
    expect(Number((batch.inputIds.data as BigInt64Array)[b.ids.length - 1])).toBe(tokenizer.padId);
  });

  it('pads left for generation, with positions counting real tokens only', () => {
    const batch = padBatch([{ ids: [7], typeIds: [0] }, { ids: [5, 6, 7], typeIds: [0, 0, 0] }], { padId: 0, side: 'left' });
    expect(Array.from(batch.inputIds.data as BigInt64Array, Number)).toEqual([0, 0, 7, 5, 6, 7]);
    expect(Array.from(batch.attentionMask.data as BigInt64Array, Number)).toEqual([0, 0, 1, 1, 1, 1]);
    expect(Array.from(batch.positionIds.data as BigInt64Array, Number)).toEqual([0, 0, 0, 0, 1, 2]);
  });
});
