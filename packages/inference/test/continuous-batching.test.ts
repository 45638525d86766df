import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_LLAMA_ID } from '@inferq/tiny-models';
import { GenerationParameterError, TextGenerationPipeline, type BatchStats, type ContinuousStep, type GeneratedText, type TextGenerationRequest } from '../src/index.js';
import { tinyModels } from './helpers.js';

const PROMPTS = [
  'The refund never arrived and support is slow',
  'Hello there',
  'Where is my order? I paid two weeks ago and the tracking page shows nothing at all.',
  'bad',
  'My password stopped working after the update and the reset mail never comes.',
];

let ours: TextGenerationPipeline;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_LLAMA_ID]);
  cleanup = models.cleanup;
  ours = await TextGenerationPipeline.load(models.dirs[TINY_LLAMA_ID]!);
});
afterAll(async () => {
  await ours?.release();
  await cleanup?.();
});

const alone = async (r: TextGenerationRequest): Promise<GeneratedText> => (await ours.run([ours.prepare(r)]))[0]!;

/**
 * Runs `first` alone in a continuous loop, and submits each of `later` when the loop has
 * decoded `atStep` steps: they join a batch that is mid-decode.
 */
async function staggered(first: TextGenerationRequest, later: { atStep: number; request: TextGenerationRequest }[], overlapPrefill = false) {
  const steps: ContinuousStep[] = [];
  const pending: Promise<GeneratedText>[] = [];
  const gen = ours.continuous({
    maxRows: 8,
    overlapPrefill,
    onStep: (s) => {
      steps.push(s);
      for (const l of later) if (l.atStep === steps.length) pending.push(gen.submit(ours.prepare(l.request)));
    },
  });
  const head = gen.submit(ours.prepare(first));
  const out = await head;
  // Requests submitted by the last steps may still run after the first one ended.
  while (pending.length < later.length) await new Promise((r) => setImmediate(r));
  const rest = await Promise.all(pending);
  await gen.close();
  return { out: [out, ...rest], steps };
}

