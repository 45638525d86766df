/**
 * Issue 13, items 5 and 6: special tokens as Python `transformers` handles them.
 */
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaSpecialTokenIds, TINY_LLAMA_ID, toLlama3StyleTokenizer } from '@inferq/tiny-models';
import { generate, TextGenerationPipeline } from '../src/index.js';
import { ScriptedModel, tinyModels } from './helpers.js';

const ids = llamaSpecialTokenIds();
let qwenStyle: TextGenerationPipeline;
let llama3Style: TextGenerationPipeline;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_LLAMA_ID]);
  cleanup = models.cleanup;
  const dir = join(models.modelsDir, 'inferq', 'tiny-llama3-style');
  await cp(models.dirs[TINY_LLAMA_ID]!, dir, { recursive: true });
  await toLlama3StyleTokenizer(dir, '<|endoftext|>');
  qwenStyle = await TextGenerationPipeline.load(models.dirs[TINY_LLAMA_ID]!);
  llama3Style = await TextGenerationPipeline.load(dir);
});
afterAll(async () => {
  await qwenStyle?.release();
  await llama3Style?.release();
  await cleanup?.();
});

describe('item 5: BOS as the tokenizer defines it', () => {
  it("a plain prompt gets the post-processor's BOS though tokenizer_config has no add_bos_token (Llama-3)", () => {
    // Python: tokenizer("Hello there") uses add_special_tokens=True; Llama-3's TemplateProcessing adds <|begin_of_text|>.
    expect(llama3Style.tokenizer.config.add_bos_token).toBeUndefined();
    const { promptIds } = llama3Style.prepare({ input: 'Hello there' });
    expect(promptIds[0]).toBe(ids.endOfText);
    expect(promptIds.filter((t) => t === ids.endOfText)).toHaveLength(1);
    expect(promptIds.slice(1)).toEqual(llama3Style.tokenizer.encodeWith('Hello there', { addSpecialTokens: false }).ids);
  });

  it('a chat template that writes its own BOS is not given a second one', () => {
    // Python: apply_chat_template tokenizes the rendered chat with add_special_tokens=False.
    const { promptIds, promptText } = llama3Style.prepare({ input: [{ role: 'user', content: 'Where is my order?' }] });
    expect(promptText.startsWith('<|endoftext|><|im_start|>user')).toBe(true);
    expect(promptIds[0]).toBe(ids.endOfText);
    expect(promptIds.filter((t) => t === ids.endOfText)).toHaveLength(1);
  });

  it('a tokenizer whose post-processor adds nothing (Qwen, byte-level) gets no BOS', () => {
    const { promptIds } = qwenStyle.prepare({ input: 'Hello there' });
    expect(promptIds).toEqual(qwenStyle.tokenizer.encodeWith('Hello there', { addSpecialTokens: false }).ids);
  });
});

describe('item 6: stop strings that are special tokens', () => {
  it('"<|im_end|>" as a stop string stops generation when the model emits that token', async () => {
    // Python's StopStringCriteria matches stop strings against token strings, so a special
    // token's own string matches; decoding with skip_special_tokens would never show it.
    const prepared = qwenStyle.prepare({ input: 'Hello there', stop: ['<|im_end|>'], maxNewTokens: 10 });
    expect(prepared.config.stopTokenIds).toEqual([ids.imEnd]);
    const [a, b, c] = qwenStyle.tokenizer.encodeWith(' ok then more', { addSpecialTokens: false }).ids as [number, number, number];
    // The model's EOS list is left out, so only the stop string can end the row early.
    const config = { ...prepared.config, eosTokenId: [] };
    const [out] = await generate(new ScriptedModel([[a, b, ids.imEnd, c, c, c]], ids.vocabSize), [{ config, context: prepared.promptIds }], (x) =>
      qwenStyle.tokenizer.decode([...x]),
    );
    expect(out!.tokens).toEqual([a, b, ids.imEnd]);
    expect(out!.finishReason).toBe('stop');
    expect(out!.text).toBe(qwenStyle.tokenizer.decode([a, b]));
  });

  it('"<|endoftext|>" too; an ordinary stop string is still matched in the text', () => {
    expect(qwenStyle.prepare({ input: 'Hi', stop: ['<|endoftext|>', 'END'] }).config.stopTokenIds).toEqual([ids.endOfText]);
    expect(qwenStyle.prepare({ input: 'Hi', stop: ['END'] }).config.stopTokenIds).toEqual([]);
  });
});
