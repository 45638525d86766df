import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AutoModelForCausalLM,
  AutoTokenizer,
  env,
  pipeline as hfPipeline,
  type PreTrainedModel,
  type PreTrainedTokenizer,
} from '@huggingface/transformers';
import { TINY_LLAMA_ID } from '@inferq/tiny-models';
import {
  BatchScheduler,
  TextGenerationPipeline,
  type ChatMessage,
  type GeneratedText,
  type GenerationOptions,
  type Tensor,
  type TextGenerationPrepared,
  type TextGenerationRequest,
} from '../src/index.js';
import { tinyModels, upToEos, useLocalModels } from './helpers.js';

const PROMPTS = [
  'The refund never arrived and support is slow',
  'Hello there',
  'Where is my order? I paid two weeks ago and the tracking page shows nothing at all.',
  'bad',
];
const CHATS: ChatMessage[][] = [
  [{ role: 'user', content: 'Where is my order?' }],
  [
    { role: 'system', content: 'You are a helpful support agent.' },
    { role: 'user', content: 'My password does not work since the update.' },
  ],
];

let ours: TextGenerationPipeline;
let hfModel: PreTrainedModel;
let hfTokenizer: PreTrainedTokenizer;
let eos: number[];
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const models = await tinyModels([TINY_LLAMA_ID]);
  cleanup = models.cleanup;
  useLocalModels(env, models.modelsDir);
  ours = await TextGenerationPipeline.load(models.dirs[TINY_LLAMA_ID]!);
  hfModel = await AutoModelForCausalLM.from_pretrained(TINY_LLAMA_ID, { dtype: 'fp32' });
  hfTokenizer = await AutoTokenizer.from_pretrained(TINY_LLAMA_ID);
  eos = ours.prepare({ input: 'x' }).config.eosTokenId;
});
afterAll(async () => {
  await ours?.release();
  await hfModel?.dispose();
  await cleanup?.();
});

async function hfGenerate(prompts: string[], maxNewTokens: number): Promise<number[][]> {
  hfTokenizer.padding_side = 'left';
  const inputs = hfTokenizer(prompts, { padding: true, add_special_tokens: false });
  const width = inputs.input_ids.dims[1] as number;
  const out = (await hfModel.generate({ ...inputs, max_new_tokens: maxNewTokens })) as unknown as { tolist(): bigint[][] };
  return out.tolist().map((row) => row.map(Number).slice(width));
}

const gen = (inputs: (string | ChatMessage[])[], options: Omit<TextGenerationRequest, 'input'> = {}): Promise<GeneratedText[]> =>
  ours.generate(inputs, options);

describe('greedy generation matches transformers.js generate', () => {
  it('one prompt at a time: the same token ids', async () => {
    for (const prompt of PROMPTS) {
      const [reference] = await hfGenerate([prompt], 24);
      const [mine] = await gen([prompt], { maxNewTokens: 24 });
      expect(mine!.tokenIds).toEqual(reference);
    }
  });

  it('a left-padded batch of prompts of different lengths: the same tokens up to each row’s EOS', async () => {
    // transformers.js generates for finished rows until all are done; compare up to EOS.
    const references = await hfGenerate(PROMPTS, 24);
    const mine = await gen(PROMPTS, { maxNewTokens: 24 });
    mine.forEach((m, i) => expect(m.tokenIds).toEqual(upToEos(references[i]!, eos)));
    expect(new Set(mine.map((m) => m.tokenIds.length)).size).toBeGreaterThan(1);
  });

  it('chat messages: the same rendered prompt and reply as the text-generation pipeline', async () => {
    const generator = await hfPipeline('text-generation', TINY_LLAMA_ID, { dtype: 'fp32' });
    try {
      for (const chat of CHATS) {
        const rendered = hfTokenizer.apply_chat_template(chat, { tokenize: false, add_generation_prompt: true }) as string;
        expect(ours.prepare({ input: chat }).promptText).toBe(rendered);
        const [reference] = (await generator(chat, { max_new_tokens: 24 })) as { generated_text: ChatMessage[] }[];
        const [mine] = await gen([chat], { maxNewTokens: 24 });
        expect(mine!.text).toBe(reference!.generated_text.at(-1)!.content);
      }
    } finally {
      await generator.dispose();
    }
  });
});

