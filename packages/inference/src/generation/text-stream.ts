/**
 * The decoded text of one generating row, for stop strings and streaming: it finds the
 * first stop string, and hands out text deltas that are final (never a character still
 * being assembled from bytes, never the start of a possible stop string).
 */

/** Decodes token ids to text, special tokens skipped. */
export type Decode = (ids: readonly number[]) => string;

const REPLACEMENT = '\uFFFD';

export class TextStream {
  private current = '';
  private emitted = '';
  private stopAt = -1;

  /**
   * @param decode - decodes the generated ids.
   * @param stop - stop strings; the text ends before the first occurrence of any.
   */
  constructor(
    private readonly decode: Decode,
    private readonly stop: readonly string[] = [],
  ) {}

  /** The text of these generated ids (decoded once per call). */
  update(ids: readonly number[]): void {
    if (this.stopAt >= 0) return;
    this.current = this.decode(ids);
    if (this.stop.length === 0) return;
    let first = -1;
    for (const s of this.stop) {
      const at = this.current.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    this.stopAt = first;
  }

  /** Whether the text holds a stop string. */
  get stopped(): boolean {
    return this.stopAt >= 0;
  }

  /** The text so far, cut before the first stop string. */
  get text(): string {
    return this.stopAt >= 0 ? this.current.slice(0, this.stopAt) : this.current;
  }

  /**
   * The text not handed out yet that is safe to show: without a trailing partial
   * character, and (while no stop string was found) without a tail that could be the
   * start of one. Pass `final` when the row is done, to get everything left.
   */
  delta(final = false): string {
    let safe = this.text;
    if (!final && this.stopAt < 0) {
      let end = safe.length;
      while (end > 0 && safe[end - 1] === REPLACEMENT) end--;
      end -= this.heldForStop(safe.slice(0, end));
      safe = safe.slice(0, end);
    }
    // Decoders may rewrite earlier text (e.g. clean-up of spaces); only hand out growth.
    if (!safe.startsWith(this.emitted) || safe.length <= this.emitted.length) return '';
    const out = safe.slice(this.emitted.length);
    this.emitted = safe;
    return out;
  }

  /** Length of the longest tail of `text` that is a proper prefix of a stop string. */
  private heldForStop(text: string): number {
    let held = 0;
    for (const s of this.stop) {
      for (let n = Math.min(s.length - 1, text.length); n > held; n--) {
        if (text.endsWith(s.slice(0, n))) {
          held = n;
          break;
        }
      }
    }
    return held;
  }
}
