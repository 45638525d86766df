import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { NotFoundError, BadRequestError, AuthenticationError, toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel } from '@inferq/tiny-models';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

/**
 * The official `openai` npm client pointed at a real API and worker (`/openai/v1`), with an
 * inferq tenant key as its API key: what an application written for OpenAI sees.
 */
const prefix = uniquePrefix('e2e-openai');
const ADMIN = 'admin-key-for-the-openai-e2e-test';
const MODEL = 'inferq/tiny-llama';
const EMBEDDER = 'inferq/tiny-embeddings';
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
let client: OpenAI;
let tenantKey: string;

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-openai-'));
  for (const id of [MODEL, EMBEDDER]) await ensureModel(modelsDir, id);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker] = await Promise.all([startApi({ ...env, ADMIN_API_KEY: ADMIN }), startWorker({ ...env, WORKER_MODELS: `${MODEL},${EMBEDDER}` })]);
  const res = await fetch(`${api.url}/v1/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'openai-app' }),
  });
  expect(res.status).toBe(201);
  tenantKey = ((await res.json()) as { key: string }).key;
  client = new OpenAI({ baseURL: `${api.url}/openai/v1`, apiKey: tenantKey, maxRetries: 0 });
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

const messages = [
  { role: 'system' as const, content: 'You are a helpful support agent.' },
  { role: 'user' as const, content: 'My package has not arrived yet.' },
];

describe('the OpenAI protocol through the official client', () => {
  it('answers a chat completion with usage and finish_reason, as a job of the same tenant', async () => {
    const completion = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, temperature: 0 });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe(MODEL);
    expect(completion.choices).toHaveLength(1);
    const [choice] = completion.choices;
    expect(choice?.message.role).toBe('assistant');
    expect(choice?.message.content?.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(choice?.finish_reason);
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens).toBeLessThanOrEqual(12);
    if (choice?.finish_reason === 'length') expect(completion.usage?.completion_tokens).toBe(12);
    expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0));

    // The same answer through inferq's own API: the chat is a generation job, readable with the same key.
    const jobId = completion.id.replace(/^chatcmpl-/, '');
    const job = await fetch(`${api.url}/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${tenantKey}` } });
    expect(job.status).toBe(200);
    expect(((await job.json()) as { result: { text: string } }).result.text).toBe(choice?.message.content);
  });

  it('streams the same request as chat.completion.chunk deltas that join into the same text, usage last', async () => {
    const request = { model: MODEL, messages, max_tokens: 24, temperature: 0 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      chunks++;
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(chunks).toBeGreaterThan(2); // the role chunk, several deltas, the finish chunk
    expect(finish).toBe(whole.choices[0]?.finish_reason);
    expect(usage).toEqual(whole.usage);
  });

  it('samples n: 2 choices, each with its own finish_reason, and counts both in usage', async () => {
    const completion = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 10, n: 2, seed: 11 });
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1]);
    for (const choice of completion.choices) expect(choice.message.content?.length).toBeGreaterThan(0);
    // Two independent samples of a random tiny model: different texts.
    expect(completion.choices[0]?.message.content).not.toBe(completion.choices[1]?.message.content);
    const direct = await fetch(`${api.url}/v1/jobs/${completion.id.replace(/^chatcmpl-/, '')}`, { headers: { authorization: `Bearer ${tenantKey}` } });
    const view = (await direct.json()) as { result: { sequences: { output_tokens: number }[] } };
    expect(completion.usage?.completion_tokens).toBe(view.result.sequences.reduce((s, q) => s + q.output_tokens, 0));
  });

  it('gives the same text for the same seed, another for another seed', async () => {
    const request = { model: MODEL, messages, max_tokens: 16, temperature: 0.9, seed: 1234 };
    const [first, second, other] = await Promise.all([
      client.chat.completions.create(request),
      client.chat.completions.create(request),
      client.chat.completions.create({ ...request, seed: 99 }),
    ]);
    expect(second.choices[0]?.message.content).toBe(first.choices[0]?.message.content);
    expect(other.choices[0]?.message.content).not.toBe(first.choices[0]?.message.content);
  });

  it('stops before a stop text, with finish_reason stop', async () => {
    const request = { model: MODEL, messages, max_tokens: 24, temperature: 0 };
    const free = (await client.chat.completions.create(request)).choices[0]?.message.content ?? '';
    // A stop text taken from the middle of the free answer: the answer ends right before it.
    const words = free.split(/\s+/).filter((w) => w.length >= 2);
    const stop = words[Math.floor(words.length / 2)];
    expect(stop, `no word to stop on in ${JSON.stringify(free)}`).toBeDefined();
    const stopped = await client.chat.completions.create({ ...request, stop: [stop!] });
    const text = stopped.choices[0]?.message.content ?? '';
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
    expect(text).toBe(free.slice(0, free.indexOf(stop!)));
    expect(text).not.toContain(stop);
  });

  it('completes a prompt (legacy completions), several prompts in order', async () => {
    const res = await client.completions.create({ model: MODEL, prompt: ['Once upon a time', 'The weather today'], max_tokens: 6, temperature: 0 });
    expect(res.object).toBe('text_completion');
    expect(res.choices.map((c) => c.index)).toEqual([0, 1]);
    const alone = await client.completions.create({ model: MODEL, prompt: 'The weather today', max_tokens: 6, temperature: 0 });
    expect(res.choices[1]?.text).toBe(alone.choices[0]?.text);
    let streamed = '';
    for await (const chunk of await client.completions.create({ model: MODEL, prompt: 'The weather today', max_tokens: 6, temperature: 0, stream: true })) {
      streamed += chunk.choices[0]?.text ?? '';
    }
    expect(streamed).toBe(alone.choices[0]?.text);
  });

  it('lists the models and reads one', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids.sort()).toEqual([EMBEDDER, MODEL].sort());
    const model = await client.models.retrieve(MODEL);
    expect(model).toMatchObject({ id: MODEL, object: 'model', owned_by: 'inferq' });
  });

  it('embeds texts as floats and as base64, equal after decoding, in input order; dimensions cuts the vector', async () => {
    const input = ['Where is my order?', 'I was charged twice.'];
    const floats = await client.embeddings.create({ model: EMBEDDER, input, encoding_format: 'float' });
    const base64 = await fetch(`${api.url}/openai/v1/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenantKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: EMBEDDER, input, encoding_format: 'base64' }),
    }).then((r) => r.json() as Promise<{ data: { index: number; embedding: string }[] }>);
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    expect(floats.usage.prompt_tokens).toBeGreaterThan(0);
    base64.data.forEach((d, i) => {
      const bytes = Buffer.from(d.embedding, 'base64');
      const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
      expect(decoded).toEqual(floats.data[i]?.embedding.map((x) => Math.fround(x)));
    });
    // The client's own default asks for base64 and decodes it: the same vectors.
    const viaClient = await client.embeddings.create({ model: EMBEDDER, input });
    viaClient.data.forEach((d, i) => expect(d.embedding.map((x) => Math.fround(x))).toEqual(floats.data[i]?.embedding.map((x) => Math.fround(x))));
    expect(floats.data[0]?.embedding).not.toEqual(floats.data[1]?.embedding);
    const cut = await client.embeddings.create({ model: EMBEDDER, input: input[0]!, dimensions: 8, encoding_format: 'float' });
    expect(cut.data[0]?.embedding).toHaveLength(8);
  });

  it('raises the client’s NotFoundError for an unknown model, in OpenAI’s error shape', async () => {
    const error = await client.chat.completions.create({ model: 'inferq/no-such-model', messages }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).status).toBe(404);
    expect((error as NotFoundError).error).toMatchObject({ type: 'invalid_request_error', param: 'model', code: 'INFERQ_ERR_UNKNOWN_MODEL' });
    await expect(client.models.retrieve('inferq/no-such-model')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses unsupported fields by name (tools, logprobs), and accepts them sent as their neutral values', async () => {
    const tools = await client.chat.completions
      .create({ model: MODEL, messages, tools: [{ type: 'function', function: { name: 'track', parameters: {} } }] })
      .catch((e: unknown) => e);
    expect(tools).toBeInstanceOf(BadRequestError);
    expect((tools as BadRequestError).error).toMatchObject({ param: 'tools', code: 'INFERQ_ERR_UNSUPPORTED_FIELD' });
    expect((tools as BadRequestError).message).toMatch(/"tools" is not supported/);
    const logprobs = await client.chat.completions.create({ model: MODEL, messages, logprobs: true }).catch((e: unknown) => e);
    expect((logprobs as BadRequestError).error).toMatchObject({ param: 'logprobs', code: 'INFERQ_ERR_UNSUPPORTED_FIELD' });
    const image = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }] })
      .catch((e: unknown) => e);
    expect((image as BadRequestError).error).toMatchObject({ param: 'messages[0].content[0].type', code: 'INFERQ_ERR_UNSUPPORTED_FIELD' });
    const neutral = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 2, logprobs: false, presence_penalty: 0, tools: [] });
    expect(neutral.choices).toHaveLength(1);
  });

  it('takes text parts as content, and max_completion_tokens', async () => {
    const parts = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'My package has not arrived yet.' }] }],
      max_completion_tokens: 5,
      temperature: 0,
    });
    const plain = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'My package has not arrived yet.' }], max_tokens: 5, temperature: 0 });
    expect(parts.choices[0]?.message.content).toBe(plain.choices[0]?.message.content);
    expect(parts.usage?.completion_tokens).toBeLessThanOrEqual(5);
  });

  it('needs the tenant key: another key is refused with the client’s AuthenticationError', async () => {
    const stranger = new OpenAI({ baseURL: `${api.url}/openai/v1`, apiKey: 'not-a-key', maxRetries: 0 });
    await expect(stranger.models.list()).rejects.toBeInstanceOf(AuthenticationError);
  });
});

