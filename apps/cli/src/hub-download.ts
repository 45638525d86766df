/**
 * Downloads a model from the Hugging Face Hub (or a mirror: `HF_ENDPOINT`) into
 * `MODELS_DIR/<org>/<name>`: the config and tokenizer files and the ONNX files of the
 * export (`onnx/model.onnx`, or `onnx/encoder_model.onnx` + `onnx/decoder_model_merged.onnx`;
 * a variant such as `quantized` picks `*_quantized.onnx`).
 *
 * - The Hub's URL layout: `GET {endpoint}/api/models/{id}[/revision/{rev}]` lists the files
 *   (`siblings`, with sizes), `GET {endpoint}/{id}/resolve/{commit}/{path}` serves one
 *   (often through a redirect to a CDN; `X-Linked-Size` gives an LFS file's size).
 * - Files land in `MODELS_DIR/<org>/.<name>.pull/` as `<file>.part`; a dropped connection is
 *   resumed with `Range` (in the same run, and by the next run of the same pull).
 * - Every file's size is checked against the Hub's listing (or `Content-Length`,
 *   `Content-Range`, `X-Linked-Size`), LFS files' SHA-256 too when the listing has it.
 * - Only a complete folder is renamed into place, so the API and workers never see half a model.
 * - The id is checked as the Hub checks it (`<org>/<name>`, no `..`, no `--`): it can't name
 *   a path outside `MODELS_DIR`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isModelId } from '@inferq/contracts';
import { systemErrorCode } from './errors.js';

/** The Hub, when `HF_ENDPOINT` names no other. */
export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

/** Why a pull failed, for the exit code and the message. */
export type HubErrorKind =
  | 'invalid-id' // the id is not <org>/<name>
  | 'unreachable' // no HTTP answer
  | 'unauthorized' // 401/403: private or gated
  | 'not-found' // 404: no such model, revision or file
  | 'http' // another HTTP error
  | 'size-mismatch' // a file is not the size the Hub said
  | 'checksum-mismatch' // an LFS file's SHA-256 differs
  | 'no-onnx' // the repository has no ONNX export (of that variant)
  | 'busy' // another pull of the same model is running
  | 'too-large' // the model (or one of its small files, or the listing) is over the pull's size cap
  | 'timeout'; // the pull did not finish within its deadline

