/** `inferq embed` (an embedding batch) and `inferq cluster` (`/v1/clusters`): common issues in a file. */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandContext } from '../context.js';
import { formatTable, oneLine } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { checkInputFile, ndjsonBody, type InputFileOptions } from '../input-file.js';
import { Progress } from '../progress.js';
import { submit } from './batches.js';

export interface EmbedOptions extends InputFileOptions {
  model?: string;
  /** Vectors file. @defaultValue `<FILE>.vectors.jsonl` */
  out?: string;
  /** JSON parameters of the embedding task, e.g. `{"dimensions":128}`. */
  parameters?: string;
  interval: number;
}

/** `inferq embed FILE --out vectors.jsonl`: an embedding batch, one `{custom_id, result: {embedding, ...}}` line per input. */
export function embed(ctx: CommandContext, file: string, options: EmbedOptions): Promise<number> {
  return submit(ctx, file, { ...options, task: 'embedding', wait: true, out: options.out ?? `${file}.vectors.jsonl` });
}

export interface ClusterOptions extends InputFileOptions {
  model?: string;
  numClusters?: number;
  maxClusters?: number;
  minClusterSize?: number;
  /** Members file (`{custom_id, cluster}` JSONL). @defaultValue none */
  out?: string;
  interval: number;
  /** Print the run as JSON instead of a table. */
  json: boolean;
}

interface ClusterRunView {
  id: string;
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  result?: {
    clusters: { id: number; size: number; share: number; keywords: string[]; title?: string; examples: { custom_id: string; input: string }[] }[];
    outliers: { size: number };
    num_clusters: number;
    chosen_automatically: boolean;
  };
  error?: { code: string; message: string };
}

/** `inferq cluster FILE`: uploads the file as a cluster run, shows the embedding progress, prints the clusters. */
export async function cluster(ctx: CommandContext, file: string, options: ClusterOptions): Promise<number> {
  const path = resolve(ctx.io.cwd, file);
  const summary = await checkInputFile(path, options);
  ctx.err(`${file}: ${summary.count.toLocaleString('en-US')} inputs${summary.column ? ` (column "${summary.column}")` : ''}; uploading`);
  let run = await ctx.api.json<ClusterRunView>('POST', '/v1/clusters', {
    query: {
      model: options.model,
      num_clusters: options.numClusters?.toString(),
      max_clusters: options.maxClusters?.toString(),
      min_cluster_size: options.minClusterSize?.toString(),
    },
    headers: { 'content-type': 'application/x-ndjson' },
    body: ndjsonBody(path, options),
    ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
  });
  const progress = new Progress({ stream: ctx.io.stderr, total: run.request_counts.total, label: 'embedding' });
  try {
    while (run.status !== 'completed' && run.status !== 'failed') {
      const { completed, failed, total } = run.request_counts;
      progress.update(completed + failed, { total, failed, status: run.status });
      await sleep(options.interval, undefined, ctx.io.signal ? { signal: ctx.io.signal } : {});
      run = await ctx.api.json<ClusterRunView>('GET', `/v1/clusters/${encodeURIComponent(run.id)}`, { query: { wait: '2' } });
    }
  } catch (error) {
    progress.finish();
    if ((error as Error).name === 'AbortError') throw new CliError(`Stopped watching; cluster run ${run.id} keeps running: GET /v1/clusters/${run.id}`, ExitCode.interrupted);
    throw error;
  }
  progress.update(run.request_counts.completed + run.request_counts.failed, { total: run.request_counts.total, status: run.status });
  progress.finish();
  if (run.status === 'failed' || !run.result) {
    ctx.err(`cluster run ${run.id} failed: ${run.error?.code ?? ''} ${run.error?.message ?? ''}`);
    return ExitCode.failed;
  }
  if (options.json) ctx.out(JSON.stringify(run, null, 2));
  else {
    const { clusters, outliers, num_clusters: k, chosen_automatically: auto } = run.result;
    ctx.out(`${clusters.length} clusters (k = ${k}${auto ? ', chosen automatically' : ''}) among ${run.request_counts.completed.toLocaleString('en-US')} inputs${outliers.size ? `; ${outliers.size} outliers` : ''}`);
    ctx.out(
      formatTable(
        ['cluster', 'size', 'share', 'example'],
        clusters.map((c) => [oneLine(c.title ?? c.keywords.slice(0, 4).join(', '), 40), String(c.size), `${(100 * c.share).toFixed(1)}%`, oneLine(c.examples[0]?.input ?? '', 70)]),
      ),
    );
  }
  if (options.out) {
    const res = await ctx.api.request('GET', `/v1/clusters/${encodeURIComponent(run.id)}/members`, { headers: { accept: 'application/x-ndjson' } });
    const out = resolve(ctx.io.cwd, options.out);
    await writeFile(out, await res.text());
    ctx.err(`members in ${out}`);
  }
  return ExitCode.ok;
}
