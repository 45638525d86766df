/**
 * A BERT-style WordPiece tokenizer, written as the files a Hugging Face BERT repository
 * has: `tokenizer.json` (the `tokenizers` serialisation), `tokenizer_config.json`,
 * `special_tokens_map.json` and `vocab.txt`.
 *
 * The vocabulary is: the special tokens, a few hundred common English words (general and
 * product / review / support vocabulary), single letters and digits, `##` letters and
 * suffixes, punctuation; then, when a bigger vocabulary is asked for, deterministic
 * synthetic sub-word pieces (`##ab`, `ab`, `##abc`, `abc`) that pad the embedding to a
 * real model's size and split unknown words roughly as a real vocabulary would.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mulberry32, shuffle } from './rng.js';

/** The special tokens, in vocabulary order: their ids are 0 to 4. */
export const SPECIAL_TOKENS = {
  pad: '[PAD]',
  unk: '[UNK]',
  cls: '[CLS]',
  sep: '[SEP]',
  mask: '[MASK]',
} as const;

/** Ids of the special tokens: `[PAD]` 0, `[UNK]` 1, `[CLS]` 2, `[SEP]` 3, `[MASK]` 4. */
export const SPECIAL_TOKEN_IDS = {
  pad: 0,
  unk: 1,
  cls: 2,
  sep: 3,
  mask: 4,
} as const;

/**
 * Common English words, lower case, separated by white space: function words, common verbs,
 * adjectives and nouns, then words that reviews and support tickets use. Our own list; its
 * order is vocabulary order. The byte-level BPE tokenizers learn their merges from it too.
 */
export const COMMON_WORDS_TEXT = `
the a an and or but if then else so because as of in on at to from by with without for
about into onto over under after before between through during until while than
i me my mine you your yours he him his she her hers it its we us our ours they them their
theirs this that these those who whom whose which what when where why how all any both
each every few many much more most some such no nor not only own same too very just
can could will would shall should may might must do does did done doing have has had
having be is am are was were been being get gets got getting make makes made making
go goes went gone going come came coming take took taken see saw seen look looked
know knew known think thought want wanted need needed use used using try tried trying
find found give gave given tell told ask asked work worked working seem feel felt
leave left call called keep kept let put mean meant become became show showed start
started stop stopped run ran help helped turn turned move moved like liked love loved
hate hated live lived believe bring brought happen happened write wrote read pay paid
buy bought sell sold send sent receive received return returned open opened close
closed change changed fix fixed break broke broken wait waited expect expected
arrive arrived order ordered cancel cancelled update updated install installed
download uploaded upload reset charge charged recommend recommended
one two three four five six seven eight nine ten hundred thousand first second last next
day days week weeks month months year years time times today yesterday tomorrow now
ago soon later again always never often sometimes still already yet also even really
here there up down out off away back well maybe please thanks thank yes okay sorry
hello hi
good better best bad worse worst great excellent amazing awesome perfect fine nice
terrible awful horrible poor cheap expensive fast slow quick easy hard difficult simple
new old big small large little long short high low happy sad angry disappointed
satisfied unhappy useless useful helpful unhelpful rude friendly polite quality
reliable broken wrong right correct free full empty late early clean dirty safe
working beautiful ugly strong weak clear important possible impossible sure real
product products item items service services customer customers support team staff
agent company store shop price prices cost money order orders delivery shipping
shipment package box refund refunds return returns exchange warranty replacement
account accounts login logout password username email address phone number code
app website site page link button screen error errors bug bugs crash crashes crashed
issue issues problem problems question questions answer request ticket invoice
invoices bill billing payment payments card credit subscription plan upgrade
downgrade trial version feature features settings data file files report message
messages notification chat call review reviews rating stars star experience
battery size color colour fit material design screen sound camera speaker charger
cable device laptop computer software hardware system network internet connection
server update security privacy access permission
food taste fresh hot cold coffee water room hotel flight bag
man woman people person child children friend family home house car road city world
country life way thing things part place case point group problem fact hand eye eyes
head side job word words name door night morning evening minute minutes hour hours
lot bit kind sort end line level
`;

// Continuation pieces for suffixes; `##` + each letter is added separately.
const SUFFIXES = ['s', 'es', 'ed', 'ing', 'ly', 'er', 'ers', 'est', 'ness', 'ment', 'ments', 'able', 'ful', 'less', 'tion', 'tions', 'ity', 'al', 'ive', 'ous', 'y', 'ies', 'en', 'ize'];

// Punctuation that BertPreTokenizer splits off as separate tokens.
const PUNCTUATION = [...`!"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`];

const LETTERS = [...'abcdefghijklmnopqrstuvwxyz'];
const DIGITS = [...'0123456789'];

function uniqueInOrder(items: Iterable<string>): string[] {
  return [...new Set(items)];
}

