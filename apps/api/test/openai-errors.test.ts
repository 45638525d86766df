import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, GENERATOR, SENTIMENT, type TestEnv } from './helpers.js';

/** `/openai/v1` answers every refusal in OpenAI's error shape, with inferq's status and code; nothing is queued. */
let env: TestEnv;
const ADMIN = 'admin-key-of-the-openai-errors-test';
let key: string;

beforeAll(async () => {
  env = await createTestEnv({ ADMIN_API_KEY: ADMIN });
  const created = await env.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: { authorization: `Bearer ${ADMIN}` }, payload: { tenant: 't1' } });
  key = (created.json() as { key: string }).key;
});
afterAll(async () => {
  await env?.close();
});

const chat = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  env.app.inject({ method: 'POST', url: '/openai/v1/chat/completions', headers: { authorization: `Bearer ${key}`, ...headers }, payload: body });
const messages = [{ role: 'user', content: 'hi' }];

async function expectNothingQueued(): Promise<void> {
  const counts = await env.app.queues.forModel(GENERATOR).getJobCounts();
  expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
}

describe('OpenAI-shaped errors under /openai/v1', () => {
  it.each([
    ['tools', { tools: [{ type: 'function', function: { name: 'f' } }] }, 'tools'],
    ['logprobs: true', { logprobs: true }, 'logprobs'],
    ['top_logprobs', { top_logprobs: 3 }, 'top_logprobs'],
    ['response_format json', { response_format: { type: 'json_object' } }, 'response_format'],
    ['presence_penalty 0.5', { presence_penalty: 0.5 }, 'presence_penalty'],
    ['an unknown field', { best_friend: 1 }, 'best_friend'],
    ['a tool message', { messages: [{ role: 'tool', content: 'x', tool_call_id: 'a' }] }, 'messages[0].tool_call_id'],
    ['an image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0].type'],
    ['n: 2 with stream', { n: 2, stream: true }, 'n'],
  ])('%s: 400 INFERQ_ERR_UNSUPPORTED_FIELD naming it', async (_name, extra, param) => {
    const res = await chat({ model: GENERATOR, messages, ...extra });
    expect(res.statusCode).toBe(400);
    const body = res.json() as { error: { message: string; type: string; param: string; code: string } };
    expect(body).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param, code: 'INFERQ_ERR_UNSUPPORTED_FIELD' } });
    expect(body.error.message).toContain(param.split(/[.[]/)[0]!);
    await expectNothingQueued();
  });

  it('a schema error names the field in param', async () => {
    const res = await chat({ model: GENERATOR, messages, temperature: 3 });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { type: 'invalid_request_error', param: 'temperature', code: 'INFERQ_ERR_VALIDATION' } });
    const missing = await chat({ model: GENERATOR });
    expect(missing.json()).toMatchObject({ error: { param: 'messages', code: 'INFERQ_ERR_VALIDATION' } });
  });

  it('max_tokens over MAX_NEW_TOKENS: 400 naming max_tokens', async () => {
    const res = await chat({ model: GENERATOR, messages, max_tokens: env.config.MAX_NEW_TOKENS + 1 });
    expect(res.json()).toMatchObject({ error: { param: 'max_tokens', code: 'INFERQ_ERR_VALIDATION' } });
    await expectNothingQueued();
  });

  it('an input over 100,000 characters: 400 as OpenAI answers a context too long (not 413), nothing queued', async () => {
    const res = await chat({ model: GENERATOR, messages: [{ role: 'user', content: 'a'.repeat(100_001) }] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'INFERQ_ERR_INPUT_TOO_LARGE' } });
    await expectNothingQueued();
  });

  it('an unknown model: 404 with param model; a model that does not generate: 400', async () => {
    const unknown = await chat({ model: 'acme/none', messages });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { type: 'invalid_request_error', param: 'model', code: 'INFERQ_ERR_UNKNOWN_MODEL' } });
    const classifier = await chat({ model: SENTIMENT, messages });
    expect(classifier.statusCode).toBe(400);
    expect(classifier.json()).toMatchObject({ error: { param: 'model', code: 'INFERQ_ERR_TASK_MISMATCH' } });
  });

  it('no key: 401 authentication_error in OpenAI’s shape; an unknown route: 404 in OpenAI’s shape', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/openai/v1/models' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { type: 'authentication_error', code: 'INFERQ_ERR_UNAUTHORIZED', param: null } });
    const route = await env.app.inject({ method: 'GET', url: '/openai/v1/assistants', headers: { authorization: `Bearer ${key}` } });
    expect(route.statusCode).toBe(404);
    expect(route.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'INFERQ_ERR_NOT_FOUND' } });
  });

  it('inferq’s own routes keep their shape', async () => {
    const res = await env.app.inject({ method: 'GET', url: '/v1/jobs/nope', headers: { authorization: `Bearer ${key}` } });
    expect(Object.keys((res.json() as { error: object }).error).sort()).toEqual(['code', 'message']);
  });

  it('another tenant’s file is not found; a file with another purpose is refused', async () => {
    const boundary = 'xx-boundary';
    const form = (purpose: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n{}\n\r\n--${boundary}--\r\n`;
    const upload = (purpose: string, auth: string) =>
      env.app.inject({ method: 'POST', url: '/openai/v1/files', headers: { authorization: `Bearer ${auth}`, 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: form(purpose) });
    const fine = await upload('batch', key);
    expect(fine.statusCode).toBe(200);
    const { id } = fine.json() as { id: string };
    const other = await env.app.inject({ method: 'POST', url: '/v1/admin/keys', headers: { authorization: `Bearer ${ADMIN}` }, payload: { tenant: 't2' } });
    const otherKey = (other.json() as { key: string }).key;
    const stranger = await env.app.inject({ method: 'GET', url: `/openai/v1/files/${id}/content`, headers: { authorization: `Bearer ${otherKey}` } });
    expect(stranger.statusCode).toBe(404);
    expect(stranger.json()).toMatchObject({ error: { code: 'INFERQ_ERR_FILE_NOT_FOUND', type: 'invalid_request_error' } });
    const borrowed = await env.app.inject({
      method: 'POST',
      url: '/openai/v1/batches',
      headers: { authorization: `Bearer ${otherKey}` },
      payload: { input_file_id: id, endpoint: '/v1/chat/completions', completion_window: '24h' },
    });
    expect(borrowed.statusCode).toBe(404);
    expect(borrowed.json()).toMatchObject({ error: { code: 'INFERQ_ERR_FILE_NOT_FOUND', param: 'input_file_id' } });
    const mine = await env.app.inject({ method: 'GET', url: `/openai/v1/files/${id}/content`, headers: { authorization: `Bearer ${key}` } });
    expect(mine.body).toBe('{}\n');
    const fineTune = await upload('fine-tune', key);
    expect(fineTune.statusCode).toBe(400);
    expect(fineTune.json()).toMatchObject({ error: { param: 'purpose', code: 'INFERQ_ERR_UNSUPPORTED_FIELD' } });
  });
});

describe('a job that does not end in OPENAI_WAIT_SECONDS (no worker serves the model)', () => {
  let slow: TestEnv;
  beforeAll(async () => {
    slow = await createTestEnv({ OPENAI_WAIT_SECONDS: '1' });
  });
  afterAll(async () => {
    await slow?.close();
  });

  it('answers 504 INFERQ_ERR_WAIT_TIMEOUT naming the job, which stays readable on /v1/jobs', async () => {
    const res = await slow.app.inject({ method: 'POST', url: '/openai/v1/chat/completions', payload: { model: GENERATOR, messages } });
    expect(res.statusCode).toBe(504);
    const body = res.json() as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ type: 'server_error', code: 'INFERQ_ERR_WAIT_TIMEOUT' });
    const id = /Job "([^"]+)"/.exec(body.error.message)?.[1];
    const job = await slow.app.inject({ url: `/v1/jobs/${id}` });
    expect(job.json()).toMatchObject({ id, status: 'queued' });
  });

  it('a stream that has begun ends with an OpenAI error event, not [DONE]', async () => {
    const res = await slow.app.inject({ method: 'POST', url: '/openai/v1/chat/completions', payload: { model: GENERATOR, messages, stream: true } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = res.body.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    expect(JSON.parse(events[0]!)).toMatchObject({ object: 'chat.completion.chunk', choices: [{ delta: { role: 'assistant' } }] });
    expect(JSON.parse(events.at(-1)!)).toMatchObject({ error: { type: 'server_error', code: 'INFERQ_ERR_WAIT_TIMEOUT' } });
    expect(res.body).not.toContain('[DONE]');
  });
});

describe('Batch API objects without a worker', () => {
  let bare: TestEnv;
  beforeAll(async () => {
    bare = await createTestEnv();
  });
  afterAll(async () => {
    await bare?.close();
  });

  it('creates a batch in OpenAI’s shape, cancels it, and does not show /v1 batches as its own', async () => {
    const boundary = 'b0undary';
    const lines = ['a', 'b'].map((c) => JSON.stringify({ custom_id: c, method: 'POST', url: '/v1/chat/completions', body: { model: GENERATOR, messages, max_tokens: 4 } })).join('\n');
    const payload = `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n\r\n${lines}\n\r\n--${boundary}--\r\n`;
    const file = await bare.app.inject({ method: 'POST', url: '/openai/v1/files', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload });
    const fileId = (file.json() as { id: string }).id;
    const created = await bare.app.inject({ method: 'POST', url: '/openai/v1/batches', payload: { input_file_id: fileId, endpoint: '/v1/chat/completions', completion_window: '24h' } });
    expect(created.statusCode).toBe(200);
    const batch = created.json() as { id: string; status: string; request_counts: object; output_file_id: null; expires_at: number; created_at: number };
    expect(batch).toMatchObject({ object: 'batch', endpoint: '/v1/chat/completions', input_file_id: fileId, status: 'in_progress', output_file_id: null, error_file_id: null });
    expect(batch.request_counts).toEqual({ total: 2, completed: 0, failed: 0 });
    expect(batch.expires_at - batch.created_at).toBe(86_400);
    // Its output file does not exist before the batch ends.
    const early = await bare.app.inject({ url: `/openai/v1/files/file-out-${batch.id}` });
    expect(early.json()).toMatchObject({ error: { code: 'INFERQ_ERR_FILE_NOT_FOUND' } });
    const cancelled = await bare.app.inject({ method: 'POST', url: `/openai/v1/batches/${batch.id}/cancel` });
    expect(cancelled.json()).toMatchObject({ id: batch.id, status: 'cancelling' });

    const own = await bare.app.inject({ method: 'POST', url: '/v1/batches', payload: { task: 'generation', model: GENERATOR, inputs: [{ custom_id: 'x', input: 'hi' }] } });
    const ownId = (own.json() as { id: string }).id;
    const viaOpenAI = await bare.app.inject({ url: `/openai/v1/batches/${ownId}` });
    expect(viaOpenAI.statusCode).toBe(404);
    const list = (await bare.app.inject({ url: '/openai/v1/batches' })).json() as { data: { id: string }[] };
    expect(list.data.map((b) => b.id)).toEqual([batch.id]);
  });
});
