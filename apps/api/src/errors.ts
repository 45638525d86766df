import createError, { type FastifyErrorConstructor } from '@fastify/error';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { ERRORS, ERROR_CODES, isErrorCode, type ErrorBody, type ErrorCode } from '@inferq/contracts';

type ErrorStatus<C extends ErrorCode> = (typeof ERRORS)[C]['status'];

/** One `@fastify/error` constructor per code of the contracts' table; messages take `%s`/`%d` arguments. */
export const errors = Object.fromEntries(
  ERROR_CODES.map((code) => [code, createError(code, ERRORS[code].message, ERRORS[code].status)]),
) as { readonly [C in ErrorCode]: FastifyErrorConstructor<{ code: C; statusCode: ErrorStatus<C> }> };

/** An API error, ready to throw from a handler: `throw httpError('INFERQ_ERR_JOB_NOT_FOUND', id)`. */
export function httpError(code: ErrorCode, ...args: unknown[]): Error & { code: ErrorCode; statusCode: number } {
  const ErrorClass = errors[code] as FastifyErrorConstructor<{ code: ErrorCode; statusCode: number }, unknown[]>;
  return new ErrorClass(...args);
}

export interface ErrorReply {
  statusCode: number;
  body: ErrorBody;
}

function errorReply(code: ErrorCode, ...args: unknown[]): ErrorReply {
  const error = httpError(code, ...args);
  return { statusCode: error.statusCode, body: { error: { code, message: error.message } } };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
const REDIS_DOWN_MESSAGES = [
  /Stream isn't writeable/, // ioredis, enableOfflineQueue: false while disconnected
  /Connection is closed/, // ioredis and BullMQ after quit/end
  /max retries per request/i, // ioredis MaxRetriesPerRequestError
  /^(LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|OOM)\b/, // Redis replies meaning "not now"
];

/** Whether an error means Redis can't be reached or can't serve now (answered with 503). */
export function isQueueUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  return REDIS_DOWN_MESSAGES.some((pattern) => pattern.test(error.message));
}

const MAX_NAME = 100;
const quote = (name: unknown): string => JSON.stringify(String(name).slice(0, MAX_NAME));

/**
 * One message naming the offending field, e.g. `body.parameters.top_k must be >= 1` or
 * `body has an unknown property "foo"`. Works with TypeBox's and ajv's error shapes.
 */
export function describeValidation(validation: readonly FastifySchemaValidationError[], context = 'request'): string {
  const first =
    validation.find((e) => e.keyword === 'additionalProperties') ??
    validation.find((e) => e.keyword === 'required') ??
    validation[0];
  if (!first) return `${context} is invalid`;
  const path = first.instancePath
    .split('/')
    .filter(Boolean)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  const where = [context, ...path].join('.');
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'additionalProperties') {
    const names = params.additionalProperties ?? params.additionalProperty;
    const name = Array.isArray(names) ? names[0] : names;
    if (name !== undefined) return `${where} has an unknown property ${quote(name)}`;
  }
  if (first.keyword === 'required') {
    const names = params.requiredProperties ?? params.missingProperty;
    const name = Array.isArray(names) ? names[0] : names;
    if (name !== undefined) return `${where} is missing the property ${quote(name)}`;
  }
  return `${where} ${first.message ?? 'is invalid'}`;
}

type AnyError = Error & {
  code?: unknown;
  statusCode?: unknown;
  validation?: FastifySchemaValidationError[];
  validationContext?: string;
};

/**
 * Maps any error to the status and `{error: {code, message}}` body sent for it.
 * Only our own codes and fastify's 4xx client errors pass their message on; everything
 * else is a generic 500 (the caller logs the real error).
 */
