/**
 * A linear bag-of-words text classifier in the Hugging Face ONNX layout of a
 * `BertForSequenceClassification` export: same files (`config.json`, WordPiece tokenizer
 * files, `onnx/model.onnx`), same inputs (`input_ids`, `attention_mask`, `token_type_ids`)
 * and output (`logits`), so inferq serves it as it serves any export. Inside, no
 * transformer: every token adds its row of a weight table to the logits.
 *
 * The graph, for `input_ids` `[batch, seq]`:
 * - `perToken = W[input_ids]` `[batch, seq, labels]`;
 * - with negation: a token within `window` tokens after a negator (`not`, the `t` of
 *   `don't`), with no breaker (`.`, `but`) between, takes its row of the negated table
 *   instead: `perToken = W[ids] + inScope * (Wneg[ids] - W[ids])`;
 * - with phrases: each listed two-token phrase (`log in`) adds its own row where its
 *   second token follows its first;
 * - `logits = sum over seq of (perToken * attention_mask) + bias` `[batch, labels]`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TRANSFORMERS_VERSION } from './bert-classifier.js';
import { attr, ElemType, GraphBuilder } from './onnx-graph.js';
import { SPECIAL_TOKEN_IDS, writeTokenizer } from './wordpiece-tokenizer.js';

/** How negation changes the weights of the tokens after a negator. */
export interface NegationOptions {
  /** Tokens that open a negation scope, e.g. `not`, `never`, `t` (of `don't`, split as `don ' t`). */
  negators: readonly string[];
  /** Tokens that close a scope before its end, e.g. `.`, `,`, `but`. */
  breakers: readonly string[];
  /** How many tokens after a negator are in its scope (the negator itself is not). */
  window: number;
  /** Weights of a token within a scope, row-major `[vocab, labels]`, as {@link LinearTextClassifierOptions.weights}. */
  weights: Float32Array;
}

/** A two-token phrase with its own weights, added where `second` directly follows `first`. */
export interface PhraseWeights {
  /** The two tokens, each a vocabulary entry: `['log', 'in']`. */
  tokens: readonly [string, string];
  /** One weight per label. */
  weights: readonly number[];
}

/** The model a linear classifier folder holds: {@link LinearTextClassifierOptions} without `dir`. */
export interface LinearTextClassifierSpec {
  /** The vocabulary in id order; entries 0 to 4 are `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`. */
  vocab: readonly string[];
  /** Label names in id order (`id2label`). */
  labels: readonly string[];
  /** Weight of each token for each label, row-major `[vocab, labels]`. */
  weights: Float32Array;
  /** One bias per label, added to the logits. */
  bias: readonly number[];
  /** Negation scopes; none when left out. @defaultValue undefined */
  negation?: NegationOptions;
  /** Two-token phrases with weights of their own. @defaultValue [] */
  phrases?: readonly PhraseWeights[];
  /** Longest input in tokens (`max_position_embeddings`, `model_max_length`). @defaultValue 512 */
  maxLength?: number;
  /** A line on what the model is, stored in the ONNX `doc_string` and `config.json`. @defaultValue "" */
  description?: string;
}

/** Options of {@link buildLinearTextClassifier}. */
export interface LinearTextClassifierOptions extends LinearTextClassifierSpec {
  /** Folder to write the model into (created if missing; files in it are overwritten). */
  dir: string;
}

/** Checks a spec's sizes and names; returns the id of every vocabulary entry. */
function checkSpec(spec: LinearTextClassifierSpec): Map<string, number> {
  const { vocab, labels, weights, bias, negation, phrases = [] } = spec;
  const ids = new Map(vocab.map((token, id) => [token, id]));
  if (ids.size !== vocab.length) throw new Error('linear classifier: the vocabulary has duplicate entries');
  if (labels.length === 0) throw new Error('linear classifier: labels must name at least one label');
  if (new Set(labels).size !== labels.length) throw new Error(`linear classifier: labels must be unique, got ${labels.join(', ')}`);
  const cells = vocab.length * labels.length;
  if (weights.length !== cells) throw new Error(`linear classifier: weights has ${weights.length} values, [vocab, labels] needs ${cells}`);
  if (bias.length !== labels.length) throw new Error(`linear classifier: bias has ${bias.length} values, need ${labels.length}`);
  if (negation) {
    if (negation.weights.length !== cells) {
      throw new Error(`linear classifier: negated weights have ${negation.weights.length} values, need ${cells}`);
    }
    if (!Number.isInteger(negation.window) || negation.window < 1) {
      throw new Error(`linear classifier: negation window must be a positive integer, got ${negation.window}`);
    }
    for (const token of [...negation.negators, ...negation.breakers]) {
      if (!ids.has(token)) throw new Error(`linear classifier: negation token "${token}" is not in the vocabulary`);
    }
  }
  for (const phrase of phrases) {
    for (const token of phrase.tokens) {
      if (!ids.has(token)) throw new Error(`linear classifier: phrase token "${token}" is not in the vocabulary`);
    }
    if (phrase.weights.length !== labels.length) {
      throw new Error(`linear classifier: phrase "${phrase.tokens.join(' ')}" has ${phrase.weights.length} weights, need ${labels.length}`);
    }
  }
  return ids;
}

