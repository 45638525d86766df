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
  pad_token?: string | { content: string };
  [key: string]: unknown;
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
    const padToken = typeof config.pad_token === 'string' ? config.pad_token : config.pad_token?.content;
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
    const full = this.tokenizer.encode(text, { text_pair: pair ?? null, return_token_type_ids: true });
    if (full.ids.length <= maxLength) {
      return { ids: full.ids, typeIds: full.token_type_ids ?? new Array<number>(full.ids.length).fill(0) };
    }
    const first = this.tokenizer.tokenize(text);
    const second = pair === undefined ? null : this.tokenizer.tokenize(pair);
    const specials = full.ids.length - first.length - (second?.length ?? 0);
    const budget = Math.max(0, maxLength - specials);
    truncateLongestFirst(first, second, budget);
    const post = this.tokenizer.post_processor;
    const processed: { tokens: string[]; token_type_ids?: number[] } = post
      ? post._call(first, second, true)
      : { tokens: [...first, ...(second ?? [])] };
    const ids = processed.tokens.map((t: string) => this.idOf(t) ?? this.idOf('[UNK]') ?? 0);
    return { ids, typeIds: processed.token_type_ids ?? new Array<number>(ids.length).fill(0) };
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    return ids.length === 0 ? '' : this.tokenizer.decode(ids, { skip_special_tokens: skipSpecialTokens });
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
