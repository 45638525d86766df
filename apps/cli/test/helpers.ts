import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/cli.js';
import type { CliIo } from '../src/context.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A stream that keeps what is written to it. */
export class Capture {
  text = '';
  constructor(readonly isTTY = false, readonly columns = 100) {}
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured streams and only the given environment. */
export async function cli(argv: string[], options: { env?: Record<string, string>; cwd?: string; signal?: AbortSignal } = {}): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture();
  const io: CliIo = { stdout, stderr, env: options.env ?? {}, cwd: options.cwd ?? process.cwd(), ...(options.signal ? { signal: options.signal } : {}) };
  const code = await runCli(argv, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** An HTTP server on 127.0.0.1 with a free port, answering with `handler`. */
export async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const { server, close } = await httpServer(() => {});
  const { port } = server.address() as AddressInfo;
  await close();
  return port;
}

/** Reads a request body whole. */
export async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

type LogLine = Record<string, unknown> & { msg?: string };

/** A real inferq process (API or worker), whose JSON log lines can be awaited. */
export class Service {
  private readonly lines: LogLine[] = [];
  private readonly raw: string[] = [];
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<unknown>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      this.raw.push(text);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        return;
      }
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
    });
    createInterface({ input: child.stderr! }).on('line', (text) => this.raw.push(`[stderr] ${text}`));
    this.exited = once(child, 'exit');
  }

  static start(name: string, script: string, env: Record<string, string>): Service {
    const child = spawn(process.execPath, [`${ROOT}${script}`], { cwd: ROOT, env: { ...process.env, ...env, NODE_ENV: 'test' }, stdio: ['ignore', 'pipe', 'pipe'] });
    return new Service(name, child);
  }

  waitForLog(match: (line: LogLine) => boolean): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      void this.exited.then(() => reject(new Error(`${this.name} exited before the awaited log line:\n${this.raw.slice(-30).join('\n')}`)));
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }
}

/** Starts the API on a free port; resolves with its URL once it listens. */
export async function startApi(env: Record<string, string>): Promise<{ service: Service; url: string }> {
  const service = Service.start('api', 'apps/api/dist/server.js', { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env });
  const line = await service.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'));
  const url = /(http:\/\/[^\s]+)/.exec(String(line.msg))?.[1];
  if (!url) throw new Error(`no URL in ${String(line.msg)}`);
  return { service, url };
}

/** Starts a worker; resolves once it serves its models. */
export async function startWorker(env: Record<string, string>): Promise<Service> {
  const service = Service.start('worker', 'apps/worker/dist/main.js', { METRICS_PORT: '0', LOG_LEVEL: 'info', ...env });
  await service.waitForLog((l) => l.msg === 'worker ready');
  return service;
}
