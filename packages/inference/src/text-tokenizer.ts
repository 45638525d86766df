import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { keepTokens, longestFirstLengths, type TruncationSide } from './truncation.js';

/** One tokenized text (or text pair), with special tokens, already truncated. */
export interface Encoded {
  /** Token ids, `[seqLen]`. */
  ids: number[];
  /** Segment ids, `[seqLen]` (0 for the first text, 1 for the pair). */
  typeIds: number[];
}

export interface TokenizerConfig {
  model_max_length?: number;
  padding_side?: 'left' | 'right';
  /** Which end of a too-long text is cut. @defaultValue 'right' */
  truncation_side?: TruncationSide;
  pad_token?: string | { content: string } | null;
  /** A Jinja chat template, or named templates (`[{name, template}]`). */
  chat_template?: string | { name: string; template: string }[] | null;
  /** Whether plain prompts get a BOS token (Llama 2 style tokenizers). */
  add_bos_token?: boolean;
  /** Whether plain prompts get an EOS token. */
  add_eos_token?: boolean;
  [key: string]: unknown;
}

/** How {@link TextTokenizer.encodeWith} cuts an input that is too long. */
export type TruncationStrategy = 'longest_first' | 'only_first' | 'only_second';

/** Options of {@link TextTokenizer.encodeWith}. */
export interface EncodeOptions {
  /** A second text (NLI hypothesis, question). @defaultValue none */
  pair?: string;
  /** Longest result in tokens, special tokens included. @defaultValue the tokenizer's maxLength */
  maxLength?: number;
  /**
   * What to cut when too long: `longest_first` shares the budget as the Rust tokenizers do
   * ({@link longestFirstLengths}); `only_first` cuts the first text only (zero-shot keeps the
   * hypothesis whole).
   * Throws when the text it may cut can't make room. @defaultValue 'longest_first'
   */
  truncation?: TruncationStrategy;
  /** Add the post-processor's special tokens (`[CLS]`, `<s>`, ...). @defaultValue true */
  addSpecialTokens?: boolean;
  /** Which end of a text loses tokens. @defaultValue the tokenizer's `truncation_side` ('right') */
  side?: TruncationSide;
}

/**
 * `model_max_length` at or above this is Python's "no limit" sentinel (`VERY_LARGE_INTEGER`,
 * 1e30, written by exports that don't know the model's limit), not a length.
 */
const SENTINEL_MAX_LENGTH = 1e18;
/** The limit Python falls back to when neither the tokenizer nor the model states one. */
const DEFAULT_MAX_LENGTH = 512;
/** First guess of characters per token when cutting a long text before tokenizing it. */
const CHARS_PER_TOKEN = 6;
/** Fewest characters of a long text tokenized at once. */
const MIN_CUT_CHARS = 256;
/** Tokens tokenized past those kept, so that the kept ones don't depend on where the text was cut. */
const CUT_MARGIN_TOKENS = 16;
/** How far back from a character bound a whitespace to cut at is looked for. */
const CUT_SEARCH_CHARS = 64;

/**
 * A Hugging Face `tokenizer.json` with the truncation and padding facts from
 * `tokenizer_config.json`. `@huggingface/tokenizers` does neither truncation nor padding:
 * we truncate here (content tokens only, so the special tokens stay, with the Rust
 * tokenizers' rules, from the side `truncation_side` names) and pad in `padBatch`. A long
 * text is cut before it is tokenized ({@link TextTokenizer.contentTokens}), so its cost is
 * bounded by the tokens kept, not by its length.
 */
