// The real service for the benchmarks: the API and worker processes, as test/support
// starts them, plus Redis helpers (unique prefixes, cleanup) and per-process CPU time.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '@inferq/queue';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function uniquePrefix(name) {
  return `bench-${name}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under a BullMQ prefix. */
export async function deletePrefix(prefix) {
  const redis = new Redis(REDIS_URL);
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

export async function redisInfo() {
  const redis = new Redis(REDIS_URL);
  try {
    const info = await redis.info('server');
    const field = (name) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    return { version: field('redis_version'), pid: Number(field('process_id')) };
  } finally {
    redis.disconnect();
  }
}

export async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far; NaN when unreadable. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return NaN;
  }
}

/** A node process whose JSON log lines (stdout) can be awaited; everything also goes to a log file. */
class ServiceProcess {
  constructor(name, child, logFile) {
    this.name = name;
    this.child = child;
    this.logFile = logFile;
    this.lines = [];
    this.tail = [];
    this.waiters = [];
    const onLine = (text) => {
      this.tail.push(text);
      if (this.tail.length > 50) this.tail.shift();
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        return;
      }
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    };
    if (child.stdout) createInterface({ input: child.stdout }).on('line', onLine);
    if (child.stderr) createInterface({ input: child.stderr }).on('line', (l) => onLine(`[stderr] ${l}`));
    this.exited = once(child, 'exit').then(([code]) => code);
  }

  waitForLog(match, timeoutMs = 120_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no matching log line in ${timeoutMs} ms:\n${this.tail.join('\n')}`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with ${code}:\n${this.tail.join('\n')}`));
      });
    });
  }

  get pid() {
    return this.child.pid;
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

function start(root, name, script, env, { pipeStdout, execArgv = [] }) {
  const logFile = join(tmpdir(), `inferq-bench-${name}-${process.pid}.log`);
  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...execArgv, join(root, script)], {
    cwd: root,
    env: { ...process.env, ...env, NODE_ENV: 'production' },
    stdio: ['ignore', pipeStdout ? 'pipe' : fd, 'pipe'],
  });
  closeSync(fd);
  return new ServiceProcess(name, child, logFile);
}

/**
 * Starts the API on a free port (its request log goes to a file, at the API's default
 * level) and resolves once `/readyz` answers 200.
 */
export async function startApi(root, env, { execArgv = [] } = {}) {
  const port = await freePort();
  const proc = start(root, 'api', 'apps/api/dist/server.js', { PORT: String(port), HOST: '127.0.0.1', ...env }, { pipeStdout: false, execArgv });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`api exited with ${proc.child.exitCode}: see ${proc.logFile}\n${proc.tail.join('\n')}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`api not ready after 60 s: see ${proc.logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, url };
}

/** Starts a worker and resolves once it serves its models, with its metrics port. */
export async function startWorker(root, env) {
  const proc = start(root, 'worker', 'apps/worker/dist/main.js', { METRICS_PORT: '0', LOG_LEVEL: 'info', ...env }, { pipeStdout: true });
  const line = await proc.waitForLog((l) => l.msg === 'worker ready');
  return { proc, metricsPort: Number(line.metricsPort) };
}

/** Sums a Prometheus metric's samples (all label sets), or NaN when absent. */
export async function scrapeSum(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = NaN;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1] === name) total = (Number.isNaN(total) ? 0 : total) + Number(m[3]);
  }
  return total;
}