describe('batches of chat messages on /v1/batches (issue 11 item 3)', () => {
  const auth = () => ({ authorization: `Bearer ${tenantKey}` });
  const chats = [
    [{ role: 'user', content: 'Where is my order?' }],
    [
      { role: 'system', content: 'You are a helpful support agent.' },
      { role: 'user', content: 'I was charged twice.' },
    ],
  ];

  async function singleJob(input: unknown): Promise<{ text: string }> {
    const res = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'generation', model: MODEL, input, parameters: { max_new_tokens: 8 } }),
    });
    const { id } = (await res.json()) as { id: string };
    for (;;) {
      const view = (await (await fetch(`${api.url}/v1/jobs/${id}?wait=20`, { headers: auth() })).json()) as { status: string; result: { text: string } };
      if (view.status === 'succeeded') return view.result;
      if (view.status === 'failed') throw new Error(JSON.stringify(view));
    }
  }

  async function results(id: string): Promise<{ custom_id: string; result?: { text: string } }[]> {
    for (;;) {
      const view = (await (await fetch(`${api.url}/v1/batches/${id}`, { headers: auth() })).json()) as { status: string };
      if (view.status === 'completed') break;
      expect(['validating', 'in_progress', 'finalizing']).toContain(view.status);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const text = await (await fetch(`${api.url}/v1/batches/${id}/results`, { headers: auth() })).text();
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { custom_id: string; result?: { text: string } });
  }

  it('runs chat inputs (JSON body and NDJSON upload) and answers each as the same single job does', async () => {
    const expected = await Promise.all(chats.map(singleJob));
    const json = await fetch(`${api.url}/v1/batches`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'generation', model: MODEL, parameters: { max_new_tokens: 8 }, inputs: chats.map((input, i) => ({ custom_id: `c${i}`, input })) }),
    });
    expect(json.status, await json.clone().text()).toBe(202);
    const upload = await fetch(`${api.url}/v1/batches?task=generation&model=${encodeURIComponent(MODEL)}&parameters=${encodeURIComponent('{"max_new_tokens":8}')}`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/x-ndjson' },
      body: chats.map((input, i) => JSON.stringify({ custom_id: `u${i}`, input })).join('\n') + '\n',
    });
    expect(upload.status, await upload.clone().text()).toBe(202);
    for (const res of [json, upload]) {
      const lines = await results(((await res.json()) as { id: string }).id);
      expect(lines.map((l) => l.result?.text)).toEqual(expected.map((e) => e.text));
    }
  });

  it('refuses a bad chat message by its line, nothing run', async () => {
    const bad = await fetch(`${api.url}/v1/batches?task=generation&model=${encodeURIComponent(MODEL)}`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/x-ndjson' },
      body: `${JSON.stringify({ custom_id: 'a', input: chats[0] })}\n${JSON.stringify({ custom_id: 'b', input: [{ role: 'tool', content: 'x' }] })}\n`,
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'INFERQ_ERR_BATCH_LINE_INVALID', message: expect.stringMatching(/Line 2 .*input\[0\]\.role must be system, user or assistant/) } });
  });
});

