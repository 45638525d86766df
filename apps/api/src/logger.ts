import { createRequire } from 'node:module';
import type { LoggerOptions } from 'pino';
import type { ApiConfig } from './config.js';

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * pino options for the API: JSON lines, or pretty lines when stdout is a terminal and
 * pino-pretty is installed. Authorization and cookie headers never reach a log.
 */
export function loggerOptions(config: Pick<ApiConfig, 'LOG_LEVEL'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'],
      censor: '[redacted]',
    },
    ...(process.stdout.isTTY && prettyAvailable() ? { transport: { target: 'pino-pretty' } } : {}),
  };
}
