import { describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { BASE_VOCAB, BASE_VOCAB_SIZE, buildVocab, SPECIAL_TOKEN_IDS, SPECIAL_TOKENS, tokenizerFiles } from '../src/index.js';

function tokenizerOf(vocab: string[]): Tokenizer {
  const files = tokenizerFiles({ vocab });
  return new Tokenizer(JSON.parse(files['tokenizer.json']!) as object, JSON.parse(files['tokenizer_config.json']!) as object);
}

describe('WordPiece vocabulary', () => {
  it('starts with the special tokens at their ids and has no duplicates', () => {
    for (const [key, id] of Object.entries(SPECIAL_TOKEN_IDS)) {
      expect(BASE_VOCAB[id]).toBe(SPECIAL_TOKENS[key as keyof typeof SPECIAL_TOKENS]);
    }
    expect(new Set(BASE_VOCAB).size).toBe(BASE_VOCAB_SIZE);
    expect(BASE_VOCAB_SIZE).toBeGreaterThan(400);
  });

  it('pads to a real model size deterministically, without duplicates', () => {
    const a = buildVocab(30522);
    expect(a).toHaveLength(30522);
    expect(new Set(a).size).toBe(30522);
    expect(a.slice(0, BASE_VOCAB_SIZE)).toEqual([...BASE_VOCAB]);
    expect(buildVocab(30522)).toEqual(a);
    expect(() => buildVocab(BASE_VOCAB_SIZE - 1)).toThrow();
  });

  it('keeps real words whole in a padded vocabulary', () => {
    const tokenizer = tokenizerOf(buildVocab(30522));
    expect(tokenizer.encode('The invoice is wrong, please refund').tokens).toEqual([
      '[CLS]', 'the', 'invoice', 'is', 'wrong', ',', 'please', 'refund', '[SEP]',
    ]);
  });

  it('encodes pairs with token type ids', () => {
    const tokenizer = tokenizerOf(buildVocab());
    const encoding = tokenizer.encode('good', { text_pair: 'bad', return_token_type_ids: true });
    expect(encoding.tokens).toEqual(['[CLS]', 'good', '[SEP]', 'bad', '[SEP]']);
    expect(encoding.token_type_ids).toEqual([0, 0, 0, 1, 1]);
  });

  it('writes vocab.txt in id order', () => {
    const vocab = buildVocab(1000);
    expect(tokenizerFiles({ vocab })['vocab.txt']).toBe(vocab.join('\n') + '\n');
  });
});
