/**
 * Issue 13, items 2, 3 and 16: the generated text as Python's text-generation pipeline
 * decodes it, streamed without stalls and with bounded work per step.
 *
 * Python (`TextGenerationPipeline.postprocess`): `text = decode(prompt_ids + new_ids)`,
 * `prompt_length = len(decode(prompt_ids))`, the answer is `text[prompt_length:]`, and
 * `return_full_text` gives `prompt_text + text[prompt_length:]`.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { sentencePieceBpeFiles, TINY_BART_ID, TINY_CLASSIFIER_ID, TINY_LLAMA_ID, writeSentencePieceBpe } from '@inferq/tiny-models';
import { generate, resolveGenerationConfig, TextGenerationPipeline, TextStream, type Decode } from '../src/index.js';
import { ScriptedModel, tinyModels } from './helpers.js';

interface Tok {
  name: string;
  encode: (text: string, special?: boolean) => number[];
  decode: Decode;
  vocab: number;
}

function fromFiles(name: string, json: object, config: Record<string, unknown>): Tok {
  const t = new Tokenizer(json, config);
  return {
    name,
    encode: (text, special = false) => t.encode(text, { add_special_tokens: special }).ids,
    decode: (ids) => (ids.length === 0 ? '' : t.decode([...ids], { skip_special_tokens: true })),
    vocab: t.get_vocab(true).size,
  };
}

const SP = sentencePieceBpeFiles({ merges: 150 });
const spJson = JSON.parse(SP['tokenizer.json']!) as object;
const spConfig = JSON.parse(SP['tokenizer_config.json']!) as Record<string, unknown>;
const tokenizers: Tok[] = [
  fromFiles('sentencepiece (Llama-2 layout)', spJson, spConfig),
  fromFiles('sentencepiece with clean-up', spJson, { ...spConfig, clean_up_tokenization_spaces: true }),
];
let cleanup: () => Promise<void>;
/** The tiny llama with a Llama-2-layout SentencePiece tokenizer (its 509 embedding rows cover the pieces). */
let spLlama: TextGenerationPipeline;

beforeAll(async () => {
  const models = await tinyModels([TINY_CLASSIFIER_ID, TINY_BART_ID, TINY_LLAMA_ID]);
  cleanup = models.cleanup;
  const spDir = join(models.modelsDir, 'inferq', 'tiny-llama-sentencepiece');
  await cp(models.dirs[TINY_LLAMA_ID]!, spDir, { recursive: true });
  await writeSentencePieceBpe(spDir, { merges: 150 });
  for (const file of ['config.json', 'generation_config.json']) {
    const path = join(spDir, file);
    const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    await writeFile(path, JSON.stringify({ ...json, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2 }));
  }
  spLlama = await TextGenerationPipeline.load(spDir);
  for (const [id, name] of [
    [TINY_CLASSIFIER_ID, 'wordpiece (BERT, clean-up on)'],
    [TINY_BART_ID, 'byte-level BPE (BART)'],
    [TINY_LLAMA_ID, 'byte-level BPE (Qwen-style llama)'],
  ] as const) {
    const dir = models.dirs[id]!;
    const json = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as object;
    const config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    tokenizers.push(fromFiles(name, json, config));
    if (config.clean_up_tokenization_spaces !== true) tokenizers.push(fromFiles(`${name} with clean-up`, json, { ...config, clean_up_tokenization_spaces: true }));
  }
});
afterAll(async () => {
  await spLlama?.release();
  await cleanup?.();
});

/** Text whose pieces trigger every rewrite: clean-up rules, split UTF-8 characters, spaces. */
const TRICKY = "John 's car . I can 't , they 're here ! Why ? naïve café — 你好 🚀 we 've  two  spaces ' quoted ' ok";

describe('item 2: leading spaces (decode prompt + new tokens, cut the decoded prompt)', () => {
  it('SentencePiece: "The capital is" + " Paris." stays " Paris." (Python pipeline), not "Paris."', async () => {
    const sp = tokenizers[0]!;
    const prompt = sp.encode('The capital is', true);
    const script = sp.encode('Paris.'); // "▁Paris" "." as a model would generate them
    // Decoding the new tokens alone loses the space: the defect this item fixes.
    expect(sp.decode(script)).toBe('Paris.');
    const streamed: string[] = [];
    const config = resolveGenerationConfig({ eosTokenId: 2 }, { maxNewTokens: script.length }, prompt.length);
    const [out] = await generate(new ScriptedModel([script], sp.vocab), [{ config, context: prompt, onText: (d) => streamed.push(d) }], sp.decode);
    expect(out!.text).toBe(' Paris.');
    expect(streamed.join('')).toBe(' Paris.');
    // return_full_text: prompt text + the text, words not glued.
    expect('The capital is' + out!.text).toBe('The capital is Paris.');
  });
});

