/**
 * The decoding loop shared by the decoder-only and encoder-decoder pipelines. A request is
 * one model row (greedy or sampling) or up to `numBeams` rows (beam search); every request
 * has its own logits processors, sampler and stopping state, so its tokens do not depend
 * on the other requests of the batch. Finished rows leave the model's batch (the KV cache
 * is compacted), so the batch shrinks as rows finish instead of padding them.
 */
import { BeamSearch } from './beam-search.js';
import type { FinishReason, GenerationConfig } from './generation-config.js';
import { buildLogitsProcessors, type LogitsProcessorList } from './logits-processors.js';
import { GreedySampler, logSoftmax, MultinomialSampler, type TokenSampler } from './sampler.js';
import { StoppingCriteriaList } from './stopping-criteria.js';
import { TextStream, type Decode } from './text-stream.js';

/** A model with a batch of rows and a KV cache, stepped one token at a time. */
export interface StepModel {
  /** Runs the prompts (or the decoder start tokens): next-token logits of each row, `[rows][vocab]`. */
  start(): Promise<Float32Array[]>;
  /** Feeds one token per current row; returns the next logits, `[rows][vocab]`. */
  next(tokens: readonly number[]): Promise<Float32Array[]>;
  /** Keeps these rows (indices into the current rows), in this order; an index may repeat (beams). */
  select(rows: readonly number[]): void;
}

/** One request of a {@link generate} call; `start()` gives it one row. */
export interface GenerateRow {
  config: GenerationConfig;
  /**
   * Tokens the processors see before the generated ones: the prompt, or the decoder start
   * token. The text is decoded with them and their text cut off (Python's pipeline).
   */
  context: readonly number[];
  /** Called with each new piece of final text. */
  onText?: (delta: string) => void;
  /** Stops the request at the next step (its job's time limit), with what it has so far. */
  signal?: AbortSignal;
}

/** What one request generated. */
export interface GeneratedSequence {
  /** Generated tokens, `[generated]`, the EOS token included when it ended with one. */
  tokens: number[];
  /** The text of `tokens` (special tokens skipped), cut before the first stop string. */
  text: string;
  finishReason: FinishReason;
  /**
   * With `numReturnSequences` > 1: every returned sequence, this one first (beam search:
   * best first; sampling: in sample order).
   */
  sequences?: GeneratedSequence[];
}

interface Active {
  index: number;
  /** Which of the request's samples this is (`numReturnSequences` when sampling). */
  sample: number;
  row: GenerateRow;
  processors: LogitsProcessorList;
  /** Context then generated tokens (greedy / sampling). */
  all: number[];
  generated: number[];
  sampler: TokenSampler;
  stream: TextStream;
  beams?: BeamSearch;
}

/** Without a trailing EOS token. */
export function withoutEos(tokens: readonly number[], eos: readonly number[]): readonly number[] {
  const last = tokens[tokens.length - 1];
  return last !== undefined && eos.includes(last) ? tokens.slice(0, -1) : tokens;
}

/**
 * Generates for every row until each is done. `model.start()` must give one row per
 * entry of `rows`, in order.
 *
 * @param decode - decodes ids (special tokens skipped), for text, stop strings and streaming.
 */