export class HubError extends Error {
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    /** The HTTP status, when the Hub answered one. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

/** One entry of the Hub's `siblings` list. */
export interface HubSibling {
  rfilename: string;
  /** Bytes (with `?blobs=true`). */
  size?: number;
  /** LFS pointer: the file's real size and SHA-256. */
  lfs?: { size?: number; sha256?: string; oid?: string };
}

/** The Hub's `GET /api/models/{id}` answer, the fields we read. */
export interface HubModelInfo {
  id?: string;
  /** The commit the revision points at. */
  sha?: string;
  siblings?: HubSibling[];
}

/** A file to download. */
export interface HubFile {
  /** Path in the repository, e.g. `onnx/model_quantized.onnx`. */
  path: string;
  /** Bytes, when the Hub listed them. */
  size?: number;
  /** SHA-256 (hex), for LFS files. */
  sha256?: string;
}

/** Progress of a pull, for a bar or a log. */
export type PullEvent =
  | { type: 'listing'; id: string; revision: string }
  | { type: 'file-start'; path: string; size?: number; resumeFrom: number }
  | { type: 'bytes'; path: string; received: number; size?: number }
  | { type: 'file-done'; path: string; size: number }
  | { type: 'retry'; path: string; attempt: number; received: number; reason: string }
  | { type: 'verifying'; path: string };

export interface PullOptions {
  /** Model id `<org>/<name>`, as on the Hub. */
  id: string;
  /** The models folder (`MODELS_DIR`); created if missing. */
  modelsDir: string;
  /** The Hub or a mirror (the CLI passes `HF_ENDPOINT`). @defaultValue https://huggingface.co */
  endpoint?: string;
  /** A Hugging Face access token, sent as `Authorization: Bearer` to the Hub's origin only (the CLI passes `HF_TOKEN`). @defaultValue none */
  token?: string;
  /** Branch, tag or commit. @defaultValue 'main' */
  revision?: string;
  /** ONNX variant suffix: `quantized` for `model_quantized.onnx`, `fp16`, `q4`, ... @defaultValue none (`model.onnx`) */
  variant?: string;
  /** Download again even when the model folder exists (it is replaced once the new one is complete). @defaultValue false */
  force?: boolean;
  /** Retries of one file after a dropped connection or a 5xx answer. @defaultValue 5 */
  retries?: number;
  /** Wait before the first retry, doubled at each next one, in milliseconds. @defaultValue 500 */
  retryDelayMs?: number;
  /**
   * Most bytes the whole pull may download, whether or not the listing gives sizes: a mirror
   * that lists no sizes and sends an endless file is cut here. @defaultValue 64 GiB
   */
  maxBytes?: number;
  /** Most bytes of one file that is not an ONNX graph or its weights (config, tokenizer, ...). @defaultValue 256 MiB */
  maxSmallFileBytes?: number;
  /** Most bytes of the Hub's listing (JSON). @defaultValue 16 MiB */
  maxListingBytes?: number;
  /** The whole pull's deadline, in milliseconds; past it the pull stops (resumable). @defaultValue 6 hours */
  timeoutMs?: number;
  /** A request that receives nothing for this long is dropped and retried (resuming), in milliseconds. @defaultValue 60000 */
  stallTimeoutMs?: number;
  /** Called as the pull goes. */
  onEvent?: (event: PullEvent) => void;
  signal?: AbortSignal;
}

/** Defaults of the pull's caps. */
export const PULL_LIMITS = {
  maxBytes: 64 * 1024 ** 3,
  maxSmallFileBytes: 256 * 1024 ** 2,
  maxListingBytes: 16 * 1024 ** 2,
  timeoutMs: 6 * 3600_000,
  stallTimeoutMs: 60_000,
} as const;

/** Whether a repository path is an ONNX graph or its external weights (the only large files). */
function isLargeFile(path: string): boolean {
  return path.startsWith('onnx/');
}

/** An error raised by a request that received nothing for too long: retried like a dropped connection. */
class StallError extends Error {
  override readonly name = 'StallError';
}

/**
 * A signal aborted when `touch` has not been called for `ms` milliseconds (and when `parent`
 * aborts). `done` stops its timer.
 */
function stallGuard(ms: number, parent: AbortSignal | undefined): { signal: AbortSignal; touch(): void; done(): void; stalled(): StallError | undefined } {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const touch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new StallError(`nothing received for ${ms} ms`)), ms);
  };
  touch();
  const signal = parent ? AbortSignal.any([parent, controller.signal]) : controller.signal;
  return {
    signal,
    touch,
    done: () => clearTimeout(timer),
    stalled: () => (controller.signal.reason instanceof StallError ? controller.signal.reason : undefined),
  };
}

