/**
 * Logits processors: each changes the next-token logits of ONE row in place, given that
 * row's tokens. Every row gets its own {@link LogitsProcessorList} from its own
 * {@link GenerationConfig}, so requests with different settings share a batch and a row's
 * result does not depend on its neighbours.
 */
import type { GenerationConfig } from './generation-config.js';
import { GenerationParameterError } from './generation-error.js';

/** What a processor may look at for one row. */
export interface RowTokens {
  /**
   * The row's tokens so far, the ones penalties look at: prompt then generated tokens
   * (decoder-only), or decoder start token then generated tokens (encoder-decoder).
   * No padding.
   */
  readonly tokens: readonly number[];
  /** How many of `tokens` were generated (the last ones). */
  readonly generated: number;
}

/** Changes one row's logits `[vocab]` in place. */
export abstract class LogitsProcessor {
  abstract apply(logits: Float32Array, row: RowTokens): void;
}

/** Processors applied in order. */
export class LogitsProcessorList extends LogitsProcessor {
  readonly processors: LogitsProcessor[] = [];

  push(...processors: LogitsProcessor[]): this {
    this.processors.push(...processors);
    return this;
  }

  apply(logits: Float32Array, row: RowTokens): void {
    for (const p of this.processors) p.apply(logits, row);
  }
}

/** Divides the logits by `temperature` (> 0). */
export class TemperatureLogitsWarper extends LogitsProcessor {
  constructor(readonly temperature: number) {
    super();
    if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  }

  /**
   * @throws GenerationParameterError when a score overflows to +Infinity (or is NaN): the
   *   distribution is undefined, and Python's `torch.multinomial` raises on it too.
   */
  apply(logits: Float32Array): void {
    let bad = false;
    for (let i = 0; i < logits.length; i++) {
      logits[i] = (logits[i] as number) / this.temperature;
      const v = logits[i] as number; // as float32 stores it
      if (v === Number.POSITIVE_INFINITY || Number.isNaN(v)) bad = true;
    }
    if (bad) {
      throw new GenerationParameterError(
        `temperature ${this.temperature} is too small: the scores overflow (probabilities would be NaN); use a larger temperature or do_sample false`,
      );
    }
  }
}

/** The k-th largest value of `values` (k from 1), by quickselect on a copy: O(n) on average. */
export function kthLargest(values: Float32Array, k: number): number {
  const a = Float32Array.from(values);
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] as number) > pivot) i++;
      while ((a[j] as number) < pivot) j--;
      if (i <= j) {
        const t = a[i] as number;
        a[i] = a[j] as number;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target] as number;
}

/** Keeps the `topK` highest logits (ties at the boundary kept too, as HF does); the rest become -Infinity. */
export class TopKLogitsWarper extends LogitsProcessor {
  constructor(readonly topK: number) {
    super();
    if (!Number.isInteger(topK) || topK < 1) throw new Error(`topK must be an integer >= 1, got ${topK}`);
  }

  apply(logits: Float32Array): void {
    if (this.topK >= logits.length) return;
    const threshold = kthLargest(logits, this.topK);
    for (let i = 0; i < logits.length; i++) if ((logits[i] as number) < threshold) logits[i] = Number.NEGATIVE_INFINITY;
  }
}

/**
 * Nucleus sampling: keeps the fewest most likely tokens whose probabilities add up to at
 * least `topP` (the token that crosses the threshold is kept; at least one token always
 * is); the rest become -Infinity. Same rule as HF's `TopPLogitsWarper`.
 */
export class TopPLogitsWarper extends LogitsProcessor {
  constructor(readonly topP: number) {
    super();
    if (!(topP > 0 && topP <= 1)) throw new Error(`topP must be in (0, 1], got ${topP}`);
  }

  apply(logits: Float32Array): void {
    if (this.topP >= 1) return;
    let max = Number.NEGATIVE_INFINITY;
    let count = 0;
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i] as number;
      if (v > Number.NEGATIVE_INFINITY) count++;
      if (v > max) max = v;
    }
    if (count === 0) return;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i] as number;
      if (v > Number.NEGATIVE_INFINITY) sum += Math.exp(v - max);
    }
    // Partial selection: a heap of the finite tokens, popped most likely first (ties: lower
    // id first) until the kept mass reaches topP; no full sort of the vocabulary.
    const heap = new Int32Array(count);
    for (let i = 0, n = 0; i < logits.length; i++) if ((logits[i] as number) > Number.NEGATIVE_INFINITY) heap[n++] = i;
    const above = (a: number, b: number): boolean => {
      const va = logits[a] as number;
      const vb = logits[b] as number;
      return va > vb || (va === vb && a < b);
    };
    let size = count;
    const down = (at: number): void => {
      for (;;) {
        const l = 2 * at + 1;
        if (l >= size) return;
        const r = l + 1;
        const c = r < size && above(heap[r] as number, heap[l] as number) ? r : l;
        if (!above(heap[c] as number, heap[at] as number)) return;
        const t = heap[at] as number;
        heap[at] = heap[c] as number;
        heap[c] = t;
        at = c;
      }
    };
    for (let i = (size >> 1) - 1; i >= 0; i--) down(i);
    const kept = new Uint8Array(logits.length);
    let cumulative = 0;
    while (size > 0) {
      const top = heap[0] as number;
      kept[top] = 1;
      cumulative += Math.exp((logits[top] as number) - max) / sum;
      heap[0] = heap[--size] as number;
      down(0);
      if (cumulative >= this.topP) break;
    }
    for (let i = 0; i < logits.length; i++) if (kept[i] === 0) logits[i] = Number.NEGATIVE_INFINITY;
  }
}

