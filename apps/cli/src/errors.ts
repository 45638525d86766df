/**
 * Exit codes a shell user can act on, and the error that carries one.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | done |
 * | 1 | the job or batch failed (or some of its inputs did), or a download failed its checks |
 * | 2 | usage: a bad option, argument or input file; nothing was sent |
 * | 3 | the API (or the Hub) could not be reached |
 * | 4 | the API (or the Hub) answered with an error; its code is printed |
 * | 130 | interrupted (Ctrl-C); a batch keeps running on the server |
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  unreachable: 3,
  apiError: 4,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one message (no stack) and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error: bad option, argument or input file (exit 2). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = 'UsageError';
  }
}

/** The error code of a system error (`ECONNREFUSED`), looking through `fetch`'s `cause` chain. */
export function systemErrorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
    if (Array.isArray((e as { errors?: unknown }).errors)) {
      const inner = systemErrorCode((e as { errors: unknown[] }).errors[0]);
      if (inner) return inner;
    }
  }
  return undefined;
}