/** Greedy decoding that re-runs the whole sequence every step, without a cache. */
async function uncachedGreedy(promptIds: readonly number[], maxNewTokens: number): Promise<number[]> {
  const tokens: number[] = [];
  const pasts = ours.session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const heads = ours.config.num_key_value_heads as number;
  const headDim = ours.config.head_dim as number;
  while (tokens.length < maxNewTokens && !eos.includes(tokens.at(-1) ?? -1)) {
    const all = [...promptIds, ...tokens];
    const dims = [1, all.length];
    const feeds: Record<string, Tensor> = {
      input_ids: { type: 'int64', data: BigInt64Array.from(all, BigInt), dims },
      attention_mask: { type: 'int64', data: new BigInt64Array(all.length).fill(1n), dims },
      position_ids: { type: 'int64', data: BigInt64Array.from(all, (_, i) => BigInt(i)), dims },
    };
    for (const name of pasts) feeds[name] = { type: 'float32', data: new Float32Array(0), dims: [1, heads, 0, headDim] };
    const { logits } = await ours.session.run(feeds, ['logits']);
    const vocab = logits!.dims[2]!;
    const last = Array.from(logits!.data.subarray((all.length - 1) * vocab, all.length * vocab));
    tokens.push(last.indexOf(Math.max(...last)));
  }
  return tokens;
}

