// `inferq models pull` against a local server speaking the Hugging Face Hub's URL layout:
// `/api/models/{id}[/revision/{rev}]` lists the files, `/{id}/resolve/{rev}/{path}` serves them.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { HubError, pullModel, selectFiles, type PullEvent } from '../src/index.js';
import { cli, closedPort, httpServer, sendJson } from './helpers.js';

const MODEL_ID = 'acme/tiny-sentiment';
const COMMIT = '0123456789abcdef0123456789abcdef01234567';

/** The repository the fake Hub serves: path → bytes. */
let repo: Map<string, Buffer>;
let modelsDir: string;

interface Seen {
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

interface HubBehaviour {
  /** Answer 401 unless this bearer token comes. */
  token?: string;
  /** Sizes the listing claims, where they differ from the bytes served. */
  listedSizes?: Record<string, number>;
  /** SHA-256 the listing claims (as an LFS pointer). */
  sha256?: Record<string, string>;
  /**
   * Drop the connection after this many bytes of a file, on its first `times` requests;
   * with `whenOnDisk`, only once that file (the client's `.part`) holds some of them, so the
   * drop always comes after data reached the disk.
   */
  drop?: { path: string; after: number; times: number; whenOnDisk?: string };
  /** Leave sizes out of the listing. */
  noSizes?: boolean;
  /** Serve `resolve` URLs through a redirect to this origin (a CDN), with X-Linked-Size. */
  cdn?: string;
}

/** Resolves once `file` is longer than `size` bytes (probes every 5 ms, gives up after 5 s). */
async function untilOnDisk(file: string, size: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const now = await stat(file).then((s) => s.size, () => 0);
    if (now > size) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function fakeHub(behaviour: HubBehaviour = {}) {
  const seen: Seen[] = [];
  const drops = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    seen.push({ path, range: req.headers.range, authorization: req.headers.authorization });
    if (behaviour.token && req.headers.authorization !== `Bearer ${behaviour.token}`) {
      sendJson(res, 401, { error: 'Invalid username or password.' });
      return;
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)(?:\/revision\/([^/]+))?$/.exec(path);
    if (api) {
      if (api[1] !== MODEL_ID) return sendJson(res, 404, { error: 'Repository not found' });
      const siblings = [...repo].map(([rfilename, bytes]) => {
        const size = behaviour.listedSizes?.[rfilename] ?? bytes.length;
        const sha = behaviour.sha256?.[rfilename];
        return { rfilename, ...(behaviour.noSizes ? {} : { size }), ...(sha ? { lfs: { sha256: sha, size } } : {}) };
      });
      return sendJson(res, 200, { id: MODEL_ID, sha: COMMIT, siblings });
    }
    const file = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!file || file[1] !== MODEL_ID || file[2] !== COMMIT || !repo.has(file[3] as string)) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    const name = file[3] as string;
    if (behaviour.cdn) {
      res.writeHead(302, { location: `${behaviour.cdn}/blobs/${encodeURIComponent(name)}`, 'x-linked-size': String(repo.get(name)?.length) }).end();
      return;
    }
    serveFile(req, res, name, repo.get(name) as Buffer);
  };
  const serveFile = (req: IncomingMessage, res: ServerResponse, name: string, bytes: Buffer): void => {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    if (start >= bytes.length && range) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
      return;
    }
    const rest = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': String(rest.length),
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    const drop = behaviour.drop;
    const dropped = drops.get(name) ?? 0;
    if (drop && drop.path === name && dropped < drop.times) {
      drops.set(name, dropped + 1);
      // Send part of the body, then hang up mid-file (FIN: what was written arrives).
      res.write(rest.subarray(0, Math.max(0, drop.after - start)), () => {
        if (!drop.whenOnDisk) return res.socket?.end();
        void untilOnDisk(drop.whenOnDisk, start).then(() => res.socket?.end());
      });
      return;
    }
    res.end(rest);
  };
  const server = await httpServer(handler);
  return { ...server, seen, serveFile };
}

let servers: { close: () => Promise<void> }[] = [];

async function hub(behaviour: HubBehaviour = {}) {
  const server = await fakeHub(behaviour);
  servers.push(server);
  return server;
}

beforeAll(async () => {
  const source = await mkdtemp(join(tmpdir(), 'inferq-hub-source-'));
  const dir = await ensureModel(source, TINY_CLASSIFIER_ID);
  repo = new Map();
  for (const name of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt', 'onnx/model.onnx']) {
    repo.set(name, await readFile(join(dir, name)));
  }
  // A quantized variant (any bytes do: the pull does not read them) and a file pulls skip.
  repo.set('onnx/model_quantized.onnx', Buffer.from((repo.get('onnx/model.onnx') as Buffer).subarray(0, 1000)));
  repo.set('README.md', Buffer.from('# tiny\n'));
  await rm(source, { recursive: true, force: true });
});

