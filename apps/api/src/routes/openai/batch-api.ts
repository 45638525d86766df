import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import multipart from '@fastify/multipart';
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import { ERRORS, MAX_BATCH_INPUTS, MAX_CUSTOM_ID_CHARS, isErrorCode, type BatchView, type ChatMessage, type GenerationResult } from '@inferq/contracts';
import { describeValidation, httpError } from '../../errors.js';
import { lineError } from '../../batch-lines.js';
import { OpenAIFileStore, type OpenAIFile } from './file-store.js';
import { choicesOf, usageOf } from './generation-routes.js';
import { openaiErrorType, withParam } from './openai-errors.js';
import { CHAT_FIELDS, COMPLETION_FIELDS, ChatCompletionBody, CompletionBody, chatMessages, generationRequest, refuseUnsupported, type GenerationRequest } from './openai-requests.js';

/** The endpoints a Batch API line may call, and how their bodies are read. */
const ENDPOINTS = ['/v1/chat/completions', '/v1/completions'] as const;
type Endpoint = (typeof ENDPOINTS)[number];

const checkChat = Compile(ChatCompletionBody);
const checkCompletion = Compile(CompletionBody);

const CreateBatch = Type.Object(
  {
    input_file_id: Type.String({ minLength: 1, maxLength: 100 }),
    endpoint: Type.Union(ENDPOINTS.map((e) => Type.Literal(e))),
    completion_window: Type.String({ minLength: 1, maxLength: 40, description: 'OpenAI takes 24h; inferq any window up to 7d' }),
    metadata: Type.Optional(Type.Union([Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 })), Type.Null()])),
  },
  { additionalProperties: true },
);
const BATCH_FIELDS = Object.keys(CreateBatch.properties);
const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 120 }) });

/** What the Batch API keeps beside inferq's batch: `P:oai-batch:<id>`, expiring with the batch's owner record. */
interface BatchExtra {
  endpoint: Endpoint;
  input_file_id: string;
  n: number;
  repeat: boolean;
}

const seconds = (iso: string | null): number | null => (iso === null ? null : Math.floor(Date.parse(iso) / 1000));
const FINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);

/** An inferq error answered by an inner route (`app.inject`), rethrown with its code and status. */
function innerError(statusCode: number, body: string): Error {
  let parsed: { error?: { code?: string; message?: string } } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // not JSON: a generic error below
  }
  const code = parsed.error?.code;
  if (code === undefined || !isErrorCode(code)) return httpError('INFERQ_ERR_INTERNAL');
  return Object.assign(new Error(parsed.error?.message ?? code), { code, statusCode });
}

/** One line of the input file as the job's input and parameters. */
function readLine(value: unknown, line: number, endpoint: Endpoint, maxNewTokens: number) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw lineError(line, 'it must be a JSON object {"custom_id", "method", "url", "body"}');
  const record = value as Record<string, unknown>;
  const extra = Object.keys(record).find((k) => !['custom_id', 'method', 'url', 'body'].includes(k));
  if (extra !== undefined) throw lineError(line, `it has an unknown property ${JSON.stringify(extra.slice(0, 40))}`);
  const { custom_id: customId, method, url, body } = record;
  if (typeof customId !== 'string' || customId.length === 0 || customId.length > MAX_CUSTOM_ID_CHARS) {
    throw lineError(line, `custom_id must be a string of 1 to ${MAX_CUSTOM_ID_CHARS} characters`);
  }
  if (method !== 'POST') throw lineError(line, 'method must be "POST"');
  if (url !== endpoint) throw lineError(line, `url must be the batch's endpoint "${endpoint}"`);
  try {
    refuseUnsupported(body, endpoint === '/v1/chat/completions' ? CHAT_FIELDS : COMPLETION_FIELDS);
    const check = endpoint === '/v1/chat/completions' ? checkChat : checkCompletion;
    if (!check.Check(body)) throw httpError('INFERQ_ERR_VALIDATION', describeValidation(check.Errors(body) as FastifySchemaValidationError[], 'body'));
    if ((body as { stream?: unknown }).stream === true) throw httpError('INFERQ_ERR_VALIDATION', 'body.stream must not be true in a batch');
    let input: string | ChatMessage[];
    let maxTokens: number | null | undefined;
    let ask: GenerationRequest;
    if (endpoint === '/v1/chat/completions') {
      const chat = body as ChatCompletionBody;
      maxTokens = chat.max_completion_tokens ?? chat.max_tokens;
      ask = generationRequest(chat, maxTokens);
      input = chatMessages(chat.messages);
    } else {
      const completion = body as CompletionBody;
      if (typeof completion.prompt !== 'string') throw httpError('INFERQ_ERR_VALIDATION', 'body.prompt must be one string per line');
      if (completion.echo) throw httpError('INFERQ_ERR_VALIDATION', 'body.echo is not supported in a batch');
      maxTokens = completion.max_tokens ?? 16;
      ask = generationRequest(completion, maxTokens);
      input = completion.prompt;
    }
    if (typeof maxTokens === 'number' && maxTokens > maxNewTokens) throw httpError('INFERQ_ERR_VALIDATION', `max_tokens is ${maxTokens}; this server allows at most ${maxNewTokens}`);
    return { customId, model: (body as { model: string }).model, input, ask };
  } catch (err) {
    if ((err as { code?: string }).code === 'INFERQ_ERR_BATCH_LINE_INVALID') throw err;
    throw lineError(line, `body: ${(err as Error).message}`);
  }
}