/** Reads a response body as text, refusing one over `maxBytes`. */
async function readCapped(response: Response, maxBytes: number, what: string): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new HubError('too-large', `${what} is over ${maxBytes} bytes; not read.`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface PullResult {
  /** The model's folder. */
  dir: string;
  /** The files it has from the Hub. */
  files: { path: string; size: number }[];
  /** True when the folder was there already and nothing was downloaded (no `force`). */
  skipped: boolean;
  /** The commit the files come from, when the Hub said. */
  commit?: string;
}

/** Files every text model needs, and those taken when the repository has them. */
const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'];
// The sentence-transformers files say how an embedding model pools, normalizes, cuts and prompts.
const OPTIONAL_FILES = [
  'special_tokens_map.json',
  'generation_config.json',
  'preprocessor_config.json',
  'modules.json',
  '1_Pooling/config.json',
  'sentence_bert_config.json',
  'config_sentence_transformers.json',
];

/** ONNX layouts, tried in order: encoder-only or decoder-only, encoder-decoder, older decoder-only. */
const ONNX_LAYOUTS: readonly (readonly string[])[] = [['model'], ['encoder_model', 'decoder_model_merged'], ['decoder_model_merged']];

/** Checks a model id as the Hub does; returns `MODELS_DIR/<org>/<name>`. */
export function modelDir(modelsDir: string, id: string): string {
  if (!isModelId(id)) {
    throw new HubError(
      'invalid-id',
      `"${id}" is not a model id: use <org>/<name> (letters, digits, "-", "_", "."; no "--" or ".."), e.g. Xenova/distilbert-base-uncased-finetuned-sst-2-english`,
    );
  }
  const root = resolve(modelsDir);
  const dir = resolve(root, id);
  const rel = relative(root, dir);
  if (rel.startsWith('..') || isAbsolute(rel) || rel.split(/[\\/]/).length !== 2) {
    throw new HubError('invalid-id', `model id "${id}" would leave the models folder`);
  }
  return dir;
}

/**
 * The files to download from a repository's listing: the config and tokenizer files and
 * the ONNX files of one layout and variant (with their external data files, if any).
 */
export function selectFiles(siblings: readonly HubSibling[], variant?: string): HubFile[] {
  const byPath = new Map(siblings.map((s) => [s.rfilename, s]));
  const file = (path: string): HubFile => {
    const s = byPath.get(path);
    const size = s?.lfs?.size ?? s?.size;
    return { path, ...(size !== undefined ? { size } : {}), ...(s?.lfs?.sha256 ? { sha256: s.lfs.sha256 } : {}) };
  };
  const missing = REQUIRED_FILES.filter((p) => !byPath.has(p));
  if (missing.length > 0) {
    throw new HubError('no-onnx', `the repository has no ${missing.join(', ')}: inferq needs a Hugging Face model folder with a tokenizer.json`);
  }
  const suffix = variant ? `_${variant}` : '';
  const layout = ONNX_LAYOUTS.find((bases) => bases.every((b) => byPath.has(`onnx/${b}${suffix}.onnx`)));
  if (!layout) {
    const onnx = [...byPath.keys()].filter((p) => /^onnx\/[^/]+\.onnx$/.test(p));
    const variants = [...new Set(onnx.map((p) => /^onnx\/(?:model|encoder_model|decoder_model_merged)_(\w+)\.onnx$/.exec(p)?.[1]).filter(Boolean))];
    const wanted = ONNX_LAYOUTS.map((bases) => bases.map((b) => `onnx/${b}${suffix}.onnx`).join(' + ')).join(', or ');
    const hint =
      onnx.length === 0
        ? 'It has no onnx/ folder: look for an ONNX export of it (e.g. under Xenova/ or onnx-community/), or export one with Optimum.'
        : `Its ONNX files: ${onnx.join(', ')}.${variants.length > 0 ? ` Variants: ${variants.join(', ')} (pass --variant NAME).` : ''}`;
    throw new HubError('no-onnx', `the repository has no ${wanted}. ${hint}`);
  }
  const files = [...REQUIRED_FILES, ...OPTIONAL_FILES.filter((p) => byPath.has(p))].map(file);
  for (const base of layout) {
    const onnxPath = `onnx/${base}${suffix}.onnx`;
    files.push(file(onnxPath));
    // Models over 2 GB keep their weights beside the graph.
    for (const data of [`${onnxPath}_data`, `${onnxPath}.data`]) if (byPath.has(data)) files.push(file(data));
  }
  return files;
}

interface Hub {
  endpoint: string;
  token: string | undefined;
  id: string;
  signal: AbortSignal | undefined;
}

function hubUrl(hub: Hub, path: string): string {
  return `${hub.endpoint.replace(/\/+$/, '')}${path}`;
}

/** Encodes each segment of a repository path or revision for a URL. */
function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function httpError(hub: Hub, status: number, what: string): HubError {
  if (status === 401 || status === 403) {
    const advice = hub.token
      ? `HF_TOKEN was sent and refused: check that it is valid and has read access, and accept the model's terms on its page if it is gated (${hub.endpoint}/${hub.id}).`
      : `The model is private or gated, or needs a login. Set HF_TOKEN to a Hugging Face access token (${DEFAULT_HF_ENDPOINT}/settings/tokens) and accept the model's terms on its page if it is gated.`;
    return new HubError('unauthorized', `The Hub answered ${status} for ${what}. ${advice}`, status);
  }
  if (status === 404) return new HubError('not-found', `The Hub has no ${what} (404): check the model id and --revision.`, status);
  return new HubError('http', `The Hub answered ${status} for ${what}.`, status);
}

function unreachable(hub: Hub, error: unknown): HubError {
  const code = systemErrorCode(error) ?? (error as Error).message;
  return new HubError('unreachable', `Cannot reach the Hub at ${hub.endpoint} (${code}). Check the network, or set HF_ENDPOINT to a mirror that serves the Hub's URLs.`);
}

/**
 * GETs `url`, following redirects by hand so that the token goes only to the Hub's own
 * origin and `X-Linked-Size` (on the Hub's redirect of an LFS file) is kept.
 */
async function hubGet(hub: Hub, url: string, headers: Record<string, string> = {}): Promise<{ response: Response; linkedSize?: number }> {
  const origin = new URL(hubUrl(hub, '/')).origin;
  let linkedSize: number | undefined;
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const sameOrigin = new URL(current).origin === origin;
    const response = await fetch(current, {
      headers: { ...headers, ...(hub.token && sameOrigin ? { authorization: `Bearer ${hub.token}` } : {}) },
      redirect: 'manual',
      signal: hub.signal,
    });
    const linked = response.headers.get('x-linked-size');
    if (linked !== null && linkedSize === undefined && /^\d+$/.test(linked)) linkedSize = Number(linked);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      current = new URL(location, current).href;
      continue;
    }
    return { response, ...(linkedSize !== undefined ? { linkedSize } : {}) };
  }
  throw new HubError('http', `Too many redirects from ${url}`);
}

