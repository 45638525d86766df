import { PassThrough } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ChatMessage, GenerationResult } from '@inferq/contracts';
import { newJobId } from '@inferq/queue';
import { clientGone } from '../../client-gone.js';
import { httpError } from '../../errors.js';
import { queueGeneration, type QueuedGeneration } from './generation-job.js';
import { toOpenAIError, withParam } from './openai-errors.js';
import {
  CHAT_FIELDS,
  COMPLETION_FIELDS,
  ChatCompletionBody,
  CompletionBody,
  chatMessages,
  generationRequest,
  refuseUnsupported,
  type GenerationRequest,
} from './openai-requests.js';

export interface Choice {
  text: string;
  finish_reason: 'stop' | 'length';
  tokens: number;
}

/** The job's sequences as choices: `n` of them (one text repeated for greedy decoding). */
export function choicesOf(result: GenerationResult, ask: GenerationRequest): Choice[] {
  const sequences = result.sequences?.map((s) => ({ text: s.text, finish_reason: s.finish_reason, tokens: s.output_tokens })) ?? [
    { text: result.text, finish_reason: result.finish_reason, tokens: result.usage.output_tokens },
  ];
  return ask.repeat ? Array.from({ length: ask.n }, () => sequences[0]!) : sequences;
}

export const usageOf = (promptTokens: number, choices: readonly Choice[]) => {
  const completion = choices.reduce((sum, c) => sum + c.tokens, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
};

const now = (): number => Math.floor(Date.now() / 1000);

/** `max_tokens` (or `max_completion_tokens`) against the server's cap, named as the client sent it. */
function checkMaxTokens(value: number | null | undefined, param: string, cap: number): void {
  if (typeof value === 'number' && value > cap) {
    throw withParam(httpError('INFERQ_ERR_VALIDATION', `${param} is ${value}; this server allows at most ${cap}`), param);
  }
}

/**
 * Streams one job as OpenAI's SSE: `data: <chunk>` per delta (the text the worker streams), a
 * last chunk with `finish_reason`, the usage chunk when asked, then `data: [DONE]`. An error
 * once the stream has begun is sent as `data: {"error": ...}` (the OpenAI clients raise it).
 * The job is queued before the first byte: a refused request is a plain JSON error.
 */
async function streamGeneration(
  request: FastifyRequest,
  reply: FastifyReply,
  start: (onDelta: (delta: string) => void, gone: AbortSignal) => Promise<QueuedGeneration>,
  chunk: (fields: { delta?: string; first?: boolean; finish?: 'stop' | 'length' }) => Record<string, unknown>,
  usage: ((result: GenerationResult, choices: Choice[]) => Record<string, unknown>) | undefined,
  ask: GenerationRequest,
  gone: AbortSignal,
  release: () => void,
): Promise<FastifyReply> {
  const out = new PassThrough();
  const send = (data: unknown): void => void out.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  const first = chunk({ first: true });
  if (Object.keys(first).length > 0) send(first);
  let queued: QueuedGeneration;
  try {
    queued = await start((delta) => send(chunk({ delta })), gone);
  } catch (err) {
    out.destroy();
    release();
    throw err;
  }
  void queued.result
    .then((result) => {
      if (!result) return;
      const choices = choicesOf(result, ask);
      send(chunk({ finish: choices[0]?.finish_reason ?? 'stop' }));
      if (usage) send(usage(result, choices));
      send('[DONE]');
    })
    .catch((err: unknown) => {
      const { body } = toOpenAIError(err, request);
      send(body);
    })
    .finally(() => {
      release();
      out.end();
    });
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no')
    .send(out);
}

/** `POST /chat/completions` and `POST /completions` (under `/openai/v1`): one `generation` job per prompt. */
export const openaiGenerationRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { MAX_NEW_TOKENS } = app.config;

  app.post(
    '/chat/completions',
    {
      preValidation: async (request) => refuseUnsupported(request.body, CHAT_FIELDS),
      schema: {
        summary: 'OpenAI chat completion',
        description: 'A `generation` job with the chat messages; waits for it (or streams it with `stream: true`). Unsupported fields are refused by name.',
        tags: ['openai'],
        body: ChatCompletionBody,
      },
    },
    async (request, reply) => {
      const gone = clientGone(reply);
      const body = request.body;
      const maxTokens = body.max_completion_tokens ?? body.max_tokens;
      checkMaxTokens(maxTokens, body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens', MAX_NEW_TOKENS);
      const ask = generationRequest(body, maxTokens);
      const messages: ChatMessage[] = chatMessages(body.messages);
      const release = ask.stream ? app.clientLimits.holdStream(request) : app.clientLimits.holdWait(request);
      let modelId: string;
      try {
        modelId = await app.models.resolve('generation', body.model);
      } catch (err) {
        release();
        throw withParam(err as Error, 'model');
      }
      const jobId = newJobId(modelId);
      const start = (onDelta: ((delta: string) => void) | undefined, signal: AbortSignal) =>
        queueGeneration(app, request, { modelId, id: jobId, input: messages, parameters: ask.parameters, gone: signal, ...(onDelta ? { onDelta } : {}) });
      const created = now();

      if (ask.stream) {
        const base = () => ({ id: `chatcmpl-${jobId}`, object: 'chat.completion.chunk', created, model: modelId, system_fingerprint: null });
        const withUsage = ask.includeUsage ? { usage: null } : {};
        return streamGeneration(
          request,
          reply,
          start,
          ({ delta, first, finish }) => {
            if (first) return { ...base(), choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], ...withUsage };
            if (finish) return { ...base(), choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: finish }], ...withUsage };
            return { ...base(), choices: [{ index: 0, delta: { content: delta }, logprobs: null, finish_reason: null }], ...withUsage };
          },
          ask.includeUsage ? (result, choices) => ({ ...base(), choices: [], usage: usageOf(result.usage.input_tokens, choices) }) : undefined,
          ask,
          gone,
          release,
        );
      }

      try {
        const queued = await start(undefined, gone);
        const result = await queued.result;
        if (!result) return reply; // the client left
        const choices = choicesOf(result, ask);
        return {
          id: `chatcmpl-${queued.id}`,
          object: 'chat.completion',
          created,
          model: modelId,
          system_fingerprint: null,
          choices: choices.map((c, index) => ({
            index,
            message: { role: 'assistant', content: c.text, refusal: null },
            logprobs: null,
            finish_reason: c.finish_reason,
          })),
          usage: usageOf(result.usage.input_tokens, choices),
        };
      } finally {
        release();
      }
    },
  );

  app.post(
    '/completions',
    {
      preValidation: async (request) => refuseUnsupported(request.body, COMPLETION_FIELDS),
      schema: {
        summary: 'OpenAI (legacy) completion',
        description: 'One `generation` job per prompt (text in, text out, no chat template). Unsupported fields are refused by name.',
        tags: ['openai'],
        body: CompletionBody,
      },
    },
    async (request, reply) => {
      const gone = clientGone(reply);
      const body = request.body;
      // OpenAI's default for this endpoint is 16 tokens.
      const maxTokens = body.max_tokens ?? 16;
      checkMaxTokens(maxTokens, 'max_tokens', MAX_NEW_TOKENS);
      const ask = generationRequest(body, maxTokens);
      const parameters = body.echo ? { ...ask.parameters, return_full_text: true } : ask.parameters;
      const prompts = typeof body.prompt === 'string' ? [body.prompt] : body.prompt;
      if (ask.stream && prompts.length > 1) {
        throw withParam(httpError('INFERQ_ERR_UNSUPPORTED_FIELD', 'several prompts with stream: true', 'stream one prompt per request'), 'prompt');
      }
      const release = ask.stream ? app.clientLimits.holdStream(request) : app.clientLimits.holdWait(request);
      let modelId: string;
      try {
        modelId = await app.models.resolve('generation', body.model);
      } catch (err) {
        release();
        throw withParam(err as Error, 'model');
      }
      const created = now();

      if (ask.stream) {
        const jobId = newJobId(modelId);
        const base = () => ({ id: `cmpl-${jobId}`, object: 'text_completion', created, model: modelId });
        return streamGeneration(
          request,
          reply,
          (onDelta, signal) => queueGeneration(app, request, { modelId, id: jobId, input: prompts[0]!, parameters, gone: signal, onDelta }),
          ({ delta, first, finish }) => {
            if (first) return {};
            return { ...base(), choices: [{ index: 0, text: delta ?? '', logprobs: null, finish_reason: finish ?? null }] };
          },
          ask.includeUsage ? (result, choices) => ({ ...base(), choices: [], usage: usageOf(result.usage.input_tokens, choices) }) : undefined,
          ask,
          gone,
          release,
        );
      }

      try {
        const queued = await Promise.all(prompts.map((input) => queueGeneration(app, request, { modelId, input, parameters, gone })));
        const results = await Promise.all(queued.map((q) => q.result));
        if (results.some((r) => r === undefined)) return reply;
        let promptTokens = 0;
        const choices: (Choice & { index: number })[] = [];
        results.forEach((result, p) => {
          promptTokens += result!.usage.input_tokens;
          choicesOf(result!, ask).forEach((c, j) => choices.push({ ...c, index: p * ask.n + j }));
        });
        return {
          id: `cmpl-${queued[0]!.id}`,
          object: 'text_completion',
          created,
          model: modelId,
          system_fingerprint: null,
          choices: choices.map((c) => ({ index: c.index, text: c.text, logprobs: null, finish_reason: c.finish_reason })),
          usage: usageOf(promptTokens, choices),
        };
      } finally {
        release();
      }
    },
  );
};
