/**
 * Issue 13, item 12: `num_return_sequences` for beam search and sampling (the OpenAI `n`
 * builds on it), as Python's `generate` returns them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_LLAMA_ID } from '@inferq/tiny-models';
import { resolveGenerationConfig, TextGenerationPipeline } from '../src/index.js';
import { tinyModels } from './helpers.js';

let pipeline: TextGenerationPipeline;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_LLAMA_ID]);
  cleanup = models.cleanup;
  pipeline = await TextGenerationPipeline.load(models.dirs[TINY_LLAMA_ID]!);
});
afterAll(async () => {
  await pipeline?.release();
  await cleanup?.();
});

describe('item 12: num_return_sequences', () => {
  it('beam search returns the n best hypotheses, best first (the first is the one-sequence answer)', async () => {
    const [one] = await pipeline.generate(['The refund never arrived'], { numBeams: 4, maxNewTokens: 10 });
    const [three] = await pipeline.generate(['The refund never arrived'], { numBeams: 4, maxNewTokens: 10, numReturnSequences: 3 });
    expect(three!.sequences).toHaveLength(3);
    expect(three!.sequences![0]!.tokenIds).toEqual(one!.tokenIds);
    expect(three!.tokenIds).toEqual(one!.tokenIds);
    expect(new Set(three!.sequences!.map((s) => s.tokenIds.join(','))).size).toBe(3);
  });

  it('sampling returns n independent samples; the first is what the same seed gives alone', async () => {
    const options = { doSample: true, seed: 7, maxNewTokens: 12, minNewTokens: 12 };
    const [one] = await pipeline.generate(['Hello there'], options);
    const [four] = await pipeline.generate(['Hello there'], { ...options, numReturnSequences: 4 });
    const [again] = await pipeline.generate(['Hello there', 'bad'], { ...options, numReturnSequences: 4 });
    expect(four!.sequences).toHaveLength(4);
    expect(four!.sequences![0]!.tokenIds).toEqual(one!.tokenIds);
    expect(new Set(four!.sequences!.map((s) => s.tokenIds.join(','))).size).toBe(4);
    // Reproducible with the seed, whatever else shares the batch.
    expect(again!.sequences!.map((s) => s.tokenIds)).toEqual(four!.sequences!.map((s) => s.tokenIds));
  });

  it('refuses what Python refuses: greedy with n > 1, n over num_beams', () => {
    expect(() => resolveGenerationConfig({}, { numReturnSequences: 2 }, 1)).toThrow(/needs sampling \(doSample\) or beam search/);
    expect(() => resolveGenerationConfig({}, { numBeams: 2, numReturnSequences: 3 }, 1)).toThrow(/numReturnSequences \(3\) must be <= numBeams \(2\)/);
  });
});