export function toErrorReply(error: unknown, request: FastifyRequest): ErrorReply {
  const err: AnyError = error instanceof Error ? error : new Error(String(error));
  const code = typeof err.code === 'string' ? err.code : undefined;
  if (code !== undefined && isErrorCode(code)) {
    const statusCode = typeof err.statusCode === 'number' ? err.statusCode : ERRORS[code].status;
    return { statusCode, body: { error: { code, message: err.message } } };
  }
  if (err.validation) {
    return errorReply('INFERQ_ERR_VALIDATION', describeValidation(err.validation, err.validationContext));
  }
  switch (code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return errorReply('INFERQ_ERR_MALFORMED_JSON', 'it could not be parsed');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errorReply('INFERQ_ERR_MALFORMED_JSON', 'it is empty');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errorReply('INFERQ_ERR_PAYLOAD_TOO_LARGE', request.routeOptions.bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errorReply('INFERQ_ERR_UNSUPPORTED_MEDIA_TYPE', String(request.headers['content-type'] ?? '').slice(0, MAX_NAME));
  }
  if (err instanceof SyntaxError && err.statusCode === 400) {
    return errorReply('INFERQ_ERR_MALFORMED_JSON', 'it could not be parsed');
  }
  if (isQueueUnavailableError(err)) return errorReply('INFERQ_ERR_QUEUE_UNAVAILABLE');
  // Other client errors raised by fastify itself (bad Content-Length, bad URL, ...).
  if (code?.startsWith('FST_') && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return { statusCode: err.statusCode, body: { error: { code: 'INFERQ_ERR_VALIDATION', message: err.message } } };
  }
  return errorReply('INFERQ_ERR_INTERNAL');
}

function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { statusCode, body } = toErrorReply(error, request);
  if (body.error.code === 'INFERQ_ERR_QUEUE_UNAVAILABLE') {
    // Expected while Redis is down (every readiness probe): one line, no stack.
    request.log.warn({ code: body.error.code, reason: error instanceof Error ? error.message : String(error) }, 'queue unavailable');
  } else if (statusCode >= 500) {
    request.log.error({ err: error, code: body.error.code }, 'request failed');
  } else {
    request.log.info({ code: body.error.code, reason: body.error.message }, 'request rejected');
  }
  // A quota's 429 says when to come back (the rate limit sets its own Retry-After).
  const retryAfter = (error as { retryAfter?: unknown } | undefined)?.retryAfter;
  if (typeof retryAfter === 'number' && statusCode === 429) reply.header('retry-after', String(Math.ceil(retryAfter)));
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}

/**
 * For fastify's `frameworkErrors` option: errors raised before routing (a malformed URL, ...)
 * get the same body as the rest.
 */
export function frameworkErrors(error: Error, request: FastifyRequest, reply: FastifyReply): void {
  // Refused before routing, the request's body is never read: close the connection, or its
  // bytes would be parsed as the next request on this keep-alive socket (found by the fuzz test).
  reply.header('connection', 'close');
  sendError(error, request, reply);
}

/** Sets the error and not-found handlers on the root instance (wrapped in `fastify-plugin`). */
export const errorHandlers = fp(
  async (app) => {
    app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
    app.setNotFoundHandler((request, reply) => {
      const { statusCode, body } = errorReply('INFERQ_ERR_NOT_FOUND', request.method, request.url.split('?')[0]?.slice(0, 200));
      return reply.code(statusCode).send(body);
    });
  },
  { name: 'inferq-errors' },
);

/**
 * For fastify's `clientErrorHandler`: a request Node's HTTP parser refuses (malformed framing,
 * headers too large) gets the same `{error: {code, message}}` body as every other 4xx.
 */
export function clientErrorHandler(this: { log: FastifyBaseLogger }, error: Error & { code?: string }, socket: import('node:net').Socket): void {
  // As Node's own handler: an answer already under way on this socket (a request refused before
  // its body was read, whose rest now fails to parse) must not get a second one appended.
  const answering = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
    socket.destroy();
    return;
  }
  this.log.info({ code: error.code, reason: error.message }, 'malformed HTTP request');
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const body = JSON.stringify({
    error: { code: 'INFERQ_ERR_VALIDATION', message: tooLarge ? 'Invalid request: the headers are too large' : 'Invalid request: malformed HTTP request' },
  });
  const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
