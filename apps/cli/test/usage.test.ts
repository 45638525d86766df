import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, closedPort, httpServer, ROOT } from './helpers.js';
import { spawnSync } from 'node:child_process';

let dir: string;
let requests = 0;
let api: Awaited<ReturnType<typeof httpServer>>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inferq-cli-usage-'));
  api = await httpServer((_req, res) => {
    requests++;
    res.writeHead(500).end();
  });
});

afterAll(async () => {
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

describe('usage errors exit 2 with the usage, and send nothing', () => {
  it('no command: the help, on stderr', async () => {
    const run = await cli([]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Usage: inferq [options] [command]');
    expect(run.stderr).toContain('Exit codes:');
  });

  it('an unknown command or option', async () => {
    const unknown = await cli(['sumbit', 'x.jsonl']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'sumbit'/);
    expect(unknown.stderr).toMatch(/Did you mean submit\?/);
    const option = await cli(['classify', '--modle', 'a/b', 'text']);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/unknown option '--modle'/);
  });

  it('a missing argument or required option, with the command\'s usage', async () => {
    const noTask = await cli(['submit', 'reviews.jsonl', '--api', api.url]);
    expect(noTask.code).toBe(2);
    expect(noTask.stderr).toMatch(/required option '-t, --task <task>' not specified/);
    expect(noTask.stderr).toContain('Usage: inferq submit [options] <file>');
    const noText = await cli(['classify']);
    expect(noText.code).toBe(2);
    expect(noText.stderr).toMatch(/missing required argument 'text'/);
  });

  it('a bad option value', async () => {
    const run = await cli(['classify', '--top-k', '0', 'text', '--api', api.url]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--top-k must be a positive integer/);
    const badUrl = await cli(['classify', 'text', '--api', 'localhost:8080']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/must be an http\(s\) URL/);
  });

  it('a bad input file, naming its line', async () => {
    const file = join(dir, 'reviews.jsonl');
    await writeFile(file, '{"input":"fine"}\nnot json\n');
    const run = await cli(['submit', file, '--task', 'classification', '--api', api.url]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/reviews\.jsonl:2: not valid JSON/);
    const missing = await cli(['submit', join(dir, 'nope.csv'), '-t', 'classification', '--api', api.url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such file: .*nope\.csv/);
    expect(requests).toBe(0);
  });

  it('--help and --version exit 0', async () => {
    expect((await cli(['--help'])).code).toBe(0);
    expect((await cli(['submit', '--help'])).stdout).toContain('--column <name>');
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('an unreachable API exits 3 and says what to do', () => {
  it('classify, status, models list', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    for (const argv of [['classify', 'hello'], ['status', 'batch_0123'], ['models', 'list']]) {
      const run = await cli([...argv, '--api', url]);
      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`Cannot reach the inferq API at ${url} (ECONNREFUSED)`);
      expect(run.stderr).toMatch(/--api \/ INFERQ_API_URL/);
    }
  });

  it('reads INFERQ_API_URL when --api is not given', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await cli(['models', 'list'], { env: { INFERQ_API_URL: url } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(url);
  });
});

describe('the inferq executable', () => {
  it('runs from its bin entry and exits with the code', () => {
    const bin = join(ROOT, 'apps/cli/dist/main.js');
    const usage = spawnSync(process.execPath, [bin, 'classify'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('models');
  });
});
