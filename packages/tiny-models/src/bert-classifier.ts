/**
 * Builds a small BERT sequence classifier in the Hugging Face ONNX layout (what Optimum
 * and transformers.js export): `config.json`, tokenizer files and `onnx/model.onnx`, with
 * the exporters' tensor names, so code that runs it runs a real Hub export unchanged.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { attr, ElemType, GraphBuilder } from './onnx-graph.js';
import { fillNormal, streamRng } from './rng.js';
import { BASE_VOCAB_SIZE, buildVocab, SPECIAL_TOKEN_IDS, writeTokenizer } from './wordpiece-tokenizer.js';

/** `problem_type` of a sequence classifier: softmax over labels, or a sigmoid per label. */
export type ProblemType = 'single_label_classification' | 'multi_label_classification';

/** Options of {@link buildBertClassifier}. Defaults are those of {@link TINY_CLASSIFIER}. */
export interface BertClassifierOptions {
  /** Folder to write the model into (created if missing; files in it are overwritten). */
  dir: string;
  /** Seed of the weights: the same seed and sizes give a byte-identical `model.onnx`. @defaultValue 42 */
  seed?: number;
  /** Width of the hidden states (`hidden_size`); a multiple of `numHeads`. @defaultValue 32 */
  hiddenSize?: number;
  /** Number of transformer layers (`num_hidden_layers`). @defaultValue 2 */
  numLayers?: number;
  /** Number of attention heads per layer (`num_attention_heads`). @defaultValue 4 */
  numHeads?: number;
  /** Width of the feed-forward layer (`intermediate_size`). @defaultValue 128 */
  intermediateSize?: number;
  /**
   * Number of vocabulary entries (`vocab_size`), at least {@link BASE_VOCAB_SIZE} (the real
   * words); entries past those are synthetic sub-word pieces.
   * @defaultValue {@link BASE_VOCAB_SIZE}
   */
  vocabSize?: number;
  /** Longest sequence in tokens (`max_position_embeddings`, and the tokenizer's `model_max_length`). @defaultValue 512 */
  maxPositionEmbeddings?: number;
  /** Label names in id order (`id2label`); at least one, no duplicates. @defaultValue ["negative", "positive"] */
  labels?: string[];
  /**
   * `problem_type` written to `config.json`; left out when undefined, which readers take as
   * single-label (softmax).
   * @defaultValue undefined
   */
  problemType?: ProblemType;
  /** Epsilon of every LayerNorm (`layer_norm_eps`). @defaultValue 1e-12 */
  layerNormEps?: number;
  /**
   * `none`: a bare `BertModel` whose output is `last_hidden_state` `[batch, seq, hidden]`
   * (what sentence-transformers exports), instead of the pooler and classifier.
   * @defaultValue 'classifier'
   */
  head?: 'classifier' | 'none';
}

/** The sizes and labels of a model: {@link BertClassifierOptions} without `dir`. */
export type BertClassifierPreset = Omit<BertClassifierOptions, 'dir'>;

/** A tiny classifier for tests: 2 layers x 32 wide, 4 heads; about 0.3 MB on disk. */
export const TINY_CLASSIFIER = Object.freeze({
  seed: 42,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 4,
  intermediateSize: 128,
  vocabSize: BASE_VOCAB_SIZE,
  maxPositionEmbeddings: 512,
  labels: ['negative', 'positive'],
  layerNormEps: 1e-12,
}) satisfies Required<Omit<BertClassifierPreset, 'problemType' | 'head'>>;

/**
 * A classifier of honest size for benchmarks: 6 layers x 384 wide, 12 heads, FFN 1536,
 * 30,522 vocabulary entries (as bert-base-uncased), 512 positions; about 90 MB on disk,
 * close to a MiniLM-L6 sentence classifier.
 */
export const BENCH_CLASSIFIER = Object.freeze({
  ...TINY_CLASSIFIER,
  hiddenSize: 384,
  numLayers: 6,
  numHeads: 12,
  intermediateSize: 1536,
  vocabSize: 30522,
}) satisfies BertClassifierPreset;

/**
 * A tiny NLI classifier for zero-shot classification: the tiny classifier with MNLI's
 * labels (`contradiction`, `neutral`, `entailment`, in that id order, as
 * `facebook/bart-large-mnli` has them) and its own seed. Random weights: the labels mean
 * nothing, but the scores depend on premise and hypothesis.
 */
export const TINY_NLI = Object.freeze({
  ...TINY_CLASSIFIER,
  seed: 1234,
  labels: ['contradiction', 'neutral', 'entailment'],
}) satisfies BertClassifierPreset;

