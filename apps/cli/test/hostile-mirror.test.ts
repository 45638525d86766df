// `inferq models pull` against a hostile mirror (issue 15 item 8): a listing without sizes and
// an endless file, an endless listing, a server that never answers, one that dribbles bytes.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubError, pullModel } from '../src/index.js';
import { httpServer, sendJson } from './helpers.js';

const MODEL_ID = 'evil/endless';
const COMMIT = 'fedcba9876543210fedcba9876543210fedcba98';
const SIBLINGS = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'].map((rfilename) => ({ rfilename }));

let modelsDir: string;
const closers: (() => Promise<void>)[] = [];
beforeEach(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-hostile-'));
});
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await rm(modelsDir, { recursive: true, force: true });
});

/** Writes `chunk` as long as the client reads, forever. */
function endless(res: ServerResponse, chunk: Buffer): void {
  const pump = (): void => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
}

async function mirror(serve: (path: string, req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = await httpServer((req, res) => {
    res.on('error', () => {});
    serve(decodeURIComponent(new URL(req.url ?? '/', 'http://m').pathname), req, res);
  });
  closers.push(server.close);
  return server.url;
}

/** Serves a listing with no sizes; small files as `{}`; `onnx/model.onnx` as `onnx` says. */
function listingThen(onnx: (res: ServerResponse) => void) {
  return (path: string, _req: IncomingMessage, res: ServerResponse): void => {
    if (path === `/api/models/${MODEL_ID}`) return sendJson(res, 200, { id: MODEL_ID, sha: COMMIT, siblings: SIBLINGS });
    if (path === `/${MODEL_ID}/resolve/${COMMIT}/onnx/model.onnx`) return onnx(res);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  };
}

/** Nothing of the pull is left where the worker would look: no model folder. */
async function noModelFolder(): Promise<void> {
  const entries = await readdir(join(modelsDir, 'evil')).catch(() => []);
  expect(entries.filter((e) => !e.startsWith('.'))).toEqual([]);
}

describe('models pull against a hostile mirror', () => {
  it('no sizes listed and an endless model file: stopped at the size cap, the part discarded', async () => {
    const endpoint = await mirror(
      listingThen((res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        endless(res, Buffer.alloc(64 * 1024, 7));
      }),
    );
    const err = await pullModel({ id: MODEL_ID, modelsDir, endpoint, maxBytes: 2 * 1024 * 1024, retries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err).toMatchObject({ kind: 'too-large' });
    await noModelFolder();
    // The discarded part holds nothing either.
    const pull = join(modelsDir, 'evil', '.endless.pull', 'onnx');
    expect((await readdir(pull).catch(() => [])).filter((e) => e.endsWith('.part'))).toEqual([]);
  });

  it('an endless config file is stopped at the small-file cap', async () => {
    const endpoint = await mirror((path, _req, res) => {
      if (path === `/api/models/${MODEL_ID}`) return sendJson(res, 200, { id: MODEL_ID, sha: COMMIT, siblings: SIBLINGS });
      res.writeHead(200);
      endless(res, Buffer.alloc(16 * 1024, 32));
    });
    const err = await pullModel({ id: MODEL_ID, modelsDir, endpoint, maxSmallFileBytes: 256 * 1024, retries: 0 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'too-large' });
    expect((err as Error).message).toContain('config.json');
  });

  it('an endless listing is refused past its cap', async () => {
    const endpoint = await mirror((_path, _req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"siblings":[');
      endless(res, Buffer.from('{"rfilename":"x"},'.repeat(1000)));
    });
    const err = await pullModel({ id: MODEL_ID, modelsDir, endpoint, maxListingBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'too-large' });
  });

  it('listed sizes over the cap: refused before any download', async () => {
    let downloads = 0;
    const endpoint = await mirror((path, _req, res) => {
      if (path === `/api/models/${MODEL_ID}`) {
        return sendJson(res, 200, { id: MODEL_ID, sha: COMMIT, siblings: SIBLINGS.map((s) => ({ ...s, size: 600 * 1024 ** 2 })) });
      }
      downloads++;
      res.writeHead(404).end();
    });
    const err = await pullModel({ id: MODEL_ID, modelsDir, endpoint, maxBytes: 1024 ** 3 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'too-large' });
    expect(downloads).toBe(0);
  });

  it('a server that accepts and never answers: each try is dropped after the stall timeout, then the pull fails', async () => {
    let tries = 0;
    const endpoint = await mirror(
      listingThen(() => {
        tries++; // never answers
      }),
    );
    const err = await pullModel({ id: MODEL_ID, modelsDir, endpoint, stallTimeoutMs: 300, retries: 2, retryDelayMs: 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'unreachable' });
    expect((err as Error).message).toContain('nothing received for 300 ms');
    expect(tries).toBe(3);
  });

  it('a server that dribbles bytes (never stalls) is cut at the pull deadline', async () => {
    const endpoint = await mirror(
      listingThen((res) => {
        res.writeHead(200);
        const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(Buffer.alloc(1, 1))), 20);
        res.on('close', () => clearInterval(timer));
      }),
    );
    const err = await pullModel({ id: MODEL_ID, modelsDir, endpoint, timeoutMs: 1500, stallTimeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err).toMatchObject({ kind: 'timeout' });
    await noModelFolder();
  });
});