/**
 * The OpenAI Batch API under `/openai/v1`: files (`/files`, multipart, `purpose=batch`) and
 * batches mapped onto inferq's `/v1/batches` (bulk priority, chunks, results, cancel, expiry):
 * a batch is made by calling that route in-process (`app.inject`, with the caller's key), so
 * its checks, quotas and ownership are the same. inferq runs one model with one set of
 * parameters per batch: every line must name the same model and settings (only the messages or
 * prompt differ). Output and error files are made from the batch's results when read.
 */
export const openaiBatchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { QUEUE_PREFIX, BATCH_BODY_LIMIT_BYTES, BATCH_RETENTION_SECONDS, MAX_NEW_TOKENS } = app.config;
  // Kept as long as the longest batch (7 days) and its results: a file outlives what it feeds.
  const fileSeconds = 7 * 86_400 + BATCH_RETENTION_SECONDS;
  const files = new OpenAIFileStore(app.queues.redis, QUEUE_PREFIX, fileSeconds);
  const extraKey = (id: string) => `${QUEUE_PREFIX}:oai-batch:${id}`;
  await app.register(multipart, { limits: { fileSize: BATCH_BODY_LIMIT_BYTES, files: 1, fields: 4, fieldSize: 1024 } });

  /** Calls an inferq route in-process as the caller (same key, same tenant). */
  async function inner(request: FastifyRequest, method: 'GET' | 'POST', url: string, payload?: unknown) {
    const headers: Record<string, string> = {};
    if (request.headers.authorization) headers.authorization = request.headers.authorization;
    const idempotencyKey = request.headers['idempotency-key'];
    if (typeof idempotencyKey === 'string') headers['idempotency-key'] = idempotencyKey;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const res = await (app as unknown as FastifyInstance).inject({ method, url, headers, ...(payload !== undefined ? { payload: JSON.stringify(payload) } : {}) });
    if (res.statusCode >= 400) throw innerError(res.statusCode, res.body);
    return res;
  }

  async function readExtra(id: string): Promise<BatchExtra | undefined> {
    const raw = await app.queues.redis.get(extraKey(id));
    return raw === null ? undefined : (JSON.parse(raw) as BatchExtra);
  }

  /** inferq's batch view in OpenAI's shape. */
  function batchObject(view: BatchView, extra: BatchExtra) {
    const final = FINAL.has(view.status);
    const unanswered = view.request_counts.total - view.request_counts.completed;
    return {
      id: view.id,
      object: 'batch' as const,
      endpoint: extra.endpoint,
      errors: null,
      input_file_id: extra.input_file_id,
      completion_window: view.completion_window,
      status: view.status,
      output_file_id: final && view.request_counts.completed > 0 ? `file-out-${view.id}` : null,
      error_file_id: final && unanswered > 0 ? `file-err-${view.id}` : null,
      created_at: seconds(view.created_at),
      in_progress_at: seconds(view.in_progress_at),
      expires_at: seconds(view.expires_at),
      finalizing_at: seconds(view.finalizing_at),
      completed_at: seconds(view.completed_at),
      failed_at: seconds(view.failed_at),
      expired_at: seconds(view.expired_at),
      cancelling_at: seconds(view.cancelling_at),
      cancelled_at: seconds(view.cancelled_at),
      request_counts: view.request_counts,
      metadata: view.metadata,
    };
  }

  async function openaiBatch(request: FastifyRequest, id: string) {
    const extra = await readExtra(id);
    // A batch made on /v1/batches has no OpenAI endpoint: not one of this API's batches.
    if (!extra) throw withParam(httpError('INFERQ_ERR_BATCH_NOT_FOUND', id.slice(0, 100)), 'batch_id');
    const view = (await inner(request, 'GET', `/v1/batches/${encodeURIComponent(id)}`)).json<BatchView>();
    return batchObject(view, extra);
  }

  /** The output (`out`) or error (`err`) file of a batch, made from its results. */
  async function resultFile(request: FastifyRequest, kind: 'out' | 'err', batchId: string): Promise<{ file: OpenAIFile; content: string } | undefined> {
    const extra = await readExtra(batchId);
    if (!extra) return undefined;
    const view = (await inner(request, 'GET', `/v1/batches/${encodeURIComponent(batchId)}`)).json<BatchView>();
    if (!FINAL.has(view.status)) return undefined;
    const results = await inner(request, 'GET', `/v1/batches/${encodeURIComponent(batchId)}/results`);
    const created = seconds(view.completed_at ?? view.failed_at ?? view.cancelled_at ?? view.expired_at) ?? Math.floor(Date.now() / 1000);
    const out: string[] = [];
    let n = 0;
    for (const text of results.body.split('\n')) {
      if (text === '') continue;
      n++;
      const line = JSON.parse(text) as { custom_id: string; result?: GenerationResult; error?: { code: string; message: string } };
      const requestId = `req_${batchId}_${n}`;
      const lineId = `batch_req_${batchId}_${n}`;
      if (line.result && kind === 'out') {
        const ask = { n: extra.n, repeat: extra.repeat } as GenerationRequest;
        const choices = choicesOf(line.result, ask);
        const body =
          extra.endpoint === '/v1/chat/completions'
            ? {
                id: `chatcmpl-${lineId}`,
                object: 'chat.completion',
                created,
                model: view.model,
                choices: choices.map((c, index) => ({ index, message: { role: 'assistant', content: c.text, refusal: null }, logprobs: null, finish_reason: c.finish_reason })),
                usage: usageOf(line.result.usage.input_tokens, choices),
              }
            : {
                id: `cmpl-${lineId}`,
                object: 'text_completion',
                created,
                model: view.model,
                choices: choices.map((c, index) => ({ index, text: c.text, logprobs: null, finish_reason: c.finish_reason })),
                usage: usageOf(line.result.usage.input_tokens, choices),
              };
        out.push(JSON.stringify({ id: lineId, custom_id: line.custom_id, response: { status_code: 200, request_id: requestId, body }, error: null }));
      } else if (line.error && kind === 'err') {
        const { code, message } = line.error;
        // Lines never run (cancelled, expired) carry `error`; lines that ran and failed, an error response.
        const notRun = code === 'INFERQ_ERR_BATCH_CANCELLED' || code === 'INFERQ_ERR_BATCH_EXPIRED';
        const status = isErrorCode(code) ? ERRORS[code].status : 500;
        out.push(
          JSON.stringify(
            notRun
              ? { id: lineId, custom_id: line.custom_id, response: null, error: { code, message } }
              : {
                  id: lineId,
                  custom_id: line.custom_id,
                  response: { status_code: status, request_id: requestId, body: { error: { message, type: openaiErrorType(status), param: null, code } } },
                  error: null,
                },
          ),
        );
      }
    }
    const content = out.length > 0 ? out.join('\n') + '\n' : '';
    const file: OpenAIFile = {
      id: `file-${kind}-${batchId}`,
      object: 'file',
      bytes: Buffer.byteLength(content),
      created_at: created,
      filename: `${batchId}_${kind === 'out' ? 'output' : 'error'}.jsonl`,
      purpose: kind === 'out' ? 'batch_output' : 'batch_error',
    };
    return { file, content };
  }

  /** A stored file or a batch's result file (the caller's: routes check `owned: 'file'`), or the file's not-found. */
  async function findFile(request: FastifyRequest, id: string): Promise<{ file: OpenAIFile; content?: string }> {
    const made = /^file-(out|err)-(.+)$/.exec(id);
    if (made) {
      const found = await resultFile(request, made[1] as 'out' | 'err', made[2]!).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'INFERQ_ERR_BATCH_NOT_FOUND') return undefined;
        throw err;
      });
      if (found) return found;
    } else {
      const file = await files.get(id);
      if (file) return { file };
    }
    throw withParam(httpError('INFERQ_ERR_FILE_NOT_FOUND', id.slice(0, 120)), 'file_id');
  }

  app.post('/files', { schema: { summary: 'OpenAI file upload (multipart: file, purpose=batch)', tags: ['openai'], consumes: ['multipart/form-data'] } }, async (request) => {
    if (!request.isMultipart()) throw httpError('INFERQ_ERR_UNSUPPORTED_MEDIA_TYPE', String(request.headers['content-type'] ?? '').slice(0, 100));
    let purpose: string | undefined;
    let upload: { filename: string; content: Buffer } | undefined;
    try {
      for await (const part of request.parts()) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') throw withParam(httpError('INFERQ_ERR_VALIDATION', `the file must be sent as the field "file", not ${JSON.stringify(part.fieldname.slice(0, 40))}`), 'file');
          upload = { filename: part.filename || 'upload.jsonl', content: await part.toBuffer() };
        } else if (part.fieldname === 'purpose') {
          purpose = String(part.value);
        } else {
          throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', JSON.stringify(part.fieldname.slice(0, 40)), 'files take "file" and "purpose"'), part.fieldname.slice(0, 40));
        }
      }
    } catch (err) {
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw httpError('INFERQ_ERR_PAYLOAD_TOO_LARGE', BATCH_BODY_LIMIT_BYTES);
      throw err;
    }
    if (purpose === undefined) throw withParam(httpError('INFERQ_ERR_VALIDATION', 'purpose is missing'), 'purpose');
    if (purpose !== 'batch') throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', `purpose ${JSON.stringify(purpose.slice(0, 40))}`, 'files are for the Batch API (purpose "batch")'), 'purpose');
    if (!upload) throw withParam(httpError('INFERQ_ERR_VALIDATION', 'file is missing'), 'file');
    const id = OpenAIFileStore.newId();
    await app.owners.claim(request, 'file', id, { ttlSeconds: fileSeconds });
    return files.put(id, upload.filename.slice(0, 255), purpose, upload.content);
  });

  app.get('/files/:id', { config: { owned: 'file' }, schema: { summary: 'OpenAI file', tags: ['openai'], params: IdParams } }, async (request) => (await findFile(request, request.params.id)).file);

  app.get('/files/:id/content', { config: { owned: 'file' }, schema: { summary: 'OpenAI file content', tags: ['openai'], params: IdParams } }, async (request, reply) => {
    const found = await findFile(request, request.params.id);
    const content = found.content ?? (await files.content(request.params.id));
    if (content === undefined) throw withParam(httpError('INFERQ_ERR_FILE_NOT_FOUND', request.params.id.slice(0, 120)), 'file_id');
    return reply.type('application/jsonl; charset=utf-8').send(content);
  });

  app.delete('/files/:id', { config: { owned: 'file' }, schema: { summary: 'Delete an OpenAI file', tags: ['openai'], params: IdParams } }, async (request) => {
    if (!(await files.delete(request.params.id))) throw withParam(httpError('INFERQ_ERR_FILE_NOT_FOUND', request.params.id.slice(0, 120)), 'file_id');
    return { id: request.params.id, object: 'file', deleted: true };
  });

  app.post(
    '/batches',
    {
      preValidation: async (request) => refuseUnsupported(request.body, BATCH_FIELDS),
      schema: { summary: 'OpenAI batch', tags: ['openai'], body: CreateBatch },
    },
    async (request) => {
      const { input_file_id: fileId, endpoint, completion_window: window, metadata } = request.body;
      await app.owners.assert(request, 'file', fileId).catch((err: unknown) => {
        throw withParam(err as Error, 'input_file_id');
      });
      const content = await files.content(fileId);
      const file = content ? await files.get(fileId) : undefined;
      if (!content || !file) throw withParam(httpError('INFERQ_ERR_FILE_NOT_FOUND', fileId.slice(0, 120)), 'input_file_id');
      if (file.purpose !== 'batch') throw withParam(httpError('INFERQ_ERR_VALIDATION', `file ${fileId} has purpose "${file.purpose}", not "batch"`), 'input_file_id');
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(content);
      } catch {
        throw withParam(httpError('INFERQ_ERR_VALIDATION', 'the input file is not valid UTF-8'), 'input_file_id');
      }
      let first: { model: string; settings: string; ask: GenerationRequest } | undefined;
      const inputs: { custom_id: string; input: string | ChatMessage[] }[] = [];
      for (const [i, raw] of text.split('\n').entries()) {
        if (raw.trim() === '') continue;
        if (inputs.length >= MAX_BATCH_INPUTS) throw httpError('INFERQ_ERR_BATCH_TOO_MANY_INPUTS', MAX_BATCH_INPUTS);
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch (err) {
          throw lineError(i + 1, `it is not valid JSON (${(err as Error).message.slice(0, 120)})`);
        }
        const line = readLine(value, i + 1, endpoint, MAX_NEW_TOKENS);
        const settings = JSON.stringify([line.ask.parameters, line.ask.n]);
        if (!first) first = { model: line.model, settings, ask: line.ask };
        else if (line.model !== first.model) throw lineError(i + 1, `body.model is "${line.model.slice(0, 100)}"; every line of a batch must name the first line's model "${first.model.slice(0, 100)}"`);
        else if (settings !== first.settings) throw lineError(i + 1, 'its sampling settings differ from the first line\'s; a batch runs one model with one set of settings (only messages or prompt may differ)');
        inputs.push({ custom_id: line.customId, input: line.input });
      }
      if (!first) throw httpError('INFERQ_ERR_BATCH_EMPTY');
      const created = (
        await inner(request, 'POST', '/v1/batches', {
          task: 'generation',
          model: first.model,
          parameters: first.ask.parameters,
          completion_window: window,
          ...(metadata ? { metadata } : {}),
          inputs,
        })
      ).json<BatchView>();
      const extra: BatchExtra = { endpoint, input_file_id: fileId, n: first.ask.n, repeat: first.ask.repeat };
      const ttl = Math.max(1, Math.ceil((Date.parse(created.expires_at) - Date.now()) / 1000)) + BATCH_RETENTION_SECONDS + 86_400;
      await app.queues.redis.set(extraKey(created.id), JSON.stringify(extra), 'EX', ttl);
      // Its output and error files, made when read, are the caller's as the batch is.
      await app.owners.claim(request, 'file', [`file-out-${created.id}`, `file-err-${created.id}`], { ttlSeconds: ttl });
      return batchObject(created, extra);
    },
  );

  app.get('/batches/:id', { schema: { summary: 'OpenAI batch', tags: ['openai'], params: IdParams } }, async (request) => openaiBatch(request, request.params.id));

  app.post('/batches/:id/cancel', { schema: { summary: 'Cancel an OpenAI batch', tags: ['openai'], params: IdParams } }, async (request) => {
    const extra = await readExtra(request.params.id);
    if (!extra) throw withParam(httpError('INFERQ_ERR_BATCH_NOT_FOUND', request.params.id.slice(0, 100)), 'batch_id');
    const view = (await inner(request, 'POST', `/v1/batches/${encodeURIComponent(request.params.id)}/cancel`)).json<BatchView>();
    return batchObject(view, extra);
  });

  app.get(
    '/batches',
    {
      schema: {
        summary: 'OpenAI batches, newest first',
        tags: ['openai'],
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })), after: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) }),
      },
    },
    async (request) => {
      const query = new URLSearchParams();
      if (request.query.limit !== undefined) query.set('limit', String(request.query.limit));
      if (request.query.after !== undefined) query.set('after', request.query.after);
      const list = (await inner(request, 'GET', `/v1/batches?${query}`)).json<{ data: BatchView[]; has_more: boolean; first_id: string | null; last_id: string | null }>();
      const data = [];
      for (const view of list.data) {
        const extra = await readExtra(view.id);
        if (extra) data.push(batchObject(view, extra));
      }
      // A page of inferq's list, less the batches made on /v1/batches: page on with last_id.
      return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: list.last_id, has_more: list.has_more };
    },
  );
};
