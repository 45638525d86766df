import { describe, expect, it } from 'vitest';
import { dropLeading, KvCache, selectRows, TextStream } from '../src/index.js';

const chars = (ids: readonly number[]) => ids.map((i) => String.fromCharCode(i)).join('');

describe('TextStream', () => {
  it('holds back a tail that may start a stop string, then cuts at the stop string', () => {
    const stream = new TextStream(chars, ['END']);
    const emitted: string[] = [];
    const text = 'hello wEND there';
    for (let n = 1; n <= text.length && !stream.stopped; n++) {
      stream.update([...text.slice(0, n)].map((c) => c.charCodeAt(0)));
      emitted.push(stream.delta());
    }
    stream.finish([...text].map((c) => c.charCodeAt(0)));
    emitted.push(stream.delta());
    expect(stream.text).toBe('hello w');
    expect(emitted.join('')).toBe('hello w');
    expect(emitted.some((d) => d.includes('E'))).toBe(false);
  });

  it('holds back an incomplete character and lets go of a false alarm', () => {
    const stream = new TextStream(chars, ['ab']);
    stream.update([0x78, 0xfffd]);
    expect(stream.delta()).toBe('x');
    stream.update([0x78, 0x79, 0x61]);
    expect(stream.delta()).toBe('y');
    stream.update([0x78, 0x79, 0x61, 0x63]);
    expect(stream.delta()).toBe('ac');
    expect(stream.stopped).toBe(false);
  });
});

describe('KV cache', () => {
  const t = { data: Float32Array.from({ length: 2 * 1 * 3 * 2 }, (_, i) => i), dims: [2, 1, 3, 2] };

  it('selects rows, repeating them for beams', () => {
    expect(Array.from(selectRows(t, [1, 1, 0]).data)).toEqual([6, 7, 8, 9, 10, 11, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]);
  });

  it('drops leading positions of every row', () => {
    const out = dropLeading(t, 2, 2);
    expect(out.dims).toEqual([2, 1, 1, 2]);
    expect(Array.from(out.data)).toEqual([4, 5, 10, 11]);
  });

  it('keeps the encoder pasts of an encoder-decoder after the first step', () => {
    const cache = KvCache.empty(1, new Map([['past_key_values.0.decoder.key', { heads: 1, headDim: 2 }], ['past_key_values.0.encoder.key', { heads: 1, headDim: 2 }]]));
    const first = { data: Float32Array.of(1, 2), dims: [1, 1, 1, 2] };
    cache.update({ 'present.0.decoder.key': first, 'present.0.encoder.key': first, logits: first });
    const second = { data: Float32Array.of(3, 4, 5, 6), dims: [1, 1, 2, 2] };
    cache.update({ 'present.0.decoder.key': second, 'present.0.encoder.key': second }, (name) => name.includes('.encoder.'));
    expect(cache.feeds()['past_key_values.0.decoder.key']?.dims).toEqual([1, 1, 2, 2]);
    expect(cache.feeds()['past_key_values.0.encoder.key']?.dims).toEqual([1, 1, 1, 2]);
    expect(Object.keys(cache.feeds())).not.toContain('logits');
  });
});
