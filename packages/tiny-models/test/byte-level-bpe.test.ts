import { describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { BYTE_SYMBOLS, byteLevelBpeFiles, learnMerges, toByteSymbols, type ByteLevelBpeOptions } from '../src/index.js';

const OPTIONS: ByteLevelBpeOptions = {
  merges: 250,
  specialsBefore: [{ content: '<s>' }, { content: '<pad>' }, { content: '</s>' }, { content: '<unk>' }],
  specialsAfter: [{ content: '<mask>', lstrip: true }],
  postProcessor: 'roberta',
  specialTokensMap: { bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>', mask_token: '<mask>' },
  tokenizerClass: 'BartTokenizer',
  modelMaxLength: 256,
};

function load(options: ByteLevelBpeOptions): { tokenizer: Tokenizer; files: Record<string, string> } {
  const files = byteLevelBpeFiles(options);
  return { tokenizer: new Tokenizer(JSON.parse(files['tokenizer.json']!) as object, JSON.parse(files['tokenizer_config.json']!) as object), files };
}

describe('byte-level BPE tokenizer', () => {
  it('maps every byte to its own printable symbol, as GPT-2 does', () => {
    expect(new Set(BYTE_SYMBOLS).size).toBe(256);
    expect(toByteSymbols(' hello\n')).toBe('Ġhello\u010a');
    expect(toByteSymbols('é')).toBe('Ã©');
  });

  it('learns the same merges every time, frequent words first', () => {
    const merges = learnMerges(250);
    expect(merges).toHaveLength(250);
    expect(learnMerges(250)).toEqual(merges);
    expect(merges.slice(0, 2).map(([a, b]) => a + b)).toEqual(['th', 'Ġa']);
    expect(merges.map(([a, b]) => a + b)).toEqual(expect.arrayContaining(['Ġthe', 'Ġand']));
  });

  it('round-trips any text, including bytes it has no merge for', () => {
    const { tokenizer } = load(OPTIONS);
    for (const text of ['The refund never arrived.', '  spaces\tand\nlines ', 'naïve café — 你好 🚀']) {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      expect(tokenizer.decode(ids, { skip_special_tokens: true })).toBe(text);
    }
  });

  it('keeps the commonest words whole and wraps inputs as BART does', () => {
    const { tokenizer } = load(OPTIONS);
    const encoded = tokenizer.encode('I want the refund');
    expect(encoded.tokens).toEqual(['<s>', 'I', 'Ġw', 'ant', 'Ġthe', 'Ġre', 'fu', 'nd', '</s>']);
    expect(encoded.ids[0]).toBe(0);
    expect(encoded.ids.at(-1)).toBe(2);
    const pair = tokenizer.encode('a', { text_pair: 'b' }).tokens;
    expect(pair).toEqual(['<s>', 'a', '</s>', '</s>', 'b', '</s>']);
  });

  it('splits special tokens out of text and adds nothing with a byte-level post-processor', () => {
    const { tokenizer } = load({
      ...OPTIONS,
      specialsBefore: [],
      specialsAfter: [{ content: '<|endoftext|>' }, { content: '<|im_start|>' }, { content: '<|im_end|>' }],
      postProcessor: 'byte-level',
      specialTokensMap: { eos_token: '<|im_end|>', pad_token: '<|endoftext|>' },
    });
    const tokens = tokenizer.encode('<|im_start|>user\nhi<|im_end|>').tokens;
    expect(tokens[0]).toBe('<|im_start|>');
    expect(tokens.at(-1)).toBe('<|im_end|>');
    expect(tokens).toContain('Ċ');
  });

  it('writes vocab.json and merges.txt that agree with tokenizer.json', () => {
    const { files } = load(OPTIONS);
    const json = JSON.parse(files['tokenizer.json']!) as { model: { vocab: Record<string, number>; merges: [string, string][] } };
    expect(JSON.parse(files['vocab.json']!)).toEqual(json.model.vocab);
    const lines = files['merges.txt']!.trimEnd().split('\n');
    expect(lines[0]).toBe('#version: 0.2');
    expect(lines.slice(1)).toEqual(json.model.merges.map(([a, b]) => `${a} ${b}`));
    for (const [a, b] of json.model.merges) expect(json.model.vocab).toHaveProperty([a + b]);
    expect(Object.keys(json.model.vocab)).toHaveLength(4 + 256 + 250 + 1);
  });
});