/** The repository's listing at `revision`. */
export async function fetchModelInfo(options: {
  endpoint: string;
  token?: string;
  id: string;
  revision?: string;
  signal?: AbortSignal;
  /** Most bytes of the listing. @defaultValue 16 MiB */
  maxBytes?: number;
}): Promise<HubModelInfo> {
  const hub: Hub = { endpoint: options.endpoint, token: options.token, id: options.id, signal: options.signal };
  const revision = options.revision ?? 'main';
  const path = `/api/models/${encodePath(options.id)}${revision === 'main' ? '' : `/revision/${encodeURIComponent(revision)}`}?blobs=true`;
  let answer: { response: Response };
  try {
    answer = await hubGet(hub, hubUrl(hub, path), { accept: 'application/json' });
  } catch (error) {
    if (error instanceof HubError || (error as Error).name === 'AbortError') throw error;
    throw unreachable(hub, error);
  }
  const { response } = answer;
  if (!response.ok) {
    await response.body?.cancel();
    throw httpError(hub, response.status, `model ${options.id}${revision === 'main' ? '' : ` at revision ${revision}`}`);
  }
  const text = await readCapped(response, options.maxBytes ?? PULL_LIMITS.maxListingBytes, `The Hub's listing of ${options.id}`);
  let info: HubModelInfo;
  try {
    info = JSON.parse(text) as HubModelInfo;
  } catch {
    throw new HubError('http', `The Hub's answer for ${options.id} is not JSON`);
  }
  if (!Array.isArray(info?.siblings)) throw new HubError('http', `The Hub's answer for ${options.id} lists no files (no "siblings")`);
  return info;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** `Content-Range: bytes START-END/TOTAL` → start and total. */
function contentRange(value: string | null): { start: number; total?: number } | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(value ?? '');
  if (!match) return undefined;
  return { start: Number(match[1]), ...(match[2] !== '*' ? { total: Number(match[2]) } : {}) };
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

interface DownloadContext extends Hub {
  commit: string;
  retries: number;
  retryDelayMs: number;
  onEvent: (event: PullEvent) => void;
  stallTimeoutMs: number;
  maxSmallFileBytes: number;
  maxBytes: number;
  /** Bytes of the files already complete in this pull. */
  pulled: number;
}

/** Most bytes `file` may have: what is left of the pull's cap, and the small-file cap for a non-ONNX file. */
function capFor(ctx: DownloadContext, file: HubFile): { bytes: number; why: string } {
  const left = ctx.maxBytes - ctx.pulled;
  if (!isLargeFile(file.path) && ctx.maxSmallFileBytes < left) return { bytes: ctx.maxSmallFileBytes, why: `a ${file.path} over ${ctx.maxSmallFileBytes} bytes` };
  return { bytes: left, why: `${ctx.id} over the pull's cap of ${ctx.maxBytes} bytes` };
}

/**
 * Downloads one file to `dest` through `dest.part`, resuming what an earlier attempt left;
 * retries dropped connections and 5xx answers; checks the size (and SHA-256 when known).
 */
async function downloadFile(ctx: DownloadContext, file: HubFile, dest: string): Promise<number> {
  const part = `${dest}.part`;
  await mkdir(dirname(dest), { recursive: true });
  const url = hubUrl(ctx, `/${encodePath(ctx.id)}/resolve/${encodeURIComponent(ctx.commit)}/${encodePath(file.path)}`);
  let expected = file.size;
  let announced = false;
  for (let attempt = 0; ; attempt++) {
    let have = await sizeOf(part);
    if (expected !== undefined && have > expected) {
      await rm(part, { force: true });
      have = 0;
    }
    if (!announced) {
      ctx.onEvent({ type: 'file-start', path: file.path, ...(expected !== undefined ? { size: expected } : {}), resumeFrom: have });
      announced = true;
    }
    if (expected === undefined || have < expected) {
      let retryReason: string | undefined;
      try {
        retryReason = await fetchInto(ctx, url, file, part, have, expected, (size) => (expected = size));
      } catch (error) {
        if (error instanceof HubError || (error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError') {
          if (error instanceof HubError && (error.kind === 'size-mismatch' || error.kind === 'too-large')) await rm(part, { force: true });
          throw error;
        }
        retryReason = `${systemErrorCode(error) ?? (error as Error).message}`;
      }
      if (retryReason !== undefined) {
        if (attempt >= ctx.retries) {
          throw new HubError('unreachable', `Downloading ${file.path} failed ${attempt + 1} times (last: ${retryReason}); run the same pull again to resume it.`);
        }
        ctx.onEvent({ type: 'retry', path: file.path, attempt: attempt + 1, received: await sizeOf(part), reason: retryReason });
        await sleep(ctx.retryDelayMs * 2 ** attempt, undefined, { signal: ctx.signal });
        continue;
      }
    }
    const size = await sizeOf(part);
    if (expected !== undefined && size !== expected) {
      await rm(part, { force: true });
      throw new HubError('size-mismatch', `${file.path} is ${size} bytes but the Hub says ${expected}: the download was discarded; try again.`);
    }
    if (file.sha256) {
      ctx.onEvent({ type: 'verifying', path: file.path });
      const digest = await sha256(part);
      if (digest !== file.sha256.toLowerCase()) {
        await rm(part, { force: true });
        throw new HubError('checksum-mismatch', `${file.path} has SHA-256 ${digest}, the Hub says ${file.sha256}: the download was discarded; try again.`);
      }
    }
    await rename(part, dest);
    ctx.onEvent({ type: 'file-done', path: file.path, size });
    return size;
  }
}

/**
 * One request for the rest of a file, appended to `part`. Returns undefined when the
 * answer was read to its end, or why to retry. Throws a {@link HubError} when retrying
 * can't help (4xx, a size that contradicts the listing).
 */
async function fetchInto(
  ctx: DownloadContext,
  url: string,
  file: HubFile,
  part: string,
  have: number,
  expected: number | undefined,
  learnSize: (size: number) => void,
): Promise<string | undefined> {
  const stall = stallGuard(ctx.stallTimeoutMs, ctx.signal);
  try {
    return await fetchIntoGuarded({ ...ctx, signal: stall.signal }, stall.touch, url, file, part, have, expected, learnSize);
  } catch (error) {
    // A stall is a dropped connection: retried, resuming (whatever error the aborted read raised).
    const stalled = stall.stalled();
    if (stalled && !ctx.signal?.aborted) return stalled.message;
    throw error;
  } finally {
    stall.done();
  }
}

async function fetchIntoGuarded(
  ctx: DownloadContext,
  touch: () => void,
  url: string,
  file: HubFile,
  part: string,
  have: number,
  expected: number | undefined,
  learnSize: (size: number) => void,
): Promise<string | undefined> {
  let answer: { response: Response; linkedSize?: number };
  try {
    answer = await hubGet(ctx, url, have > 0 ? { range: `bytes=${have}-` } : {});
  } catch (error) {
    if (error instanceof HubError || (error as Error).name === 'AbortError' || error instanceof StallError) throw error;
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    return `${systemErrorCode(error) ?? (error as Error).message}`;
  }
  touch();
  const { response, linkedSize } = answer;
  if (response.status === 416) {
    // Nothing left past `have`: the part is whole if the sizes agree; else start over.
    await response.body?.cancel();
    if (expected !== undefined && have === expected) return undefined;
    await rm(part, { force: true });
    return 'the server could not resume (416); starting over';
  }
  if (response.status >= 500) {
    await response.body?.cancel();
    return `HTTP ${response.status}`;
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    throw httpError(ctx, response.status, `file ${file.path} of ${ctx.id}`);
  }
  let offset = 0;
  let total: number | undefined;
  const length = response.headers.get('content-length');
  if (response.status === 206) {
    const range = contentRange(response.headers.get('content-range'));
    if (!range || range.start !== have) {
      await response.body?.cancel();
      await rm(part, { force: true });
      return 'the server resumed at another offset; starting over';
    }
    offset = have;
    total = range.total;
  } else {
    total = length !== null && /^\d+$/.test(length) ? Number(length) : undefined;
  }
  total ??= linkedSize;
  if (expected !== undefined && total !== undefined && total !== expected) {
    await response.body?.cancel();
    throw new HubError('size-mismatch', `${file.path}: the Hub lists ${expected} bytes but the server sends ${total}; not downloaded.`);
  }
  const cap = capFor(ctx, file);
  if ((expected ?? total ?? 0) > cap.bytes) {
    await response.body?.cancel();
    throw new HubError('too-large', `Refused ${cap.why} (${expected ?? total} bytes); not downloaded.`);
  }
  if (expected === undefined && total !== undefined) learnSize(total);
  const size = expected ?? total;
  if (!response.body) return 'empty answer';

  let received = offset;
  let lastEvent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      touch();
      received += chunk.byteLength;
      // Whatever the listing or the headers said: a file is never read past its cap.
      if (received > cap.bytes) {
        callback(new HubError('too-large', `Stopped ${cap.why}: the server sent more than ${cap.bytes} bytes; the part was discarded.`));
        return;
      }
      const now = Date.now();
      if (now - lastEvent >= 100) {
        lastEvent = now;
        ctx.onEvent({ type: 'bytes', path: file.path, received, ...(size !== undefined ? { size } : {}) });
      }
      callback(null, chunk);
    },
  });
  try {
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    await pipeline(body, counter, createWriteStream(part, { flags: offset === 0 ? 'w' : 'a' }));
  } catch (error) {
    if ((error as Error).name === 'AbortError' || error instanceof HubError || error instanceof StallError) throw error;
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    return `connection lost after ${received} bytes (${systemErrorCode(error) ?? (error as Error).message})`;
  }
  ctx.onEvent({ type: 'bytes', path: file.path, received, ...(size !== undefined ? { size } : {}) });
  if (size !== undefined && received < size) return `connection closed after ${received} of ${size} bytes`;
  return undefined;
}