beforeEach(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-hub-models-'));
});

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  await rm(modelsDir, { recursive: true, force: true });
});

const onnxSize = (): number => (repo.get('onnx/model.onnx') as Buffer).length;

async function expectModelFolder(dir: string, onnx = 'onnx/model.onnx'): Promise<void> {
  for (const name of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', onnx]) {
    expect((await readFile(join(dir, name))).equals(repo.get(name) as Buffer), name).toBe(true);
  }
  // Only the files a model needs, no leftovers of the download.
  expect((await readdir(dir)).sort()).toEqual(['config.json', 'onnx', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  expect(await readdir(join(dir, 'onnx'))).toEqual([onnx.slice('onnx/'.length)]);
  expect(await readdir(join(modelsDir, 'acme'))).toEqual(['tiny-sentiment']);
}

describe('pullModel', () => {
  it('downloads the model files into MODELS_DIR/<org>/<name>, all from the listed commit', async () => {
    const server = await hub();
    const result = await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url });
    expect(result.dir).toBe(join(modelsDir, 'acme', 'tiny-sentiment'));
    expect(result.commit).toBe(COMMIT);
    await expectModelFolder(result.dir);
    const fileRequests = server.seen.filter((s) => s.path.includes('/resolve/'));
    expect(fileRequests.every((s) => s.path.includes(`/resolve/${COMMIT}/`))).toBe(true);
    expect(fileRequests.some((s) => s.path.endsWith('README.md') || s.path.endsWith('vocab.txt'))).toBe(false);
    // Pulled once, kept after.
    const again = await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url });
    expect(again.skipped).toBe(true);
  });

  it('resumes a file with Range after the server drops the connection mid-file', async () => {
    const half = Math.floor(onnxSize() / 2);
    const part = join(modelsDir, 'acme', '.tiny-sentiment.pull', 'onnx', 'model.onnx.part');
    const server = await hub({ drop: { path: 'onnx/model.onnx', after: half, times: 1, whenOnDisk: part } });
    const events: PullEvent[] = [];
    const result = await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, retryDelayMs: 10, onEvent: (e) => events.push(e) });
    await expectModelFolder(result.dir);
    // The second request asks for the rest, from what was written (a fetch body that errors
    // drops the chunks it had queued, so that can be less than what the server sent).
    const onnxRequests = server.seen.filter((s) => s.path.endsWith('/onnx/model.onnx'));
    expect(onnxRequests.length).toBe(2);
    expect(onnxRequests[0]?.range).toBeUndefined();
    const retry = events.find((e): e is Extract<PullEvent, { type: 'retry' }> => e.type === 'retry');
    expect(retry).toMatchObject({ path: 'onnx/model.onnx', attempt: 1 });
    const received = retry?.received ?? -1;
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThanOrEqual(half);
    expect(onnxRequests[1]?.range).toBe(`bytes=${received}-`);
  });

  it('resumes a download that a previous run left behind', async () => {
    const partFile = join(modelsDir, 'acme', '.tiny-sentiment.pull', 'onnx', 'model.onnx.part');
    const flaky = await hub({ drop: { path: 'onnx/model.onnx', after: Math.floor(onnxSize() * 0.8), times: 99, whenOnDisk: partFile } });
    const first = pullModel({ id: MODEL_ID, modelsDir, endpoint: flaky.url, retries: 0 });
    await expect(first).rejects.toMatchObject({ kind: 'unreachable' });
    await expect(first).rejects.toThrow(/run the same pull again to resume/);
    expect(await readdir(join(modelsDir, 'acme'))).toEqual(['.tiny-sentiment.pull']);
    const part = (await stat(join(modelsDir, 'acme', '.tiny-sentiment.pull', 'onnx', 'model.onnx.part'))).size;
    expect(part).toBeGreaterThan(0);

    const server = await hub();
    const result = await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url });
    await expectModelFolder(result.dir);
    const onnxRequests = server.seen.filter((s) => s.path.endsWith('/onnx/model.onnx'));
    expect(onnxRequests.map((s) => s.range)).toEqual([`bytes=${part}-`]);
    // Files the first run finished are not fetched again.
    expect(server.seen.filter((s) => s.path.endsWith('/config.json'))).toEqual([]);
  });

  it('rejects a file whose size is not the one the Hub lists, and keeps nothing of it', async () => {
    const server = await hub({ listedSizes: { 'onnx/model.onnx': onnxSize() + 10 } });
    const pull = pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url });
    await expect(pull).rejects.toBeInstanceOf(HubError);
    await expect(pull).rejects.toMatchObject({ kind: 'size-mismatch' });
    await expect(pull).rejects.toThrow(`the Hub lists ${onnxSize() + 10} bytes but the server sends ${onnxSize()}`);
    expect(await readdir(join(modelsDir, 'acme'))).toEqual(['.tiny-sentiment.pull']);
    expect(await readdir(join(modelsDir, 'acme', '.tiny-sentiment.pull', 'onnx')).catch(() => [])).toEqual([]);
  });

  it('rejects a body cut short when the listing has no sizes (Content-Length is the check)', async () => {
    const server = await hub({ noSizes: true, drop: { path: 'onnx/model.onnx', after: 100, times: 99 } });
    await expect(pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, retries: 1, retryDelayMs: 1 })).rejects.toThrow(
      /Downloading onnx\/model\.onnx failed 2 times \(last: connection/,
    );
  });

  it('checks an LFS file\'s SHA-256', async () => {
    const good = createHash('sha256').update(repo.get('onnx/model.onnx') as Buffer).digest('hex');
    const server = await hub({ sha256: { 'onnx/model.onnx': good } });
    await expectModelFolder((await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url })).dir);
    await rm(join(modelsDir, 'acme'), { recursive: true });
    const wrong = await hub({ sha256: { 'onnx/model.onnx': 'f'.repeat(64) } });
    await expect(pullModel({ id: MODEL_ID, modelsDir, endpoint: wrong.url })).rejects.toMatchObject({ kind: 'checksum-mismatch' });
  });

  it('answers a 401 without a token with what to do, and sends HF_TOKEN as a bearer token', async () => {
    const server = await hub({ token: 'hf_secret' });
    const pull = pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url });
    await expect(pull).rejects.toMatchObject({ kind: 'unauthorized', status: 401 });
    await expect(pull).rejects.toThrow(/private or gated.*Set HF_TOKEN/s);
    await expect(pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, token: 'wrong' })).rejects.toThrow(/HF_TOKEN was sent and refused/);
    const result = await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, token: 'hf_secret' });
    await expectModelFolder(result.dir);
  });

  it('follows the Hub\'s redirect to a CDN without sending the token there', async () => {
    const cdnSeen: Seen[] = [];
    const cdn = await httpServer((req, res) => {
      cdnSeen.push({ path: req.url ?? '', range: req.headers.range, authorization: req.headers.authorization });
      const name = decodeURIComponent((req.url ?? '').replace('/blobs/', ''));
      // The CDN sends no Content-Length (chunked): X-Linked-Size is the size check.
      res.writeHead(200, { 'transfer-encoding': 'chunked' }).end(repo.get(name));
    });
    servers.push(cdn);
    const server = await hub({ token: 'hf_secret', cdn: cdn.url, noSizes: true });
    const result = await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, token: 'hf_secret' });
    await expectModelFolder(result.dir);
    expect(cdnSeen.length).toBe(5);
    expect(cdnSeen.every((s) => s.authorization === undefined)).toBe(true);
  });

  it('picks a variant\'s ONNX file with --variant, and lists the variants when asked for a missing one', async () => {
    const server = await hub();
    const result = await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, variant: 'quantized' });
    await expectModelFolder(result.dir, 'onnx/model_quantized.onnx');
    await expect(pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, variant: 'fp16', force: true })).rejects.toThrow(
      /no onnx\/model_fp16\.onnx.*Variants: quantized \(pass --variant NAME\)/s,
    );
  });

  it('never writes outside MODELS_DIR: ids with "..", "--", extra slashes or absolute paths are refused', async () => {
    const server = await hub();
    for (const id of ['../evil', 'acme/..', '../../etc/passwd', 'acme/../../x', 'acme--x/name', 'acme/a/b', '/abs/path', 'acme/.hidden', 'a/b\\..\\..\\c']) {
      await expect(pullModel({ id, modelsDir, endpoint: server.url }), id).rejects.toMatchObject({ kind: 'invalid-id' });
    }
    expect(server.seen).toEqual([]);
    expect(await readdir(modelsDir)).toEqual([]);
  });

  it('lists the files of the revision asked for', async () => {
    const server = await hub();
    await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, revision: 'v1.0' });
    expect(server.seen[0]?.path).toBe('/api/models/acme/tiny-sentiment/revision/v1.0');
  });

  it('refuses to run beside another live pull of the same model, and takes over a dead one\'s folder', async () => {
    const server = await hub();
    const temp = join(modelsDir, 'acme', '.tiny-sentiment.pull');
    await mkdir(temp, { recursive: true });
    await writeFile(join(temp, '.lock'), String(process.ppid));
    await expect(pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url })).rejects.toMatchObject({ kind: 'busy' });
    await writeFile(join(temp, '.lock'), '999999999');
    await expectModelFolder((await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url })).dir);
  });

  it('says so when the model or the Hub is not there', async () => {
    const server = await hub();
    await expect(pullModel({ id: 'acme/nothing', modelsDir, endpoint: server.url })).rejects.toMatchObject({ kind: 'not-found', status: 404 });
    const port = await closedPort();
    await expect(pullModel({ id: MODEL_ID, modelsDir, endpoint: `http://127.0.0.1:${port}` })).rejects.toMatchObject({ kind: 'unreachable' });
  });

  it('replaces a model with --force only once the new download is complete', async () => {
    const server = await hub();
    const dir = join(modelsDir, 'acme', 'tiny-sentiment');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), '{"old": true}');
    const broken = await hub({ listedSizes: { 'onnx/model.onnx': 1 } });
    await expect(pullModel({ id: MODEL_ID, modelsDir, endpoint: broken.url, force: true })).rejects.toMatchObject({ kind: 'size-mismatch' });
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe('{"old": true}');
    await pullModel({ id: MODEL_ID, modelsDir, endpoint: server.url, force: true });
    await expectModelFolder(dir);
  });
});

