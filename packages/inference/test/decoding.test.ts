/**
 * The decoding loop over a synthetic model whose logits are a fixed function of each row's
 * tokens: beam search against a plain reference, rows finishing independently, samplers
 * independent of batch composition.
 */
import { describe, expect, it } from 'vitest';
import { generate, resolveGenerationConfig, type GenerationOptions, type StepModel } from '../src/index.js';

const VOCAB = 12;
const EOS = 0;

/** Deterministic pseudo-random logits `[VOCAB]` of a token sequence. */
function logitsOf(tokens: readonly number[]): Float32Array {
  let h = 2166136261;
  for (const t of tokens) h = Math.imul(h ^ (t + 1), 16777619);
  return Float32Array.from({ length: VOCAB }, (_, v) => {
    let x = Math.imul(h ^ Math.imul(v + 1, 0x9e3779b1), 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    x ^= x >>> 16;
    return ((x >>> 0) / 4294967296) * 6 - 3 + (v === EOS ? -1 : 0);
  });
}

/** A StepModel over `logitsOf`, recording the batch size of every step. */
class FakeModel implements StepModel {
  rows: number[][];
  readonly batchSizes: number[] = [];
  constructor(contexts: number[][]) {
    this.rows = contexts.map((c) => [...c]);
  }
  async start(): Promise<Float32Array[]> {
    this.batchSizes.push(this.rows.length);
    return this.rows.map(logitsOf);
  }
  async next(tokens: readonly number[]): Promise<Float32Array[]> {
    this.rows.forEach((r, i) => r.push(tokens[i]!));
    this.batchSizes.push(this.rows.length);
    return this.rows.map(logitsOf);
  }
  select(rows: readonly number[]): void {
    this.rows = rows.map((r) => [...this.rows[r]!]);
  }
}

const decode = (ids: readonly number[]) => ids.map((i) => String.fromCharCode(97 + i)).join('');

function config(options: GenerationOptions) {
  return resolveGenerationConfig({ eosTokenId: EOS }, options, 1);
}

async function run(contexts: number[][], options: GenerationOptions[]) {
  const model = new FakeModel(contexts);
  const out = await generate(model, contexts.map((context, i) => ({ context, config: config(options[i]!) })), decode);
  return { out, model };
}

function logSoftmax(l: Float32Array): number[] {
  const max = Math.max(...l);
  const lse = max + Math.log(Array.from(l).reduce((s, v) => s + Math.exp(v - max), 0));
  return Array.from(l, (v) => v - lse);
}

/** Beam search as HF's BeamSearchScorer does it, written out plainly. */
function referenceBeamSearch(context: number[], numBeams: number, maxNewTokens: number, lengthPenalty: number, earlyStopping: boolean) {
  let beams = [{ tokens: [] as number[], score: 0 }];
  let hyps: { tokens: number[]; score: number }[] = [];
  const norm = (s: number, n: number) => s / n ** lengthPenalty;
  for (let step = 1; step <= maxNewTokens; step++) {
    const cands: { b: number; t: number; s: number }[] = [];
    beams.forEach((beam, b) => logSoftmax(logitsOf([...context, ...beam.tokens])).forEach((lp, t) => cands.push({ b, t, s: beam.score + lp })));
    cands.sort((x, y) => y.s - x.s || x.b - y.b || x.t - y.t);
    const next: typeof beams = [];
    for (const [rank, c] of cands.slice(0, 2 * numBeams).entries()) {
      if (next.length === numBeams) break;
      const tokens = [...beams[c.b]!.tokens, c.t];
      if (c.t === EOS) {
        if (rank < numBeams) hyps.push({ tokens, score: norm(c.s, step) });
      } else {
        next.push({ tokens, score: c.s });
      }
    }
    hyps = hyps.sort((x, y) => y.score - x.score).slice(0, numBeams);
    beams = next;
    if (hyps.length >= numBeams && (earlyStopping || hyps.at(-1)!.score >= norm(beams[0]!.score, step))) return hyps[0]!;
  }
  hyps.push(...beams.map((b) => ({ tokens: b.tokens, score: norm(b.score, b.tokens.length) })));
  return hyps.sort((x, y) => y.score - x.score)[0]!;
}

describe('decoding loop', () => {
  it('beam search finds what a plain reference beam search finds', async () => {
    let compared = 0;
    for (const numBeams of [2, 3, 5]) {
      for (const lengthPenalty of [1, 0.5, 2]) {
        for (const earlyStopping of [true, false]) {
          for (const context of [[1], [4, 7], [9, 9, 3]]) {
            const { out } = await run([context], [{ numBeams, lengthPenalty, earlyStopping, maxNewTokens: 8 }]);
            const ref = referenceBeamSearch(context, numBeams, 8, lengthPenalty, earlyStopping);
            expect(out[0]!.tokens, `beams ${numBeams} lp ${lengthPenalty} es ${earlyStopping} ${context}`).toEqual(ref.tokens);
            expect(out[0]!.finishReason).toBe(ref.tokens.at(-1) === EOS ? 'stop' : 'length');
            compared++;
          }
        }
      }
    }
    expect(compared).toBe(54);
  });

  it('beam search scores at least as well as greedy', async () => {
    const contexts = [[1], [2], [3], [4], [5], [6]];
    const score = (context: number[], tokens: number[]) =>
      tokens.reduce((s, t, i) => s + logSoftmax(logitsOf([...context, ...tokens.slice(0, i)]))[t]!, 0) / tokens.length;
    const greedy = (await run(contexts, contexts.map(() => ({ maxNewTokens: 6 })))).out;
    const beams = (await run(contexts, contexts.map(() => ({ maxNewTokens: 6, numBeams: 4, earlyStopping: 'never' as const })))).out;
    contexts.forEach((c, i) => expect(score(c, beams[i]!.tokens)).toBeGreaterThanOrEqual(score(c, greedy[i]!.tokens) - 1e-9));
  });

  it('rows finish independently, leave the batch, and match their unbatched results', async () => {
    const contexts = [[1], [2], [3], [4], [5], [6], [7], [8]];
    const options: GenerationOptions[] = contexts.map((_, i) => ({ maxNewTokens: 3 + i * 2 }));
    const { out, model } = await run(contexts, options);
    for (const [i, context] of contexts.entries()) {
      const alone = await run([context], [options[i]!]);
      expect(out[i]).toEqual(alone.out[0]);
    }
    const reasons = out.map((o) => o.finishReason);
    expect(reasons).toContain('length');
    expect(out.every((o, i) => o.tokens.length <= options[i]!.maxNewTokens!)).toBe(true);
    // The batch shrinks as rows finish.
    expect(model.batchSizes[0]).toBe(8);
    expect(model.batchSizes.at(-1)).toBe(1);
    for (let s = 1; s < model.batchSizes.length; s++) expect(model.batchSizes[s]!).toBeLessThanOrEqual(model.batchSizes[s - 1]!);
  });

  it('a row stops at its EOS with reason stop, and at the limit with reason length', async () => {
    const contexts = Array.from({ length: 30 }, (_, i) => [i % VOCAB, (i * 7) % VOCAB]);
    const { out } = await run(contexts, contexts.map(() => ({ maxNewTokens: 10 })));
    for (const o of out) {
      const eosAt = o.tokens.indexOf(EOS);
      if (o.finishReason === 'stop') expect(eosAt).toBe(o.tokens.length - 1);
      else expect([eosAt, o.tokens.length]).toEqual([-1, 10]);
    }
    expect(new Set(out.map((o) => o.finishReason))).toEqual(new Set(['stop', 'length']));
  });

  it('seeded sampling gives each row the same tokens alone and in any batch', async () => {
    const rows = [
      { context: [1], options: { doSample: true, seed: 1, maxNewTokens: 12 } },
      { context: [2], options: { doSample: true, seed: 2, temperature: 0.7, topP: 0.8, maxNewTokens: 12 } },
      { context: [3], options: { maxNewTokens: 12 } },
      { context: [1], options: { doSample: true, seed: 9, topK: 3, maxNewTokens: 12 } },
    ];
    const batched = (await run(rows.map((r) => r.context), rows.map((r) => r.options))).out;
    const reversed = (await run([...rows].reverse().map((r) => r.context), [...rows].reverse().map((r) => r.options))).out.reverse();
    for (const [i, r] of rows.entries()) {
      const alone = (await run([r.context], [r.options])).out[0];
      expect(batched[i]).toEqual(alone);
      expect(reversed[i]).toEqual(alone);
    }
    expect(batched[0]!.tokens).not.toEqual(batched[3]!.tokens);
  });

  it('cuts the text at a stop string and streams only final text', async () => {
    const context = [3];
    const free = (await run([context], [{ maxNewTokens: 10, eosTokenId: [] }])).out[0]!;
    expect(free.text.length).toBe(10);
    const stop = free.text.slice(4, 6);
    const deltas: string[] = [];
    const model = new FakeModel([context]);
    const [out] = await generate(
      model,
      [{ context, config: config({ maxNewTokens: 10, eosTokenId: [], stop: [stop, 'zzzz'] }), onText: (d) => deltas.push(d) }],
      decode,
    );
    const cut = free.text.indexOf(stop);
    expect(out!.text).toBe(free.text.slice(0, cut));
    expect(out!.finishReason).toBe('stop');
    expect(out!.tokens).toEqual(free.tokens.slice(0, cut + stop.length));
    expect(deltas.join('')).toBe(out!.text);
    expect(deltas.join('')).not.toContain(stop);
  });
});
