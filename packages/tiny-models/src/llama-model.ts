/**
 * Builds a small Llama decoder-only LM (`LlamaForCausalLM`) in the layout Optimum exports
 * and transformers.js runs: `onnx/model.onnx` with a KV cache, `config.json`,
 * `generation_config.json`, and a byte-level BPE tokenizer with a ChatML chat template
 * (as SmolLM2 and Qwen ship).
 *
 * The graph is Llama's: RMSNorm, rotary position embeddings read from `position_ids`,
 * grouped-query attention (fewer key/value heads than query heads), a causal and padding
 * mask built from `attention_mask` over past + new tokens, SwiGLU MLP, tied LM head.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { byteLevelBpeVocab, writeByteLevelBpe, type ByteLevelBpeOptions } from './byte-level-bpe.js';
import { TRANSFORMERS_VERSION } from './bert-classifier.js';
import { Layers } from './model-layers.js';
import { attr, ElemType, GraphBuilder } from './onnx-graph.js';
import { fillNormal, streamRng } from './rng.js';

/** Options of {@link buildLlama}. Defaults are those of {@link TINY_LLAMA}. */
export interface LlamaOptions {
  /** Folder to write the model into (created if missing; files in it are overwritten). */
  dir: string;
  /** Seed of the weights. @defaultValue 11 */
  seed?: number;
  /** Width of the hidden states (`hidden_size`). @defaultValue 64 */
  hiddenSize?: number;
  /** Decoder layers (`num_hidden_layers`). @defaultValue 2 */
  numLayers?: number;
  /** Query heads (`num_attention_heads`). @defaultValue 4 */
  numHeads?: number;
  /** Key/value heads (`num_key_value_heads`); divides `numHeads`. @defaultValue 2 */
  numKvHeads?: number;
  /** Width of one head (`head_dim`); even. @defaultValue hiddenSize / numHeads */
  headDim?: number;
  /** Width of the MLP (`intermediate_size`). @defaultValue 128 */
  intermediateSize?: number;
  /** BPE merges learned for the tokenizer; `vocab_size` is 256 + merges + 3. @defaultValue 250 */
  merges?: number;
  /**
   * Rows of the embedding and the LM head (`vocab_size`), when more than the tokenizer's
   * tokens: real exports pad them so (Qwen2.5: 151,936 rows for 151,665 tokens), and a
   * bench model needs a real vocabulary's LM head cost. The padding rows are zero, so their
   * logit is 0 and greedy decoding never picks them. 0: the tokenizer's size.
   * @defaultValue 0
   */
  vocabSize?: number;
  /** Longest sequence in tokens (`max_position_embeddings`). @defaultValue 2048 */
  maxPositionEmbeddings?: number;
  /** Epsilon of RMSNorm (`rms_norm_eps`). @defaultValue 1e-6 */
  rmsNormEps?: number;
  /** Base of the rotary frequencies (`rope_theta`). @defaultValue 10000 */
  ropeTheta?: number;
}

/** The sizes of a model: {@link LlamaOptions} without `dir`. */
export type LlamaPreset = Omit<LlamaOptions, 'dir'>;

/** A tiny Llama for tests: 2 layers x 64 wide, 4 query heads, 2 KV heads, 509 tokens; about 0.5 MB. */
export const TINY_LLAMA = Object.freeze({
  seed: 11,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  intermediateSize: 128,
  merges: 250,
  vocabSize: 0,
  maxPositionEmbeddings: 2048,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
}) satisfies Required<LlamaPreset>;

/**
 * A bench-sized Llama: 6 layers x 384 wide (6 query heads of 64, 2 KV heads), the size of the
 * small BERTs people serve, with a 32,000-row embedding and LM head (as Llama 2 and
 * TinyLlama), for honest generation timings: at this size the LM head is half the weights
 * read per decoding step. About 90 MB; built on demand.
 */
export const BENCH_LLAMA = Object.freeze({
  ...TINY_LLAMA,
  seed: 12,
  hiddenSize: 384,
  numLayers: 6,
  numHeads: 6,
  numKvHeads: 2,
  headDim: 64,
  intermediateSize: 1024,
  vocabSize: 32_000,
}) satisfies Required<LlamaPreset>;