describe('selectFiles', () => {
  const files = (...names: string[]) => names.map((rfilename) => ({ rfilename }));
  const base = ['config.json', 'tokenizer.json', 'tokenizer_config.json'];

  it('takes the encoder and merged decoder of an encoder-decoder export, and generation_config.json', () => {
    const picked = selectFiles(files(...base, 'generation_config.json', 'onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx', 'onnx/decoder_model.onnx'));
    expect(picked.map((f) => f.path)).toEqual([...base, 'generation_config.json', 'onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx']);
  });

  it('takes the sentence-transformers files of an embedding export (pooling, normalization, prompts)', () => {
    const st = ['modules.json', '1_Pooling/config.json', 'sentence_bert_config.json', 'config_sentence_transformers.json'];
    const picked = selectFiles(files(...base, ...st, 'README.md', 'onnx/model.onnx', 'pytorch_model.bin'));
    expect(picked.map((f) => f.path)).toEqual([...base, ...st, 'onnx/model.onnx']);
  });

  it('takes an older decoder-only export, and a graph\'s external weights', () => {
    expect(selectFiles(files(...base, 'onnx/decoder_model_merged_fp16.onnx'), 'fp16').map((f) => f.path)).toEqual([...base, 'onnx/decoder_model_merged_fp16.onnx']);
    expect(selectFiles(files(...base, 'onnx/model.onnx', 'onnx/model.onnx_data')).map((f) => f.path)).toEqual([...base, 'onnx/model.onnx', 'onnx/model.onnx_data']);
  });

  it('refuses a repository without ONNX files or a tokenizer', () => {
    expect(() => selectFiles(files(...base, 'model.safetensors'))).toThrow(/has no onnx\/ folder/);
    expect(() => selectFiles(files('config.json', 'onnx/model.onnx'))).toThrow(/has no tokenizer\.json, tokenizer_config\.json/);
  });
});

