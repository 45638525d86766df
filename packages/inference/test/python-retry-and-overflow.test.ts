/**
 * Issue 13, items 7 and 11: streaming across a retried batch, and a temperature so small
 * that the scores overflow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_LLAMA_ID } from '@inferq/tiny-models';
import {
  BatchScheduler,
  GenerationParameterError,
  StreamOnce,
  TemperatureLogitsWarper,
  TextGenerationPipeline,
  type GeneratedText,
  type Session,
  type TextGenerationPrepared,
} from '../src/index.js';
import { tinyModels } from './helpers.js';

let pipeline: TextGenerationPipeline;
let real: Session;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_LLAMA_ID]);
  cleanup = models.cleanup;
  pipeline = await TextGenerationPipeline.load(models.dirs[TINY_LLAMA_ID]!);
  real = pipeline.session;
});
afterAll(async () => {
  await pipeline?.release();
  await cleanup?.();
});

/** The real session, failing once on its `failAt`-th run with two rows (a transient fault mid-generation). */
function failingOnce(failAt: number): Session {
  let calls = 0;
  return new Proxy(real, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver) as unknown;
      return (...args: Parameters<Session['run']>) => {
        if (args[0].input_ids?.dims[0] === 2 && ++calls === failAt) return Promise.reject(new Error('transient failure in session.run'));
        return target.run(...args);
      };
    },
  });
}

const sizes: string[] = [];
function scheduler() {
  return new BatchScheduler<TextGenerationPrepared, TextGenerationPrepared, GeneratedText>({
    prepare: (p) => p,
    cost: (p) => pipeline.cost(p),
    groupKey: (p) => pipeline.groupKey(p),
    run: (batch) => pipeline.run(batch),
    maxBatchSize: 2,
    maxDelayMs: 20,
    onBatch: (s) => sizes.push(`${s.size}${s.failed ? '!' : ''}`),
  });
}

describe('item 7: a retried batch never streams a token twice', () => {
  it('a batch that fails after streaming 8 tokens is retried; each client sees its text once', async () => {
    Object.defineProperty(pipeline, 'session', { value: failingOnce(9), configurable: true });
    try {
      const batches = scheduler();
      const streamed = [[] as string[], [] as string[]];
      const requests = [
        pipeline.prepare({ input: 'The refund never arrived and', maxNewTokens: 24, minNewTokens: 24, onToken: (d) => streamed[0]!.push(d) }),
        // Sampling without a seed: the retry must sample the same tokens.
        pipeline.prepare({ input: 'Hello there', maxNewTokens: 24, minNewTokens: 24, doSample: true, onToken: (d) => streamed[1]!.push(d) }),
      ];
      // A first request occupies the session, so the next two share one batch.
      const first = batches.submit(pipeline.prepare({ input: 'bad', maxNewTokens: 2 }));
      const results = await Promise.all(requests.map((r) => batches.submit(r)));
      await first;
      expect(sizes).toEqual(['1', '2!', '1', '1']);
      await batches.close();
      for (const [i, result] of results.entries()) {
        expect(streamed[i]!.length).toBeGreaterThan(1);
        expect(streamed[i]!.join('')).toBe(result.text);
      }
    } finally {
      Object.defineProperty(pipeline, 'session', { value: real, configurable: true });
    }
  });
});

describe('item 7 (queue retries): a job retried by BullMQ resumes after what it streamed', () => {
  it('StreamOnce started with the characters sent so far only passes on the rest', () => {
    const got: string[] = [];
    const once = new StreamOnce((d) => got.push(d), 'Hello wo'.length);
    const attempt = once.attempt();
    for (const d of ['Hel', 'lo', ' wor', 'ld', '!']) attempt(d);
    expect(got).toEqual(['r', 'ld', '!']);
    expect(once.streamed).toBe('Hello world!'.length);
  });
});

describe('item 11: a temperature so small that scores overflow is refused, never a NaN draw', () => {
  it('the warper raises on overflow, as torch.multinomial raises on inf/nan probabilities in Python', () => {
    expect(() => new TemperatureLogitsWarper(1e-45).apply(Float32Array.of(3.2, -1, 0))).toThrow(GenerationParameterError);
    expect(() => new TemperatureLogitsWarper(1e-45).apply(Float32Array.of(3.2, -1, 0))).toThrow(/temperature 1e-45 is too small/);
    // A small temperature that does not overflow is fine: it sharpens the distribution.
    const l = Float32Array.of(3.2, -1, 0);
    new TemperatureLogitsWarper(0.01).apply(l);
    expect(Array.from(l).every(Number.isFinite)).toBe(true);
  });

  it('only the request with that temperature fails; its batch neighbour gets its text', async () => {
    const batches = scheduler();
    const good = pipeline.prepare({ input: 'Hello there', maxNewTokens: 8 });
    const bad = pipeline.prepare({ input: 'Hello there', maxNewTokens: 8, doSample: true, temperature: 1e-45 });
    const [ok, refused] = await Promise.allSettled([batches.submit(good), batches.submit(bad)]);
    await batches.close();
    expect(ok.status).toBe('fulfilled');
    expect(refused.status).toBe('rejected');
    expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(GenerationParameterError);
  });
});
