/**
 * Reads the inputs of a batch from a file: JSONL (`{custom_id?, input}` or
 * `{custom_id?, text}` per line) or CSV/TSV (one column holds the text). Every input
 * becomes `{custom_id, input}`; an input without an id gets `line-N` (JSONL) or `row-N`
 * (CSV), N being where it is in the file.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import { UsageError } from './errors.js';

/** Longest `custom_id` the API takes, in characters. */
export const MAX_CUSTOM_ID_CHARS = 64;

export type InputFormat = 'jsonl' | 'csv' | 'tsv';

export interface InputFileOptions {
  /** `jsonl`, `csv` or `tsv`. @defaultValue from the extension (.jsonl/.ndjson/.json, .csv, .tsv) */
  format?: InputFormat;
  /** CSV: the column holding the text. @defaultValue `input`, `text`, `review`, `body`, or the only column */
  column?: string;
  /** CSV: the column holding each row's id. @defaultValue `custom_id` or `id` when the file has one */
  idColumn?: string;
}

/** One input, with where it came from (`line` is 1-based: a JSONL line or a CSV row). */
export interface BatchInput {
  custom_id: string;
  input: string;
  line: number;
}

/** What a first pass over the file found. */
export interface InputSummary {
  format: InputFormat;
  count: number;
  /** CSV: the column read as text. */
  column?: string;
}

const TEXT_COLUMNS = ['input', 'text', 'review', 'body', 'content', 'message'];
const ID_COLUMNS = ['custom_id', 'id'];

/** The format of `file`: the option, or its extension. */
export function inputFormat(file: string, format?: string): InputFormat {
  if (format !== undefined) {
    if (format === 'jsonl' || format === 'csv' || format === 'tsv') return format;
    throw new UsageError(`--format must be jsonl, csv or tsv, got "${format}"`);
  }
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv') return 'tsv';
  throw new UsageError(`cannot tell the format of "${file}" from its extension: pass --format jsonl|csv|tsv`);
}

function checkId(id: string, where: string): string {
  if (id.length === 0) throw new UsageError(`${where}: custom_id is empty`);
  if (id.length > MAX_CUSTOM_ID_CHARS) throw new UsageError(`${where}: custom_id is longer than ${MAX_CUSTOM_ID_CHARS} characters`);
  return id;
}

function checkText(text: unknown, where: string, field: string): string {
  if (typeof text !== 'string') throw new UsageError(`${where}: ${field} must be a string`);
  if (text.trim() === '') throw new UsageError(`${where}: ${field} is empty`);
  return text;
}

