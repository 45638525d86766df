/**
 * Issue 13, item 9: summarization as Python's pipeline runs it: `task_specific_params`
 * applied over the generation config (T5's `summarize: ` prefix, num_beams, min_length, ...).
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_BART_ID } from '@inferq/tiny-models';
import { SummarizationPipeline } from '../src/index.js';
import { TICKETS, tinyModels } from './helpers.js';

/** t5-small's `task_specific_params.summarization`, lengths scaled down to the tiny model. */
const T5_SUMMARIZATION = { early_stopping: true, length_penalty: 2.0, max_length: 20, min_length: 5, no_repeat_ngram_size: 3, num_beams: 4, prefix: 'summarize: ' };

let plain: SummarizationPipeline;
let t5Like: SummarizationPipeline;
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
});
afterAll(async () => {
  await plain?.release();
  await t5Like?.release();
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
