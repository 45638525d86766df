/**
 * A byte-level BPE tokenizer (the GPT-2 / RoBERTa / BART / Qwen family), written as the
 * files a Hugging Face repository has: `tokenizer.json` (the `tokenizers` serialisation),
 * `tokenizer_config.json`, `special_tokens_map.json`, `vocab.json` and `merges.txt`.
 *
 * The vocabulary is the 256 byte symbols plus merges learned, deterministically, from
 * {@link COMMON_WORDS_TEXT} (each word with and without a leading space, and capitalised),
 * plus special tokens placed before or after them. Any text encodes (every byte has a
 * token) and common words come out as one or two tokens, as with a real vocabulary.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMMON_WORDS_TEXT } from './wordpiece-tokenizer.js';

/**
 * GPT-2's `bytes_to_unicode`: the printable symbol that stands for each byte, so that BPE
 * runs over visible characters (a space is `Ġ`, a newline `Ċ`).
 */
export const BYTE_SYMBOLS: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const symbols = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    symbols[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return Object.freeze(symbols);
})();

/** Text as byte symbols (UTF-8 bytes mapped by {@link BYTE_SYMBOLS}). */
export function toByteSymbols(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => BYTE_SYMBOLS[b] as string).join('');
}

/**
 * Learns `count` BPE merges from {@link COMMON_WORDS_TEXT}, its words weighted by a
 * Zipf-like law of their rank (the list starts with the most common words). Each step merges
 * the most frequent adjacent pair (ties broken by the pair's text, so the result never
 * varies). Stops early when no pair occurs twice.
 */
export function learnMerges(count: number): [string, string][] {
  const cached = learned.get(count);
  if (cached) return cached.map(([a, b]) => [a, b]);
  const merges = learn(count);
  learned.set(count, merges);
  return merges.map(([a, b]) => [a, b]);
}

const learned = new Map<number, [string, string][]>();

function learn(count: number): [string, string][] {
  const weights = new Map<string, number>();
  const add = (word: string, weight: number): void => {
    const key = toByteSymbols(word);
    weights.set(key, (weights.get(key) ?? 0) + weight);
  };
  COMMON_WORDS_TEXT.split(/\s+/)
    .filter((x) => x.length > 0)
    .forEach((w, rank) => {
      const weight = 1 + Math.floor(2000 / (rank + 20));
      add(` ${w}`, 4 * weight);
      add(w, weight);
      add(` ${w[0]?.toUpperCase() ?? ''}${w.slice(1)}`, weight);
    });
  const words = [...weights].map(([w, weight]) => ({ symbols: Array.from(w), weight }));
  const merges: [string, string][] = [];
  while (merges.length < count) {
    const pairs = new Map<string, number>();
    for (const { symbols, weight } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + weight);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, n] of pairs) {
      if (n > bestCount || (n === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = n;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    for (const word of words) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (word.symbols[i] === a && word.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else {
          out.push(word.symbols[i] as string);
        }
      }
      word.symbols = out;
    }
  }
  return merges;
}

/** A special token of the vocabulary. */
export interface SpecialToken {
  content: string;
  /** Strip white space on the left when matching in text (BART's `<mask>`). @defaultValue false */
  lstrip?: boolean;
}

