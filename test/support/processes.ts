import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

type LogLine = Record<string, unknown> & { msg?: string };

/**
 * A real inferq process (API or worker) whose JSON log lines can be awaited.
 * stderr and unparsable lines are kept for the failure message.
 */
export class ServiceProcess {
  readonly lines: LogLine[] = [];
  readonly raw: string[] = [];
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const onLine = (text: string) => {
      this.raw.push(text);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    };
    if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
    if (child.stderr) createInterface({ input: child.stderr }).on('line', (l) => this.raw.push(`[stderr] ${l}`));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  static start(name: string, script: string, env: Record<string, string>): ServiceProcess {
    const child = spawn(process.execPath, [script], {
      cwd: ROOT,
      env: { ...process.env, ...env, NODE_ENV: 'test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServiceProcess(name, child);
  }

  /** Resolves with the first log line (past or future) that matches; rejects if the process exits first. */
  waitForLog(match: (line: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      this.waiters.push({ match, resolve });
      void this.exited.then((code) =>
        reject(new Error(`${this.name} exited with ${code} before the awaited log line:\n${this.raw.slice(-30).join('\n')}`)),
      );
    });
  }

  /** Sends a signal and resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    return this.exited;
  }
}

export const apiScript = `${ROOT}apps/api/dist/server.js`;
export const workerScript = `${ROOT}apps/worker/dist/main.js`;

/** Starts the API on a free port and resolves with its base URL once it listens. */
export async function startApi(env: Record<string, string>): Promise<{ proc: ServiceProcess; url: string }> {
  const proc = ServiceProcess.start('api', apiScript, { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env });
  const line = await proc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'));
  const url = /(http:\/\/[^\s]+)/.exec(String(line.msg))?.[1];
  if (!url) throw new Error(`no URL in ${line.msg}`);
  return { proc, url };
}

/** Starts a worker and resolves once it serves its models, with its metrics port. */
export async function startWorker(env: Record<string, string>): Promise<{ proc: ServiceProcess; metricsPort: number }> {
  const proc = ServiceProcess.start('worker', workerScript, { METRICS_PORT: '0', LOG_LEVEL: 'info', ...env });
  const line = await proc.waitForLog((l) => l.msg === 'worker ready');
  return { proc, metricsPort: Number(line.metricsPort) };
}