describe('item 2 through the pipeline: a SentencePiece model', () => {
  it('return_full_text is the whole sequence decoded (no glued words), as Python builds it', async () => {
    const prompt = 'The capital is';
    const [full] = await spLlama.generate([prompt], { maxNewTokens: 12, minNewTokens: 12, returnFullText: true });
    const [alone] = await spLlama.generate([prompt], { maxNewTokens: 12, minNewTokens: 12 });
    const promptIds = spLlama.prepare({ input: prompt }).promptIds;
    expect(promptIds[0]).toBe(1); // <s>, from the post-processor
    // Python: prompt_text + decode(prompt_ids + new_ids)[len(decode(prompt_ids)):]
    expect(full!.text).toBe(spLlama.tokenizer.decode([...promptIds, ...full!.tokenIds]));
    expect(full!.text).toBe(prompt + alone!.text);
    // The new tokens decoded alone would have lost the leading space of their first piece.
    const first = spLlama.tokenizer.decode([...promptIds, alone!.tokenIds[0]!]).slice(prompt.length);
    expect(alone!.text.startsWith(first)).toBe(true);
  });
});

/** Streams `ids` one token at a time; returns the joined deltas, the final text and the text held back at the end. */
function streamAll(tok: Tok, context: number[], ids: number[], stop: string[]) {
  const stream = new TextStream(tok.decode, stop, context);
  let joined = '';
  let n = 0;
  while (n < ids.length && !stream.stopped) {
    n++;
    stream.update(ids.slice(0, n));
    joined += stream.delta();
  }
  const heldBack = stream.text.length - joined.length;
  const final = stream.finish(ids.slice(0, n));
  joined += stream.delta();
  return { joined, final, heldBack };
}

describe('item 3: streaming never stalls', () => {
  it('a clean-up rewrite of earlier text (" \'s" to "\'s") does not stop later deltas', () => {
    const tok = tokenizers.find((t) => t.name === 'wordpiece (BERT, clean-up on)')!;
    const ids = tok.encode("John 's car is here . And more words follow after it");
    const { joined, final, heldBack } = streamAll(tok, [], ids, []);
    expect(final).toBe("john's car is here. and more words follow after it");
    expect(joined).toBe(final);
    expect(heldBack).toBeLessThanOrEqual(1);
  });

  it('property: over random token sequences and tokenizers, the joined deltas equal the final text', () => {
    for (const tok of tokenizers) {
      const pool = [...new Set(tok.encode(TRICKY))];
      const token = fc.oneof(fc.constantFrom(...pool), fc.integer({ min: 0, max: tok.vocab - 1 }));
      fc.assert(
        fc.property(
          fc.array(token, { maxLength: 8 }),
          fc.array(token, { minLength: 1, maxLength: 60 }),
          fc.constantFrom([], ['.'], ["'s"], ['re h', 'ok']),
          (context, ids, stop) => {
            const { joined, final, heldBack } = streamAll(tok, context, ids, stop);
            expect(joined, tok.name).toBe(final);
            // Nothing stalls: at most a partial character, a clean-up tail and a stop-string prefix wait.
            expect(heldBack, tok.name).toBeLessThanOrEqual(3 + 4 + 4);
            // And without stop strings the final text is Python's: decode(prompt + new) minus decode(prompt).
            if (stop.length === 0) expect(final).toBe(tok.decode([...context, ...ids]).slice(tok.decode(context).length));
          },
        ),
        { numRuns: 150, seed: 13 },
      );
    }
  });
});

describe('item 16: stop strings and streaming checked incrementally', () => {
  it('each step decodes a bounded window, not the whole output', () => {
    const tok = tokenizers.find((t) => t.name === 'byte-level BPE (Qwen-style llama)')!;
    const words = TRICKY.replace(/[^a-z ]/g, '').split(/\s+/).filter(Boolean);
    const text = Array.from({ length: 300 }, (_, i) => words[(i * 7) % words.length]).join(' ');
    const ids = tok.encode(text);
    const prompt = tok.encode('A prompt of some length, decoded with the new tokens. '.repeat(20));
    const sizes: number[] = [];
    const decode: Decode = (x) => (sizes.push(x.length), tok.decode(x));
    const stream = new TextStream(decode, ['never there'], prompt);
    let joined = '';
    for (let n = 1; n <= ids.length; n++) {
      stream.update(ids.slice(0, n));
      joined += stream.delta();
    }
    expect(ids.length).toBeGreaterThan(300);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(32); // not ids.length + prompt.length
    sizes.length = 0;
    const final = stream.finish(ids);
    joined += stream.delta();
    expect(joined).toBe(final);
    expect(final).toBe(tok.decode([...prompt, ...ids]).slice(tok.decode(prompt).length));
  });
});