/** Options of {@link byteLevelBpeFiles}. */
export interface ByteLevelBpeOptions {
  /** Number of merges to learn (the vocabulary has 256 + merges + specials entries). */
  merges: number;
  /** Special tokens with the ids before the bytes (BART: `<s> <pad> </s> <unk>`). @defaultValue [] */
  specialsBefore?: SpecialToken[];
  /** Special tokens with the ids after the merges (BART: `<mask>`; Qwen: `<|endoftext|>` ...). @defaultValue [] */
  specialsAfter?: SpecialToken[];
  /**
   * `roberta`: `<s> A </s>` and `<s> A </s></s> B </s>` (BART, RoBERTa); `byte-level`:
   * nothing added (GPT-2, Qwen).
   */
  postProcessor: 'roberta' | 'byte-level';
  /** Entries of `tokenizer_config.json` naming special tokens (`bos_token`, `pad_token`, ...). */
  specialTokensMap: Record<string, string>;
  /** `tokenizer_class` in `tokenizer_config.json`. */
  tokenizerClass: string;
  /** Longest input in tokens (`model_max_length`). */
  modelMaxLength: number;
  /** Extra `tokenizer_config.json` entries (`chat_template`, `add_prefix_space`, ...). @defaultValue {} */
  extraConfig?: Record<string, unknown>;
}

/** The vocabulary in id order, and the merges, of a tokenizer built with these options. */
export function byteLevelBpeVocab(options: Pick<ByteLevelBpeOptions, 'merges' | 'specialsBefore' | 'specialsAfter'>): {
  vocab: string[];
  merges: [string, string][];
} {
  const merges = learnMerges(options.merges);
  const vocab = [
    ...(options.specialsBefore ?? []).map((t) => t.content),
    ...BYTE_SYMBOLS,
    ...merges.map(([a, b]) => a + b),
    ...(options.specialsAfter ?? []).map((t) => t.content),
  ];
  if (new Set(vocab).size !== vocab.length) throw new Error('byte-level-bpe: the vocabulary has duplicate entries');
  return { vocab, merges };
}

/** The file contents of a byte-level BPE tokenizer, keyed by file name. */
export function byteLevelBpeFiles(options: ByteLevelBpeOptions): Record<string, string> {
  const { vocab, merges } = byteLevelBpeVocab(options);
  const ids = new Map(vocab.map((t, i) => [t, i]));
  const specials = [...(options.specialsBefore ?? []), ...(options.specialsAfter ?? [])];
  const addedToken = (t: SpecialToken) => ({
    id: ids.get(t.content) as number,
    content: t.content,
    single_word: false,
    lstrip: t.lstrip ?? false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const idOf = (name: string): number => {
    const token = options.specialTokensMap[name];
    const id = token === undefined ? undefined : ids.get(token);
    if (id === undefined) throw new Error(`byte-level-bpe: ${name} "${String(token)}" is not in the vocabulary`);
    return id;
  };
  const postProcessor =
    options.postProcessor === 'roberta'
      ? {
          type: 'RobertaProcessing',
          sep: [options.specialTokensMap.sep_token ?? options.specialTokensMap.eos_token, idOf('eos_token')],
          cls: [options.specialTokensMap.cls_token ?? options.specialTokensMap.bos_token, idOf('bos_token')],
          trim_offsets: true,
          add_prefix_space: false,
        }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map(addedToken).sort((a, b) => a.id - b.id),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(ids),
      merges: merges.map(([a, b]) => [a, b]),
    },
  };
  const tokenizerConfig = {
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      specials.map((t) => {
        const { id, ...rest } = addedToken(t);
        return [String(id), rest];
      }),
    ),
    ...options.specialTokensMap,
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    model_max_length: options.modelMaxLength,
    tokenizer_class: options.tokenizerClass,
    ...(options.extraConfig ?? {}),
  };
  return {
    'tokenizer.json': JSON.stringify(tokenizerJson, null, 2) + '\n',
    'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2) + '\n',
    'special_tokens_map.json': JSON.stringify(options.specialTokensMap, null, 2) + '\n',
    'vocab.json': JSON.stringify(Object.fromEntries(ids)) + '\n',
    'merges.txt': ['#version: 0.2', ...merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n',
  };
}

/** Writes the files of {@link byteLevelBpeFiles} into `dir` (created if missing). */
export async function writeByteLevelBpe(dir: string, options: ByteLevelBpeOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(byteLevelBpeFiles(options))) {
    await writeFile(join(dir, file), content);
  }
}
