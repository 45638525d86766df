/**
 * The decoded text of one generating row, for stop strings and streaming: it finds the
 * first stop string, and hands out text deltas that are final (never a character still
 * being assembled from bytes, never a tail a clean-up rule may still rewrite, never the
 * start of a possible stop string).
 *
 * The text is what Python's text-generation pipeline returns: the prompt and the generated
 * tokens decoded together, the decoded prompt cut off, so a SentencePiece (Metaspace)
 * tokenizer keeps the space before the first new word (`" Paris."`, not `"Paris."`).
 *
 * Work per step is bounded (issue 13, item 16): each {@link TextStream.update} decodes only
 * the tokens since the last committed point plus {@link WINDOW} tokens before it, and scans
 * only that text for stop strings. A point is committed once its text is seen unchanged
 * with {@link WINDOW} more tokens after it. The final text ({@link TextStream.finish}) is
 * one full decode, exactly as Python computes it.
 */

/** Decodes token ids to text, special tokens skipped. */
export type Decode = (ids: readonly number[]) => string;

const REPLACEMENT = '\uFFFD';

/**
 * Python's `clean_up_tokenization` rewrites (" ." to ".", " 's" to "'s", ...): a text that
 * ends in a proper prefix of one may still change when the next token comes.
 */
const CLEANUP_PATTERNS = [' .', ' ?', ' !', ' ,', " ' ", " n't", " 'm", " 's", " 've", " 're"];

/** Tokens decoded before the new ones, so a decoder's look-behind (spaces, bytes) sees them. */
const WINDOW = 8;

/** Length of the longest tail of `text` that is a proper prefix of one of `patterns`. */
function heldFor(text: string, patterns: readonly string[]): number {
  let held = 0;
  for (const s of patterns) {
    for (let n = Math.min(s.length - 1, text.length); n > held; n--) {
      if (text.endsWith(s.slice(0, n))) {
        held = n;
        break;
      }
    }
  }
  return held;
}

export class TextStream {
  private readonly maxStop: number;
  /** Generated ids whose text is committed, and that text. */
  private committedIds = 0;
  private committed = '';
  /** The {@link WINDOW} ids before the committed point (prompt, then generated), and their text. */
  private windowIds: readonly number[];
  private windowText: string;
  /** The text of the generated ids after the committed point. */
  private tail = '';
  private emitted = '';
  /** Where the first stop string starts in the text; -1 while none. */
  private stopAt = -1;
  /** The exact final text, once {@link finish} ran. */
  private final: string | undefined;

  /**
   * @param decode - decodes ids (special tokens skipped).
   * @param stop - stop strings; the text ends before the first occurrence of any.
   * @param context - the prompt's ids, decoded with the new ones and then cut off.
   */
  constructor(
    private readonly decode: Decode,
    private readonly stop: readonly string[] = [],
    private readonly context: readonly number[] = [],
  ) {
    this.maxStop = stop.reduce((m, s) => Math.max(m, s.length), 0);
    this.windowIds = context.slice(-WINDOW);
    this.windowText = this.windowIds.length > 0 ? decode(this.windowIds) : '';
  }

  /** Takes the generated ids so far (without a trailing EOS); decodes only what is new. */
  update(ids: readonly number[]): void {
    if (this.stopAt >= 0 || this.final !== undefined) return;
    const rest = ids.slice(this.committedIds);
    const text = rest.length > 0 ? this.decode([...this.windowIds, ...rest]) : this.windowText;
    if (text.startsWith(this.windowText)) {
      this.tail = text.slice(this.windowText.length);
    } else {
      // The window's own text changed with what follows: start over from the prompt (rare).
      this.committedIds = 0;
      this.committed = '';
      this.windowIds = this.context.slice(-WINDOW);
      this.windowText = this.windowIds.length > 0 ? this.decode(this.windowIds) : '';
      this.tail = this.decode([...this.context, ...ids]).slice(this.context.length > 0 ? this.decode([...this.context]).length : 0);
    }
    this.findStop();
    if (this.stopAt < 0) this.commit(ids);
  }