async function* jsonlInputs(file: string): AsyncGenerator<BatchInput> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const raw of lines) {
    lineNo++;
    const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (line.trim() === '') continue;
    const where = `${file}:${lineNo}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not valid JSON (each line must be an object like {"custom_id": "r1", "input": "text"})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new UsageError(`${where}: each line must be a JSON object like {"custom_id": "r1", "input": "text"}`);
    }
    const object = value as { custom_id?: unknown; input?: unknown; text?: unknown };
    const field = object.input !== undefined ? 'input' : object.text !== undefined ? 'text' : undefined;
    if (field === undefined) throw new UsageError(`${where}: the object has neither "input" nor "text"`);
    const input = checkText(object[field], where, field);
    let id = `line-${lineNo}`;
    if (object.custom_id !== undefined) {
      if (typeof object.custom_id !== 'string' && typeof object.custom_id !== 'number') {
        throw new UsageError(`${where}: custom_id must be a string`);
      }
      id = String(object.custom_id);
    }
    yield { custom_id: checkId(id, where), input, line: lineNo };
  }
}

async function* csvInputs(file: string, delimiter: string, options: InputFileOptions, found: { column?: string }): AsyncGenerator<BatchInput> {
  const parser = createReadStream(file).pipe(
    parse({ columns: true, bom: true, delimiter, skip_empty_lines: true, relax_quotes: delimiter === '\t', info: true, trim: false }),
  );
  let textColumn: string | undefined;
  let idColumn: string | undefined;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number; records: number } }>) {
      if (textColumn === undefined) {
        const columns = Object.keys(record);
        textColumn = options.column ?? TEXT_COLUMNS.find((c) => columns.includes(c)) ?? (columns.length === 1 ? columns[0] : undefined);
        if (textColumn === undefined || !columns.includes(textColumn)) {
          const which = options.column === undefined ? 'no column to read the text from' : `no column "${options.column}"`;
          throw new UsageError(`${file}: ${which}; its columns are ${columns.map((c) => JSON.stringify(c)).join(', ')}: pass --column NAME`);
        }
        idColumn = options.idColumn ?? ID_COLUMNS.find((c) => columns.includes(c));
        if (idColumn !== undefined && !columns.includes(idColumn)) {
          throw new UsageError(`${file}: no column "${idColumn}" for --id-column; its columns are ${columns.map((c) => JSON.stringify(c)).join(', ')}`);
        }
        found.column = textColumn;
      }
      const row = info.records; // data rows count from 1 (the header is not one); `info.lines` is the record's last physical line
      const where = `${file}:${info.lines} (row ${row})`;
      const input = checkText(record[textColumn], where, `column "${textColumn}"`);
      const id = idColumn !== undefined && record[idColumn] ? (record[idColumn] as string) : `row-${row}`;
      yield { custom_id: checkId(id, where), input, line: row };
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${file}: not valid ${delimiter === '\t' ? 'TSV' : 'CSV'}: ${(error as Error).message}`);
  }
}

/** The inputs of `file`, in file order. Throws {@link UsageError} naming the line at the first bad one. */
export async function* readInputs(file: string, options: InputFileOptions = {}, found: { column?: string } = {}): AsyncGenerator<BatchInput> {
  const format = inputFormat(file, options.format);
  try {
    await access(file);
  } catch {
    throw new UsageError(`no such file: ${file}`);
  }
  if (format === 'jsonl') yield* jsonlInputs(file);
  else yield* csvInputs(file, format === 'tsv' ? '\t' : ',', options, found);
}

/**
 * Reads the whole file once to check it before anything is sent: every line valid, ids
 * unique, at least one input. Returns how many inputs it has.
 */
export async function checkInputFile(file: string, options: InputFileOptions = {}): Promise<InputSummary> {
  const format = inputFormat(file, options.format);
  const seen = new Map<string, number>();
  const found: { column?: string } = {};
  for await (const input of readInputs(file, options, found)) {
    const first = seen.get(input.custom_id);
    if (first !== undefined) {
      throw new UsageError(`${file}: custom_id "${input.custom_id}" is used twice (at ${first} and ${input.line}); ids must be unique`);
    }
    seen.set(input.custom_id, input.line);
  }
  if (seen.size === 0) throw new UsageError(`${file} has no inputs`);
  return { format, count: seen.size, ...(found.column !== undefined ? { column: found.column } : {}) };
}

/**
 * The file as an NDJSON body of `{custom_id, input}` lines, read as it is sent (a large
 * file is never held whole), in chunks of about 64 KB.
 */
export function ndjsonBody(file: string, options: InputFileOptions = {}, onLine?: (count: number) => void): ReadableStream<Uint8Array> {
  const inputs = readInputs(file, options);
  const encoder = new TextEncoder();
  let count = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk = '';
      while (chunk.length < 65_536) {
        const next = await inputs.next();
        if (next.done) {
          if (chunk) controller.enqueue(encoder.encode(chunk));
          controller.close();
          return;
        }
        chunk += JSON.stringify({ custom_id: next.value.custom_id, input: next.value.input }) + '\n';
        onLine?.(++count);
      }
      controller.enqueue(encoder.encode(chunk));
    },
    async cancel() {
      await inputs.return(undefined);
    },
  });
}