export class TextTokenizer {
  readonly maxLength: number;
  readonly padId: number;
  readonly paddingSide: 'left' | 'right';
  /** Which end of a too-long text is cut (`truncation_side`). */
  readonly truncationSide: TruncationSide;
  private vocab: Map<string, number> | undefined;
  private addedIds: Map<string, number> | undefined;
  private readonly added: [number?, number?] = [];

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly config: TokenizerConfig,
    maxPositions?: number,
  ) {
    // Exports that don't know the limit store a sentinel (1e30): the position table is the
    // real limit then (Python falls back to 512 when it has none, and so do we).
    const fromConfig = config.model_max_length;
    const stated = typeof fromConfig === 'number' && fromConfig > 0 && fromConfig < SENTINEL_MAX_LENGTH ? fromConfig : undefined;
    const positions = maxPositions !== undefined && maxPositions > 0 ? maxPositions : undefined;
    this.maxLength = Math.min(stated ?? positions ?? DEFAULT_MAX_LENGTH, positions ?? Number.POSITIVE_INFINITY);
    const padToken = this.specialToken('pad_token') ?? this.specialToken('eos_token');
    this.padId = (padToken !== undefined ? this.idOf(padToken) : undefined) ?? 0;
    this.paddingSide = config.padding_side ?? 'right';
    this.truncationSide = config.truncation_side === 'left' ? 'left' : 'right';
  }

  static async load(dir: string, maxPositions?: number): Promise<TextTokenizer> {
    const [json, config] = await Promise.all([
      readFile(join(dir, 'tokenizer.json'), 'utf8').then((s) => JSON.parse(s) as object),
      readFile(join(dir, 'tokenizer_config.json'), 'utf8')
        .then((s) => JSON.parse(s) as TokenizerConfig)
        .catch(() => ({}) as TokenizerConfig),
    ]);
    return new TextTokenizer(new Tokenizer(json, config), config, maxPositions);
  }

  /** Tokenizes, truncating to `maxLength` (or `maxLength` given here) tokens in all. */
  encode(text: string, pair?: string, maxLength = this.maxLength): Encoded {
    return this.encodeWith(text, { ...(pair === undefined ? {} : { pair }), maxLength });
  }

  /**
   * Tokenizes one text or a pair, with or without special tokens, truncating as told.
   * Only what can be kept is tokenized ({@link TextTokenizer.contentTokens}): a 100,000-character
   * text costs what its first `maxLength` tokens cost.
   */
  encodeWith(text: string, options: EncodeOptions = {}): Encoded {
    const { pair, maxLength = this.maxLength, truncation = 'longest_first', addSpecialTokens = true } = options;
    const side = options.side ?? this.truncationSide;
    const budget = Math.max(0, maxLength - (addSpecialTokens ? this.addedTokens(pair !== undefined) : 0));
    if (pair === undefined) {
      const first = this.contentTokens(text, budget, side);
      return this.assemble(keepTokens(first.tokens, budget, side), null, addSpecialTokens);
    }
    if (truncation !== 'longest_first') return this.encodePairs(text, [pair], options)[0] as Encoded;
    let first = this.contentTokens(text, budget, side);
    let second = this.contentTokens(pair, budget, side);
    // Which text is longer decides who gets an odd budget's last token: when a partial count
    // can't tell, tokenize further (only texts of a pair that both pass the budget get here).
    while (
      budget % 2 === 1 &&
      (!first.complete || !second.complete) &&
      (first.complete ? second.tokens.length <= first.tokens.length : second.complete ? first.tokens.length <= second.tokens.length : true)
    ) {
      if (!first.complete) first = this.contentTokens(text, Math.max(2 * first.tokens.length, second.tokens.length), side);
      if (!second.complete) second = this.contentTokens(pair, Math.max(2 * second.tokens.length, first.tokens.length), side);
    }
    const [n1, n2] = longestFirstLengths(first.tokens.length, second.tokens.length, budget);
    return this.assemble(keepTokens(first.tokens, n1, side), keepTokens(second.tokens, n2, side), addSpecialTokens);
  }

  /**
   * Tokenizes one text paired with each of several second texts (zero-shot: one premise,
   * a hypothesis per label), tokenizing the first text once. `only_first` and `only_second`
   * cut one side and keep the other whole; throws when the side it may cut can't make room.
   */
  encodePairs(text: string, pairs: readonly string[], options: Omit<EncodeOptions, 'pair'> = {}): Encoded[] {
    const { maxLength = this.maxLength, truncation = 'only_first', addSpecialTokens = true } = options;
    if (truncation === 'longest_first') return pairs.map((pair) => this.encodeWith(text, { ...options, pair }));
    const side = options.side ?? this.truncationSide;
    const budget = Math.max(0, maxLength - (addSpecialTokens ? this.addedTokens(true) : 0));
    const tooLong = (kept: number, cut: string): Error =>
      new Error(`Input is over the limit of ${maxLength} tokens, and truncation '${truncation}' can't cut enough: the ${cut} text alone is ${kept} tokens`);
    if (truncation === 'only_second') {
      const first = this.contentTokens(text, Number.POSITIVE_INFINITY, side).tokens;
      if (first.length > budget) throw tooLong(first.length, 'first');
      return pairs.map((pair) => {
        const second = this.contentTokens(pair, budget - first.length, side).tokens;
        return this.assemble(first, keepTokens(second, budget - first.length, side), addSpecialTokens);
      });
    }
    const seconds = pairs.map((pair) => this.contentTokens(pair, Number.POSITIVE_INFINITY, side).tokens);
    const longestRoom = budget - seconds.reduce((m, s) => Math.min(m, s.length), Number.POSITIVE_INFINITY);
    const first = this.contentTokens(text, Math.max(0, longestRoom), side);
    return seconds.map((second) => {
      const room = budget - second.length;
      if (room < 0) throw tooLong(second.length, 'second');
      return this.assemble(keepTokens(first.tokens, room, side), second, addSpecialTokens);
    });
  }

  /**
   * The content tokens (no special tokens) of `text`, tokenizing only as much of it as is
   * needed to know its first `keep` tokens (its last ones when `side` is `left`). A text
   * longer than `keep` tokens could need is cut at a whitespace near a character bound
   * (a few characters per token), the cut part tokenized, and the bound doubled until the
   * cut part gives `keep` tokens plus a margin, so the kept tokens are those of the whole
   * text (only the tokens near a cut can differ from the whole text's; they fall in the
   * margin). `complete` says whether the whole text was tokenized (then `tokens` is all of it).
   */
  contentTokens(text: string, keep: number, side: TruncationSide = this.truncationSide): { tokens: string[]; complete: boolean } {
    const wanted = keep + CUT_MARGIN_TOKENS;
    let bound = Number.isFinite(keep) ? Math.max(MIN_CUT_CHARS, wanted * CHARS_PER_TOKEN) : Number.POSITIVE_INFINITY;
    for (;;) {
      if (bound >= text.length) return { tokens: this.tokenizer.tokenize(text), complete: true };
      const part = side === 'right' ? text.slice(0, cutAt(text, bound)) : text.slice(cutFrom(text, text.length - bound));
      const tokens = this.tokenizer.tokenize(part);
      if (tokens.length >= wanted) return { tokens, complete: false };
      // Fewer tokens per character than guessed: grow by what was seen, 2 to 4 times.
      bound = Math.min(4 * bound, Math.max(2 * bound, Math.ceil((bound * wanted * 1.25) / Math.max(1, tokens.length))));
    }
  }

  /** Special tokens the post-processor adds to one text (`pair`: to a pair), e.g. 2 and 3 for BERT. */
  addedTokens(pair: boolean): number {
    const cached = this.added[pair ? 1 : 0];
    if (cached !== undefined) return cached;
    const post = this.tokenizer.post_processor;
    const count = post ? post._call(['a'], pair ? ['b'] : null, true).tokens.length - (pair ? 2 : 1) : 0;
    this.added[pair ? 1 : 0] = count;
    return count;
  }

  /** Content tokens to ids, with the special tokens added, as `Tokenizer.encode` does it. */
  private assemble(first: string[], second: string[] | null, addSpecialTokens: boolean): Encoded {
    const post = this.tokenizer.post_processor;
    const processed: { tokens: string[]; token_type_ids?: number[] } = post
      ? post._call(first, second, addSpecialTokens)
      : { tokens: [...first, ...(second ?? [])] };
    const ids = processed.tokens.map((t) => this.tokenId(t));
    return { ids, typeIds: processed.token_type_ids ?? new Array<number>(ids.length).fill(0) };
  }

  /** A token's id as `Tokenizer.encode` finds it: added tokens first, then the model's vocabulary, else unknown. */
  private tokenId(token: string): number {
    const model = this.tokenizer.model as unknown as { tokens_to_ids: Map<string, number>; unk_token_id?: number } | null;
    this.addedIds ??= new Map([...this.tokenizer.get_added_tokens_decoder()].map(([id, t]) => [t.content, id]));
    return this.addedIds.get(token) ?? model?.tokens_to_ids.get(token) ?? model?.unk_token_id ?? this.idOf('[UNK]') ?? 0;
  }

  /**
   * A special token named in `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`,
   * ...), as text; undefined when not set.
   */
  specialToken(name: string): string | undefined {
    const value = this.config[name] as string | { content?: string } | null | undefined;
    if (typeof value === 'string') return value;
    return value?.content ?? undefined;
  }

  /** The chat template (`default` of named ones), or undefined when the tokenizer has none. */
  get chatTemplate(): string | undefined {
    const t = this.config.chat_template;
    if (typeof t === 'string') return t;
    if (Array.isArray(t)) return t.find((x) => x.name === 'default')?.template;
    return undefined;
  }

  /** @param cleanUpSpaces - Python's `clean_up_tokenization_spaces`. @defaultValue the tokenizer_config's */
  decode(ids: number[], skipSpecialTokens = true, cleanUpSpaces?: boolean): string {
    const options = { skip_special_tokens: skipSpecialTokens, ...(cleanUpSpaces === undefined ? {} : { clean_up_tokenization_spaces: cleanUpSpaces }) };
    return ids.length === 0 ? '' : this.tokenizer.decode(ids, options);
  }

  idOf(token: string): number | undefined {
    const vocab = (this.vocab ??= this.tokenizer.get_vocab(true));
    return vocab.get(token);
  }
}

/** Where to end a text's head of about `bound` characters: after a whitespace near it, never inside a surrogate pair. */
function cutAt(text: string, bound: number): number {
  for (let i = bound; i > bound - CUT_SEARCH_CHARS && i > 0; i--) {
    if (/\s/.test(text[i - 1] as string)) return i;
  }
  return isLowSurrogate(text.charCodeAt(bound)) ? bound - 1 : bound;
}

/** Where to start a text's tail of about `text.length - start` characters: at a whitespace near it. */
function cutFrom(text: string, start: number): number {
  for (let i = start; i < start + CUT_SEARCH_CHARS && i < text.length; i++) {
    if (/\s/.test(text[i] as string)) return i;
  }
  return isLowSurrogate(text.charCodeAt(start)) ? start + 1 : start;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