/** `transformers_version` written to `config.json`, as an export from that version would. */
export const TRANSFORMERS_VERSION = '4.46.3';

type ResolvedPreset = Required<Omit<BertClassifierPreset, 'problemType' | 'head'>> & Pick<BertClassifierPreset, 'problemType' | 'head'>;

/** Merges the defaults in, then checks the result. */
function resolvePreset(preset: BertClassifierPreset): ResolvedPreset {
  const o: ResolvedPreset = { ...TINY_CLASSIFIER, labels: [...TINY_CLASSIFIER.labels], ...stripUndefined(preset) };
  const positive = ['hiddenSize', 'numLayers', 'numHeads', 'intermediateSize', 'maxPositionEmbeddings'] as const;
  for (const key of positive) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new Error(`${key} must be a positive integer, got ${o[key]}`);
  }
  if (o.hiddenSize % o.numHeads !== 0) {
    throw new Error(`hiddenSize (${o.hiddenSize}) must be a multiple of numHeads (${o.numHeads})`);
  }
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < BASE_VOCAB_SIZE) {
    throw new Error(`vocabSize must be an integer >= ${BASE_VOCAB_SIZE} (the real word list), got ${o.vocabSize}`);
  }
  if (!Number.isInteger(o.seed)) throw new Error(`seed must be an integer, got ${o.seed}`);
  if (o.labels.length === 0) throw new Error('labels must name at least one label');
  if (new Set(o.labels).size !== o.labels.length) throw new Error(`labels must be unique, got ${o.labels.join(', ')}`);
  if (!(o.layerNormEps > 0)) throw new Error(`layerNormEps must be > 0, got ${o.layerNormEps}`);
  return o;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The `config.json` of a model built with these sizes and labels. */
export function bertClassifierConfig(preset: BertClassifierPreset = {}): Record<string, unknown> {
  const o = resolvePreset(preset);
  return {
    architectures: ['BertForSequenceClassification'],
    attention_probs_dropout_prob: 0.1,
    classifier_dropout: null,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    hidden_size: o.hiddenSize,
    id2label: Object.fromEntries(o.labels.map((label, id) => [String(id), label])),
    initializer_range: 0.02,
    intermediate_size: o.intermediateSize,
    label2id: Object.fromEntries(o.labels.map((label, id) => [label, id])),
    layer_norm_eps: o.layerNormEps,
    max_position_embeddings: o.maxPositionEmbeddings,
    model_type: 'bert',
    num_attention_heads: o.numHeads,
    num_hidden_layers: o.numLayers,
    pad_token_id: SPECIAL_TOKEN_IDS.pad,
    position_embedding_type: 'absolute',
    ...(o.problemType === undefined ? {} : { problem_type: o.problemType }),
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    type_vocab_size: 2,
    use_cache: true,
    vocab_size: o.vocabSize,
  };
}

/**
 * Gain of linear-layer initialisation: weights are normal(0, LINEAR_GAIN / sqrt(fan_in)).
 * Chosen by measurement: with 1 the [CLS] state barely depends on the other tokens and
 * every text scores about the same; with 2 scores spread over roughly 0.1 to 0.9
 * (tiny) and 0.2 to 0.7 (bench) without saturating. For the bench model that is a std
 * of 0.10 (fan-in 384) and 0.05 (fan-in 1536), within what trained BERTs show.
 */
const LINEAR_GAIN = 2;

/** Largest negative float32, which HF adds to the scores of masked positions. */
const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * The bytes of `onnx/model.onnx` for these sizes, labels and seed.
 *
 * Inputs `input_ids`, `attention_mask`, `token_type_ids`: int64 `[batch_size, sequence_length]`.
 * Output `logits`: float32 `[batch_size, num_labels]`.
 *
 * Weights of linear layers are stored `[in, out]` (already transposed for `MatMul`, as
 * exporters store them). Initialisation: embeddings normal(0, 0.02) as BERT; linear
 * weights normal(0, 2/sqrt(fan_in)) so attention is far from uniform and the logits of a
 * random model differ from input to input; linear biases normal(0, 0.02); LayerNorm
 * weight 1, bias 0.
 */
