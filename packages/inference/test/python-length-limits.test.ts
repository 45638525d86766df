/**
 * Issue 13, item 4: length limits as Python `transformers` applies them
 * (`GenerationMixin._prepare_generated_length` and `_validate_generated_length`).
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_BART_ID } from '@inferq/tiny-models';
import { modelGenerationDefaults, resolveGenerationConfig, SummarizationPipeline } from '../src/index.js';
import { TICKETS, tinyModels } from './helpers.js';

/** The length settings `Xenova/distilbart-cnn-6-6` ships in its config.json and generation_config.json. */
const DISTILBART_LENGTHS = { max_length: 142, min_length: 56 };
const EOS = 2;

describe('item 4: length limits as Python applies them', () => {
  it("a model min_length over the request's max_new_tokens warns and generates max_new_tokens (no error)", () => {
    // Python: min_length 56 > max_length (40 + 1 decoder start token) warns "Unfeasible length
    // constraints" and generation stops at the maximum length.
    const model = modelGenerationDefaults(DISTILBART_LENGTHS, undefined);
    const config = resolveGenerationConfig(model, { maxNewTokens: 40 }, 1);
    expect(config.maxNewTokens).toBe(40);
    expect(config.minNewTokens).toBe(40);
    expect(config.warnings).toHaveLength(1);
    expect(config.warnings[0]).toMatch(/Unfeasible length constraints.*55.*40/);
  });

  it("the request's min_new_tokens takes precedence over the model's min_length", () => {
    // Python: "Both `min_new_tokens` and `min_length` seem to have been set. `min_new_tokens`
    // will take precedence": min_length becomes min_new_tokens + the start length.
    const model = modelGenerationDefaults(DISTILBART_LENGTHS, undefined);
    expect(resolveGenerationConfig(model, { maxNewTokens: 40, minNewTokens: 5 }, 1)).toMatchObject({ minNewTokens: 5, maxNewTokens: 40, warnings: [] });
    // Without a request minimum, the model's min_length holds (counted from the start).
    expect(resolveGenerationConfig(model, { maxNewTokens: 100 }, 1)).toMatchObject({ minNewTokens: 55, maxNewTokens: 100, warnings: [] });
  });

  it('max_new_tokens wins over max_length, from the request or from the model', () => {
    expect(resolveGenerationConfig({ maxLength: 142 }, { maxNewTokens: 200 }, 1).maxNewTokens).toBe(200);
    expect(resolveGenerationConfig({ maxLength: 142, maxNewTokens: 30 }, {}, 1).maxNewTokens).toBe(30);
    expect(resolveGenerationConfig({ maxLength: 142 }, {}, 1).maxNewTokens).toBe(141);
  });

  it('a request that contradicts itself is still refused (a clear 400, not a silent clamp)', () => {
    expect(() => resolveGenerationConfig({}, { minNewTokens: 55, maxNewTokens: 40 }, 1)).toThrow(/minNewTokens \(55\) must be <= maxNewTokens \(40\)/);
  });

  describe('a BART with distilbart-cnn’s min_length 56 summarizes a ticket in 40 tokens', () => {
    let pipeline: SummarizationPipeline;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      const models = await tinyModels([TINY_BART_ID]);
      cleanup = models.cleanup;
      const dir = join(models.modelsDir, 'inferq', 'distilbart-lengths');
      await cp(models.dirs[TINY_BART_ID]!, dir, { recursive: true });
      const file = join(dir, 'generation_config.json');
      const generation = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...generation, ...DISTILBART_LENGTHS }));
      pipeline = await SummarizationPipeline.load(dir);
    });
    afterAll(async () => {
      await pipeline?.release();
      await cleanup?.();
    });

    it('TICKET_SUMMARY_TOKENS (40) is honoured: 40 tokens, EOS only forced at the end', async () => {
      const prepared = pipeline.prepare({ text: TICKETS[0]!, maxNewTokens: 40 });
      expect(prepared.config.warnings).toHaveLength(1);
      const [out] = await pipeline.run([prepared]);
      expect(out!.outputTokens).toBe(40);
      expect(out!.tokenIds.slice(0, -1)).not.toContain(EOS);
      expect(out!.tokenIds.at(-1)).toBe(EOS); // the model's forced_eos_token_id at the limit, as Python
      expect(out!.finishReason).toBe('length');
    });
  });
});
