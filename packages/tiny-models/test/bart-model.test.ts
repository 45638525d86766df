import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import type { Tokenizer } from '@huggingface/tokenizers';
import { BART_SPECIAL_TOKEN_IDS, bartDecoderOnnx, buildBart, TINY_BART } from '../src/index.js';
import { argmax, emptyPast, int64Tensor, loadTokenizer, logitsAt, maxAbsDiff, pastFrom } from './helpers.js';

const { decoderLayers: LAYERS, decoderHeads: HEADS, dModel: D } = TINY_BART;
const HEAD_DIM = D / HEADS;
const START = BART_SPECIAL_TOKEN_IDS.eos; // decoder_start_token_id

let root: string;
let dir: string;
let encoder: ort.InferenceSession;
let decoder: ort.InferenceSession;
let tokenizer: Tokenizer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tiny-bart-'));
  dir = join(root, 'bart');
  await buildBart({ ...TINY_BART, dir });
  encoder = await ort.InferenceSession.create(join(dir, 'onnx', 'encoder_model.onnx'));
  decoder = await ort.InferenceSession.create(join(dir, 'onnx', 'decoder_model_merged.onnx'));
  tokenizer = await loadTokenizer(dir);
});

afterAll(async () => {
  await encoder?.release();
  await decoder?.release();
  await rm(root, { recursive: true, force: true });
});

async function encode(ids: number[][], mask?: number[][]): Promise<{ states: ort.Tensor; mask: ort.Tensor }> {
  const m = int64Tensor(mask ?? ids.map((r) => r.map(() => 1)));
  const out = await encoder.run({ input_ids: int64Tensor(ids), attention_mask: m });
  return { states: out.last_hidden_state as ort.Tensor, mask: m };
}

function emptyPasts(batch: number): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (let i = 0; i < LAYERS; i++) {
    for (const part of ['decoder', 'encoder']) {
      for (const kv of ['key', 'value']) out[`past_key_values.${i}.${part}.${kv}`] = emptyPast(batch, HEADS, HEAD_DIM);
    }
  }
  return out;
}