describe('continuous batching on the tiny llama', () => {
  it.each([false, true])('greedy requests that join mid-decode get the tokens they get alone; rows of different lengths, stop strings and EOS in one run (overlapPrefill %s)', async (overlap) => {
    // A stop string taken from a free run of one prompt, so that row stops on it.
    const free = await alone({ input: PROMPTS[0]!, maxNewTokens: 24, minNewTokens: 24 });
    const stop = free.text.slice(5, 8);
    const first: TextGenerationRequest = { input: PROMPTS[2]!, maxNewTokens: 40, minNewTokens: 40 };
    const later = [
      { atStep: 3, request: { input: PROMPTS[0]!, maxNewTokens: 24, minNewTokens: 24, stop: [stop] } },
      { atStep: 3, request: { input: PROMPTS[1]!, maxNewTokens: 30 } },
      { atStep: 9, request: { input: PROMPTS[3]!, maxNewTokens: 6 } },
      { atStep: 9, request: { input: PROMPTS[4]!, maxNewTokens: 20 } },
      { atStep: 17, request: { input: PROMPTS[1]!, maxNewTokens: 12, minNewTokens: 12 } },
    ];
    const { out, steps } = await staggered(first, later, overlap);
    const requests = [first, ...later.map((l) => l.request)];
    for (const [i, r] of requests.entries()) expect(out[i]).toEqual(await alone(r));
    // They did join a running batch, and it held rows of several requests at once.
    const joins = steps.flatMap((s, i) => (s.joined > 0 && i > 0 ? [i] : []));
    expect(joins.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...steps.map((s) => s.rows))).toBeGreaterThanOrEqual(3);
    // Lengths differ, and the run holds a stop string, the length limit and (greedy) EOS or stop.
    expect(new Set(out.map((o) => o.outputTokens)).size).toBeGreaterThanOrEqual(3);
    expect(out[1]!.finishReason).toBe('stop');
    expect(out[1]!.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(out.map((o) => o.finishReason)).toContain('length');
  });

  it('a row that ends at EOS leaves while the others go on, as it would alone', async () => {
    // Without minNewTokens some prompts of the tiny model end at EOS within 40 tokens.
    const plain = await Promise.all(PROMPTS.map((input) => alone({ input, maxNewTokens: 40 })));
    const eosIndex = plain.findIndex((o) => o.finishReason === 'stop');
    expect(eosIndex).toBeGreaterThanOrEqual(0);
    const first: TextGenerationRequest = { input: PROMPTS[(eosIndex + 1) % PROMPTS.length]!, maxNewTokens: 40, minNewTokens: 40 };
    const { out } = await staggered(first, [{ atStep: 2, request: { input: PROMPTS[eosIndex]!, maxNewTokens: 40 } }]);
    expect(out[1]).toEqual(plain[eosIndex]);
    expect(out[1]!.finishReason).toBe('stop');
    expect(out[0]).toEqual(await alone(first));
  });

  it.each([false, true])('seeded sampling gives the same text whatever joins or leaves (overlapPrefill %s)', async (overlap) => {
    const sampled = (input: string, seed: number, maxNewTokens: number): TextGenerationRequest => ({
      input,
      doSample: true,
      seed,
      temperature: 0.9,
      topK: 40,
      topP: 0.95,
      maxNewTokens,
      minNewTokens: maxNewTokens,
    });
    const first = sampled(PROMPTS[0]!, 11, 30);
    const later = [
      { atStep: 2, request: sampled(PROMPTS[1]!, 12, 10) },
      { atStep: 4, request: sampled(PROMPTS[2]!, 13, 25) },
      { atStep: 4, request: { ...sampled(PROMPTS[3]!, 14, 15), numReturnSequences: 2 } },
      { atStep: 14, request: sampled(PROMPTS[0]!, 11, 12) },
    ];
    const { out } = await staggered(first, later, overlap);
    const requests = [first, ...later.map((l) => l.request)];
    for (const [i, r] of requests.entries()) expect(out[i]).toEqual(await alone(r));
    // The same seed and prompt joining later repeats the first tokens of the first request.
    expect(out[4]!.tokenIds).toEqual(out[0]!.tokenIds.slice(0, 12));
    expect(out[3]!.sequences).toHaveLength(2);
  });

  it('caps the decode batch at maxRows; the rest join as rows leave', async () => {
    const steps: ContinuousStep[] = [];
    const prefills: BatchStats[] = [];
    const gen = ours.continuous({ maxRows: 2, onStep: (s) => steps.push(s), onPrefill: (s) => prefills.push(s) });
    const requests = PROMPTS.map((input, i) => ({ input, maxNewTokens: 6 + 3 * i, minNewTokens: 6 + 3 * i }));
    const out = await Promise.all(requests.map((r) => gen.submit(ours.prepare(r))));
    await gen.close();
    expect(Math.max(...steps.map((s) => s.rows))).toBe(2);
    // Each request was prefilled once, the first two together (submitted in one turn), and
    // the prefills are reported as batches with their padding.
    expect(prefills.map((p) => p.size)).toEqual([2, 1, 1, 1]);
    const promptTokens = requests.map((r) => ours.prepare(r).promptIds.length);
    expect(prefills.reduce((n, p) => n + p.realTokens, 0)).toBe(promptTokens.reduce((a, b) => a + b, 0));
    expect(prefills[0]!.paddedTokens).toBe(2 * Math.max(promptTokens[0]!, promptTokens[1]!));
    for (const [i, r] of requests.entries()) expect(out[i]).toEqual(await alone(r));
  });

  it('caps the tokens of the admitted rows (prompts plus tokens to generate)', async () => {
    const steps: ContinuousStep[] = [];
    const requests = PROMPTS.slice(0, 3).map((input) => ({ input, maxNewTokens: 30, minNewTokens: 30 }));
    const costs = requests.map((r) => ours.cost(ours.prepare(r))).sort((a, b) => a - b);
    // Room for the largest one alone, not for any two.
    const maxTokens = costs[0]! + costs[1]! - 1;
    expect(maxTokens).toBeGreaterThanOrEqual(costs[2]!);
    const gen = ours.continuous({ maxTokens, onStep: (s) => steps.push(s) });
    const out = await Promise.all(requests.map((r) => gen.submit(ours.prepare(r))));
    await gen.close();
    expect(Math.max(...steps.map((s) => s.rows))).toBe(1);
    for (const [i, r] of requests.entries()) expect(out[i]).toEqual(await alone(r));
  });

  it('an interactive request joins ahead of waiting bulk ones, in the room bulk rows leave it', async () => {
    const steps: (ContinuousStep & { waiting: number })[] = [];
    const order: string[] = [];
    let interactive: Promise<unknown> | undefined;
    const gen = ours.continuous({
      maxRows: 4,
      interactiveShare: 0.25,
      onStep: (s) => {
        steps.push({ ...s, waiting: gen.batcher.waiting });
        // Once the bulk rows hold their share, with bulk requests still waiting.
        if (!interactive && s.rows === 3) {
          interactive = gen.submit(ours.prepare({ input: PROMPTS[1]!, maxNewTokens: 5, minNewTokens: 5 })).then(() => order.push('interactive'));
        }
      },
    });
    const bulk = PROMPTS.map((input, i) =>
      gen.submit(ours.prepare({ input, maxNewTokens: 120, minNewTokens: 120 }), 1).then(() => order.push(`bulk${i}`)),
    );
    await Promise.all(bulk);
    await interactive;
    await gen.close();
    const submittedAt = steps.findIndex((s) => s.rows === 3);
    // Bulk requests never took more than 3 of the 4 rows, though 2 more waited.
    expect(Math.max(...steps.slice(0, submittedAt + 1).map((s) => s.rows))).toBe(3);
    // The interactive request joined the 3 bulk rows while bulk requests still waited, and ended first.
    const join = steps.findIndex((s, i) => i > submittedAt && s.joined > 0);
    expect(steps[join]).toMatchObject({ rows: 4, joined: 1 });
    expect(steps[join]!.waiting).toBe(2);
    expect(order[0]).toBe('interactive');
    expect(gen.batcher.activeRows).toBe(0);
  });

  it('a request whose scores overflow fails alone; the rows beside it get their text', async () => {
    const gen = ours.continuous();
    const good = { input: PROMPTS[0]!, maxNewTokens: 8, minNewTokens: 8 };
    const [ok, refused] = await Promise.allSettled([
      gen.submit(ours.prepare(good)),
      gen.submit(ours.prepare({ input: PROMPTS[1]!, maxNewTokens: 8, doSample: true, temperature: 1e-45 })),
    ]);
    await gen.close();
    expect(ok).toEqual({ status: 'fulfilled', value: await alone(good) });
    expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(GenerationParameterError);
  });

  it('a request given up while it waits leaves the queue; one given up while decoding ends at the next step', async () => {
    const gen = ours.continuous({ maxRows: 1 });
    const waiting = new AbortController();
    const decoding = new AbortController();
    const first = gen.submit({ ...ours.prepare({ input: PROMPTS[0]!, maxNewTokens: 60, minNewTokens: 60 }), signal: decoding.signal });
    const second = gen.submit({ ...ours.prepare({ input: PROMPTS[1]!, maxNewTokens: 5 }), signal: waiting.signal });
    waiting.abort(new Error('job timed out'));
    await expect(second).rejects.toThrow('job timed out');
    decoding.abort();
    const out = await first;
    await gen.close();
    expect(out.outputTokens).toBeLessThan(60);
    expect(out.finishReason).toBe('length');
  });

  it('refuses beam search (it stays on the static policy)', async () => {
    const gen = ours.continuous();
    await expect(gen.submit(ours.prepare({ input: PROMPTS[0]!, numBeams: 2, maxNewTokens: 4 }))).rejects.toThrow(/beam search/);
    await gen.close();
  });
});