/** The vocabulary without synthetic padding: every entry is a real token. */
export const BASE_VOCAB: readonly string[] = Object.freeze(
  uniqueInOrder([
    ...Object.values(SPECIAL_TOKENS),
    ...PUNCTUATION,
    ...DIGITS,
    ...LETTERS,
    ...COMMON_WORDS_TEXT.split(/\s+/).filter((w) => w.length > 0),
    ...LETTERS.map((l) => `##${l}`),
    ...DIGITS.map((d) => `##${d}`),
    ...SUFFIXES.map((s) => `##${s}`),
  ]),
);

/** Size of {@link BASE_VOCAB}: the smallest vocabulary a model can have. */
export const BASE_VOCAB_SIZE = BASE_VOCAB.length;

/** Synthetic sub-word pieces, in the deterministic order they pad the vocabulary with. */
function* syntheticPieces(): Generator<string> {
  const pairs = LETTERS.flatMap((a) => LETTERS.map((b) => a + b));
  const triples = pairs.flatMap((p) => LETTERS.map((c) => p + c));
  // Fixed shuffle, so that a truncated list still covers the whole alphabet.
  const shuffledTriples = shuffle([...triples], mulberry32(0x7e57ab1e));
  for (const p of pairs) yield `##${p}`;
  for (const p of pairs) yield p;
  for (const t of shuffledTriples) yield `##${t}`;
  for (const t of shuffledTriples) yield t;
  for (let i = 0; ; i++) yield `[unused${i}]`;
}

/**
 * The vocabulary of `size` entries: {@link BASE_VOCAB}, then synthetic pieces. Depends on
 * `size` only (not on a model's seed), so models of one size share one tokenizer.
 *
 * @param size - number of entries; at least {@link BASE_VOCAB_SIZE}.
 */
export function buildVocab(size: number = BASE_VOCAB_SIZE): string[] {
  if (!Number.isInteger(size) || size < BASE_VOCAB_SIZE) {
    throw new Error(`vocab size must be an integer >= ${BASE_VOCAB_SIZE}, got ${size}`);
  }
  const vocab = [...BASE_VOCAB];
  const seen = new Set(vocab);
  for (const piece of syntheticPieces()) {
    if (vocab.length >= size) break;
    if (seen.has(piece)) continue;
    seen.add(piece);
    vocab.push(piece);
  }
  return vocab;
}

/** Options of {@link tokenizerFiles} and {@link writeTokenizer}. */
export interface TokenizerOptions {
  /** The vocabulary, in id order, e.g. from {@link buildVocab}. */
  vocab: readonly string[];
  /** Longest input in tokens, special tokens included (`model_max_length`). @defaultValue 512 */
  modelMaxLength?: number;
}

const specialEntries = Object.entries(SPECIAL_TOKEN_IDS) as [keyof typeof SPECIAL_TOKENS, number][];

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * The file contents of a BERT tokenizer, keyed by file name: `tokenizer.json`,
 * `tokenizer_config.json`, `special_tokens_map.json` and `vocab.txt`.
 */
export function tokenizerFiles(options: TokenizerOptions): Record<string, string> {
  const { vocab, modelMaxLength = 512 } = options;
  for (const [key, id] of specialEntries) {
    if (vocab[id] !== SPECIAL_TOKENS[key]) {
      throw new Error(`vocab[${id}] must be ${SPECIAL_TOKENS[key]}, got ${String(vocab[id])}`);
    }
  }
  const { cls, sep } = SPECIAL_TOKEN_IDS;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialEntries.map(([key, id]) => addedToken(id, SPECIAL_TOKENS[key])),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [cls], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [sep], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: SPECIAL_TOKENS.unk,
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((token, id) => [token, id])),
    },
  };
  const specialTokensMap = {
    cls_token: SPECIAL_TOKENS.cls,
    mask_token: SPECIAL_TOKENS.mask,
    pad_token: SPECIAL_TOKENS.pad,
    sep_token: SPECIAL_TOKENS.sep,
    unk_token: SPECIAL_TOKENS.unk,
  };
  const tokenizerConfig = {
    added_tokens_decoder: Object.fromEntries(
      specialEntries.map(([key, id]) => {
        const { id: _id, ...rest } = addedToken(id, SPECIAL_TOKENS[key]);
        return [String(id), rest];
      }),
    ),
    clean_up_tokenization_spaces: true,
    ...specialTokensMap,
    do_basic_tokenize: true,
    do_lower_case: true,
    model_max_length: modelMaxLength,
    never_split: null,
    strip_accents: null,
    tokenize_chinese_chars: true,
    tokenizer_class: 'BertTokenizer',
  };
  return {
    'tokenizer.json': JSON.stringify(tokenizerJson, null, 2) + '\n',
    'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2) + '\n',
    'special_tokens_map.json': JSON.stringify(specialTokensMap, null, 2) + '\n',
    'vocab.txt': vocab.join('\n') + '\n',
  };
}

/** Writes the tokenizer files of {@link tokenizerFiles} into `dir` (created if missing). */
export async function writeTokenizer(dir: string, options: TokenizerOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(tokenizerFiles(options))) {
    await writeFile(join(dir, file), content);
  }
}
