/** `inferq submit`, `status`, `results`, `cancel`: bulk batches (`/v1/batches`). */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandContext } from '../context.js';
import { formatTable } from '../context.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import { checkInputFile, ndjsonBody, type InputFileOptions } from '../input-file.js';
import { Progress } from '../progress.js';
import { printJob } from './jobs.js';

/** The fields of the API's batch view that the CLI reads. */
export interface BatchSummary {
  id: string;
  status: string;
  task?: string;
  model?: string;
  request_counts: { total: number; completed: number; failed: number };
  created_at?: string;
  expires_at?: string;
}

/** Statuses a batch never leaves. */
export const FINAL_BATCH_STATUSES = ['completed', 'failed', 'cancelled', 'expired'];

export interface SubmitOptions extends InputFileOptions {
  task: string;
  model?: string;
  /** JSON-encoded task parameters, e.g. `{"top_k":1}`. */
  parameters?: string;
  /** Results file. @defaultValue `<FILE>.results.jsonl` */
  out?: string;
  /** Wait for the batch and fetch its results (`--no-wait`: print the id and return). */
  wait: boolean;
  /** Time between two status reads, in milliseconds. */
  interval: number;
  idempotencyKey?: string;
}

const isBatchId = (id: string): boolean => id.startsWith('batch_');

function checkParameters(parameters: string | undefined): void {
  if (parameters === undefined) return;
  try {
    const value: unknown = JSON.parse(parameters);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
  } catch {
    throw new UsageError(`--parameters must be a JSON object, e.g. '{"top_k":1}', got ${parameters}`);
  }
}

/** `inferq submit FILE`: checks the file, uploads it as NDJSON, watches the batch, writes the results. */
export async function submit(ctx: CommandContext, file: string, options: SubmitOptions): Promise<number> {
  checkParameters(options.parameters);
  const path = resolve(ctx.io.cwd, file);
  const summary = await checkInputFile(path, options);
  const out = resolve(ctx.io.cwd, options.out ?? `${file}.results.jsonl`);
  ctx.err(`${file}: ${summary.count.toLocaleString('en-US')} inputs${summary.column ? ` (column "${summary.column}")` : ''}; uploading`);

  const batch = await ctx.api.json<BatchSummary>('POST', '/v1/batches', {
    query: { task: options.task, model: options.model, parameters: options.parameters },
    headers: {
      'content-type': 'application/x-ndjson',
      ...(options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {}),
    },
    body: ndjsonBody(path, options),
    ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
  });
  ctx.err(`batch ${batch.id}: ${batch.request_counts.total.toLocaleString('en-US')} inputs on ${batch.model ?? 'the default model'} (${batch.status})`);
  if (!options.wait) {
    ctx.out(batch.id);
    return ExitCode.ok;
  }
  const final = await watch(ctx, batch, options.interval);
  const lines = await downloadResults(ctx, final.id, out);
  return report(ctx, final, `${lines.toLocaleString('en-US')} result lines in ${out}`);
}

/** Polls the batch until it ends, drawing its progress on stderr. Ctrl-C stops watching, not the batch. */
async function watch(ctx: CommandContext, batch: BatchSummary, intervalMs: number): Promise<BatchSummary> {
  const progress = new Progress({ stream: ctx.io.stderr, total: batch.request_counts.total, label: 'progress' });
  let view = batch;
  try {
    for (;;) {
      const { completed, failed, total } = view.request_counts;
      progress.update(completed + failed, { total, failed, status: view.status });
      if (FINAL_BATCH_STATUSES.includes(view.status)) break;
      await sleep(intervalMs, undefined, ctx.io.signal ? { signal: ctx.io.signal } : {});
      view = await ctx.api.json<BatchSummary>('GET', `/v1/batches/${encodeURIComponent(batch.id)}`);
    }
  } catch (error) {
    progress.finish();
    if ((error as Error).name === 'AbortError') {
      throw new CliError(
        `Stopped watching; batch ${batch.id} keeps running.\n` +
          `  inferq status ${batch.id}     # progress\n  inferq results ${batch.id} --out FILE\n  inferq cancel ${batch.id}`,
        ExitCode.interrupted,
      );
    }
    throw error;
  }
  progress.finish();
  return view;
}

