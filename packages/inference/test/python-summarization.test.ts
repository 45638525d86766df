/**
 * Issue 13, item 9: summarization as Python's pipeline runs it: `task_specific_params`
 * applied over the generation config (T5's `summarize: ` prefix, num_beams, min_length, ...).
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_BART_ID } from '@inferq/tiny-models';
import { SummarizationPipeline, type FloatTensor, type Session } from '../src/index.js';
import { TICKETS, tinyModels } from './helpers.js';

/** t5-small's `task_specific_params.summarization`, lengths scaled down to the tiny model. */
const T5_SUMMARIZATION = { early_stopping: true, length_penalty: 2.0, max_length: 20, min_length: 5, no_repeat_ngram_size: 3, num_beams: 4, prefix: 'summarize: ' };

let plain: SummarizationPipeline;
let t5Like: SummarizationPipeline;
let cleaning: SummarizationPipeline;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_BART_ID]);
  cleanup = models.cleanup;
  const dir = join(models.modelsDir, 'inferq', 't5-like');
  await cp(models.dirs[TINY_BART_ID]!, dir, { recursive: true });
  const file = join(dir, 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(file, JSON.stringify({ ...config, task_specific_params: { summarization: T5_SUMMARIZATION, translation_en_to_de: { prefix: 'translate English to German: ' } } }));
  plain = await SummarizationPipeline.load(models.dirs[TINY_BART_ID]!);
  t5Like = await SummarizationPipeline.load(dir);
  // A tokenizer_config that asks for clean-up (distilbart-cnn's says true).
  const cleanDir = join(models.modelsDir, 'inferq', 'bart-clean-up');
  await cp(models.dirs[TINY_BART_ID]!, cleanDir, { recursive: true });
  const tokenizerConfig = join(cleanDir, 'tokenizer_config.json');
  await writeFile(tokenizerConfig, JSON.stringify({ ...JSON.parse(await readFile(tokenizerConfig, 'utf8')), clean_up_tokenization_spaces: true }));
  cleaning = await SummarizationPipeline.load(cleanDir);
});
afterAll(async () => {
  await plain?.release();
  await t5Like?.release();
  await cleaning?.release();
  await cleanup?.();
});

describe('item 9: task_specific_params.summarization', () => {
  it("puts the task's prefix before the text (T5's 'summarize: ')", () => {
    const text = TICKETS[0]!;
    expect(t5Like.prefix).toBe('summarize: ');
    expect(t5Like.prepare({ text }).inputIds).toEqual(plain.tokenizer.encode('summarize: ' + text).ids);
    expect(plain.prefix).toBe('');
    expect(plain.prepare({ text }).inputIds).toEqual(plain.tokenizer.encode(text).ids);
  });

  it('applies its generation settings over generation_config.json; the request still wins', () => {
    // Python: Pipeline.__init__ updates the model's (generation) config with the task's params.
    expect(t5Like.prepare({ text: TICKETS[1]! }).config).toMatchObject({ numBeams: 4, lengthPenalty: 2, noRepeatNgramSize: 3, earlyStopping: true, maxNewTokens: 19, minNewTokens: 4 });
    expect(plain.prepare({ text: TICKETS[1]! }).config).toMatchObject({ numBeams: 1, maxNewTokens: 63, minNewTokens: 0 });
    expect(t5Like.prepare({ text: TICKETS[1]!, numBeams: 1, maxNewTokens: 8 }).config).toMatchObject({ numBeams: 1, maxNewTokens: 8 });
  });

  it('summarizes with them: beam search output within the lengths', async () => {
    const [out] = await t5Like.summarize([TICKETS[3]!]);
    expect(out!.outputTokens).toBeGreaterThanOrEqual(5);
    expect(out!.outputTokens).toBeLessThanOrEqual(19);
  });
});

/** The real decoder's interface, answering a script instead: row r's n-th token is scripts[r][n]. */
function scriptedDecoder(real: Session, script: number[], vocab: number): Session {
  let step = 0;
  return new Proxy(real, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver) as unknown;
      return async (feeds: Record<string, { dims: readonly number[] }>) => {
        const rows = feeds.input_ids!.dims[0]!;
        const data = new Float32Array(rows * vocab);
        for (let r = 0; r < rows; r++) data[r * vocab + script[Math.min(step, script.length - 1)]!] = 10;
        step++;
        return { logits: { data, dims: [rows, 1, vocab] } satisfies FloatTensor };
      };
    },
  });
}

describe("item 9: summarization decodes as Python's summarization pipeline", () => {
  it('without clean-up, whatever tokenizer_config says ("Refund ." stays "Refund .")', async () => {
    // Python: Text2TextGenerationPipeline.postprocess(clean_up_tokenization_spaces=False).
    const ids = cleaning.tokenizer.encodeWith('Refund .', { addSpecialTokens: false }).ids;
    expect(cleaning.tokenizer.decode(ids)).toBe('Refund.'); // the tokenizer alone would clean up
    const vocab = cleaning.config.vocab_size as number;
    Object.defineProperty(cleaning, 'decoder', { value: scriptedDecoder(cleaning.decoder, [...ids, 2], vocab), configurable: true });
    const [out] = await cleaning.summarize([TICKETS[0]!], { maxNewTokens: 10 });
    expect(out!.tokenIds).toEqual([...ids, 2]);
    expect(out!.text).toBe('Refund .');
  });
});
