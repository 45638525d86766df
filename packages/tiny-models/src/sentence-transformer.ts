/**
 * Builds a tiny sentence-transformers model in the layout its ONNX exports have on the Hub
 * (`Xenova/all-MiniLM-L6-v2`, `BAAI/bge-small-en-v1.5`): a bare `BertModel` at
 * `onnx/model.onnx` whose output is `last_hidden_state`, `modules.json` (Transformer,
 * Pooling, Normalize), `1_Pooling/config.json`, `config_sentence_transformers.json` (with
 * prompts) and `sentence_bert_config.json`, next to the usual config and tokenizer files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_CLASSIFIER, bertClassifierConfig, bertClassifierOnnx, TINY_CLASSIFIER, type BertClassifierPreset } from './bert-classifier.js';
import { buildVocab, writeTokenizer } from './wordpiece-tokenizer.js';

/** The pooling a sentence-transformers model declares in `1_Pooling/config.json`. */
export type SentencePooling = 'mean' | 'cls' | 'max' | 'last_token';

/** Options of {@link buildSentenceTransformer}. */
export interface SentenceTransformerOptions extends Omit<BertClassifierPreset, 'labels' | 'problemType' | 'head'> {
  /** Folder to write the model into (created if missing). */
  dir: string;
  /** The pooling written to `1_Pooling/config.json`. @defaultValue 'mean' */
  pooling?: SentencePooling;
  /** List a `Normalize` module in `modules.json`. @defaultValue true */
  normalize?: boolean;
  /** `max_seq_length` of `sentence_bert_config.json`: longer inputs are cut to it. @defaultValue 256 */
  maxSeqLength?: number;
}

/** The sizes of a model: {@link SentenceTransformerOptions} without `dir`. */
export type SentenceTransformerPreset = Omit<SentenceTransformerOptions, 'dir'>;

/** Tiny sentence-transformers model, mean pooling: 2 layers x 32 wide, the tiny classifier's encoder with its own seed. */
export const TINY_EMBEDDINGS: SentenceTransformerPreset = Object.freeze({ ...TINY_CLASSIFIER, seed: 7, pooling: 'mean' as const });
/** The same encoder sizes with CLS pooling (as `BAAI/bge-*` exports). */
export const TINY_EMBEDDINGS_CLS: SentenceTransformerPreset = Object.freeze({ ...TINY_CLASSIFIER, seed: 8, pooling: 'cls' as const });

/** A bench-sized sentence-transformers model: the bench classifier's encoder (6 x 384, 30,522 tokens, as all-MiniLM-L6-v2), mean pooling. */
export const BENCH_EMBEDDINGS: SentenceTransformerPreset = Object.freeze({ ...BENCH_CLASSIFIER, seed: 9, pooling: 'mean' as const });

/** Prompts written to `config_sentence_transformers.json` (as E5-style models name them). */
export const TINY_EMBEDDING_PROMPTS = Object.freeze({ query: 'query: ', passage: 'passage: ' });

/** `1_Pooling/config.json` for one pooling mode. */
export function poolingConfig(width: number, pooling: SentencePooling): Record<string, unknown> {
  return {
    word_embedding_dimension: width,
    pooling_mode_cls_token: pooling === 'cls',
    pooling_mode_mean_tokens: pooling === 'mean',
    pooling_mode_max_tokens: pooling === 'max',
    pooling_mode_mean_sqrt_len_tokens: false,
    pooling_mode_weightedmean_tokens: false,
    pooling_mode_lasttoken: pooling === 'last_token',
    include_prompt: true,
  };
}

/** `modules.json` of a Transformer -> Pooling (-> Normalize) model. */
export function modulesJson(normalize: boolean): Record<string, unknown>[] {
  const modules: Record<string, unknown>[] = [
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
  ];
  if (normalize) modules.push({ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' });
  return modules;
}

/** Writes the sentence-transformers files (not the encoder) of a model `width` wide. */
export async function writeSentenceTransformerFiles(
  dir: string,
  options: { width: number; pooling: SentencePooling; normalize: boolean; maxSeqLength: number; prompts?: Record<string, string> },
): Promise<void> {
  const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
  await mkdir(join(dir, '1_Pooling'), { recursive: true });
  await writeFile(join(dir, 'modules.json'), json(modulesJson(options.normalize)));
  await writeFile(join(dir, '1_Pooling', 'config.json'), json(poolingConfig(options.width, options.pooling)));
  if (options.normalize) await mkdir(join(dir, '2_Normalize'), { recursive: true });
  await writeFile(join(dir, 'sentence_bert_config.json'), json({ max_seq_length: options.maxSeqLength, do_lower_case: false }));
  await writeFile(
    join(dir, 'config_sentence_transformers.json'),
    json({
      __version__: { sentence_transformers: '3.3.1', transformers: '4.46.3', pytorch: '2.5.1' },
      prompts: options.prompts ?? {},
      default_prompt_name: null,
      similarity_fn_name: 'cosine',
    }),
  );
}

/** Writes a tiny sentence-transformers model (random weights) into `options.dir`. */
export async function buildSentenceTransformer(options: SentenceTransformerOptions): Promise<void> {
  const { dir, pooling = 'mean', normalize = true, maxSeqLength = 256, ...sizes } = options;
  if (!dir) throw new Error('buildSentenceTransformer: dir is required');
  const preset: BertClassifierPreset = { ...sizes, head: 'none' };
  const { id2label: _i, label2id: _l, ...config } = bertClassifierConfig(preset);
  const width = Number(config.hidden_size);
  const model = bertClassifierOnnx(preset);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['BertModel'] }, null, 2) + '\n');
  await writeTokenizer(dir, { vocab: buildVocab(Number(config.vocab_size)), modelMaxLength: Number(config.max_position_embeddings) });
  await writeSentenceTransformerFiles(dir, { width, pooling, normalize, maxSeqLength, prompts: TINY_EMBEDDING_PROMPTS });
  await writeFile(join(dir, 'onnx', 'model.onnx'), model);
}
