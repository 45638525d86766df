// Outcomes of `submit`, `status`, `cancel` that a real run can't produce on demand (inputs
// failing, a cancelled batch, an interrupted watch), against a small server speaking the
// batches API's protocol.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/index.js';
import { body, Capture, cli, httpServer, sendJson } from './helpers.js';

let dir: string;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inferq-cli-batch-'));
  file = join(dir, 'in.jsonl');
  await writeFile(file, ['a', 'b', 'c', 'd'].map((t) => JSON.stringify({ custom_id: t, input: `text ${t}` })).join('\n'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const view = (status: string, completed: number, failed: number) => ({
  id: 'batch_0123456789abcdef0123456789abcdef',
  object: 'batch',
  status,
  model: 'inferq/starter-sentiment',
  request_counts: { total: 4, completed, failed },
  created_at: '2026-01-01T00:00:00.000Z',
});

/** A batches API whose batch goes through `views`, one per read; records what it was sent. */
async function batchesApi(views: ReturnType<typeof view>[], resultLines: string[]) {
  const sent: { method: string; url: string; contentType?: string; body: string }[] = [];
  let reads = 0;
  const server = await httpServer(async (req, res) => {
    const text = await body(req);
    sent.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body: text });
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'POST' && path === '/v1/batches') return sendJson(res, 202, views[0]);
    if (req.method === 'GET' && path.endsWith('/results')) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'inferq-batch-status': views.at(-1)?.status ?? '' }).end(resultLines.map((l) => `${l}\n`).join(''));
      return;
    }
    if (req.method === 'GET' && path.startsWith('/v1/batches/')) return sendJson(res, 200, views[Math.min(++reads, views.length - 1)]);
    if (req.method === 'POST' && path.endsWith('/cancel')) return sendJson(res, 200, view('cancelling', 1, 0));
    sendJson(res, 404, { error: { code: 'INFERQ_ERR_NOT_FOUND', message: `Route ${req.method} ${path} not found` } });
  });
  return { ...server, sent };
}

const RESULTS = [
  '{"custom_id":"a","result":[{"label":"positive","score":0.9}]}',
  '{"custom_id":"b","error":{"code":"INFERQ_ERR_INFERENCE_FAILED","message":"boom"}}',
  '{"custom_id":"c","result":[{"label":"negative","score":0.8}]}',
  '{"custom_id":"d","result":[{"label":"positive","score":0.7}]}',
];

