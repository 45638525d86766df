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
}

/** What one request generated. */
export interface GeneratedSequence {
  /** Generated tokens, `[generated]`, the EOS token included when it ended with one. */
  tokens: number[];
  /** The text of `tokens` (special tokens skipped), cut before the first stop string. */
  text: string;
  finishReason: FinishReason;
}

interface Active {
  index: number;
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
function withoutEos(tokens: readonly number[], eos: readonly number[]): readonly number[] {
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
  const results: (GeneratedSequence | undefined)[] = rows.map(() => undefined);
  const criteria = new StoppingCriteriaList();
  let active: Active[] = rows.map((row, index) => ({
    index,
    row,
    processors: buildLogitsProcessors(row.config),
    all: [...row.context],
    generated: [],
    sampler: row.config.doSample ? new MultinomialSampler(row.config.seed) : new GreedySampler(),
    stream: new TextStream(decode, row.config.stop, row.context),
    ...(row.config.numBeams > 1 ? { beams: new BeamSearch(row.config) } : {}),
  }));
  const finish = (a: Active, tokens: number[], reason: FinishReason): void => {
    const text = a.stream.finish(withoutEos(tokens, a.row.config.eosTokenId));
    const delta = a.stream.delta();
    if (delta) a.row.onText?.(delta);
    results[a.index] = { tokens, text, finishReason: reason };
  };

  let logits = await model.start();
  // How many rows of `logits` each active request owns, in order.
  let spans = active.map(() => 1);
  for (;;) {
    // 1. Every request picks its next token(s); beam searches may finish here.
    const proposals: { a: Active; parents: number[]; tokens: number[] }[] = [];
    const sampled: Active[] = [];
    let offset = 0;
    for (const [i, a] of active.entries()) {
      const first = offset;
      offset += spans[i] as number;
      if (a.beams) {
        const search = a.beams;
        const logprobs = search.beams.map((beam, b) => {
          const lp = logSoftmax(logits[first + b] as Float32Array);
          a.processors.apply(lp, { tokens: [...a.row.context, ...beam.tokens], generated: beam.tokens.length });
          return lp;
        });
        const parents = search.step(logprobs);
        if (search.done) {
          const best = search.result();
          const { maxNewTokens, forcedEosTokenId } = a.row.config;
          const forced = best.tokens.length >= maxNewTokens && best.tokens.at(-1) === forcedEosTokenId;
          finish(a, best.tokens, best.eos && !forced ? 'stop' : 'length');
        } else {
          const tokens = search.beams.map((beam) => beam.tokens.at(-1) as number);
          proposals.push({ a, parents: parents.map((p) => first + p), tokens });
        }
      } else {
        const row = logits[first] as Float32Array;
        a.processors.apply(row, { tokens: a.all, generated: a.generated.length });
        const token = a.sampler.next(row);
        a.all.push(token);
        a.generated.push(token);
        if (a.row.config.stop.length > 0 || a.row.onText) a.stream.update(withoutEos(a.generated, a.row.config.eosTokenId));
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
      } else if (a.row.onText) {
        const delta = a.stream.delta();
        if (delta) a.row.onText(delta);
      }
    });
    // 3. The rows still going form the next step's batch.
    const going = proposals.filter((p) => !done.has(p.a));
    if (going.length === 0) break;
    const keep = going.flatMap((p) => p.parents);
    if (keep.length !== offset || keep.some((r, i) => r !== i)) model.select(keep);
    active = going.map((p) => p.a);
    spans = going.map((p) => p.parents.length);
    logits = await model.next(going.flatMap((p) => p.tokens));
  }
  return results.map((r, i) => {
    if (!r) throw new Error(`row ${i} did not finish`);
    return r;
  });
}