/**
 * {@link BENCH_LLAMA} with Qwen2.5's 151,936-row embedding and LM head: the large-vocabulary
 * path (prefill logits, top-p, the LM head's share of a step) at a real size. About 320 MB;
 * built on demand, never committed.
 */
export const BENCH_LLAMA_152K = Object.freeze({ ...BENCH_LLAMA, seed: 13, vocabSize: 151_936 }) satisfies Required<LlamaPreset>;

/** The special tokens, after the bytes and merges, in this order. */
export const LLAMA_SPECIAL_TOKENS = Object.freeze({ endOfText: '<|endoftext|>', imStart: '<|im_start|>', imEnd: '<|im_end|>' });

/** A ChatML chat template (`<|im_start|>role\ncontent<|im_end|>\n`), as Qwen and SmolLM2 use. */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/**
 * Standard deviation of the (tied) token embedding, times sqrt(hidden_size): the logits
 * spread by about this much, so greedy decoding of a random model varies with the prompt.
 */
const EMBEDDING_LOGIT_SPREAD = 4;

/**
 * Scale of the `<|im_end|>` embedding row. The head is tied, so a longer row spreads that
 * token's logit wider and EOS wins a few percent of steps instead of about 1 in 500:
 * random generations end at different lengths, as real ones do.
 */
const EOS_EMBEDDING_SCALE = 1.5;

function resolve(preset: LlamaPreset): Required<LlamaPreset> {
  const given = Object.fromEntries(Object.entries(preset).filter(([, v]) => v !== undefined)) as LlamaPreset;
  const o: Required<LlamaPreset> = { ...TINY_LLAMA, ...given };
  if (given.headDim === undefined && (given.hiddenSize !== undefined || given.numHeads !== undefined)) {
    o.headDim = Math.floor(o.hiddenSize / o.numHeads);
  }
  for (const key of ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'maxPositionEmbeddings'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new Error(`${key} must be a positive integer, got ${o[key]}`);
  }
  if (o.numHeads % o.numKvHeads !== 0) throw new Error(`numHeads (${o.numHeads}) must be a multiple of numKvHeads (${o.numKvHeads})`);
  if (o.headDim % 2 !== 0) throw new Error(`headDim must be even (rotary halves), got ${o.headDim}`);
  if (!Number.isInteger(o.merges) || o.merges < 0) throw new Error(`merges must be an integer >= 0, got ${o.merges}`);
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < 0) throw new Error(`vocabSize must be an integer >= 0, got ${o.vocabSize}`);
  return o;
}

function tokenizerOptions(o: Required<LlamaPreset>): ByteLevelBpeOptions {
  const { endOfText, imStart, imEnd } = LLAMA_SPECIAL_TOKENS;
  return {
    merges: o.merges,
    specialsAfter: [{ content: endOfText }, { content: imStart }, { content: imEnd }],
    postProcessor: 'byte-level',
    specialTokensMap: { eos_token: imEnd, pad_token: endOfText },
    tokenizerClass: 'GPT2Tokenizer',
    modelMaxLength: o.maxPositionEmbeddings,
    extraConfig: { chat_template: CHATML_TEMPLATE, padding_side: 'left' },
  };
}

/** The ids of the special tokens of a model built with these options. */
export function llamaSpecialTokenIds(preset: LlamaPreset = {}): {
  endOfText: number;
  imStart: number;
  imEnd: number;
  /** Rows of the embedding (`vocab_size`). */
  vocabSize: number;
  /** Tokens the tokenizer has (rows past it are padding). */
  tokens: number;
} {
  const o = resolve(preset);
  const { vocab } = byteLevelBpeVocab(tokenizerOptions(o));
  const id = (t: string): number => vocab.indexOf(t);
  if (o.vocabSize !== 0 && o.vocabSize < vocab.length) throw new Error(`vocabSize (${o.vocabSize}) is under the tokenizer's ${vocab.length} tokens`);
  return {
    endOfText: id(LLAMA_SPECIAL_TOKENS.endOfText),
    imStart: id(LLAMA_SPECIAL_TOKENS.imStart),
    imEnd: id(LLAMA_SPECIAL_TOKENS.imEnd),
    vocabSize: Math.max(o.vocabSize, vocab.length),
    tokens: vocab.length,
  };
}