describe('submit', () => {
  it('streams the inputs as NDJSON with task and model in the query string', async () => {
    const api = await batchesApi([view('in_progress', 0, 0), view('completed', 4, 0)], RESULTS);
    try {
      await cli(['submit', file, '-t', 'classification', '-m', 'inferq/starter-sentiment', '--parameters', '{"top_k":1}', '--interval', '0.01', '--api', api.url]);
      const post = api.sent[0];
      expect(post?.method).toBe('POST');
      expect(post?.url).toBe('/v1/batches?task=classification&model=inferq%2Fstarter-sentiment&parameters=%7B%22top_k%22%3A1%7D');
      expect(post?.contentType).toBe('application/x-ndjson');
      expect(post?.body.trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual(['a', 'b', 'c', 'd'].map((t) => ({ custom_id: t, input: `text ${t}` })));
    } finally {
      await api.close();
    }
  });

  it('exits 1 when some inputs failed, and says where their errors are', async () => {
    const api = await batchesApi([view('in_progress', 0, 0), view('in_progress', 2, 1), view('completed', 3, 1)], RESULTS);
    try {
      const run = await cli(['submit', file, '-t', 'classification', '--interval', '0.01', '--out', join(dir, 'out.jsonl'), '--api', api.url]);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/completed: 3 succeeded, 1 failed of 4; 4 result lines in .*out\.jsonl/);
      expect(run.stderr).toMatch(/1 inputs failed: their lines in the results have "error"/);
      expect(await readFile(join(dir, 'out.jsonl'), 'utf8')).toBe(RESULTS.map((l) => `${l}\n`).join(''));
    } finally {
      await api.close();
    }
  });

  it('exits 1 when the batch was cancelled before it finished', async () => {
    const api = await batchesApi([view('in_progress', 0, 0), view('cancelled', 1, 0)], RESULTS.slice(0, 1));
    try {
      const run = await cli(['submit', file, '-t', 'classification', '--interval', '0.01', '--api', api.url]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/The batch cancelled before every input ran/);
    } finally {
      await api.close();
    }
  });

  it('draws a bar on a terminal', async () => {
    const api = await batchesApi([view('in_progress', 0, 0), view('in_progress', 2, 0), view('completed', 4, 0)], RESULTS);
    const stderr = new Capture(true, 120);
    try {
      const code = await runCli(['submit', file, '-t', 'classification', '--interval', '0.01', '--api', api.url], { stdout: new Capture(), stderr, env: {}, cwd: dir });
      expect(code).toBe(0);
      expect(stderr.text).toContain('\r\x1b[2Kprogress [');
      expect(stderr.text).toMatch(/progress \[#{40}\] 4\/4 {2}100%/);
    } finally {
      await api.close();
    }
  });

  it('stops watching on Ctrl-C, exits 130 and says how to follow the batch', async () => {
    const api = await batchesApi([view('in_progress', 0, 0)], []);
    const interrupt = new AbortController();
    try {
      const pending = cli(['submit', file, '-t', 'classification', '--interval', '0.05', '--api', api.url], { signal: interrupt.signal });
      setTimeout(() => interrupt.abort(), 200);
      const run = await pending;
      expect(run.code).toBe(130);
      expect(run.stderr).toMatch(/Stopped watching; batch batch_0123456789abcdef0123456789abcdef keeps running/);
      expect(run.stderr).toContain('inferq cancel batch_0123456789abcdef0123456789abcdef');
    } finally {
      await api.close();
    }
  });

  it('prints the batch id and returns with --no-wait', async () => {
    const api = await batchesApi([view('validating', 0, 0)], []);
    try {
      const run = await cli(['submit', file, '-t', 'classification', '--no-wait', '--api', api.url]);
      expect(run.code).toBe(0);
      expect(run.stdout.trim()).toBe('batch_0123456789abcdef0123456789abcdef');
      expect(api.sent.length).toBe(1);
    } finally {
      await api.close();
    }
  });

  it('exits 4 with the code when the API refuses the upload', async () => {
    const api = await httpServer(async (req, res) => {
      await body(req);
      sendJson(res, 400, { error: { code: 'INFERQ_ERR_BATCH_LINE_INVALID', message: 'Line 2 is invalid: input is empty' } });
    });
    try {
      const run = await cli(['submit', file, '-t', 'classification', '--api', api.url]);
      expect(run.code).toBe(4);
      expect(run.stderr).toContain('API error INFERQ_ERR_BATCH_LINE_INVALID (HTTP 400): Line 2 is invalid: input is empty');
      expect(run.stderr).toContain('Fix that line of the input file');
    } finally {
      await api.close();
    }
  });
});

describe('status and cancel', () => {
  it('status exits 1 for a failed batch; cancel reports the new status', async () => {
    const api = await batchesApi([view('failed', 0, 4), view('failed', 0, 4)], []);
    try {
      const status = await cli(['status', 'batch_0123456789abcdef0123456789abcdef', '--api', api.url]);
      expect(status.code).toBe(1);
      expect(status.stdout).toMatch(/failed\s+4\/4 \(100%\)\s+4/);
      const cancelled = await cli(['cancel', 'batch_0123456789abcdef0123456789abcdef', '--api', api.url]);
      expect(cancelled.code).toBe(0);
      expect(cancelled.stdout).toMatch(/cancelling: 1\/4 inputs ran/);
      expect((await cli(['cancel', 'not-a-batch', '--api', api.url])).code).toBe(2);
    } finally {
      await api.close();
    }
  });

  it('triage says what to use instead when the API has no /v1/tickets', async () => {
    const api = await batchesApi([view('completed', 4, 0)], []);
    try {
      const run = await cli(['triage', 'I was charged twice', '--api', api.url]);
      expect(run.code).toBe(4);
      expect(run.stderr).toMatch(/has no ticket triage.*inferq classify --model inferq\/starter-tickets "I was charged twice"/s);
    } finally {
      await api.close();
    }
  });
});
