/**
 * Beam search for one request: keeps `numBeams` running beams and up to `numBeams`
 * finished hypotheses, as HF's `BeamSearchScorer` does. The caller runs the model on the
 * running beams and hands each step's log-probabilities (after the logits processors) to
 * {@link BeamSearch.step}; the search says which beam each new beam continues, so the
 * caller can reorder its KV cache.
 */
import type { GenerationConfig } from './generation-config.js';

/** A running beam: the tokens it generated and their summed log-probability. */
export interface Beam {
  tokens: number[];
  score: number;
}

/** A finished (or, at the limit, final) sequence with its length-normalised score. */
export interface Hypothesis {
  /** Generated tokens, the EOS token included when it ended with one. */
  tokens: number[];
  /** `sum(logprobs) / tokens.length ** lengthPenalty`. */
  score: number;
  /** Whether it ended with an EOS token (else it reached `maxNewTokens`). */
  eos: boolean;
}

export type BeamSearchConfig = Pick<GenerationConfig, 'numBeams' | 'lengthPenalty' | 'earlyStopping' | 'maxNewTokens' | 'eosTokenId'>;

interface Candidate {
  beam: number;
  token: number;
  score: number;
}

/** The `count` best (beam, token) continuations, best first (ties: lower beam, then lower token). */
function bestCandidates(beams: readonly Beam[], logprobs: readonly Float32Array[], count: number): Candidate[] {
  const best: Candidate[] = [];
  const better = (a: Candidate, b: Candidate): boolean =>
    a.score > b.score || (a.score === b.score && (a.beam < b.beam || (a.beam === b.beam && a.token < b.token)));
  beams.forEach((beam, b) => {
    const lp = logprobs[b] as Float32Array;
    for (let t = 0; t < lp.length; t++) {
      const v = lp[t] as number;
      if (v === Number.NEGATIVE_INFINITY) continue;
      const c = { beam: b, token: t, score: beam.score + v };
      if (best.length === count && !better(c, best[count - 1] as Candidate)) continue;
      let i = best.length;
      while (i > 0 && better(c, best[i - 1] as Candidate)) i--;
      best.splice(i, 0, c);
      if (best.length > count) best.pop();
    }
  });
  return best;
}

export class BeamSearch {
  /** The running beams; one, empty, before the first step. */
  beams: Beam[] = [{ tokens: [], score: 0 }];
  /** Finished hypotheses, best first, at most `numBeams`. */
  readonly finished: Hypothesis[] = [];
  /** Whether the search is over (see {@link result}). */
  done = false;

  constructor(readonly config: BeamSearchConfig) {}

  private normalise(sum: number, length: number): number {
    return sum / Math.pow(length, this.config.lengthPenalty);
  }

  private add(h: Hypothesis): void {
    const { numBeams } = this.config;
    const worst = this.finished[this.finished.length - 1];
    if (this.finished.length >= numBeams && worst !== undefined && h.score <= worst.score) return;
    let i = this.finished.length;
    while (i > 0 && h.score > (this.finished[i - 1] as Hypothesis).score) i--;
    this.finished.splice(i, 0, h);
    if (this.finished.length > numBeams) this.finished.pop();
  }

  /** Whether no running beam can beat the worst finished hypothesis (HF's `is_done`). */
  private isDone(bestRunning: number, length: number): boolean {
    const { numBeams, earlyStopping, lengthPenalty, maxNewTokens } = this.config;
    if (this.finished.length < numBeams) return false;
    if (earlyStopping === true) return true;
    const worst = (this.finished[this.finished.length - 1] as Hypothesis).score;
    const bound = earlyStopping === 'never' && lengthPenalty > 0 ? maxNewTokens : length;
    return worst >= this.normalise(bestRunning, bound);
  }

  /**
   * One step. `logprobs[b]` `[vocab]` are the processed log-probabilities of the next token
   * after running beam `b`. Returns, for each new running beam, the index of the beam it
   * continues (its parent); empty once the search is done.
   */
  step(logprobs: readonly Float32Array[]): number[] {
    if (this.done) return [];
    const { numBeams, eosTokenId, maxNewTokens } = this.config;
    const length = (this.beams[0]?.tokens.length ?? 0) + 1; // generated tokens after this step
    const next: Beam[] = [];
    const parents: number[] = [];
    const candidates = bestCandidates(this.beams, logprobs, 2 * numBeams);
    candidates.forEach((c, rank) => {
      if (next.length >= numBeams) return;
      const parent = this.beams[c.beam] as Beam;
      if (eosTokenId.includes(c.token)) {
        // An EOS outside the best numBeams candidates is not a good enough ending.
        if (rank < numBeams) this.add({ tokens: [...parent.tokens, c.token], score: this.normalise(c.score, length), eos: true });
        return;
      }
      next.push({ tokens: [...parent.tokens, c.token], score: c.score });
      parents.push(c.beam);
    });
    this.beams = next;
    const bestRunning = next[0]?.score ?? Number.NEGATIVE_INFINITY;
    if (next.length === 0 || length >= maxNewTokens || this.isDone(bestRunning, length)) {
      this.finish();
      return [];
    }
    return parents;
  }

  /** Ends the search: at the limit, the running beams compete with the finished hypotheses. */
  private finish(): void {
    if (!this.isDone(this.beams[0]?.score ?? Number.NEGATIVE_INFINITY, this.beams[0]?.tokens.length ?? 1)) {
      for (const b of this.beams) this.add({ tokens: b.tokens, score: this.normalise(b.score, b.tokens.length), eos: false });
    }
    this.beams = [];
    this.done = true;
  }

  /** The best hypothesis. Only valid once {@link done}. */
  result(): Hypothesis {
    const best = this.finished[0];
    if (!this.done || best === undefined) throw new Error('beam search is not finished');
    return best;
  }
}
