/**
 * Issue 13, item 17: the event loop stays free during a big prefill or encoder pass (they
 * run on a session thread, as the encoder tasks' sessions do). Timing is in bench/; this
 * checks the behaviour a worker notices: callbacks run while the prefill computes.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_BART_ID, TINY_LLAMA_ID } from '@inferq/tiny-models';
import { SummarizationPipeline, TextGenerationPipeline, type Session } from '../src/index.js';
import { tinyModels } from './helpers.js';

let dirs: Record<string, string>;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_LLAMA_ID, TINY_BART_ID]);
  cleanup = models.cleanup;
  dirs = models.dirs;
});
afterAll(async () => cleanup?.());

/**
 * Wraps `session` so that its first run counts how often a 1 ms interval fired while that
 * run computed: a blocked event loop fires it at most once (when the run returns).
 */
function watching(session: Session, seen: { ticks?: number }): Session {
  return new Proxy(session, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver) as unknown;
      return async (...args: Parameters<Session['run']>) => {
        if (seen.ticks !== undefined) return target.run(...args);
        seen.ticks = 0;
        const interval = setInterval(() => seen.ticks!++, 1);
        try {
          return await target.run(...args);
        } finally {
          clearInterval(interval);
        }
      };
    },
  });
}

/** Prompts long enough that the prefill takes many milliseconds on the tiny model. */
const BIG = Array.from({ length: 8 }, (_, i) => `ticket ${i}: ` + 'the refund never arrived and support is slow. '.repeat(60));

describe('item 17: the event loop stays free during a big prefill', () => {
  it('text generation: callbacks run while 8 long prompts prefill (on the prefill thread)', async () => {
    const pipeline = await TextGenerationPipeline.load(dirs[TINY_LLAMA_ID]!);
    const seen: { ticks?: number } = {};
    const options = (pipeline as unknown as { batchOptions: { prefillSession: Session } }).batchOptions;
    options.prefillSession = watching(options.prefillSession, seen);
    try {
      await pipeline.generate(BIG, { maxNewTokens: 2 });
      expect(seen.ticks).toBeGreaterThanOrEqual(3);
    } finally {
      await pipeline.release();
    }
  });

  it('without the prefill thread the same prefill holds the event loop (what the thread fixes)', async () => {
    const pipeline = await TextGenerationPipeline.load(dirs[TINY_LLAMA_ID]!, { prefillThread: false });
    const seen: { ticks?: number } = {};
    Object.defineProperty(pipeline, 'session', { value: watching(pipeline.session, seen) });
    try {
      await pipeline.generate(BIG, { maxNewTokens: 2 });
      expect(seen.ticks).toBeLessThanOrEqual(1);
    } finally {
      await pipeline.release();
    }
  });

  it.runIf(existsSync('/proc/self/task'))('the prefill thread and its onnxruntime threads run at a lower priority (nice 10) than the event loop', async () => {
    const niceOf = (): number[] =>
      readdirSync('/proc/self/task').map((t) => {
        const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      });
    const before = niceOf().filter((n) => n === 10).length;
    const pipeline = await TextGenerationPipeline.load(dirs[TINY_LLAMA_ID]!, { intraOpThreads: 2 });
    try {
      expect(niceOf().filter((n) => n === 10).length - before).toBeGreaterThanOrEqual(2); // the thread and an intra-op thread
      expect(niceOf()[0]).toBe(0); // the main thread
    } finally {
      await pipeline.release();
    }
  });

  it('summarization: callbacks run during the encoder pass', async () => {
    const pipeline = await SummarizationPipeline.load(dirs[TINY_BART_ID]!);
    const seen: { ticks?: number } = {};
    Object.defineProperty(pipeline, 'encoder', { value: watching(pipeline.encoder, seen) });
    try {
      await pipeline.summarize([...BIG, ...BIG, ...BIG, ...BIG], { maxNewTokens: 1 });
      expect(seen.ticks).toBeGreaterThanOrEqual(3);
    } finally {
      await pipeline.release();
    }
  });
});
