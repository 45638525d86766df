import { pino, stdSerializers, type Logger } from 'pino';

/**
 * An error as logged, without the failed Redis command's arguments that ioredis attaches
 * (a job's data, its input included).
 */
function serializeError(err: Error): Record<string, unknown> {
  const out = stdSerializers.err(err) as unknown as Record<string, unknown>;
  const command = out.command as { name?: unknown } | undefined;
  if (command && typeof command === 'object') out.command = { name: command.name };
  return out;
}

/** JSON logs; pretty ones only on a terminal. Authorization headers and inputs never reach a log. */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    redact: ['req.headers.authorization', '*.authorization', 'authorization'],
    serializers: { err: serializeError },
    ...(process.stdout.isTTY ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
}