export function bertClassifierOnnx(preset: BertClassifierPreset = {}): Uint8Array {
  const o = resolvePreset(preset);
  const H = o.hiddenSize;
  const headSize = H / o.numHeads;
  const g = new GraphBuilder('main_graph');
  const normal = (name: string, dims: number[], std: number): string => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    return g.float(name, fillNormal(data, streamRng(o.seed, name), std), dims);
  };
  const filled = (name: string, size: number, value: number): string => g.float(name, new Float32Array(size).fill(value), [size]);
  const linear = (scope: string, input: string, inSize: number, outSize: number, prefix: string, output?: string): string => {
    const w = normal(`${prefix}.weight`, [inSize, outSize], LINEAR_GAIN / Math.sqrt(inSize));
    const b = normal(`${prefix}.bias`, [outSize], 0.02);
    const mm = g.node('MatMul', [input, w], { name: `${scope}/MatMul` });
    return g.node('Add', [mm, b], { name: `${scope}/Add`, ...(output ? { output } : {}) });
  };
  const layerNorm = (scope: string, input: string, prefix: string): string =>
    g.node('LayerNormalization', [input, filled(`${prefix}.weight`, H, 1), filled(`${prefix}.bias`, H, 0)], {
      name: `${scope}/LayerNormalization`,
      attrs: { axis: attr.int(-1), epsilon: attr.float(o.layerNormEps) },
    });

  const dims = ['batch_size', 'sequence_length'];
  const inputIds = g.input('input_ids', ElemType.int64, dims);
  const attentionMask = g.input('attention_mask', ElemType.int64, dims);
  const tokenTypeIds = g.input('token_type_ids', ElemType.int64, dims);
  if (o.head === 'none') g.output('last_hidden_state', ElemType.float32, ['batch_size', 'sequence_length', H]);
  else g.output('logits', ElemType.float32, ['batch_size', o.labels.length]);

  // Embeddings: word + token type + position (position ids 0..seq-1 built in the graph).
  const emb = '/bert/embeddings';
  const wordTable = normal('bert.embeddings.word_embeddings.weight', [o.vocabSize, H], 0.02);
  const positionTable = normal('bert.embeddings.position_embeddings.weight', [o.maxPositionEmbeddings, H], 0.02);
  const typeTable = normal('bert.embeddings.token_type_embeddings.weight', [2, H], 0.02);
  const words = g.node('Gather', [wordTable, inputIds], { name: `${emb}/word_embeddings/Gather` });
  const types = g.node('Gather', [typeTable, tokenTypeIds], { name: `${emb}/token_type_embeddings/Gather` });
  const shape = g.node('Shape', [inputIds], { name: `${emb}/Shape` });
  const seqLen = g.node('Gather', [shape, g.ints(1)], { name: `${emb}/Gather`, attrs: { axis: attr.int(0) } });
  const range = g.node('Range', [g.ints(0), seqLen, g.ints(1)], { name: `${emb}/Range` });
  const positionIds = g.node('Unsqueeze', [range, g.ints([0])], { name: `${emb}/Unsqueeze` });
  const positions = g.node('Gather', [positionTable, positionIds], { name: `${emb}/position_embeddings/Gather` });
  const wordsTypes = g.node('Add', [words, types], { name: `${emb}/Add` });
  const embSum = g.node('Add', [wordsTypes, positions], { name: `${emb}/Add_1` });
  let hidden = layerNorm(`${emb}/LayerNorm`, embSum, 'bert.embeddings.LayerNorm');

  // Additive mask [batch, 1, 1, seq]: 0 where attention_mask is 1, float32 min where 0.
  const maskFloat = g.node('Cast', [attentionMask], { name: '/bert/Cast', attrs: { to: attr.int(ElemType.float32) } });
  const mask4d = g.node('Unsqueeze', [maskFloat, g.ints([1, 2])], { name: '/bert/Unsqueeze' });
  const inverted = g.node('Sub', [g.scalar(1), mask4d], { name: '/bert/Sub' });
  const extendedMask = g.node('Mul', [inverted, g.scalar(FLOAT32_MIN)], { name: '/bert/Mul' });

  const splitHeads = g.ints([0, 0, o.numHeads, headSize]);
  const mergeHeads = g.ints([0, 0, H]);
  for (let i = 0; i < o.numLayers; i++) {
    const scope = `/bert/encoder/layer.${i}`;
    const prefix = `bert.encoder.layer.${i}`;
    const att = `${scope}/attention/self`;
    const heads = (which: string, perm: number[]): string => {
      const x = linear(`${att}/${which}`, hidden, H, H, `${prefix}.attention.self.${which}`);
      const r = g.node('Reshape', [x, splitHeads], { name: `${att}/${which}/Reshape` });
      return g.node('Transpose', [r], { name: `${att}/${which}/Transpose`, attrs: { perm: attr.ints(perm) } });
    };
    const q = heads('query', [0, 2, 1, 3]); // [batch, heads, seq, headSize]
    const kT = heads('key', [0, 2, 3, 1]); // [batch, heads, headSize, seq]
    const v = heads('value', [0, 2, 1, 3]);
    const scores = g.node('MatMul', [q, kT], { name: `${att}/MatMul` }); // [batch, heads, seq, seq]
    const scaled = g.node('Div', [scores, g.scalar(Math.sqrt(headSize))], { name: `${att}/Div` });
    const masked = g.node('Add', [scaled, extendedMask], { name: `${att}/Add` });
    const probs = g.node('Softmax', [masked], { name: `${att}/Softmax`, attrs: { axis: attr.int(-1) } });
    const context = g.node('MatMul', [probs, v], { name: `${att}/MatMul_1` });
    const contextT = g.node('Transpose', [context], { name: `${att}/Transpose`, attrs: { perm: attr.ints([0, 2, 1, 3]) } });
    const merged = g.node('Reshape', [contextT, mergeHeads], { name: `${att}/Reshape` });
    const attOut = linear(`${scope}/attention/output/dense`, merged, H, H, `${prefix}.attention.output.dense`);
    const attResidual = g.node('Add', [attOut, hidden], { name: `${scope}/attention/output/Add` });
    const attNorm = layerNorm(`${scope}/attention/output/LayerNorm`, attResidual, `${prefix}.attention.output.LayerNorm`);

    // Feed-forward with exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))).
    const ffn = `${scope}/intermediate`;
    const inter = linear(`${ffn}/dense`, attNorm, H, o.intermediateSize, `${prefix}.intermediate.dense`);
    const div = g.node('Div', [inter, g.scalar(Math.SQRT2)], { name: `${ffn}/intermediate_act_fn/Div` });
    const erf = g.node('Erf', [div], { name: `${ffn}/intermediate_act_fn/Erf` });
    const plusOne = g.node('Add', [erf, g.scalar(1)], { name: `${ffn}/intermediate_act_fn/Add` });
    const times = g.node('Mul', [inter, plusOne], { name: `${ffn}/intermediate_act_fn/Mul` });
    const gelu = g.node('Mul', [times, g.scalar(0.5)], { name: `${ffn}/intermediate_act_fn/Mul_1` });
    const out = linear(`${scope}/output/dense`, gelu, o.intermediateSize, H, `${prefix}.output.dense`);
    const outResidual = g.node('Add', [out, attNorm], { name: `${scope}/output/Add` });
    hidden = layerNorm(`${scope}/output/LayerNorm`, outResidual, `${prefix}.output.LayerNorm`);
  }

  if (o.head === 'none') {
    g.node('Identity', [hidden], { name: '/bert/Identity', output: 'last_hidden_state' });
    return g.toModelBytes({ docString: `BertModel built by @inferq/tiny-models (seed ${o.seed}, random weights)` });
  }

  // Pooler: hidden state of the first token ([CLS]) -> dense -> tanh; then the classifier.
  const first = g.node('Gather', [hidden, g.ints(0)], { name: '/bert/pooler/Gather', attrs: { axis: attr.int(1) } });
  const pooledDense = linear('/bert/pooler/dense', first, H, H, 'bert.pooler.dense');
  const pooled = g.node('Tanh', [pooledDense], { name: '/bert/pooler/activation/Tanh' });
  linear('/classifier', pooled, H, o.labels.length, 'classifier', 'logits');

  return g.toModelBytes({
    docString: `BertForSequenceClassification built by @inferq/tiny-models (seed ${o.seed}, random weights)`,
  });
}

/**
 * Writes a BERT sequence classifier into `options.dir`: `config.json`, `tokenizer.json`,
 * `tokenizer_config.json`, `special_tokens_map.json`, `vocab.txt` and `onnx/model.onnx`.
 * Its weights are random (from `seed`), so its labels mean nothing, but its outputs
 * depend on every token, on token order and on the attention mask, as a real model's do.
 */
export async function buildBertClassifier(options: BertClassifierOptions): Promise<void> {
  const { dir, ...preset } = options;
  if (!dir) throw new Error('buildBertClassifier: dir is required');
  const o = resolvePreset(preset);
  const model = bertClassifierOnnx(o);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(bertClassifierConfig(o), null, 2) + '\n');
  await writeTokenizer(dir, { vocab: buildVocab(o.vocabSize), modelMaxLength: o.maxPositionEmbeddings });
  await writeFile(join(dir, 'onnx', 'model.onnx'), model);
}