/** The `config.json` of a model built with these options. */
export function llamaConfig(preset: LlamaPreset = {}): Record<string, unknown> {
  const o = resolve(preset);
  const ids = llamaSpecialTokenIds(o);
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: ids.endOfText,
    eos_token_id: ids.imEnd,
    head_dim: o.headDim,
    hidden_act: 'silu',
    hidden_size: o.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: o.intermediateSize,
    max_position_embeddings: o.maxPositionEmbeddings,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: o.numHeads,
    num_hidden_layers: o.numLayers,
    num_key_value_heads: o.numKvHeads,
    pad_token_id: ids.endOfText,
    pretraining_tp: 1,
    rms_norm_eps: o.rmsNormEps,
    rope_scaling: null,
    rope_theta: o.ropeTheta,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: ids.vocabSize,
  };
}

/** The `generation_config.json` of a model built with these options. */
export function llamaGenerationConfig(preset: LlamaPreset = {}): Record<string, unknown> {
  const ids = llamaSpecialTokenIds(preset);
  return {
    bos_token_id: ids.endOfText,
    do_sample: false,
    eos_token_id: [ids.imEnd, ids.endOfText],
    max_new_tokens: 128,
    pad_token_id: ids.endOfText,
    transformers_version: TRANSFORMERS_VERSION,
  };
}

/**
 * The bytes of `onnx/model.onnx`, with Optimum's names:
 *
 * Inputs: `input_ids` int64 `[batch_size, sequence_length]`; `attention_mask` int64
 * `[batch_size, total_sequence_length]` (past + new tokens, 0 for padding);
 * `position_ids` int64 `[batch_size, sequence_length]`; per layer i
 * `past_key_values.{i}.key|value` float32 `[batch_size, num_key_value_heads,
 * past_sequence_length, head_dim]` (length 0 on the first step).
 *
 * Outputs: `logits` float32 `[batch_size, sequence_length, vocab]`;
 * `present.{i}.key|value` `[batch_size, num_key_value_heads, total_sequence_length, head_dim]`.
 */
