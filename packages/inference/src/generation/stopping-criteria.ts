/**
 * Stopping criteria: each says, for every row of a batch, whether that row is done. Rows
 * carry their own {@link GenerationConfig}, so one list serves rows with different limits.
 */
import type { FinishReason, GenerationConfig } from './generation-config.js';
import type { TextStream } from './text-stream.js';

/** What a criterion may look at for one row. */
export interface StoppingRow {
  readonly config: GenerationConfig;
  /** Tokens generated so far, `[generated]`. */
  readonly generated: readonly number[];
  /** The row's decoded text, when it has stop strings. */
  readonly stream?: TextStream;
}

/** Says which rows are done, and why. */
export abstract class StoppingCriteria {
  /** The finish reason a row gets when this criterion stops it. */
  abstract readonly reason: FinishReason;
  /** One boolean per row: true when the row is done. */
  abstract isDone(rows: readonly StoppingRow[]): boolean[];
}

/** Done when `maxNewTokens` tokens are generated. */
export class MaxNewTokensCriteria extends StoppingCriteria {
  readonly reason = 'length';

  isDone(rows: readonly StoppingRow[]): boolean[] {
    return rows.map((r) => r.generated.length >= r.config.maxNewTokens);
  }
}

/**
 * Done when the last token is one of the row's EOS tokens, and the model chose it: an EOS
 * forced at the limit (`forcedEosTokenId`) is left to {@link MaxNewTokensCriteria}.
 */
export class EosTokenCriteria extends StoppingCriteria {
  readonly reason = 'stop';

  isDone(rows: readonly StoppingRow[]): boolean[] {
    return rows.map((r) => {
      const n = r.generated.length;
      const last = r.generated[n - 1];
      if (last === undefined || !r.config.eosTokenId.includes(last)) return false;
      return !(n >= r.config.maxNewTokens && r.config.forcedEosTokenId === last);
    });
  }
}

/** Done when the last token is a stop string that is a special token (skipped by decoding). */
export class StopTokenCriteria extends StoppingCriteria {
  readonly reason = 'stop';

  isDone(rows: readonly StoppingRow[]): boolean[] {
    return rows.map((r) => {
      const last = r.generated[r.generated.length - 1];
      return last !== undefined && r.config.stopTokenIds.includes(last);
    });
  }
}

/** Done when the decoded text holds one of the row's stop strings. */
export class StopStringCriteria extends StoppingCriteria {
  readonly reason = 'stop';

  isDone(rows: readonly StoppingRow[]): boolean[] {
    return rows.map((r) => r.config.stop.length > 0 && (r.stream?.stopped ?? false));
  }
}

/**
 * Criteria checked in order; a row is done when any says so, with the reason of the first
 * that does. By default: EOS, stop tokens, stop strings (`stop`), then the token limit (`length`).
 */
export class StoppingCriteriaList {
  readonly criteria: StoppingCriteria[];

  constructor(
    criteria: StoppingCriteria[] = [new EosTokenCriteria(), new StopTokenCriteria(), new StopStringCriteria(), new MaxNewTokensCriteria()],
  ) {
    this.criteria = criteria;
  }

  /** One entry per row: the reason it is done, or undefined while it goes on. */
  check(rows: readonly StoppingRow[]): (FinishReason | undefined)[] {
    const out: (FinishReason | undefined)[] = rows.map(() => undefined);
    for (const c of this.criteria) {
      c.isDone(rows).forEach((done, i) => {
        if (done && out[i] === undefined) out[i] = c.reason;
      });
    }
    return out;
  }

  /** One boolean per row: whether it is done. */
  isDone(rows: readonly StoppingRow[]): boolean[] {
    return this.check(rows).map((r) => r !== undefined);
  }
}