/** A float32 `[vocab]` table that is 1 at the given tokens' ids and 0 elsewhere. */
function indicator(ids: Map<string, number>, size: number, tokens: readonly string[]): Float32Array {
  const table = new Float32Array(size);
  for (const token of tokens) table[ids.get(token) as number] = 1;
  return table;
}

/**
 * The bytes of `onnx/model.onnx` of a linear classifier.
 *
 * Inputs `input_ids`, `attention_mask`, `token_type_ids`: int64 `[batch_size, sequence_length]`
 * (`token_type_ids` is read, as BERT's are, through a table of zeros: a linear model has no
 * use for segments). Output `logits`: float32 `[batch_size, num_labels]`.
 */
export function linearTextClassifierOnnx(spec: LinearTextClassifierSpec): Uint8Array {
  const ids = checkSpec(spec);
  const V = spec.vocab.length;
  const L = spec.labels.length;
  const g = new GraphBuilder('main_graph');
  const dims = ['batch_size', 'sequence_length'];
  const inputIds = g.input('input_ids', ElemType.int64, dims);
  const attentionMask = g.input('attention_mask', ElemType.int64, dims);
  const tokenTypeIds = g.input('token_type_ids', ElemType.int64, dims);
  g.output('logits', ElemType.float32, ['batch_size', L]);

  /** `x` `[batch, seq]` moved `k` positions right along the sequence, zeros coming in: `out[:, i] = x[:, i - k]`. */
  const shiftRight = (x: string, k: number, scope: string): string => {
    const padded = g.node('Pad', [x, g.ints([0, k, 0, 0])], { name: `${scope}/Pad` });
    return g.node('Slice', [padded, g.ints([0]), g.ints([-k]), g.ints([1])], { name: `${scope}/Slice` });
  };

  const table = g.float('classifier.token_weights', spec.weights, [V, L]);
  let perToken = g.node('Gather', [table, inputIds], { name: '/classifier/token_weights/Gather' }); // [batch, seq, L]

  // Token types: a [2, L] table of zeros, so the input is used as exporters' graphs use it.
  const typeTable = g.float('classifier.token_type_weights', new Float32Array(2 * L), [2, L]);
  const types = g.node('Gather', [typeTable, tokenTypeIds], { name: '/classifier/token_type_weights/Gather' });
  perToken = g.node('Add', [perToken, types], { name: '/classifier/Add_types' });

  if (spec.negation) {
    const n = spec.negation;
    const negTable = g.float('classifier.negated_token_weights', n.weights, [V, L]);
    const negated = g.node('Gather', [negTable, inputIds], { name: '/negation/negated_weights/Gather' });
    const isNegator = g.node('Gather', [g.float('negation.negators', indicator(ids, V, n.negators), [V]), inputIds], {
      name: '/negation/negators/Gather',
    });
    const isBreaker = g.node('Gather', [g.float('negation.breakers', indicator(ids, V, n.breakers), [V]), inputIds], {
      name: '/negation/breakers/Gather',
    });
    const open = g.node('Sub', [g.scalar(1), isBreaker], { name: '/negation/open' }); // 1 where no breaker
    // inScope[i] = max over k in 1..window of negator[i-k] * prod over m in 1..k-1 of open[i-m].
    let inScope = '';
    let openSince = '';
    for (let k = 1; k <= n.window; k++) {
      if (k > 1) {
        const openAt = shiftRight(open, k - 1, `/negation/open_${k - 1}`);
        openSince = k === 2 ? openAt : g.node('Mul', [openSince, openAt], { name: `/negation/open_since_${k}` });
      }
      const negatorAt = shiftRight(isNegator, k, `/negation/negator_${k}`);
      const reach = k === 1 ? negatorAt : g.node('Mul', [negatorAt, openSince], { name: `/negation/reach_${k}` });
      inScope = k === 1 ? reach : g.node('Max', [inScope, reach], { name: `/negation/in_scope_${k}` });
    }
    const scope3d = g.node('Unsqueeze', [inScope, g.ints([2])], { name: '/negation/Unsqueeze' });
    const delta = g.node('Sub', [negated, perToken], { name: '/negation/Sub' });
    const change = g.node('Mul', [delta, scope3d], { name: '/negation/Mul' });
    perToken = g.node('Add', [perToken, change], { name: '/negation/Add' });
  }

  const phrases = spec.phrases ?? [];
  if (phrases.length > 0) {
    // A pair's code is previous_id * V + id; each phrase matches one code exactly.
    const previous = shiftRight(inputIds, 1, '/phrases/previous');
    const scaled = g.node('Mul', [previous, g.ints(V)], { name: '/phrases/Mul' });
    const code = g.node('Add', [scaled, inputIds], { name: '/phrases/Add' });
    const code3d = g.node('Unsqueeze', [code, g.ints([2])], { name: '/phrases/Unsqueeze' });
    const codes = g.int64(
      'phrases.codes',
      phrases.map((p) => (ids.get(p.tokens[0]) as number) * V + (ids.get(p.tokens[1]) as number)),
    );
    const matches = g.node('Equal', [code3d, codes], { name: '/phrases/Equal' }); // [batch, seq, K]
    const matchesFloat = g.node('Cast', [matches], { name: '/phrases/Cast', attrs: { to: attr.int(ElemType.float32) } });
    const phraseTable = g.float('phrases.weights', Float32Array.from(phrases.flatMap((p) => [...p.weights])), [phrases.length, L]);
    const phraseWeights = g.node('MatMul', [matchesFloat, phraseTable], { name: '/phrases/MatMul' });
    perToken = g.node('Add', [perToken, phraseWeights], { name: '/phrases/Add_weights' });
  }

  const maskFloat = g.node('Cast', [attentionMask], { name: '/pool/Cast', attrs: { to: attr.int(ElemType.float32) } });
  const mask3d = g.node('Unsqueeze', [maskFloat, g.ints([2])], { name: '/pool/Unsqueeze' });
  const masked = g.node('Mul', [perToken, mask3d], { name: '/pool/Mul' });
  const summed = g.node('ReduceSum', [masked, g.ints([1])], { name: '/pool/ReduceSum', attrs: { keepdims: attr.int(0) } });
  const bias = g.float('classifier.bias', Float32Array.from(spec.bias), [L]);
  g.node('Add', [summed, bias], { name: '/classifier/Add', output: 'logits' });

  return g.toModelBytes({ docString: spec.description ?? '' });
}

