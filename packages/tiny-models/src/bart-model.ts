/**
 * Builds a small BART encoder-decoder (`BartForConditionalGeneration`) in the layout
 * Optimum exports and transformers.js runs: `onnx/encoder_model.onnx` and
 * `onnx/decoder_model_merged.onnx` (one decoder for the first step and the cached steps,
 * switched by `use_cache_branch`), `config.json`, `generation_config.json` and a byte-level
 * BPE tokenizer with BART's special tokens.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeByteLevelBpe, byteLevelBpeVocab, type ByteLevelBpeOptions } from './byte-level-bpe.js';
import { TRANSFORMERS_VERSION } from './bert-classifier.js';
import { Layers } from './model-layers.js';
import { attr, ElemType, GraphBuilder } from './onnx-graph.js';

/** Options of {@link buildBart}. Defaults are those of {@link TINY_BART}. */
export interface BartOptions {
  /** Folder to write the model into (created if missing; files in it are overwritten). */
  dir: string;
  /** Seed of the weights. @defaultValue 7 */
  seed?: number;
  /** Width of the hidden states (`d_model`); a multiple of both head counts. @defaultValue 32 */
  dModel?: number;
  /** Encoder layers (`encoder_layers`). @defaultValue 2 */
  encoderLayers?: number;
  /** Decoder layers (`decoder_layers`). @defaultValue 2 */
  decoderLayers?: number;
  /** Attention heads of the encoder (`encoder_attention_heads`). @defaultValue 4 */
  encoderHeads?: number;
  /** Attention heads of the decoder (`decoder_attention_heads`). @defaultValue 4 */
  decoderHeads?: number;
  /** Feed-forward width of every layer (`encoder_ffn_dim`, `decoder_ffn_dim`). @defaultValue 64 */
  ffnDim?: number;
  /** BPE merges learned for the tokenizer; `vocab_size` is 4 + 256 + merges + 1. @defaultValue 250 */
  merges?: number;
  /** Longest input or output in tokens (`max_position_embeddings`). @defaultValue 256 */
  maxPositionEmbeddings?: number;
  /** Epsilon of every LayerNorm. @defaultValue 1e-5 */
  layerNormEps?: number;
  /** `max_length` in `generation_config.json` (decoder tokens, start token included). @defaultValue 64 */
  maxLength?: number;
}

/** The sizes of a model: {@link BartOptions} without `dir`. */
export type BartPreset = Omit<BartOptions, 'dir'>;

/** A tiny BART for tests: 2 + 2 layers x 32 wide, 4 heads, 511 tokens; about 0.2 and 0.3 MB for encoder and decoder. */
export const TINY_BART = Object.freeze({
  seed: 7,
  dModel: 32,
  encoderLayers: 2,
  decoderLayers: 2,
  encoderHeads: 4,
  decoderHeads: 4,
  ffnDim: 64,
  merges: 250,
  maxPositionEmbeddings: 256,
  layerNormEps: 1e-5,
  maxLength: 64,
}) satisfies Required<BartPreset>;

/** BART's special tokens and their ids: `<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3; `<mask>` is last. */
export const BART_SPECIAL_TOKEN_IDS = Object.freeze({ bos: 0, pad: 1, eos: 2, unk: 3 });

/**
 * BART's offset of learned positions: position `p` reads row `p + 2` of `embed_positions`
 * (a fairseq legacy that the HF port keeps).
 */
const POSITION_OFFSET = 2;

/**
 * Standard deviation of the shared token embedding, times sqrt(d_model): the logits
 * (`hidden . embedding`) then spread by about this much, so that greedy decoding of a
 * random model does not lock onto one token.
 */
const EMBEDDING_LOGIT_SPREAD = 4;

/**
 * Standard deviation of the learned positions. As large as the token embeddings (not
 * BART's 0.02), so that a random decoder's output changes from step to step instead of
 * settling on one token.
 */
const POSITION_STD = 0.7;

