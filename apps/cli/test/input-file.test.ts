import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInputFile, ndjsonBody, readInputs, UsageError } from '../src/index.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inferq-cli-input-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

async function all(path: string, options = {}): Promise<{ custom_id: string; input: string }[]> {
  const out = [];
  for await (const { custom_id, input } of readInputs(path, options)) out.push({ custom_id, input });
  return out;
}

describe('readInputs', () => {
  it('reads JSONL with input or text, keeps ids and names the lines that have none', async () => {
    const path = await file('a.jsonl', '{"custom_id":"r1","input":"good"}\n\n{"text":"bad"}\r\n{"custom_id":7,"input":"ok","expected":"x"}\n');
    expect(await all(path)).toEqual([
      { custom_id: 'r1', input: 'good' },
      { custom_id: 'line-3', input: 'bad' },
      { custom_id: '7', input: 'ok' },
    ]);
  });

  it('reads a CSV column, by name or by its usual names, with quoted commas and newlines', async () => {
    const path = await file('b.csv', 'id,review,stars\nx1,"Great, really great",5\nx2,"Two\nlines",1\n');
    expect(await all(path)).toEqual([
      { custom_id: 'x1', input: 'Great, really great' },
      { custom_id: 'x2', input: 'Two\nlines' },
    ]);
    expect(await all(path, { column: 'stars', idColumn: 'review' })).toEqual([
      { custom_id: 'Great, really great', input: '5' },
      { custom_id: 'Two\nlines', input: '1' },
    ]);
  });

  it('reads TSV and names rows without ids row-N', async () => {
    const path = await file('c.tsv', 'text\tscore\nfirst\t1\nsecond\t2\n');
    expect(await all(path)).toEqual([
      { custom_id: 'row-1', input: 'first' },
      { custom_id: 'row-2', input: 'second' },
    ]);
  });

  it('names the line of the first bad input', async () => {
    const bad = await file('bad.jsonl', '{"input":"fine"}\n{"input": oops}\n');
    await expect(all(bad)).rejects.toThrow(/bad\.jsonl:2: not valid JSON/);
    const empty = await file('empty-input.jsonl', '{"input":"fine"}\n{"input":"   "}\n');
    await expect(all(empty)).rejects.toThrow(/:2: input is empty/);
    const neither = await file('neither.jsonl', '{"body":"x"}\n');
    await expect(all(neither)).rejects.toThrow(/neither "input" nor "text"/);
    const longId = await file('long-id.jsonl', `{"custom_id":"${'x'.repeat(65)}","input":"a"}\n`);
    await expect(all(longId)).rejects.toThrow(/longer than 64/);
  });

  it('asks for --column when a CSV has no obvious text column, listing the columns', async () => {
    const path = await file('d.csv', 'a,b\n1,2\n');
    await expect(all(path)).rejects.toThrow(/columns are "a", "b": pass --column NAME/);
    await expect(all(path, { column: 'c' })).rejects.toThrow(/no column "c"/);
  });

  it('asks for --format when the extension says nothing', async () => {
    const path = await file('e.txt', 'hello\n');
    await expect(all(path)).rejects.toBeInstanceOf(UsageError);
    expect(await all(path, { format: 'csv', column: 'hello' })).toEqual([]);
  });
});

describe('checkInputFile', () => {
  it('counts the inputs and rejects duplicate ids and empty files', async () => {
    expect(await checkInputFile(await file('f.jsonl', '{"input":"a"}\n{"input":"b"}\n'))).toEqual({ format: 'jsonl', count: 2 });
    await expect(checkInputFile(await file('g.jsonl', '{"custom_id":"a","input":"a"}\n{"custom_id":"a","input":"b"}\n'))).rejects.toThrow(
      /"a" is used twice \(at 1 and 2\)/,
    );
    await expect(checkInputFile(await file('h.jsonl', '\n\n'))).rejects.toThrow(/has no inputs/);
  });
});

describe('ndjsonBody', () => {
  it('streams {custom_id, input} lines and nothing else', async () => {
    const path = await file('i.jsonl', '{"text":"a","expected":"positive"}\n{"custom_id":"z","input":"b"}\n');
    const text = await new Response(ndjsonBody(path)).text();
    expect(text).toBe('{"custom_id":"line-1","input":"a"}\n{"custom_id":"z","input":"b"}\n');
  });
});
