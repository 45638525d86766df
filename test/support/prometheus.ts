import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse, stringify } from 'yaml';
import { requireBinary } from './binaries.js';
import { ROOT } from './processes.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface ScrapeConfig {
  job_name: string;
  scrape_interval?: string;
  static_configs?: { targets: string[] }[];
  dns_sd_configs?: unknown;
  [key: string]: unknown;
}

interface PromConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs: ScrapeConfig[];
}

/** One sample of an instant query: its labels and value (NaN stays NaN). */
export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

/**
 * A real Prometheus (Debian's `prometheus`) run on deploy/prometheus.yml with only the targets
 * rewritten (`targets`: job name → host:port list) and every interval set to `intervalSeconds`,
 * so a test sees scrapes and rule evaluations within seconds. The rule files are copied next to it.
 */
export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
    private readonly log: string[],
  ) {}

  static async start(targets: Record<string, string[]>, intervalSeconds = 1): Promise<PrometheusServer> {
    const binary = requireBinary('prometheus', 'prometheus');
    const dir = await mkdtemp(join(tmpdir(), 'inferq-prometheus-'));
    const config = parse(await readFile(join(ROOT, 'deploy/prometheus.yml'), 'utf8')) as PromConfig;
    const interval = `${intervalSeconds}s`;
    config.global = { ...config.global, scrape_interval: interval, evaluation_interval: interval };
    for (const job of config.scrape_configs) {
      const hosts = targets[job.job_name];
      if (!hosts) throw new Error(`deploy/prometheus.yml has a job "${job.job_name}" the test gives no target for`);
      delete job.dns_sd_configs;
      job.static_configs = [{ targets: hosts }];
      job.scrape_interval = interval;
    }
    for (const file of config.rule_files ?? []) await copyFile(join(ROOT, 'deploy', file), join(dir, file));
    await writeFile(join(dir, 'prometheus.yml'), stringify(config));

    const port = await freePort();
    const child = spawn(
      binary,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const log: string[] = [];
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stderr! }).on('line', (line) => {
        log.push(line);
        if (line.includes('Server is ready to receive web requests')) resolve();
      });
      void once(child, 'exit').then(([code]) => reject(new Error(`prometheus exited with ${code}:\n${log.slice(-20).join('\n')}`)));
    });
    await ready;
    return new PrometheusServer(child, dir, `http://127.0.0.1:${port}`, log);
  }

  /** An instant query; throws with Prometheus' error for a query it refuses. */
  async query(expr: string): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
    return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /**
   * Queries until `accept` holds for the samples. Prometheus has no push channel: data appears
   * at its next scrape (every `intervalSeconds`), so this polls, bounded by the test's timeout.
   */
  async queryUntil(expr: string, accept: (samples: PromSample[]) => boolean): Promise<PromSample[]> {
    for (;;) {
      const samples = await this.query(expr);
      if (accept(samples)) return samples;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`);
    return ((await res.json()) as { data: T }).data;
  }

  /** The last lines Prometheus logged, for a failure message. */
  tail(): string {
    return this.log.slice(-20).join('\n');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      await once(this.child, 'exit');
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