  /** Looks for a stop string in the new text (and the few committed characters before it). */
  private findStop(): void {
    if (this.stop.length === 0) return;
    const before = this.committed.slice(Math.max(0, this.committed.length - (this.maxStop - 1)));
    const region = before + this.tail;
    let first = -1;
    for (const s of this.stop) {
      const at = region.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) this.stopAt = this.committed.length - before.length + first;
  }

  /** Moves the committed point up to {@link WINDOW} tokens before the end, when its text is settled. */
  private commit(ids: readonly number[]): void {
    if (ids.length - this.committedIds < 2 * WINDOW) return;
    const point = ids.length - WINDOW;
    const text = this.decode([...this.windowIds, ...ids.slice(this.committedIds, point)]);
    if (!text.startsWith(this.windowText)) return;
    const piece = text.slice(this.windowText.length);
    if (!this.tail.startsWith(piece) || piece.endsWith(REPLACEMENT) || heldFor(piece, CLEANUP_PATTERNS) > 0) return;
    this.committed += piece;
    this.tail = this.tail.slice(piece.length);
    this.committedIds = point;
    const from = Math.max(0, point - WINDOW);
    this.windowIds = [...(point < WINDOW ? this.context.slice(-(WINDOW - point)) : []), ...ids.slice(from, point)];
    this.windowText = this.decode(this.windowIds);
  }

  /** Whether the text holds a stop string. */
  get stopped(): boolean {
    return this.stopAt >= 0;
  }

  /** The text so far, cut before the first stop string (exact once {@link finish} ran). */
  get text(): string {
    if (this.final !== undefined) return this.final;
    const text = this.committed + this.tail;
    return this.stopAt >= 0 ? text.slice(0, this.stopAt) : text;
  }

  /**
   * The final text of these generated ids (without a trailing EOS): one full decode of
   * prompt and ids, the decoded prompt cut off, then cut before the first stop string.
   */
  finish(ids: readonly number[]): string {
    if (this.final !== undefined) return this.final;
    let text: string;
    if (this.context.length === 0) text = ids.length > 0 ? this.decode(ids) : '';
    else text = this.decode([...this.context, ...ids]).slice(this.decode(this.context).length);
    let first = -1;
    for (const s of this.stop) {
      const at = text.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    this.final = first >= 0 ? text.slice(0, first) : text;
    return this.final;
  }

  /**
   * The text not handed out yet that is safe to show: without a trailing partial
   * character, a tail a clean-up rule may rewrite, or (while no stop string was found) a
   * tail that could start one. Once {@link finish} ran, everything left.
   */
  delta(): string {
    if (this.final !== undefined) {
      // Holding back what may change keeps the handed-out text a prefix of the final one.
      const rest = this.final.startsWith(this.emitted) ? this.final.slice(this.emitted.length) : this.final.slice(Math.min(this.emitted.length, this.final.length));
      this.emitted += rest;
      return rest;
    }
    const base = this.committed.length;
    let end = this.tail.length;
    if (this.stopAt >= 0) {
      end = Math.min(end, this.stopAt - base);
    } else {
      while (end > 0 && this.tail[end - 1] === REPLACEMENT) end--;
      const before = this.committed.slice(Math.max(0, base - Math.max(this.maxStop, 5)));
      const visible = before + this.tail.slice(0, end);
      end -= Math.max(heldFor(visible, CLEANUP_PATTERNS), heldFor(visible, this.stop));
    }
    const upTo = base + end;
    const from = this.emitted.length;
    if (upTo <= from) return '';
    const out = (from < base ? this.committed.slice(from, upTo) : '') + (end > 0 ? this.tail.slice(Math.max(0, from - base), end) : '');
    this.emitted += out;
    return out;
  }
}