describe('inferq models pull', () => {
  it('pulls into MODELS_DIR from HF_ENDPOINT and exits 0', async () => {
    const server = await hub({ token: 'hf_secret' });
    const run = await cli(['models', 'pull', MODEL_ID], { env: { HF_ENDPOINT: server.url, HF_TOKEN: 'hf_secret', MODELS_DIR: modelsDir } });
    expect(run.stderr).not.toMatch(/inferq:/);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/acme\/tiny-sentiment: 5 files, .* in .*acme\/tiny-sentiment \(commit 0123456789ab\)/);
    await expectModelFolder(join(modelsDir, 'acme', 'tiny-sentiment'));
  });

  it('exits 4 with the advice on a 401, 2 on a bad id, 3 when the Hub is unreachable', async () => {
    const server = await hub({ token: 'hf_secret' });
    const denied = await cli(['models', 'pull', MODEL_ID, '--models-dir', modelsDir], { env: { HF_ENDPOINT: server.url } });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toMatch(/answered 401.*Set HF_TOKEN/s);
    const bad = await cli(['models', 'pull', '../../etc', '--models-dir', modelsDir], { env: { HF_ENDPOINT: server.url } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/is not a model id: use <org>\/<name>/);
    const gone = await cli(['models', 'pull', MODEL_ID, '--models-dir', modelsDir], { env: { HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}` } });
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/Cannot reach the Hub/);
  });
});

afterAll(() => {
  repo.clear();
});
