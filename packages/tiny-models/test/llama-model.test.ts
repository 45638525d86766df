import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { AutoTokenizer, env } from '@huggingface/transformers';
import type { Tokenizer } from '@huggingface/tokenizers';
import { buildLlama, llamaSpecialTokenIds, TINY_LLAMA } from '../src/index.js';
import { argmax, emptyPast, int64Tensor, loadTokenizer, logitsAt, maxAbsDiff, pastFrom } from './helpers.js';

const { numLayers: LAYERS, numKvHeads: KV_HEADS, headDim: HEAD_DIM } = TINY_LLAMA;
const IDS = llamaSpecialTokenIds(TINY_LLAMA);

let root: string;
let dir: string;
let session: ort.InferenceSession;
let tokenizer: Tokenizer;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tiny-llama-'));
  dir = join(root, 'inferq', 'llama');
  await buildLlama({ ...TINY_LLAMA, dir });
  session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
  tokenizer = await loadTokenizer(dir);
});

afterAll(async () => {
  await session?.release();
  await rm(root, { recursive: true, force: true });
});

function emptyPasts(batch: number): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (let i = 0; i < LAYERS; i++) {
    out[`past_key_values.${i}.key`] = emptyPast(batch, KV_HEADS, HEAD_DIM);
    out[`past_key_values.${i}.value`] = emptyPast(batch, KV_HEADS, HEAD_DIM);
  }
  return out;
}

