/**
 * A SentencePiece BPE tokenizer in the layout Llama-2, Mistral and Phi-3 ship (the
 * `tokenizers` conversion of a SentencePiece model, "legacy" Llama): spaces become `▁`
 * and one `▁` is prepended (normalizer), characters without a piece fall back to byte
 * tokens `<0xNN>`, the post-processor adds `<s>`, and the decoder turns `▁` back into
 * spaces and strips the one leading space. Decoding the new tokens alone therefore loses
 * the space before the first word, which is why Python's pipeline decodes prompt + new
 * tokens and cuts the decoded prompt.
 *
 * Files: `tokenizer.json` and `tokenizer_config.json` (`LlamaTokenizer`, `add_bos_token`).
 * Vocabulary: `<unk>` 0, `<s>` 1, `</s>` 2, the 256 byte tokens, `▁` and printable ASCII,
 * then the pieces of the merges learned by {@link learnMerges} (their `Ġ` read as `▁`),
 * then the extra special tokens.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { learnMerges } from './byte-level-bpe.js';

/** Options of {@link sentencePieceBpeFiles}. */
export interface SentencePieceBpeOptions {
  /** Merges to learn (fewer when a merge would need a non-ASCII symbol). */
  merges: number;
  /** Special tokens after the pieces (`<|im_end|>`, ...). @defaultValue [] */
  extraSpecials?: string[];
  /** `add_bos_token` of `tokenizer_config.json` (the post-processor adds `<s>` either way). @defaultValue true */
  addBosToken?: boolean;
  /** Longest input in tokens (`model_max_length`). @defaultValue 2048 */
  modelMaxLength?: number;
  /** Extra `tokenizer_config.json` entries (`chat_template`, ...). @defaultValue {} */
  extraConfig?: Record<string, unknown>;
}

const SPACE = '\u2581';

/** The vocabulary in id order and the merges (as pieces) of a tokenizer built with these options. */
export function sentencePieceBpeVocab(options: Pick<SentencePieceBpeOptions, 'merges' | 'extraSpecials'>): {
  vocab: string[];
  merges: [string, string][];
} {
  const chars = [SPACE];
  for (let c = 0x21; c <= 0x7e; c++) chars.push(String.fromCharCode(c));
  const known = new Set(chars);
  const merges: [string, string][] = [];
  for (const [a, b] of learnMerges(options.merges)) {
    const pa = a.replaceAll('Ġ', SPACE);
    const pb = b.replaceAll('Ġ', SPACE);
    if (!known.has(pa) || !known.has(pb) || known.has(pa + pb)) continue;
    merges.push([pa, pb]);
    known.add(pa + pb);
  }
  const bytes = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const vocab = ['<unk>', '<s>', '</s>', ...bytes, ...chars, ...merges.map(([a, b]) => a + b), ...(options.extraSpecials ?? [])];
  if (new Set(vocab).size !== vocab.length) throw new Error('sentencepiece-bpe: the vocabulary has duplicate entries');
  return { vocab, merges };
}

/** The file contents of the tokenizer, keyed by file name. */
export function sentencePieceBpeFiles(options: SentencePieceBpeOptions): Record<string, string> {
  const { vocab, merges } = sentencePieceBpeVocab(options);
  const ids = new Map(vocab.map((t, i) => [t, i]));
  const specials = ['<unk>', '<s>', '</s>', ...(options.extraSpecials ?? [])];
  const added = specials.map((content) => ({
    id: ids.get(content) as number,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(ids),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: options.addBosToken ?? true,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    bos_token: '<s>',
    clean_up_tokenization_spaces: false,
    eos_token: '</s>',
    legacy: true,
    model_max_length: options.modelMaxLength ?? 2048,
    pad_token: null,
    padding_side: 'left',
    sp_model_kwargs: {},
    tokenizer_class: 'LlamaTokenizer',
    unk_token: '<unk>',
    ...(options.extraConfig ?? {}),
  };
  return {
    'tokenizer.json': JSON.stringify(tokenizerJson, null, 2) + '\n',
    'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2) + '\n',
    'special_tokens_map.json': JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' }, null, 2) + '\n',
  };
}

/** Writes the files of {@link sentencePieceBpeFiles} into `dir` (created if missing). */
export async function writeSentencePieceBpe(dir: string, options: SentencePieceBpeOptions): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(sentencePieceBpeFiles(options))) await writeFile(join(dir, file), content);
}
