import { createRequire } from 'node:module';
import { stdSerializers, type LoggerOptions } from 'pino';
import type { ApiConfig } from './config.js';

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** A URL as logged: the path only. Query strings carry settings such as an upload's `webhook_url` (with its token). */
export function pathOnly(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : `${url.slice(0, cut)}?[redacted]`;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  headers?: Record<string, unknown>;
  socket?: { remoteAddress?: string; remotePort?: number };
}

/** The request as logged: method, path (no query string), host, client address. Never a header or the body. */
export function serializeRequest(req: LoggedRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: pathOnly(req.url),
    host: req.headers?.host,
    remoteAddress: req.socket?.remoteAddress,
    remotePort: req.socket?.remotePort,
  };
}

/**
 * An error as logged, without what may hold user data: ioredis attaches the failed command
 * with its arguments (a job's data, input included), and errors may carry a request's URL.
 */
export function serializeError(err: Error): Record<string, unknown> {
  const out = stdSerializers.err(err) as unknown as Record<string, unknown>;
  const command = out.command as { name?: unknown } | undefined;
  if (command && typeof command === 'object') out.command = { name: command.name };
  for (const key of ['args', 'data', 'body', 'url', 'input']) delete out[key];
  return out;
}

/**
 * pino options for the API: JSON lines, or pretty lines when stdout is a terminal and
 * pino-pretty is installed. Authorization and cookie headers never reach a log; request URLs
 * are logged without their query string, errors without the Redis command's arguments.
 */
export function loggerOptions(config: Pick<ApiConfig, 'LOG_LEVEL'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'],
      censor: '[redacted]',
    },
    serializers: { req: serializeRequest as never, err: serializeError as never },
    ...(process.stdout.isTTY && prettyAvailable() ? { transport: { target: 'pino-pretty' } } : {}),
  };
}
