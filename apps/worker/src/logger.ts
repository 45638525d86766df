import { pino, type Logger } from 'pino';

/** JSON logs; pretty ones only on a terminal. Authorization headers never reach a log. */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: ['req.headers.authorization', '*.authorization', 'authorization'],
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
}
