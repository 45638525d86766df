import type { Readable } from 'node:stream';
import { MAX_CUSTOM_ID_CHARS, MAX_INPUT_CHARS, type ChatMessage } from '@inferq/contracts';
import { httpError } from './errors.js';

/** Longest line of an upload, in bytes: the longest input, 4 bytes a character, JSON-escaped, plus room. */
export const MAX_LINE_BYTES = MAX_INPUT_CHARS * 4 * 2 + 4096;

/** Characters (code points) in `text`, counted only when the cheap UTF-16 length passes `limit`. */
export function charsOver(text: string, limit: number): number | undefined {
  if (text.length <= limit) return undefined;
  let chars = 0;
  for (const _ of text) chars++;
  return chars > limit ? chars : undefined;
}

/** The `INFERQ_ERR_BATCH_LINE_INVALID` error for line `line` (1-based). */
export function lineError(line: number, reason: string): Error {
  return httpError('INFERQ_ERR_BATCH_LINE_INVALID', line, reason);
}

const quote = (text: string): string => JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);

const CHAT_ROLES = ['system', 'user', 'assistant'];

/** Checks chat messages `[{role, content}]` (1 to 100); returns their joined text, for the emptiness and length checks. */
function chatText(input: unknown[], line: number, at: string): string {
  if (input.length === 0 || input.length > 100) throw lineError(line, `input must hold 1 to 100 chat messages${at}`);
  let text = '';
  for (const [i, message] of input.entries()) {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) throw lineError(line, `input[${i}] must be an object {"role", "content"}${at}`);
    const record = message as Record<string, unknown>;
    const unknown = Object.keys(record).find((key) => key !== 'role' && key !== 'content');
    if (unknown !== undefined) throw lineError(line, `input[${i}] has an unknown property ${quote(unknown)}${at}`);
    if (typeof record.role !== 'string' || !CHAT_ROLES.includes(record.role)) throw lineError(line, `input[${i}].role must be system, user or assistant${at}`);
    if (typeof record.content !== 'string') throw lineError(line, `input[${i}].content must be a string${at}`);
    text += record.content;
  }
  return text;
}

/**
 * Checks one parsed input, `{custom_id, input}` and nothing else, and returns it; throws the
 * line's error otherwise. `where` names the item in messages (`inputs[4320]` for a JSON body);
 * `chat`: the batch's task takes chat messages (`generation`) as well as texts.
 */
export function checkBatchInput(value: unknown, line: number, where?: string, chat = false): { custom_id: string; input: string | ChatMessage[] } {
  const at = where ? ` (${where})` : '';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw lineError(line, `it must be a JSON object {"custom_id", "input"}${at}`);
  }
  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).find((key) => key !== 'custom_id' && key !== 'input');
  if (unknown !== undefined) throw lineError(line, `it has an unknown property ${quote(unknown)}${at}`);
  const { custom_id: customId, input } = record;
  if (customId === undefined) throw lineError(line, `custom_id is missing${at}`);
  if (typeof customId !== 'string') throw lineError(line, `custom_id must be a string${at}`);
  if (customId.length === 0 || customId.length > MAX_CUSTOM_ID_CHARS) {
    throw lineError(line, `custom_id must be 1 to ${MAX_CUSTOM_ID_CHARS} characters${at}`);
  }
  if (input === undefined) throw lineError(line, `input is missing${at}`);
  let text: string;
  if (chat && Array.isArray(input)) text = chatText(input, line, at);
  else if (typeof input === 'string') text = input;
  else throw lineError(line, `input must be a string${chat ? ' or chat messages [{"role", "content"}]' : ''}${at}`);
  if (text.trim() === '') throw lineError(line, `input is empty${at}`);
  const chars = charsOver(text, MAX_INPUT_CHARS);
  if (chars !== undefined) throw lineError(line, `input is ${chars} characters; the limit is ${MAX_INPUT_CHARS}${at}`);
  return { custom_id: customId, input: input as string | ChatMessage[] };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses and checks one line's text. */
function parseLine(bytes: Buffer, line: number, chat: boolean): { custom_id: string; input: string | ChatMessage[] } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw lineError(line, 'it is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw lineError(line, `it is not valid JSON (${(err as Error).message.slice(0, 120)})`);
  }
  return checkBatchInput(value, line, undefined, chat);
}

export interface ReadLinesOptions {
  /** Most bytes read before `INFERQ_ERR_PAYLOAD_TOO_LARGE`. */
  maxBytes: number;
  /** The batch's task takes chat messages as inputs too. @defaultValue false */
  chat?: boolean;
}

export interface BatchLine {
  /** 1-based line number in the upload (blank lines count). */
  line: number;
  custom_id: string;
  input: string | ChatMessage[];
  /** The line's bytes (a copy), checked to be `{custom_id, input}`. */
  raw: Buffer;
}

/**
 * The inputs of an NDJSON upload, one `{custom_id, input}` per line, parsed as the bytes
 * arrive: memory holds one line (and the read buffer), whatever the size of the upload.
 * Blank lines are skipped; `\r\n` endings are accepted. Throws the first bad line's error,
 * or `INFERQ_ERR_PAYLOAD_TOO_LARGE` past `maxBytes`.
 */
export async function* readBatchLines(stream: Readable, { maxBytes, chat = false }: ReadLinesOptions): AsyncGenerator<BatchLine> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  let read = 0;

  function* finishLine(tail: Buffer): Generator<BatchLine> {
    line++;
    let bytes = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
    pending = [];
    pendingBytes = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    if (bytes.length > MAX_LINE_BYTES) throw lineError(line, `it is longer than ${MAX_LINE_BYTES} bytes`);
    if (isBlank(bytes)) return;
    yield { line, ...parseLine(bytes, line, chat), raw: Buffer.from(bytes) };
  }

  // destroyOnReturn false: after a bad line the rest can still be drained (see `drain`).
  for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    read += buf.length;
    if (read > maxBytes) throw httpError('INFERQ_ERR_PAYLOAD_TOO_LARGE', maxBytes);
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      yield* finishLine(buf.subarray(start, nl));
      start = nl + 1;
    }
    if (start < buf.length) {
      const rest = buf.subarray(start);
      pendingBytes += rest.length;
      // A line longer than any valid one: fail now rather than hold it.
      if (pendingBytes > MAX_LINE_BYTES) throw lineError(line + 1, `it is longer than ${MAX_LINE_BYTES} bytes`);
      pending.push(rest);
    }
  }
  if (pendingBytes > 0) yield* finishLine(Buffer.alloc(0));
}

function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/**
 * Reads and discards the rest of a request body (at most `maxBytes` more), so the client,
 * still sending, gets to read the error answered early instead of a reset connection.
 */
export async function drain(stream: Readable, maxBytes: number): Promise<boolean> {
  if (stream.readableEnded || stream.destroyed) return true;
  let read = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      read += chunk.length;
      if (read > maxBytes) return false;
    }
  } catch {
    return false;
  }
  return true;
}