/** What a pull folder was started for: a later run with other settings starts afresh. */
interface PullState {
  id: string;
  commit: string;
  variant: string | null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the pull folder's lock, or throws `busy` when a live process holds it. */
async function lock(temp: string, id: string): Promise<() => Promise<void>> {
  const file = join(temp, '.lock');
  for (let tries = 0; tries < 2; tries++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number(await readFile(file, 'utf8').catch(() => ''));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new HubError('busy', `Another pull of ${id} is running (pid ${pid}); wait for it, or stop it and run this again.`);
      }
      await rm(file, { force: true }); // left by a pull that died
    }
  }
  throw new HubError('busy', `Cannot lock ${temp}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Downloads model `id` into `modelsDir/<org>/<name>` (see the module's description).
 * Resolves with the folder; a folder already there is kept unless `force`.
 */
export async function pullModel(options: PullOptions): Promise<PullResult> {
  const timeoutMs = options.timeoutMs ?? PULL_LIMITS.timeoutMs;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  try {
    return await pullModelWithin({ ...options, signal });
  } catch (error) {
    if (deadline.aborted && !options.signal?.aborted) {
      throw new HubError('timeout', `The pull of ${options.id} did not finish within ${timeoutMs} ms; run the same pull again to resume it.`);
    }
    throw error;
  }
}

async function pullModelWithin(options: PullOptions): Promise<PullResult> {
  const o = {
    endpoint: options.endpoint ?? DEFAULT_HF_ENDPOINT,
    token: options.token,
    revision: options.revision ?? 'main',
    force: options.force ?? false,
    retries: options.retries ?? 5,
    retryDelayMs: options.retryDelayMs ?? 500,
    onEvent: options.onEvent ?? (() => {}),
    id: options.id,
    modelsDir: options.modelsDir,
    variant: options.variant,
    signal: options.signal,
  };
  const dir = modelDir(o.modelsDir, o.id);
  if (!o.force && (await exists(join(dir, 'config.json')))) return { dir, files: [], skipped: true };

  o.onEvent({ type: 'listing', id: o.id, revision: o.revision });
  const limits = {
    maxBytes: options.maxBytes ?? PULL_LIMITS.maxBytes,
    maxSmallFileBytes: options.maxSmallFileBytes ?? PULL_LIMITS.maxSmallFileBytes,
    stallTimeoutMs: options.stallTimeoutMs ?? PULL_LIMITS.stallTimeoutMs,
  };
  const info = await fetchModelInfo({
    endpoint: o.endpoint,
    id: o.id,
    revision: o.revision,
    maxBytes: options.maxListingBytes ?? PULL_LIMITS.maxListingBytes,
    ...(o.token ? { token: o.token } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const files = selectFiles(info.siblings ?? [], o.variant);
  const listed = files.reduce((sum, f) => sum + (f.size ?? 0), 0);
  if (listed > limits.maxBytes) {
    throw new HubError('too-large', `${o.id} lists ${listed} bytes, over the pull's cap of ${limits.maxBytes} bytes; nothing downloaded.`);
  }
  // Download every file from one commit, so a branch that moves meanwhile can't mix two.
  const commit = info.sha && /^[0-9a-f]{40}$/.test(info.sha) ? info.sha : o.revision;

  const parent = dirname(dir);
  const name = dir.slice(parent.length + 1);
  const temp = join(parent, `.${name}.pull`);
  await mkdir(temp, { recursive: true });
  const unlock = await lock(temp, o.id);
  try {
    const stateFile = join(temp, '.pull.json');
    const state: PullState = { id: o.id, commit, variant: o.variant ?? null };
    const previous = await readFile(stateFile, 'utf8').then((s) => JSON.parse(s) as PullState, () => undefined);
    if (previous && JSON.stringify(previous) !== JSON.stringify(state)) {
      // Parts of another commit or variant: their bytes can't be resumed.
      for (const entry of await readdir(temp)) if (entry !== '.lock') await rm(join(temp, entry), { recursive: true, force: true });
    }
    await writeFile(stateFile, JSON.stringify(state));

    const ctx: DownloadContext = {
      endpoint: o.endpoint,
      token: o.token,
      id: o.id,
      signal: o.signal,
      commit,
      retries: o.retries,
      retryDelayMs: o.retryDelayMs,
      onEvent: o.onEvent,
      ...limits,
      pulled: 0,
    };
    const done: { path: string; size: number }[] = [];
    for (const file of files) {
      const dest = join(temp, ...file.path.split('/'));
      const size = (await exists(dest)) && file.size !== undefined && (await sizeOf(dest)) === file.size ? file.size : await downloadFile(ctx, file, dest);
      ctx.pulled += size;
      done.push({ path: file.path, size });
    }

    // Keep only this pull's files, then move the folder into place.
    const keep = new Set([...files.map((f) => f.path.split('/')[0] as string), '.lock']);
    for (const entry of await readdir(temp)) if (!keep.has(entry)) await rm(join(temp, entry), { recursive: true, force: true });
    const onnxDir = join(temp, 'onnx');
    if (await exists(onnxDir)) {
      const wanted = new Set(files.map((f) => f.path));
      for (const entry of await readdir(onnxDir)) if (!wanted.has(`onnx/${entry}`)) await rm(join(onnxDir, entry), { force: true });
    }
    let old: string | undefined;
    if (await exists(dir)) {
      old = join(parent, `.${name}.old-${process.pid}-${Date.now()}`);
      await rename(dir, old);
    }
    await rename(temp, dir);
    await rm(join(dir, '.lock'), { force: true });
    if (old) await rm(old, { recursive: true, force: true });
    return { dir, files: done, skipped: false, ...(info.sha ? { commit: info.sha } : {}) };
  } finally {
    await unlock().catch(() => {});
  }
}