/** Streams the batch's results into `out` (through `out.part`); returns the number of lines. */
async function downloadResults(ctx: CommandContext, id: string, out: string): Promise<number> {
  const response = await ctx.api.request('GET', `/v1/batches/${encodeURIComponent(id)}/results`, { headers: { accept: 'application/x-ndjson' } });
  const part = `${out}.part`;
  let lines = 0;
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      for (const byte of chunk) if (byte === 10) lines++;
      callback(null, chunk);
    },
  });
  try {
    await pipeline(body, counter, createWriteStream(part));
  } catch (error) {
    await rm(part, { force: true });
    throw ctx.api.unreachable(error, `The results download from ${ctx.api.baseUrl} broke off`);
  }
  await rename(part, out);
  const status = response.headers.get('inferq-batch-status');
  if (status && !FINAL_BATCH_STATUSES.includes(status)) ctx.err(`note: batch ${id} is ${status}; ${out} has the results so far`);
  return lines;
}

/** Prints the outcome; the exit code says whether everything succeeded. */
function report(ctx: CommandContext, batch: BatchSummary, where?: string): number {
  const { total, completed, failed } = batch.request_counts;
  const counts = `${completed.toLocaleString('en-US')} succeeded, ${failed.toLocaleString('en-US')} failed of ${total.toLocaleString('en-US')}`;
  ctx.out(`batch ${batch.id} ${batch.status}: ${counts}${where ? `; ${where}` : ''}`);
  if (batch.status === 'completed' && failed === 0) return ExitCode.ok;
  if (batch.status === 'completed') ctx.err(`${failed} inputs failed: their lines in the results have "error" instead of "result".`);
  else if (FINAL_BATCH_STATUSES.includes(batch.status)) ctx.err(`The batch ${batch.status} before every input ran.`);
  return ExitCode.failed;
}

/** `inferq status ID`: a batch (`batch_…`) or a job. */
export async function status(ctx: CommandContext, id: string, options: { json: boolean }): Promise<number> {
  if (!isBatchId(id)) {
    const job = await ctx.api.json<{ status: string }>('GET', `/v1/jobs/${encodeURIComponent(id)}`);
    return printJob(ctx, job, options.json);
  }
  const batch = await ctx.api.json<BatchSummary>('GET', `/v1/batches/${encodeURIComponent(id)}`);
  if (options.json) ctx.out(JSON.stringify(batch, null, 2));
  else {
    const { total, completed, failed } = batch.request_counts;
    const done = completed + failed;
    ctx.out(
      formatTable(
        ['batch', 'status', 'done', 'failed', 'model', 'created'],
        [[batch.id, batch.status, `${done}/${total} (${total > 0 ? Math.floor((100 * done) / total) : 0}%)`, String(failed), batch.model ?? '', batch.created_at ?? '']],
      ),
    );
  }
  if (batch.status === 'failed' || batch.status === 'cancelled' || batch.status === 'expired') return ExitCode.failed;
  return ExitCode.ok;
}

/** `inferq results ID [--out FILE]`: the results file (to stdout without --out). */
export async function results(ctx: CommandContext, id: string, options: { out?: string }): Promise<number> {
  if (!isBatchId(id)) throw new UsageError(`"${id}" is not a batch id (batch_…); a job's result is in \`inferq status ${id}\``);
  if (options.out) {
    const out = resolve(ctx.io.cwd, options.out);
    const lines = await downloadResults(ctx, id, out);
    ctx.err(`${lines.toLocaleString('en-US')} result lines in ${out}`);
    return ExitCode.ok;
  }
  const response = await ctx.api.request('GET', `/v1/batches/${encodeURIComponent(id)}/results`, { headers: { accept: 'application/x-ndjson' } });
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  for await (const chunk of body) ctx.io.stdout.write((chunk as Buffer).toString('utf8'));
  const batchStatus = response.headers.get('inferq-batch-status');
  if (batchStatus && !FINAL_BATCH_STATUSES.includes(batchStatus)) ctx.err(`note: batch ${id} is ${batchStatus}; these are the results so far`);
  return ExitCode.ok;
}

/** `inferq cancel ID`. */
export async function cancel(ctx: CommandContext, id: string): Promise<number> {
  if (!isBatchId(id)) throw new UsageError(`"${id}" is not a batch id (batch_…): only batches can be cancelled`);
  const batch = await ctx.api.json<BatchSummary>('POST', `/v1/batches/${encodeURIComponent(id)}/cancel`);
  const { total, completed, failed } = batch.request_counts;
  ctx.out(`batch ${batch.id} ${batch.status}: ${completed + failed}/${total} inputs ran; chunks not started will not run`);
  return ExitCode.ok;
}