export function llamaOnnx(preset: LlamaPreset = {}): Uint8Array {
  const o = resolve(preset);
  const { vocabSize: vocab, imEnd, tokens } = llamaSpecialTokenIds(o);
  const g = new GraphBuilder('main_graph');
  const l = new Layers(g, o.seed);
  const H = o.hiddenSize;
  const hd = o.headDim;
  const qWidth = o.numHeads * hd;
  const kvWidth = o.numKvHeads * hd;
  const groups = o.numHeads / o.numKvHeads;

  const inputIds = g.input('input_ids', ElemType.int64, ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', ElemType.int64, ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', ElemType.int64, ['batch_size', 'sequence_length']);
  const past: { k: string; v: string }[] = [];
  for (let i = 0; i < o.numLayers; i++) {
    const dims = ['batch_size', o.numKvHeads, 'past_sequence_length', hd];
    past.push({
      k: g.input(`past_key_values.${i}.key`, ElemType.float32, dims),
      v: g.input(`past_key_values.${i}.value`, ElemType.float32, dims),
    });
  }
  g.output('logits', ElemType.float32, ['batch_size', 'sequence_length', vocab]);
  for (let i = 0; i < o.numLayers; i++) {
    const dims = ['batch_size', o.numKvHeads, 'total_sequence_length', hd];
    g.output(`present.${i}.key`, ElemType.float32, dims);
    g.output(`present.${i}.value`, ElemType.float32, dims);
  }

  const embedData = new Float32Array(vocab * H);
  // Padding rows past the tokenizer's tokens stay zero (logit 0: never the greedy pick).
  fillNormal(embedData.subarray(0, tokens * H), streamRng(o.seed, 'model.embed_tokens.weight'), EMBEDDING_LOGIT_SPREAD / Math.sqrt(H));
  for (let j = 0; j < H; j++) embedData[imEnd * H + j] = (embedData[imEnd * H + j] as number) * EOS_EMBEDDING_SCALE;
  const embed = g.float('model.embed_tokens.weight', embedData, [vocab, H]);
  let h = g.node('Gather', [embed, inputIds], { name: '/model/embed_tokens/Gather' });

  // Mask [batch, 1, seq, total]: causal over past + new tokens, and no padded key.
  const total = l.dim('/model/mask/total', mask, 1);
  const seqLen = l.dim('/model/mask/seq', inputIds, 1);
  const pastLen = g.node('Sub', [total, seqLen], { name: '/model/mask/Sub' });
  const causal = l.causalAllowed('/model/mask/causal', pastLen, total); // [seq, total]
  const keyOk = g.node('Cast', [mask], { name: '/model/mask/Cast', attrs: { to: attr.int(ElemType.bool) } });
  const keyOk4 = g.node('Unsqueeze', [keyOk, g.ints([1, 2])], { name: '/model/mask/Unsqueeze' }); // [batch, 1, 1, total]
  const allowed = g.node('And', [causal, keyOk4], { name: '/model/mask/And' });
  const bias = l.biasFromAllowed('/model/mask', allowed);

  // Rotary embedding: angle = position * theta^(-2j/headDim), cos/sin [batch, 1, seq, headDim].
  const invFreq = new Float32Array(hd / 2).map((_, j) => 1 / Math.pow(o.ropeTheta, (2 * j) / hd));
  const rope = '/model/rotary_emb';
  const posF = g.node('Cast', [positionIds], { name: `${rope}/Cast`, attrs: { to: attr.int(ElemType.float32) } });
  const posCol = g.node('Unsqueeze', [posF, g.ints([2])], { name: `${rope}/Unsqueeze` });
  const freqs = g.node('Mul', [posCol, g.float('model.rotary_emb.inv_freq', invFreq, [hd / 2])], { name: `${rope}/Mul` });
  const angles = g.node('Concat', [freqs, freqs], { name: `${rope}/Concat`, attrs: { axis: attr.int(-1) } });
  const cos = g.node('Unsqueeze', [g.node('Cos', [angles], { name: `${rope}/Cos` }), g.ints([1])], { name: `${rope}/Unsqueeze_cos` });
  const sin = g.node('Unsqueeze', [g.node('Sin', [angles], { name: `${rope}/Sin` }), g.ints([1])], { name: `${rope}/Unsqueeze_sin` });
  const rotate = (scope: string, x: string): string => {
    // x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1].
    const x1 = g.node('Slice', [x, g.ints([0]), g.ints([hd / 2]), g.ints([-1])], { name: `${scope}/Slice` });
    const x2 = g.node('Slice', [x, g.ints([hd / 2]), g.ints([hd]), g.ints([-1])], { name: `${scope}/Slice_1` });
    const neg = g.node('Neg', [x2], { name: `${scope}/Neg` });
    const half = g.node('Concat', [neg, x1], { name: `${scope}/Concat`, attrs: { axis: attr.int(-1) } });
    const a = g.node('Mul', [x, cos], { name: `${scope}/Mul` });
    const b = g.node('Mul', [half, sin], { name: `${scope}/Mul_1` });
    return g.node('Add', [a, b], { name: `${scope}/Add` });
  };
  // [batch, kvHeads, t, hd] -> [batch, heads, t, hd], each KV head serving `groups` query heads.
  const repeatKv = (scope: string, x: string): string => {
    if (groups === 1) return x;
    const x5 = g.node('Unsqueeze', [x, g.ints([2])], { name: `${scope}/Unsqueeze` });
    const expanded = g.node('Expand', [x5, g.ints([1, 1, groups, 1, 1])], { name: `${scope}/Expand` });
    return g.node('Reshape', [expanded, g.ints([0, o.numHeads, -1, hd])], { name: `${scope}/Reshape` });
  };

  for (let i = 0; i < o.numLayers; i++) {
    const scope = `/model/layers.${i}`;
    const prefix = `model.layers.${i}`;
    const att = `${scope}/self_attn`;
    const x = l.rmsNorm(`${scope}/input_layernorm`, h, `${prefix}.input_layernorm`, H, o.rmsNormEps);
    const q = rotate(`${att}/q_rot`, l.splitHeads(`${att}/q`, l.linear(`${att}/q_proj`, x, H, qWidth, `${prefix}.self_attn.q_proj`, { bias: false }), o.numHeads, hd));
    const kNew = rotate(`${att}/k_rot`, l.splitHeads(`${att}/k`, l.linear(`${att}/k_proj`, x, H, kvWidth, `${prefix}.self_attn.k_proj`, { bias: false }), o.numKvHeads, hd));
    const vNew = l.splitHeads(`${att}/v`, l.linear(`${att}/v_proj`, x, H, kvWidth, `${prefix}.self_attn.v_proj`, { bias: false }), o.numKvHeads, hd);
    const k = g.node('Concat', [past[i]!.k, kNew], { name: `${att}/Concat`, attrs: { axis: attr.int(2) }, output: `present.${i}.key` });
    const v = g.node('Concat', [past[i]!.v, vNew], { name: `${att}/Concat_1`, attrs: { axis: attr.int(2) }, output: `present.${i}.value` });
    const ctx = l.mergeHeads(`${att}/merge`, l.attend(att, q, repeatKv(`${att}/repeat_k`, k), repeatKv(`${att}/repeat_v`, v), bias, hd), qWidth);
    const out = l.linear(`${att}/o_proj`, ctx, qWidth, H, `${prefix}.self_attn.o_proj`, { bias: false });
    const afterAttn = g.node('Add', [h, out], { name: `${scope}/Add` });

    const mlp = `${scope}/mlp`;
    const y = l.rmsNorm(`${scope}/post_attention_layernorm`, afterAttn, `${prefix}.post_attention_layernorm`, H, o.rmsNormEps);
    const gate = l.silu(`${mlp}/act_fn`, l.linear(`${mlp}/gate_proj`, y, H, o.intermediateSize, `${prefix}.mlp.gate_proj`, { bias: false }));
    const up = l.linear(`${mlp}/up_proj`, y, H, o.intermediateSize, `${prefix}.mlp.up_proj`, { bias: false });
    const prod = g.node('Mul', [gate, up], { name: `${mlp}/Mul` });
    const down = l.linear(`${mlp}/down_proj`, prod, o.intermediateSize, H, `${prefix}.mlp.down_proj`, { bias: false });
    h = g.node('Add', [afterAttn, down], { name: `${scope}/Add_1` });
  }

  const normed = l.rmsNorm('/model/norm', h, 'model.norm', H, o.rmsNormEps);
  const embedT = g.node('Transpose', [embed], { name: '/lm_head/Transpose', attrs: { perm: attr.ints([1, 0]) } });
  g.node('MatMul', [normed, embedT], { name: '/lm_head/MatMul', output: 'logits' });
  return g.toModelBytes({ docString: `LlamaForCausalLM built by @inferq/tiny-models (seed ${o.seed}, random weights)` });
}

/**
 * Writes a Llama model into `options.dir`: `config.json`, `generation_config.json`, the
 * tokenizer files (with a ChatML `chat_template`) and `onnx/model.onnx`.
 */
export async function buildLlama(options: LlamaOptions): Promise<void> {
  const { dir, ...preset } = options;
  if (!dir) throw new Error('buildLlama: dir is required');
  const o = resolve(preset);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(llamaConfig(o), null, 2) + '\n');
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify(llamaGenerationConfig(o), null, 2) + '\n');
  await writeByteLevelBpe(dir, tokenizerOptions(o));
  await writeFile(join(dir, 'onnx', 'model.onnx'), llamaOnnx(o));
}