/** Runs new tokens after `past`: mask over past + new, positions given (default: counting on from the past). */
async function run(
  ids: number[][],
  mask: number[][],
  positions: number[][],
  past?: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.OnnxValueMapType> {
  return session.run({
    input_ids: int64Tensor(ids),
    attention_mask: int64Tensor(mask),
    position_ids: int64Tensor(positions),
    ...(past ?? emptyPasts(ids.length)),
  });
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Greedy decoding with the cache from an unpadded prompt. */
async function greedy(prompt: number[], steps: number): Promise<{ tokens: number[]; logits: number[][] }> {
  let out = await run([prompt], [prompt.map(() => 1)], [range(prompt.length)]);
  const tokens: number[] = [];
  const logits: number[][] = [];
  for (let s = 0; s < steps; s++) {
    const row = logitsAt(out.logits as ort.Tensor, -1)[0]!;
    logits.push(row);
    tokens.push(argmax(row));
    const total = prompt.length + tokens.length;
    out = await run([[tokens.at(-1)!]], [Array<number>(total).fill(1)], [[total - 1]], pastFrom(out));
  }
  return { tokens, logits };
}

describe('tiny Llama', () => {
  it('writes the files of an Optimum decoder-only export, each under 1 MB', async () => {
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
    expect(await readdir(join(dir, 'onnx'))).toEqual(['model.onnx']);
    expect((await stat(join(dir, 'onnx', 'model.onnx'))).size).toBeLessThan(1024 * 1024);
  });

  it('writes a LlamaForCausalLM config with grouped-query attention', async () => {
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      hidden_size: TINY_LLAMA.hiddenSize,
      num_hidden_layers: LAYERS,
      num_attention_heads: TINY_LLAMA.numHeads,
      num_key_value_heads: KV_HEADS,
      head_dim: HEAD_DIM,
      vocab_size: IDS.vocabSize,
      tie_word_embeddings: true,
      eos_token_id: IDS.imEnd,
      pad_token_id: IDS.endOfText,
    });
    expect(config.num_key_value_heads as number).toBeLessThan(config.num_attention_heads as number);
    const generation = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8')) as Record<string, unknown>;
    expect(generation).toMatchObject({ eos_token_id: [IDS.imEnd, IDS.endOfText], pad_token_id: IDS.endOfText, do_sample: false });
  });

  it("has Optimum's tensor names and shapes", async () => {
    const pasts = range(LAYERS).flatMap((i) => [`${i}.key`, `${i}.value`]);
    expect(session.inputNames).toEqual(['input_ids', 'attention_mask', 'position_ids', ...pasts.map((p) => `past_key_values.${p}`)]);
    expect(session.outputNames).toEqual(['logits', ...pasts.map((p) => `present.${p}`)]);
    const prompt = tokenizer.encode('Hello there').ids;
    const out = await run([prompt], [prompt.map(() => 1)], [range(prompt.length)]);
    expect((out.logits as ort.Tensor).dims).toEqual([1, prompt.length, IDS.vocabSize]);
    expect((out['present.0.key'] as ort.Tensor).dims).toEqual([1, KV_HEADS, prompt.length, HEAD_DIM]);
  });

  it('gives the same logits with the cache as re-running the whole sequence', async () => {
    const prompt = tokenizer.encode('The refund never arrived and support is slow').ids;
    const { tokens, logits } = await greedy(prompt, 8);
    const all = [...prompt, ...tokens.slice(0, -1)];
    const full = await run([all], [all.map(() => 1)], [range(all.length)]);
    for (let s = 0; s < tokens.length; s++) {
      expect(maxAbsDiff([logitsAt(full.logits as ort.Tensor, prompt.length - 1 + s)[0]!], [logits[s]!])).toBeLessThan(1e-4);
    }
  });

  it('gives a left-padded row the logits it has alone, with the right mask and positions', async () => {
    const long = tokenizer.encode('The refund never arrived and support is slow').ids;
    const short = tokenizer.encode('Hello there').ids;
    const pad = long.length - short.length;
    const padded = [...Array<number>(pad).fill(IDS.endOfText), ...short];
    const mask = [long.map(() => 1), padded.map((_, i) => (i < pad ? 0 : 1))];
    const positions = [range(long.length), padded.map((_, i) => (i < pad ? 1 : i - pad))];
    const batch = await run([long, padded], mask, positions);
    const alone = await run([short], [short.map(() => 1)], [range(short.length)]);
    expect(maxAbsDiff([logitsAt(batch.logits as ort.Tensor, -1)[1]!], logitsAt(alone.logits as ort.Tensor, -1))).toBeLessThan(1e-4);
    // One cached step later, still the same.
    const next = [[7], [7]];
    const batchStep = await run(next, mask.map((m) => [...m, 1]), [[long.length], [short.length]], pastFrom(batch));
    const aloneStep = await run([[7]], [[...short.map(() => 1), 1]], [[short.length]], pastFrom(alone));
    expect(maxAbsDiff([logitsAt(batchStep.logits as ort.Tensor, -1)[1]!], logitsAt(aloneStep.logits as ort.Tensor, -1))).toBeLessThan(1e-4);
  });

  it('uses the mask and the positions for real', async () => {
    const short = tokenizer.encode('Hello there').ids;
    const padded = [IDS.endOfText, IDS.endOfText, ...short];
    const alone = logitsAt((await run([short], [short.map(() => 1)], [range(short.length)])).logits as ort.Tensor, -1);
    const attended = await run([padded], [padded.map(() => 1)], [[1, 1, ...range(short.length)]]);
    expect(maxAbsDiff(logitsAt(attended.logits as ort.Tensor, -1), alone)).toBeGreaterThan(1e-2);
    // Rotary embeddings are relative: the same shift for every token changes nothing, but
    // other distances between tokens do.
    const shifted = await run([short], [short.map(() => 1)], [range(short.length, 5)]);
    expect(maxAbsDiff(logitsAt(shifted.logits as ort.Tensor, -1), alone)).toBeLessThan(1e-4);
    const spread = await run([short], [short.map(() => 1)], [range(short.length).map((p) => 3 * p)]);
    expect(maxAbsDiff(logitsAt(spread.logits as ort.Tensor, -1), alone)).toBeGreaterThan(1e-2);
  });

  it('generates different, varied tokens for different prompts', async () => {
    const prompts = ['Hello there', 'The refund never arrived', 'Where is my order?', 'My password does not work'];
    const outputs = await Promise.all(prompts.map(async (p) => (await greedy(tokenizer.encode(p).ids, 10)).tokens));
    expect(new Set(outputs.map((o) => o.join(','))).size).toBe(prompts.length);
    expect(new Set(outputs.flat()).size).toBeGreaterThan(10);
  });

  it('ships a ChatML chat template that transformers.js renders', async () => {
    env.localModelPath = root;
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    const hf = await AutoTokenizer.from_pretrained('inferq/llama');
    const text = hf.apply_chat_template(
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi!' },
      ],
      { tokenize: false, add_generation_prompt: true },
    );
    expect(text).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n');
    const ids = tokenizer.encode(text as string).ids;
    expect(ids[0]).toBe(IDS.imStart);
    expect(ids.filter((id: number) => id === IDS.imEnd)).toHaveLength(2);
  });

  it('pads the embedding and LM head to vocabSize with rows greedy decoding never picks', async () => {
    const padded = join(root, 'inferq', 'llama-padded');
    await buildLlama({ ...TINY_LLAMA, vocabSize: 4096, dir: padded });
    const config = JSON.parse(await readFile(join(padded, 'config.json'), 'utf8'));
    expect(config.vocab_size).toBe(4096);
    expect(IDS.tokens).toBeLessThan(4096);
    // The tokenizer is the same one: padding rows are not tokens.
    expect(await readFile(join(padded, 'tokenizer.json'), 'utf8')).toBe(await readFile(join(dir, 'tokenizer.json'), 'utf8'));
    const s = await ort.InferenceSession.create(join(padded, 'onnx', 'model.onnx'));
    try {
      const prompt = tokenizer.encode('Where is my order?').ids;
      const out = await s.run({
        input_ids: int64Tensor([prompt]),
        attention_mask: int64Tensor([prompt.map(() => 1)]),
        position_ids: int64Tensor([range(prompt.length)]),
        ...emptyPasts(1),
      });
      expect((out.logits as ort.Tensor).dims).toEqual([1, prompt.length, 4096]);
      const row = logitsAt(out.logits as ort.Tensor, -1)[0]!;
      expect(row.slice(IDS.tokens).every((v) => v === 0)).toBe(true);
      // The real rows are the unpadded model's: the same logits, so the same greedy token.
      const alone = (await run([prompt], [prompt.map(() => 1)], [range(prompt.length)])).logits as ort.Tensor;
      expect(maxAbsDiff([row.slice(0, IDS.tokens)], logitsAt(alone, -1))).toBeLessThan(1e-5);
      expect(argmax(row)).toBeLessThan(IDS.tokens);
    } finally {
      await s.release();
    }
  });
});