async function decode(
  tokens: number[][],
  enc: { states: ort.Tensor; mask: ort.Tensor },
  past?: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.OnnxValueMapType> {
  return decoder.run({
    input_ids: int64Tensor(tokens),
    encoder_attention_mask: enc.mask,
    encoder_hidden_states: enc.states,
    use_cache_branch: new ort.Tensor('bool', [past !== undefined], [1]),
    ...(past ?? emptyPasts(tokens.length)),
  });
}

/** Greedy decoding with the cache: the generated tokens and the logits of every step. */
async function greedy(ids: number[], steps: number): Promise<{ tokens: number[]; logits: number[][] }> {
  const enc = await encode([ids]);
  const tokens: number[] = [START];
  const logits: number[][] = [];
  let past: Record<string, ort.Tensor> | undefined;
  for (let s = 0; s < steps; s++) {
    const out = await decode([[tokens.at(-1)!]], enc, past);
    const row = logitsAt(out.logits as ort.Tensor, -1)[0]!;
    logits.push(row);
    tokens.push(argmax(row));
    past = pastFrom(out, past && Object.fromEntries(Object.entries(past).filter(([k]) => k.includes('.encoder.'))));
  }
  return { tokens: tokens.slice(1), logits };
}

const TEXT = 'The delivery was late and the box was damaged, so I want a refund.';

describe('tiny BART', () => {
  it('writes the files of an Optimum seq2seq export', async () => {
    expect((await readdir(dir)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'merges.txt',
      'onnx',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.json',
    ]);
    expect((await readdir(join(dir, 'onnx'))).sort()).toEqual(['decoder_model_merged.onnx', 'encoder_model.onnx']);
    for (const f of ['onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx', 'tokenizer.json']) {
      expect((await stat(join(dir, f))).size).toBeLessThan(1024 * 1024);
    }
  });

  it('writes a BartForConditionalGeneration config and generation config', async () => {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const vocab = JSON.parse(await readFile(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
    expect(config).toMatchObject({
      model_type: 'bart',
      architectures: ['BartForConditionalGeneration'],
      is_encoder_decoder: true,
      d_model: D,
      encoder_layers: TINY_BART.encoderLayers,
      decoder_layers: LAYERS,
      encoder_attention_heads: TINY_BART.encoderHeads,
      decoder_attention_heads: HEADS,
      vocab_size: Object.keys(vocab).length,
      max_position_embeddings: TINY_BART.maxPositionEmbeddings,
      bos_token_id: 0,
      pad_token_id: 1,
      eos_token_id: 2,
      decoder_start_token_id: 2,
      forced_eos_token_id: 2,
    });
    expect(vocab).toMatchObject({ '<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3 });
    expect(vocab['<mask>']).toBe(Object.keys(vocab).length - 1);
    const generation = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8')) as Record<string, unknown>;
    expect(generation).toMatchObject({ decoder_start_token_id: 2, eos_token_id: 2, pad_token_id: 1, bos_token_id: 0, max_length: TINY_BART.maxLength });
    const tokenizerConfig = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    expect(tokenizerConfig).toMatchObject({ tokenizer_class: 'BartTokenizer', bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>' });
  });

  it("has Optimum's tensor names and shapes", () => {
    expect(encoder.inputNames).toEqual(['input_ids', 'attention_mask']);
    expect(encoder.outputNames).toEqual(['last_hidden_state']);
    const pasts = Array.from({ length: LAYERS }, (_, i) => [`${i}.decoder.key`, `${i}.decoder.value`, `${i}.encoder.key`, `${i}.encoder.value`]).flat();
    expect(decoder.inputNames).toEqual([
      'encoder_attention_mask',
      'input_ids',
      'encoder_hidden_states',
      ...pasts.map((p) => `past_key_values.${p}`),
      'use_cache_branch',
    ]);
    expect(decoder.outputNames).toEqual(['logits', ...pasts.map((p) => `present.${p}`)]);
    const meta = Object.fromEntries(decoder.inputMetadata.map((m) => [m.name, m.isTensor ? [m.type, m.shape] : []]));
    expect(meta['past_key_values.0.decoder.key']).toEqual(['float32', ['batch_size', HEADS, 'past_decoder_sequence_length', HEAD_DIM]]);
    expect(meta['past_key_values.0.encoder.key']).toEqual(['float32', ['batch_size', HEADS, 'encoder_sequence_length_out', HEAD_DIM]]);
    expect(meta.use_cache_branch).toEqual(['bool', [1]]);
  });

  it('gives the same logits with the cache as re-running the whole decoder sequence', async () => {
    const ids = tokenizer.encode(TEXT).ids;
    const { tokens, logits } = await greedy(ids, 8);
    const full = await decode([[START, ...tokens.slice(0, -1)]], await encode([ids]));
    for (let s = 0; s < tokens.length; s++) {
      expect(maxAbsDiff([logitsAt(full.logits as ort.Tensor, s)[0]!], [logits[s]!])).toBeLessThan(1e-4);
    }
  });

  it('takes cross-attention keys from the pasts when use_cache_branch is true', async () => {
    const ids = tokenizer.encode(TEXT).ids;
    const enc = await encode([ids]);
    const first = await decode([[START]], enc);
    const past = pastFrom(first);
    const zeros = { states: new ort.Tensor('float32', new Float32Array(enc.states.size), enc.states.dims), mask: enc.mask };
    const cached = logitsAt((await decode([[5]], enc, past)).logits as ort.Tensor, -1);
    const cachedZeros = logitsAt((await decode([[5]], zeros, past)).logits as ort.Tensor, -1);
    expect(maxAbsDiff(cached, cachedZeros)).toBeLessThan(1e-6);
    const uncached = logitsAt((await decode([[START]], enc)).logits as ort.Tensor, -1);
    const uncachedZeros = logitsAt((await decode([[START]], zeros)).logits as ort.Tensor, -1);
    expect(maxAbsDiff(uncached, uncachedZeros)).toBeGreaterThan(1e-2);
  });

  it('ignores encoder padding that the mask hides, in the encoder and in cross-attention', async () => {
    const ids = tokenizer.encode(TEXT).ids;
    const short = tokenizer.encode('Great product').ids;
    const padded = [...short, ...Array<number>(ids.length - short.length).fill(BART_SPECIAL_TOKEN_IDS.pad)];
    const batch = await encode([ids, padded], [ids.map(() => 1), padded.map((_, i) => (i < short.length ? 1 : 0))]);
    const alone = await encode([short]);
    const hidden = (t: ort.Tensor, row: number, n: number): number[][] => {
      const [, seq, d] = t.dims as [number, number, number];
      const data = t.data as Float32Array;
      return Array.from({ length: n }, (_, i) => Array.from(data.subarray((row * seq + i) * d, (row * seq + i + 1) * d)));
    };
    expect(maxAbsDiff(hidden(batch.states, 1, short.length), hidden(alone.states, 0, short.length))).toBeLessThan(1e-5);
    const batched = logitsAt((await decode([[START], [START]], batch)).logits as ort.Tensor, -1);
    const single = logitsAt((await decode([[START]], alone)).logits as ort.Tensor, -1);
    expect(maxAbsDiff([batched[1]!], single)).toBeLessThan(1e-4);
  });

  it('generates different, varied tokens for different inputs', async () => {
    const texts = [TEXT, 'I love this phone, the battery lasts for days.', 'Where is my order? It has been two weeks.'];
    const outputs = await Promise.all(texts.map(async (t) => (await greedy(tokenizer.encode(t).ids, 12)).tokens));
    expect(new Set(outputs.map((o) => o.join(','))).size).toBe(texts.length);
    for (const o of outputs) expect(new Set(o).size).toBeGreaterThanOrEqual(3);
  });

  it('is byte-identical for the same seed', () => {
    expect(Buffer.compare(bartDecoderOnnx(TINY_BART), bartDecoderOnnx({ ...TINY_BART }))).toBe(0);
    expect(Buffer.compare(bartDecoderOnnx(TINY_BART), bartDecoderOnnx({ ...TINY_BART, seed: 8 }))).not.toBe(0);
  });
});