describe('the OpenAI Batch API through the official client', () => {
  const questions = ['Where is my order?', 'I was charged twice.', 'How do I reset my password?'];
  const jsonl = (bodies: Record<string, unknown>[]) =>
    bodies.map((body, i) => JSON.stringify({ custom_id: `q${i}`, method: 'POST', url: '/v1/chat/completions', body })).join('\n') + '\n';

  it('runs a whole cycle: upload JSONL, create, poll, download and parse the output file', async () => {
    const request = (content: string) => ({ model: MODEL, messages: [{ role: 'user' as const, content }], max_tokens: 8, temperature: 0 });
    const upload = await client.files.create({ file: await toFile(Buffer.from(jsonl(questions.map(request))), 'questions.jsonl'), purpose: 'batch' });
    expect(upload).toMatchObject({ object: 'file', purpose: 'batch', filename: 'questions.jsonl' });
    expect(await client.files.retrieve(upload.id)).toMatchObject({ id: upload.id, bytes: upload.bytes });

    let batch = await client.batches.create({ input_file_id: upload.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    expect(batch).toMatchObject({ object: 'batch', endpoint: '/v1/chat/completions', input_file_id: upload.id, request_counts: { total: 3 } });
    while (!['completed', 'failed', 'cancelled', 'expired'].includes(batch.status)) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      batch = await client.batches.retrieve(batch.id);
    }
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
    expect(batch.error_file_id).toBeNull();
    const output = await (await client.files.content(batch.output_file_id!)).text();
    const lines = output
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: OpenAI.ChatCompletion }; error: null });
    expect(lines.map((l) => l.custom_id)).toEqual(['q0', 'q1', 'q2']);
    // Each answer is what the same request gets on its own.
    const alone = await Promise.all(questions.map((q) => client.chat.completions.create(request(q))));
    lines.forEach((line, i) => {
      expect(line.response.status_code).toBe(200);
      expect(line.error).toBeNull();
      expect(line.response.body.choices[0]?.message.content).toBe(alone[i]?.choices[0]?.message.content);
      expect(line.response.body.usage).toEqual(alone[i]?.usage);
    });
    const listed: string[] = [];
    for await (const b of client.batches.list()) listed.push(b.id);
    expect(listed).toContain(batch.id);
    expect(await client.files.delete(upload.id)).toMatchObject({ id: upload.id, deleted: true });
    await expect(client.files.retrieve(upload.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses a file whose lines ask for different settings, naming the line, and an unknown file', async () => {
    const base = { model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8 };
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl([base, { ...base, max_tokens: 9 }])), 'mixed.jsonl'), purpose: 'batch' });
    const mixed = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }).catch((e: unknown) => e);
    expect(mixed).toBeInstanceOf(BadRequestError);
    expect((mixed as BadRequestError).error).toMatchObject({ code: 'INFERQ_ERR_BATCH_LINE_INVALID' });
    expect((mixed as BadRequestError).message).toMatch(/Line 2 .*settings differ/);
    const unknown = await client.batches.create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect((unknown as NotFoundError).error).toMatchObject({ code: 'INFERQ_ERR_FILE_NOT_FOUND', param: 'input_file_id' });
  });
});