export async function generate(model: StepModel, rows: readonly GenerateRow[], decode: Decode): Promise<GeneratedSequence[]> {
  const results: GeneratedSequence[][] = rows.map(() => []);
  const criteria = new StoppingCriteriaList();
  // A sampling request with numReturnSequences n is n rows, each with its own seeded sampler;
  // they share the request's first logits row (model rows are repeated after the first step).
  const firstRows: number[] = [];
  let active: Active[] = rows.flatMap((row, index) => {
    const samples = row.config.doSample ? row.config.numReturnSequences : 1;
    return Array.from({ length: samples }, (_, sample): Active => {
      firstRows.push(index);
      return {
        index,
        sample,
        row,
        processors: buildLogitsProcessors(row.config),
        all: [...row.context],
        generated: [],
        sampler: row.config.doSample ? new MultinomialSampler(sampleSeed(row.config.seed, sample)) : new GreedySampler(),
        stream: new TextStream(decode, row.config.stop, row.context),
        ...(row.config.numBeams > 1 ? { beams: new BeamSearch(row.config) } : {}),
      };
    });
  });
  const finish = (a: Active, tokens: number[], reason: FinishReason): void => {
    const text = a.stream.finish(withoutEos(tokens, a.row.config.eosTokenId));
    if (a.sample === 0) {
      const delta = a.stream.delta();
      if (delta) a.row.onText?.(delta);
    }
    results[a.index]![a.sample] = { tokens, text, finishReason: reason };
  };
  const finishBeams = (a: Active, search: BeamSearch): void => {
    const { maxNewTokens, forcedEosTokenId, numReturnSequences, eosTokenId, stop } = a.row.config;
    search.finished.slice(0, numReturnSequences).forEach((h, k) => {
      const forced = h.tokens.length >= maxNewTokens && h.tokens.at(-1) === forcedEosTokenId;
      if (k === 0) return finish(a, h.tokens, h.eos && !forced ? 'stop' : 'length');
      const text = new TextStream(decode, stop, a.row.context).finish(withoutEos(h.tokens, eosTokenId));
      results[a.index]![k] = { tokens: h.tokens, text, finishReason: h.eos && !forced ? 'stop' : 'length' };
    });
  };

  let logits = await model.start();
  // The first row of `logits` each active row (or beam search) owns, and how many it owns.
  let firsts = firstRows;
  let spans = active.map(() => 1);
  for (;;) {
    // 1. Every request picks its next token(s); beam searches may finish here.
    const proposals: { a: Active; parents: number[]; tokens: number[] }[] = [];
    const sampled: Active[] = [];
    const shared = firsts.length !== new Set(firsts).size;
    for (const [i, a] of active.entries()) {
      const first = firsts[i] as number;
      if (a.beams) {
        const search = a.beams;
        const logprobs = search.beams.map((beam, b) => {
          const lp = logSoftmax(logits[first + b] as Float32Array);
          a.processors.apply(lp, { tokens: [...a.row.context, ...beam.tokens], generated: beam.tokens.length });
          return lp;
        });
        const parents = search.step(logprobs);
        if (search.done) {
          finishBeams(a, search);
        } else {
          const tokens = search.beams.map((beam) => beam.tokens.at(-1) as number);
          proposals.push({ a, parents: parents.map((p) => first + p), tokens });
        }
      } else {
        // Processors work in place: samples that share a row each get a copy.
        const row = shared ? (logits[first] as Float32Array).slice() : (logits[first] as Float32Array);
        a.processors.apply(row, { tokens: a.all, generated: a.generated.length });
        const token = a.sampler.next(row);
        a.all.push(token);
        a.generated.push(token);
        if (a.row.config.stop.length > 0 || (a.row.onText && a.sample === 0)) a.stream.update(withoutEos(a.generated, a.row.config.eosTokenId));
        sampled.push(a);
        proposals.push({ a, parents: [first], tokens: [token] });
      }
    }
    // 2. The stopping criteria decide, for every row that sampled a token, whether it is done.
    const reasons = criteria.check(sampled.map((a) => ({ config: a.row.config, generated: a.generated, stream: a.stream })));
    const done = new Set<Active>();
    sampled.forEach((a, i) => {
      const reason = reasons[i];
      if (reason !== undefined) {
        finish(a, a.generated, reason);
        done.add(a);
      } else if (a.row.onText && a.sample === 0) {
        const delta = a.stream.delta();
        if (delta) a.row.onText(delta);
      }
    });
    // A request given up (its job timed out) leaves the batch now, so the others don't wait on it.
    for (const p of proposals) {
      if (!done.has(p.a) && p.a.row.signal?.aborted) {
        finish(p.a, p.a.generated, 'length');
        done.add(p.a);
      }
    }
    // 3. The rows still going form the next step's batch.
    const going = proposals.filter((p) => !done.has(p.a));
    if (going.length === 0) break;
    const keep = going.flatMap((p) => p.parents);
    if (keep.length !== logits.length || keep.some((r, i) => r !== i)) model.select(keep);
    active = going.map((p) => p.a);
    spans = going.map((p) => p.parents.length);
    firsts = [];
    let offset = 0;
    for (const span of spans) {
      firsts.push(offset);
      offset += span;
    }
    logits = await model.next(going.flatMap((p) => p.tokens));
  }
  return results.map((sequences, i) => {
    const [best] = sequences;
    if (!best || sequences.some((x) => x === undefined)) throw new Error(`row ${i} did not finish`);
    return sequences.length > 1 ? { ...best, sequences } : best;
  });
}

/** The seed of sample `k` of a request: its own seed for the first, derived ones for the rest. */
export function sampleSeed(seed: number | undefined, k: number): number | undefined {
  if (seed === undefined || k === 0) return seed;
  return (Math.imul(seed ^ 0x9e3779b9, k + 1) + k) >>> 0;
}
