import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

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
   * What to cut when too long: `longest_first` takes one token at a time from the longer
   * text; `only_first` cuts the first text only (zero-shot keeps the hypothesis whole).
   * Throws when the text it may cut can't make room. @defaultValue 'longest_first'
   */
  truncation?: TruncationStrategy;
  /** Add the post-processor's special tokens (`[CLS]`, `<s>`, ...). @defaultValue true */
  addSpecialTokens?: boolean;
}

/**
 * A Hugging Face `tokenizer.json` with the truncation and padding facts from
 * `tokenizer_config.json`. `@huggingface/tokenizers` does neither truncation nor padding:
 * we truncate here (content tokens only, longest first, so the special tokens stay, as
 * the Python tokenizers do) and pad in `padBatch`.
 */
export class TextTokenizer {
  readonly maxLength: number;
  readonly padId: number;
  readonly paddingSide: 'left' | 'right';
  private vocab: Map<string, number> | undefined;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly config: TokenizerConfig,
    maxPositions?: number,
  ) {
    // Exports often store a huge model_max_length (1e30) when unknown: cap it by positions.
    const fromConfig = config.model_max_length ?? Number.POSITIVE_INFINITY;
    this.maxLength = Math.min(fromConfig, maxPositions ?? Number.POSITIVE_INFINITY, 1 << 20);
    if (!Number.isFinite(this.maxLength)) this.maxLength = 512;
    const padToken = this.specialToken('pad_token') ?? this.specialToken('eos_token');
    this.padId = (padToken !== undefined ? this.idOf(padToken) : undefined) ?? 0;
    this.paddingSide = config.padding_side ?? 'right';
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

  /** Tokenizes one text or a pair, with or without special tokens, truncating as told. */
  encodeWith(text: string, options: EncodeOptions = {}): Encoded {
    const { pair, maxLength = this.maxLength, truncation = 'longest_first', addSpecialTokens = true } = options;
    const full = this.tokenizer.encode(text, {
      text_pair: pair ?? null,
      add_special_tokens: addSpecialTokens,
      return_token_type_ids: true,
    });
    if (full.ids.length <= maxLength) {
      return { ids: full.ids, typeIds: full.token_type_ids ?? new Array<number>(full.ids.length).fill(0) };
    }
    const first = this.tokenizer.tokenize(text);
    const second = pair === undefined ? null : this.tokenizer.tokenize(pair);
    const specials = full.ids.length - first.length - (second?.length ?? 0);
    const budget = Math.max(0, maxLength - specials);
    if (truncation === 'longest_first') {
      truncateLongestFirst(first, second, budget);
    } else {
      const [cut, kept] = truncation === 'only_first' ? [first, second] : [second, first];
      const room = budget - (kept?.length ?? 0);
      if (cut === null || room < 0) {
        throw new Error(
          `Input is ${full.ids.length} tokens, over the limit of ${maxLength}, and truncation '${truncation}' can't cut enough`,
        );
      }
      cut.length = Math.min(cut.length, room);
    }
    const post = this.tokenizer.post_processor;
    const processed: { tokens: string[]; token_type_ids?: number[] } =
      post && addSpecialTokens ? post._call(first, second, true) : { tokens: [...first, ...(second ?? [])] };
    const ids = processed.tokens.map((t: string) => this.idOf(t) ?? this.idOf('[UNK]') ?? 0);
    return { ids, typeIds: processed.token_type_ids ?? new Array<number>(ids.length).fill(0) };
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

function truncateLongestFirst(first: string[], second: string[] | null, budget: number): void {
  while (first.length + (second?.length ?? 0) > budget) {
    if (second && second.length > first.length) second.pop();
    else first.pop();
  }
}
