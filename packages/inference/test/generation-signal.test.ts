/** Issue 15 item 2: a generation given up (its job's time limit) leaves its batch at the next step. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_LLAMA_ID } from '@inferq/tiny-models';
import { PromptTooLongError, TextGenerationPipeline } from '../src/index.js';
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

describe('generation bounds', () => {
  it('15.2 an aborted request stops at the next step; its batch neighbour generates all its tokens', async () => {
    const controller = new AbortController();
    let steps = 0;
    const stopped = {
      ...pipeline.prepare({ input: 'Once upon a time', maxNewTokens: 64, minNewTokens: 64, onToken: () => (++steps === 3 ? controller.abort() : undefined) }),
      signal: controller.signal,
    };
    const full = pipeline.prepare({ input: 'The battery is', maxNewTokens: 64, minNewTokens: 64 });
    const [a, b] = await pipeline.run([stopped, full]);
    expect(a?.outputTokens).toBeLessThan(10);
    expect(b?.outputTokens).toBe(64);
    const [alone] = await pipeline.run([pipeline.prepare({ input: 'The battery is', maxNewTokens: 64, minNewTokens: 64 })]);
    expect(b?.tokenIds).toEqual(alone?.tokenIds);
  });

  it('15.2 a prompt over maxPromptTokens throws PromptTooLongError, tokenizing no more than the limit needs', () => {
    const long = 'the refund never came and '.repeat(4000);
    expect(() => pipeline.prepare({ input: long, maxNewTokens: 4, maxPromptTokens: 100 })).toThrow(PromptTooLongError);
    expect(pipeline.prepare({ input: 'Once upon a time', maxNewTokens: 4, maxPromptTokens: 100 }).promptIds.length).toBeLessThan(100);
  });
});