/**
 * The `config.json` of a linear classifier: a `BertForSequenceClassification` config, as
 * readers (inferq, transformers.js) expect, with the sizes that describe this model (no
 * transformer layer; each token's "hidden state" is its row of label weights).
 */
export function linearTextClassifierConfig(spec: Pick<LinearTextClassifierSpec, 'vocab' | 'labels' | 'maxLength' | 'description'>): Record<string, unknown> {
  const { vocab, labels, maxLength = 512, description } = spec;
  return {
    architectures: ['BertForSequenceClassification'],
    hidden_size: labels.length,
    id2label: Object.fromEntries(labels.map((label, id) => [String(id), label])),
    ...(description ? { inferq_description: description } : {}),
    intermediate_size: 0,
    label2id: Object.fromEntries(labels.map((label, id) => [label, id])),
    max_position_embeddings: maxLength,
    model_type: 'bert',
    num_attention_heads: 1,
    num_hidden_layers: 0,
    pad_token_id: SPECIAL_TOKEN_IDS.pad,
    problem_type: 'single_label_classification',
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    type_vocab_size: 2,
    vocab_size: vocab.length,
  };
}

/**
 * Writes a linear classifier into `options.dir`: `config.json`, `tokenizer.json`,
 * `tokenizer_config.json`, `special_tokens_map.json`, `vocab.txt` and, last,
 * `onnx/model.onnx`.
 */
export async function buildLinearTextClassifier(options: LinearTextClassifierOptions): Promise<void> {
  const { dir, ...spec } = options;
  if (!dir) throw new Error('buildLinearTextClassifier: dir is required');
  const model = linearTextClassifierOnnx(spec);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(linearTextClassifierConfig(spec), null, 2) + '\n');
  await writeTokenizer(dir, { vocab: spec.vocab, modelMaxLength: spec.maxLength ?? 512 });
  await writeFile(join(dir, 'onnx', 'model.onnx'), model);
}