/**
 * Gain of the projections that write into the residual stream (`out_proj`, `fc2`), and of
 * the cross-attention one. Below the other layers' 2, chosen by measurement: in a post-LN
 * model a sublayer much louder than the residual drowns the token and position, and a
 * random decoder then predicts the same token whatever it is fed (gain 2: one token for
 * every step of every input; 0.5: different tokens for different inputs and steps).
 */
const OUTPUT_GAIN = 0.5;
const CROSS_GAIN = 0.5;

/**
 * `final_logits_bias` of `</s>`: lifts EOS from about 1 in 500 to a few percent per step,
 * so random generations end at different lengths (rows finish at different steps of a
 * batch, as real ones do) instead of always running to the limit.
 */
const EOS_LOGIT_BIAS = 7;

function resolve(preset: BartPreset): Required<BartPreset> {
  const o: Required<BartPreset> = { ...TINY_BART, ...Object.fromEntries(Object.entries(preset).filter(([, v]) => v !== undefined)) };
  for (const key of ['dModel', 'encoderLayers', 'decoderLayers', 'encoderHeads', 'decoderHeads', 'ffnDim', 'maxPositionEmbeddings', 'maxLength'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new Error(`${key} must be a positive integer, got ${o[key]}`);
  }
  if (o.dModel % o.encoderHeads !== 0 || o.dModel % o.decoderHeads !== 0) {
    throw new Error(`dModel (${o.dModel}) must be a multiple of encoderHeads and decoderHeads`);
  }
  if (!Number.isInteger(o.merges) || o.merges < 0) throw new Error(`merges must be an integer >= 0, got ${o.merges}`);
  return o;
}

function tokenizerOptions(o: Required<BartPreset>): ByteLevelBpeOptions {
  return {
    merges: o.merges,
    specialsBefore: [{ content: '<s>' }, { content: '<pad>' }, { content: '</s>' }, { content: '<unk>' }],
    specialsAfter: [{ content: '<mask>', lstrip: true }],
    postProcessor: 'roberta',
    specialTokensMap: {
      bos_token: '<s>',
      cls_token: '<s>',
      eos_token: '</s>',
      mask_token: '<mask>',
      pad_token: '<pad>',
      sep_token: '</s>',
      unk_token: '<unk>',
    },
    tokenizerClass: 'BartTokenizer',
    modelMaxLength: o.maxPositionEmbeddings,
  };
}

/** `vocab_size` of a model built with these options. */
export function bartVocabSize(preset: BartPreset = {}): number {
  return byteLevelBpeVocab(tokenizerOptions(resolve(preset))).vocab.length;
}

/** The `config.json` of a model built with these options. */
export function bartConfig(preset: BartPreset = {}): Record<string, unknown> {
  const o = resolve(preset);
  const { bos, pad, eos } = BART_SPECIAL_TOKEN_IDS;
  return {
    activation_dropout: 0.0,
    activation_function: 'gelu',
    add_final_layer_norm: false,
    architectures: ['BartForConditionalGeneration'],
    attention_dropout: 0.0,
    bos_token_id: bos,
    classifier_dropout: 0.0,
    d_model: o.dModel,
    decoder_attention_heads: o.decoderHeads,
    decoder_ffn_dim: o.ffnDim,
    decoder_layerdrop: 0.0,
    decoder_layers: o.decoderLayers,
    decoder_start_token_id: eos,
    dropout: 0.1,
    encoder_attention_heads: o.encoderHeads,
    encoder_ffn_dim: o.ffnDim,
    encoder_layerdrop: 0.0,
    encoder_layers: o.encoderLayers,
    eos_token_id: eos,
    forced_eos_token_id: eos,
    init_std: 0.02,
    is_encoder_decoder: true,
    max_position_embeddings: o.maxPositionEmbeddings,
    model_type: 'bart',
    normalize_before: false,
    num_hidden_layers: o.encoderLayers,
    pad_token_id: pad,
    scale_embedding: false,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: bartVocabSize(o),
  };
}

/** The `generation_config.json` of a model built with these options. */
export function bartGenerationConfig(preset: BartPreset = {}): Record<string, unknown> {
  const o = resolve(preset);
  const { bos, pad, eos } = BART_SPECIAL_TOKEN_IDS;
  return {
    bos_token_id: bos,
    decoder_start_token_id: eos,
    eos_token_id: eos,
    forced_eos_token_id: eos,
    max_length: o.maxLength,
    pad_token_id: pad,
    transformers_version: TRANSFORMERS_VERSION,
  };
}

interface Ctx {
  o: Required<BartPreset>;
  vocab: number;
}

/** Token embedding (`model.shared.weight`, shared by encoder and decoder). */
function sharedEmbedding(l: Layers, c: Ctx): string {
  return l.normal('model.shared.weight', [c.vocab, c.o.dModel], EMBEDDING_LOGIT_SPREAD / Math.sqrt(c.o.dModel));
}

/** Post-LN feed-forward block: `LN(x + fc2(gelu(fc1(x))))`. */
function feedForward(l: Layers, c: Ctx, scope: string, prefix: string, x: string): string {
  const d = c.o.dModel;
  const h = l.linear(`${scope}/fc1`, x, d, c.o.ffnDim, `${prefix}.fc1`);
  const act = l.gelu(`${scope}/activation_fn`, h);
  const out = l.linear(`${scope}/fc2`, act, c.o.ffnDim, d, `${prefix}.fc2`, { gain: OUTPUT_GAIN });
  const res = l.g.node('Add', [out, x], { name: `${scope}/fc2/Add_1` });
  return l.layerNorm(`${scope}/final_layer_norm`, res, `${prefix}.final_layer_norm`, d, c.o.layerNormEps);
}

/**
 * The bytes of `onnx/encoder_model.onnx`: inputs `input_ids`, `attention_mask` int64
 * `[batch_size, encoder_sequence_length]`; output `last_hidden_state` float32
 * `[batch_size, encoder_sequence_length, d_model]`.
 */
export function bartEncoderOnnx(preset: BartPreset = {}): Uint8Array {
  const o = resolve(preset);
  const c: Ctx = { o, vocab: bartVocabSize(o) };
  const g = new GraphBuilder('main_graph');
  const l = new Layers(g, o.seed);
  const d = o.dModel;
  const headDim = d / o.encoderHeads;
  const dims = ['batch_size', 'encoder_sequence_length'];
  const inputIds = g.input('input_ids', ElemType.int64, dims);
  const mask = g.input('attention_mask', ElemType.int64, dims);
  g.output('last_hidden_state', ElemType.float32, [...dims, d]);

  const shared = sharedEmbedding(l, c);
  const positions = l.normal('model.encoder.embed_positions.weight', [o.maxPositionEmbeddings + POSITION_OFFSET, d], POSITION_STD);
  const tokens = g.node('Gather', [shared, inputIds], { name: '/model/encoder/embed_tokens/Gather' });
  const seqLen = l.dim('/model/encoder/embed_positions', inputIds, 1);
  const posIds = g.node('Range', [g.ints(POSITION_OFFSET), g.node('Add', [seqLen, g.ints(POSITION_OFFSET)], { name: '/model/encoder/embed_positions/Add' }), g.ints(1)], {
    name: '/model/encoder/embed_positions/Range',
  });
  const pos = g.node('Gather', [positions, posIds], { name: '/model/encoder/embed_positions/Gather_1' });
  const sum = g.node('Add', [tokens, pos], { name: '/model/encoder/Add' });
  let h = l.layerNorm('/model/encoder/layernorm_embedding', sum, 'model.encoder.layernorm_embedding', d, o.layerNormEps);
  const bias = l.paddingBias('/model/encoder/mask', mask);

  for (let i = 0; i < o.encoderLayers; i++) {
    const scope = `/model/encoder/layers.${i}`;
    const prefix = `model.encoder.layers.${i}`;
    const att = `${scope}/self_attn`;
    const q = l.splitHeads(`${att}/q`, l.linear(`${att}/q_proj`, h, d, d, `${prefix}.self_attn.q_proj`), o.encoderHeads, headDim);
    const k = l.splitHeads(`${att}/k`, l.linear(`${att}/k_proj`, h, d, d, `${prefix}.self_attn.k_proj`), o.encoderHeads, headDim);
    const v = l.splitHeads(`${att}/v`, l.linear(`${att}/v_proj`, h, d, d, `${prefix}.self_attn.v_proj`), o.encoderHeads, headDim);
    const ctx = l.mergeHeads(`${att}/merge`, l.attend(att, q, k, v, bias, headDim), d);
    const out = l.linear(`${att}/out_proj`, ctx, d, d, `${prefix}.self_attn.out_proj`, { gain: OUTPUT_GAIN });
    const res = g.node('Add', [out, h], { name: `${scope}/Add` });
    const normed = l.layerNorm(`${scope}/self_attn_layer_norm`, res, `${prefix}.self_attn_layer_norm`, d, o.layerNormEps);
    h = feedForward(l, c, scope, prefix, normed);
  }
  g.node('Identity', [h], { name: '/model/encoder/Identity', output: 'last_hidden_state' });
  return g.toModelBytes({ docString: `BART encoder built by @inferq/tiny-models (seed ${o.seed}, random weights)` });
}

/**
 * The bytes of `onnx/decoder_model_merged.onnx`, with Optimum's names:
 *
 * Inputs: `encoder_attention_mask` int64 `[batch_size, encoder_sequence_length]`;
 * `input_ids` int64 `[batch_size, decoder_sequence_length]`; `encoder_hidden_states`
 * float32 `[batch_size, encoder_sequence_length, d_model]`; per layer i
 * `past_key_values.{i}.decoder.key|value` float32 `[batch_size, heads,
 * past_decoder_sequence_length, head_dim]` and `past_key_values.{i}.encoder.key|value`
 * `[batch_size, heads, encoder_sequence_length_out, head_dim]`; `use_cache_branch` bool `[1]`.
 *
 * Outputs: `logits` `[batch_size, decoder_sequence_length, vocab]`;
 * `present.{i}.decoder.key|value` (past + new tokens); `present.{i}.encoder.key|value`.
 *
 * With `use_cache_branch` false the cross-attention keys and values are projected from
 * `encoder_hidden_states` (the encoder pasts are dummies, e.g. length 0); with true they are
 * the encoder pasts, unchanged. An `If` node switches, as in Optimum's merged decoder.
 * The decoder pasts are concatenated in front of the new keys in both cases; positions start
 * after them.
 */
export function bartDecoderOnnx(preset: BartPreset = {}): Uint8Array {
  const o = resolve(preset);
  const c: Ctx = { o, vocab: bartVocabSize(o) };
  const g = new GraphBuilder('main_graph');
  const l = new Layers(g, o.seed);
  const d = o.dModel;
  const heads = o.decoderHeads;
  const headDim = d / heads;

  const encMask = g.input('encoder_attention_mask', ElemType.int64, ['batch_size', 'encoder_sequence_length']);
  const inputIds = g.input('input_ids', ElemType.int64, ['batch_size', 'decoder_sequence_length']);
  const encStates = g.input('encoder_hidden_states', ElemType.float32, ['batch_size', 'encoder_sequence_length', d]);
  const past: { dk: string; dv: string; ek: string; ev: string }[] = [];
  for (let i = 0; i < o.decoderLayers; i++) {
    const pd = ['batch_size', heads, 'past_decoder_sequence_length', headDim];
    const pe = ['batch_size', heads, 'encoder_sequence_length_out', headDim];
    past.push({
      dk: g.input(`past_key_values.${i}.decoder.key`, ElemType.float32, pd),
      dv: g.input(`past_key_values.${i}.decoder.value`, ElemType.float32, pd),
      ek: g.input(`past_key_values.${i}.encoder.key`, ElemType.float32, pe),
      ev: g.input(`past_key_values.${i}.encoder.value`, ElemType.float32, pe),
    });
  }
  const useCache = g.input('use_cache_branch', ElemType.bool, [1]);
  g.output('logits', ElemType.float32, ['batch_size', 'decoder_sequence_length', c.vocab]);
  for (let i = 0; i < o.decoderLayers; i++) {
    const pd = ['batch_size', heads, 'past_decoder_sequence_length + 1', headDim];
    const pe = ['batch_size', heads, 'encoder_sequence_length_out', headDim];
    g.output(`present.${i}.decoder.key`, ElemType.float32, pd);
    g.output(`present.${i}.decoder.value`, ElemType.float32, pd);
    g.output(`present.${i}.encoder.key`, ElemType.float32, pe);
    g.output(`present.${i}.encoder.value`, ElemType.float32, pe);
  }

  // Cross-attention keys and values of every layer: from the pasts, or projected.
  const thenBranch = g.subgraph('then_branch');
  const elseBranch = g.subgraph('else_branch');
  const elseLayers = new Layers(elseBranch, o.seed);
  for (let i = 0; i < o.decoderLayers; i++) {
    const prefix = `model.decoder.layers.${i}.encoder_attn`;
    const scope = `/model/decoder/layers.${i}/encoder_attn`;
    for (const [which, pastName] of [['key', past[i]!.ek], ['value', past[i]!.ev]] as const) {
      const name = `present.${i}.encoder.${which}`;
      const fromPast = thenBranch.node('Identity', [pastName], { name: `/then/${name}/Identity`, output: `${name}_then` });
      thenBranch.output(fromPast, ElemType.float32);
      const proj = elseLayers.linear(`${scope}/${which[0]}_proj`, encStates, d, d, `${prefix}.${which[0]}_proj`);
      const split = elseLayers.splitHeads(`${scope}/${which[0]}`, proj, heads, headDim);
      const projected = elseBranch.node('Identity', [split], { name: `/else/${name}/Identity`, output: `${name}_else` });
      elseBranch.output(projected, ElemType.float32);
    }
  }
  const crossNames = past.flatMap((_, i) => [`present.${i}.encoder.key`, `present.${i}.encoder.value`]);
  g.nodeMulti('If', [useCache], crossNames, {
    name: '/model/decoder/If',
    attrs: { then_branch: attr.graph(thenBranch), else_branch: attr.graph(elseBranch) },
  });

  // Embeddings at positions past .. past + seq - 1.
  const shared = sharedEmbedding(l, c);
  const positions = l.normal('model.decoder.embed_positions.weight', [o.maxPositionEmbeddings + POSITION_OFFSET, d], POSITION_STD);
  const pastLen = l.dim('/model/decoder/past', past[0]!.dk, 2);
  const seqLen = l.dim('/model/decoder/seq', inputIds, 1);
  const total = g.node('Add', [pastLen, seqLen], { name: '/model/decoder/Add_total' });
  const posIds = g.node(
    'Range',
    [g.node('Add', [pastLen, g.ints(POSITION_OFFSET)], { name: '/model/decoder/embed_positions/Add' }), g.node('Add', [total, g.ints(POSITION_OFFSET)], { name: '/model/decoder/embed_positions/Add_1' }), g.ints(1)],
    { name: '/model/decoder/embed_positions/Range' },
  );
  const tokens = g.node('Gather', [shared, inputIds], { name: '/model/decoder/embed_tokens/Gather' });
  const pos = g.node('Gather', [positions, posIds], { name: '/model/decoder/embed_positions/Gather' });
  const sum = g.node('Add', [tokens, pos], { name: '/model/decoder/Add' });
  let h = l.layerNorm('/model/decoder/layernorm_embedding', sum, 'model.decoder.layernorm_embedding', d, o.layerNormEps);

  const causal = l.biasFromAllowed('/model/decoder/causal', l.causalAllowed('/model/decoder/causal', pastLen, total));
  const crossBias = l.paddingBias('/model/decoder/encoder_mask', encMask);

  for (let i = 0; i < o.decoderLayers; i++) {
    const scope = `/model/decoder/layers.${i}`;
    const prefix = `model.decoder.layers.${i}`;
    const p = past[i]!;
    // Self-attention over past + new tokens.
    const att = `${scope}/self_attn`;
    const q = l.splitHeads(`${att}/q`, l.linear(`${att}/q_proj`, h, d, d, `${prefix}.self_attn.q_proj`), heads, headDim);
    const kNew = l.splitHeads(`${att}/k`, l.linear(`${att}/k_proj`, h, d, d, `${prefix}.self_attn.k_proj`), heads, headDim);
    const vNew = l.splitHeads(`${att}/v`, l.linear(`${att}/v_proj`, h, d, d, `${prefix}.self_attn.v_proj`), heads, headDim);
    const k = g.node('Concat', [p.dk, kNew], { name: `${att}/Concat`, attrs: { axis: attr.int(2) }, output: `present.${i}.decoder.key` });
    const v = g.node('Concat', [p.dv, vNew], { name: `${att}/Concat_1`, attrs: { axis: attr.int(2) }, output: `present.${i}.decoder.value` });
    const selfCtx = l.mergeHeads(`${att}/merge`, l.attend(att, q, k, v, causal, headDim), d);
    const selfOut = l.linear(`${att}/out_proj`, selfCtx, d, d, `${prefix}.self_attn.out_proj`, { gain: OUTPUT_GAIN });
    const selfRes = g.node('Add', [selfOut, h], { name: `${scope}/Add` });
    const afterSelf = l.layerNorm(`${scope}/self_attn_layer_norm`, selfRes, `${prefix}.self_attn_layer_norm`, d, o.layerNormEps);
    // Cross-attention over the encoder states.
    const cross = `${scope}/encoder_attn`;
    const cq = l.splitHeads(`${cross}/q`, l.linear(`${cross}/q_proj`, afterSelf, d, d, `${prefix}.encoder_attn.q_proj`), heads, headDim);
    const crossCtx = l.mergeHeads(`${cross}/merge`, l.attend(cross, cq, `present.${i}.encoder.key`, `present.${i}.encoder.value`, crossBias, headDim), d);
    const crossOut = l.linear(`${cross}/out_proj`, crossCtx, d, d, `${prefix}.encoder_attn.out_proj`, { gain: CROSS_GAIN });
    const crossRes = g.node('Add', [crossOut, afterSelf], { name: `${scope}/Add_1` });
    const afterCross = l.layerNorm(`${scope}/encoder_attn_layer_norm`, crossRes, `${prefix}.encoder_attn_layer_norm`, d, o.layerNormEps);
    h = feedForward(l, c, scope, prefix, afterCross);
  }

  // LM head: hidden . lm_head^T + final_logits_bias. Not tied to `model.shared` (see
  // `tie_word_embeddings` in the config): with a tied head, a random post-LN decoder
  // predicts the token it was just fed, and greedy decoding repeats one token forever.
  const lmHead = l.normal('lm_head.weight', [c.vocab, d], EMBEDDING_LOGIT_SPREAD / Math.sqrt(d));
  const lmHeadT = g.node('Transpose', [lmHead], { name: '/lm_head/Transpose', attrs: { perm: attr.ints([1, 0]) } });
  const mm = g.node('MatMul', [h, lmHeadT], { name: '/lm_head/MatMul' });
  const finalBias = new Float32Array(c.vocab);
  finalBias[BART_SPECIAL_TOKEN_IDS.eos] = EOS_LOGIT_BIAS;
  g.node('Add', [mm, g.float('final_logits_bias', finalBias, [1, c.vocab])], { name: '/Add', output: 'logits' });
  return g.toModelBytes({ docString: `BART decoder (merged) built by @inferq/tiny-models (seed ${o.seed}, random weights)` });
}

/**
 * Writes a BART model into `options.dir`: `config.json`, `generation_config.json`, the
 * tokenizer files, `onnx/encoder_model.onnx` and `onnx/decoder_model_merged.onnx`.
 */
export async function buildBart(options: BartOptions): Promise<void> {
  const { dir, ...preset } = options;
  if (!dir) throw new Error('buildBart: dir is required');
  const o = resolve(preset);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(bartConfig(o), null, 2) + '\n');
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify(bartGenerationConfig(o), null, 2) + '\n');
  await writeByteLevelBpe(dir, tokenizerOptions(o));
  await writeFile(join(dir, 'onnx', 'encoder_model.onnx'), bartEncoderOnnx(o));
  await writeFile(join(dir, 'onnx', 'decoder_model_merged.onnx'), bartDecoderOnnx(o));
}