/**
 * Discourages repeating any token already in the row (prompt included): its logit is
 * divided by `penalty` when positive and multiplied when negative (CTRL's rule, as HF).
 */
export class RepetitionPenaltyLogitsProcessor extends LogitsProcessor {
  constructor(readonly penalty: number) {
    super();
    if (!(penalty > 0)) throw new Error(`repetitionPenalty must be > 0, got ${penalty}`);
  }

  apply(logits: Float32Array, row: RowTokens): void {
    for (const token of new Set(row.tokens)) {
      const value = logits[token];
      if (value === undefined) continue;
      logits[token] = value < 0 ? value * this.penalty : value / this.penalty;
    }
  }
}

/**
 * Bans every token that would complete an n-gram (n = `size`) already present in the
 * row's tokens (prompt or decoder start included, as HF).
 */
export class NoRepeatNGramLogitsProcessor extends LogitsProcessor {
  constructor(readonly size: number) {
    super();
    if (!Number.isInteger(size) || size < 1) throw new Error(`noRepeatNgramSize must be an integer >= 1, got ${size}`);
  }

  /** Tokens that would repeat an n-gram if they came next. */
  banned(tokens: readonly number[]): number[] {
    const n = this.size;
    if (tokens.length + 1 < n) return [];
    const prefix = tokens.slice(tokens.length - (n - 1)); // the n-1 last tokens
    const out: number[] = [];
    for (let start = 0; start + n <= tokens.length; start++) {
      let match = true;
      for (let k = 0; k < n - 1; k++) {
        if (tokens[start + k] !== prefix[k]) {
          match = false;
          break;
        }
      }
      if (match) out.push(tokens[start + n - 1] as number);
    }
    return out;
  }

  apply(logits: Float32Array, row: RowTokens): void {
    for (const token of this.banned(row.tokens)) logits[token] = Number.NEGATIVE_INFINITY;
  }
}

/** Suppresses the EOS tokens until `minNewTokens` tokens have been generated. */
export class MinNewTokensLogitsProcessor extends LogitsProcessor {
  constructor(
    readonly minNewTokens: number,
    readonly eosTokenIds: readonly number[],
  ) {
    super();
  }

  apply(logits: Float32Array, row: RowTokens): void {
    if (row.generated >= this.minNewTokens) return;
    for (const eos of this.eosTokenIds) if (eos < logits.length) logits[eos] = Number.NEGATIVE_INFINITY;
  }
}

/** Forces `tokenId` as the first generated token. */
export class ForcedBosTokenLogitsProcessor extends LogitsProcessor {
  constructor(readonly tokenId: number) {
    super();
  }

  apply(logits: Float32Array, row: RowTokens): void {
    if (row.generated !== 0) return;
    logits.fill(Number.NEGATIVE_INFINITY);
    logits[this.tokenId] = 0;
  }
}

/** Forces `tokenId` as the last token when the row reaches `maxNewTokens`. */
export class ForcedEosTokenLogitsProcessor extends LogitsProcessor {
  constructor(
    readonly maxNewTokens: number,
    readonly tokenId: number,
  ) {
    super();
  }

  apply(logits: Float32Array, row: RowTokens): void {
    if (row.generated !== this.maxNewTokens - 1) return;
    logits.fill(Number.NEGATIVE_INFINITY);
    logits[this.tokenId] = 0;
  }
}

/**
 * The processors of one row, in HF's order: repetition penalty, no-repeat n-gram, min new
 * tokens, forced BOS, forced EOS; then, when sampling, temperature, top-k, top-p.
 */
export function buildLogitsProcessors(config: GenerationConfig): LogitsProcessorList {
  const list = new LogitsProcessorList();
  if (config.repetitionPenalty !== 1) list.push(new RepetitionPenaltyLogitsProcessor(config.repetitionPenalty));
  if (config.noRepeatNgramSize > 0) list.push(new NoRepeatNGramLogitsProcessor(config.noRepeatNgramSize));
  if (config.minNewTokens > 0 && config.eosTokenId.length > 0) {
    list.push(new MinNewTokensLogitsProcessor(config.minNewTokens, config.eosTokenId));
  }
  if (config.forcedBosTokenId !== undefined) list.push(new ForcedBosTokenLogitsProcessor(config.forcedBosTokenId));
  if (config.forcedEosTokenId !== undefined) list.push(new ForcedEosTokenLogitsProcessor(config.maxNewTokens, config.forcedEosTokenId));
  if (config.doSample) {
    if (config.temperature !== 1) list.push(new TemperatureLogitsWarper(config.temperature));
    if (config.topK > 0) list.push(new TopKLogitsWarper(config.topK));
    if (config.topP < 1) list.push(new TopPLogitsWarper(config.topP));
  }
  return list;
}