describe('text generation decoding', () => {
  it('the KV cache gives the tokens of re-running the whole sequence each step', async () => {
    const mine = await gen(PROMPTS, { maxNewTokens: 16 });
    for (const [i, prompt] of PROMPTS.entries()) {
      expect(mine[i]!.tokenIds).toEqual(await uncachedGreedy(ours.prepare({ input: prompt }).promptIds, 16));
    }
  });

  it.each<[string, GenerationOptions]>([
    ['greedy', { maxNewTokens: 20 }],
    ['seeded sampling', { maxNewTokens: 20, doSample: true, seed: 3, temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.3 }],
    ['beam search', { maxNewTokens: 12, numBeams: 3 }],
    ['no-repeat n-grams', { maxNewTokens: 20, noRepeatNgramSize: 2 }],
  ])('%s gives every prompt the same output batched as alone', async (_, options) => {
    const inputs = [...PROMPTS, ...CHATS];
    const batched = await gen(inputs, options);
    for (const [i, input] of inputs.entries()) expect(batched[i]).toEqual((await gen([input], options))[0]);
  });

  it('rows with different sampling settings share a batch, each as it would be alone', async () => {
    const requests: TextGenerationRequest[] = [
      { input: PROMPTS[0]!, doSample: true, seed: 1, maxNewTokens: 15, minNewTokens: 10 },
      { input: PROMPTS[1]!, maxNewTokens: 8 },
      { input: CHATS[0]!, doSample: true, seed: 2, temperature: 1.5, topP: 0.5, maxNewTokens: 25 },
      { input: PROMPTS[2]!, doSample: true, seed: 1, topK: 5, maxNewTokens: 12 },
    ];
    const batched = await ours.run(requests.map((r) => ours.prepare(r)));
    for (const [i, r] of requests.entries()) expect(batched[i]).toEqual((await ours.run([ours.prepare(r)]))[0]);
    expect(batched[0]!.tokenIds.length).toBeGreaterThanOrEqual(10);
  });

  it('a seed repeats a sample; other seeds give others', async () => {
    const sample = async (seed: number) => (await gen([PROMPTS[0]!], { doSample: true, seed, maxNewTokens: 20, minNewTokens: 20 }))[0]!.tokenIds;
    expect(await sample(7)).toEqual(await sample(7));
    const others = await Promise.all([8, 9, 10].map(sample));
    expect(others.some((o) => o.join() !== (others[0] ?? []).join())).toBe(true);
  });

  it('reports finish reasons and token counts', async () => {
    const out = await gen([...PROMPTS, ...CHATS], { maxNewTokens: 20 });
    for (const o of out) {
      expect(o.outputTokens).toBe(o.tokenIds.length);
      if (o.finishReason === 'stop') expect(eos).toContain(o.tokenIds.at(-1));
      else expect(o.tokenIds).toHaveLength(20);
    }
    expect(new Set(out.map((o) => o.finishReason))).toEqual(new Set(['stop', 'length']));
    expect(out[0]!.inputTokens).toBe(ours.prepare({ input: PROMPTS[0]! }).promptIds.length);
  });

  it('stops at a stop string, cuts it from the text, and streams only text before it', async () => {
    const [free] = await gen([PROMPTS[0]!], { maxNewTokens: 20, minNewTokens: 20 });
    const text = free!.text;
    const stop = text.slice(6, 9);
    const cut = text.indexOf(stop);
    const deltas: string[] = [];
    const rowDeltas: string[] = [];
    const [out] = await ours.run(
      [ours.prepare({ input: PROMPTS[0]!, maxNewTokens: 20, minNewTokens: 20, stop: ['never appears', stop], onToken: (d) => deltas.push(d) })],
      { onToken: (row, d) => rowDeltas.push(`${row}:${d}`) },
    );
    expect(out!.text).toBe(text.slice(0, cut));
    expect(out!.finishReason).toBe('stop');
    expect(out!.tokenIds).toEqual(free!.tokenIds.slice(0, out!.tokenIds.length));
    expect(out!.tokenIds.length).toBeLessThan(free!.tokenIds.length);
    expect(deltas.join('')).toBe(out!.text);
    expect(rowDeltas.map((d) => d.slice(2)).join('')).toBe(out!.text);
  });

  it('streams text deltas that add up to every row’s text', async () => {
    const deltas: string[][] = PROMPTS.map(() => []);
    const out = await ours.run(PROMPTS.map((input, i) => ours.prepare({ input, maxNewTokens: 20, onToken: (d) => deltas[i]!.push(d) })));
    out.forEach((o, i) => expect(deltas[i]!.join('')).toBe(o.text));
  });

  it('returnFullText puts the prompt before the generated text', async () => {
    const [plain] = await gen([PROMPTS[1]!], { maxNewTokens: 10 });
    const [full] = await gen([PROMPTS[1]!], { maxNewTokens: 10, returnFullText: true });
    expect(full!.text).toBe(PROMPTS[1]! + plain!.text);
  });

  it('shares batches through the BatchScheduler, the budget counting tokens still to generate', async () => {
    const batches: number[] = [];
    const scheduler = new BatchScheduler<TextGenerationRequest, TextGenerationPrepared, GeneratedText>({
      prepare: (r) => ours.prepare(r),
      cost: (p) => ours.cost(p),
      groupKey: (p) => ours.groupKey(p),
      run: (batch) => ours.run(batch),
      maxDelayMs: 20,
      onBatch: (s) => batches.push(s.size),
    });
    const requests: TextGenerationRequest[] = [
      ...PROMPTS.map((input) => ({ input, maxNewTokens: 12 })),
      { input: PROMPTS[0]!, maxNewTokens: 12, numBeams: 2 },
    ];
    const results = await Promise.all(requests.map((r) => scheduler.submit(r)));
    await scheduler.close();
    expect(batches.length).toBeGreaterThanOrEqual(2); // the beam request runs apart
    expect(Math.max(...batches)).toBeGreaterThan(1);
    for (const [i, r] of requests.entries()) expect(results[i]).toEqual((await ours.run([ours.prepare(r)]))[0]);
    const p = ours.prepare({ input: PROMPTS[0]!, maxNewTokens: 12 });
    expect(ours.cost(p)).toBe(p.promptIds.length + 12);
  });
});

describe('text generation parameters', () => {
  it.each<[Partial<TextGenerationRequest>, RegExp]>([
    [{ temperature: -1 }, /temperature must be a number >= 0/],
    [{ topP: 0 }, /topP must be in \(0, 1\]/],
    [{ topP: 1.01 }, /topP must be in \(0, 1\]/],
    [{ maxNewTokens: 5000 }, /over the model's context of 2048 tokens/],
    [{ input: '' }, /non-empty prompt/],
    [{ input: [] }, /non-empty array/],
    [{ input: [{ role: 'user' }] as unknown as ChatMessage[] }, /Chat message 0 must be \{role: string, content: string\}/],
  ])('rejects %o', (request, message) => {
    expect(() => ours.prepare({ input: 'hello', ...request })).toThrow(message);
  });

  it('takes its defaults from generation_config.json', () => {
    const { config } = ours.prepare({ input: 'hello' });
    expect(config).toMatchObject({ maxNewTokens: 128, doSample: false, eosTokenId: eos });
    expect(eos).toHaveLength(2);
  });
});
