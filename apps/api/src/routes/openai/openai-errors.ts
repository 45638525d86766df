import type { FastifyReply, FastifyRequest } from 'fastify';
import { toErrorReply } from '../../errors.js';

/** An error body as OpenAI sends it; `code` is inferq's code (`INFERQ_ERR_...`), from the one registry. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

/** OpenAI's `type` for an HTTP status (what its clients and their users read). */
export function openaiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'invalid_request_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** The request field an error is about: set by our checks (`param`), or read from a schema error's path. */
function paramOf(error: unknown): string | null {
  const err = error as { param?: unknown; validation?: { instancePath?: string; params?: Record<string, unknown> }[] } | undefined;
  if (typeof err?.param === 'string') return err.param;
  const first = err?.validation?.[0];
  if (!first) return null;
  const path = (first.instancePath ?? '').split('/').filter(Boolean);
  const missing = first.params?.missingProperty ?? first.params?.requiredProperties;
  const name = Array.isArray(missing) ? missing[0] : missing;
  if (typeof name === 'string') path.push(name);
  return path.length > 0 ? path.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') : null;
}

/** Attaches the field an error is about, for OpenAI's `param`. */
export function withParam<E extends Error>(error: E, param: string): E {
  return Object.assign(error, { param });
}

/**
 * Where OpenAI answers another status than inferq's own routes: a prompt or input too long is
 * OpenAI's 400 (`context_length_exceeded`), so its clients raise `BadRequestError`, not a bare 413.
 */
const OPENAI_STATUS: Readonly<Record<string, number>> = {
  INFERQ_ERR_INPUT_TOO_LARGE: 400,
  INFERQ_ERR_PROMPT_TOO_LONG: 400,
  INFERQ_ERR_REQUEST_TOO_COSTLY: 400,
  INFERQ_ERR_BATCH_TOO_MANY_INPUTS: 400,
};

/** The status and OpenAI-shaped body for any error: the code inferq's own routes give, with OpenAI's status. */
export function toOpenAIError(error: unknown, request: FastifyRequest): { statusCode: number; body: OpenAIErrorBody } {
  const reply = toErrorReply(error, request);
  const { body } = reply;
  const statusCode = OPENAI_STATUS[body.error.code] ?? reply.statusCode;
  return {
    statusCode,
    body: { error: { message: body.error.message, type: openaiErrorType(statusCode), param: paramOf(error), code: body.error.code } },
  };
}

/** The error handler of the `/openai/v1` scope: logs as the rest of the API does, answers in OpenAI's shape. */
export function sendOpenAIError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { statusCode, body } = toOpenAIError(error, request);
  if (statusCode >= 500) request.log.error({ err: error, code: body.error.code }, 'request failed');
  else request.log.info({ code: body.error.code, reason: body.error.message }, 'request rejected');
  const retryAfter = (error as { retryAfter?: unknown } | undefined)?.retryAfter;
  if (typeof retryAfter === 'number' && statusCode === 429) reply.header('retry-after', String(Math.ceil(retryAfter)));
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}
