/** `inferq models list` and `inferq models pull`. */
import { resolve } from 'node:path';
import type { CommandContext } from '../context.js';
import { formatTable, oneLine } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import type { HubError, PullEvent } from '../hub-download.js';
import { formatAmount, Progress } from '../progress.js';

interface ModelInfo {
  id: string;
  tasks: string[];
  architecture?: string;
  labels?: string[];
  default_for?: string[];
  /** Live workers serving it (APIs that report it). */
  workers?: number;
}

/** `inferq models list`: what the API serves. */
export async function listModels(ctx: CommandContext, options: { json: boolean }): Promise<number> {
  const { data } = await ctx.api.json<{ data: ModelInfo[] }>('GET', '/v1/models');
  if (options.json) {
    ctx.out(JSON.stringify(data, null, 2));
    return ExitCode.ok;
  }
  if (data.length === 0) {
    ctx.out('No models in the API\'s MODELS_DIR. Pull one with `inferq models pull <org/name>`.');
    return ExitCode.ok;
  }
  const rows = data.map((m) => [
    m.id,
    m.tasks.join(',') || '-',
    m.workers === undefined ? '?' : String(m.workers),
    oneLine((m.labels ?? []).join(', '), 48) || '-',
    (m.default_for ?? []).join(',') || '',
  ]);
  ctx.out(formatTable(['model', 'tasks', 'workers', 'labels', 'default for'], rows));
  const unserved = data.filter((m) => m.workers === 0 && m.tasks.length > 0).map((m) => m.id);
  if (unserved.length > 0) ctx.err(`No live worker serves ${unserved.join(', ')}: their jobs wait until one does (WORKER_MODELS).`);
  return ExitCode.ok;
}

export interface PullCommandOptions {
  modelsDir?: string;
  revision?: string;
  variant?: string;
  force: boolean;
}

/** Exit codes of the ways a pull fails. */
const PULL_EXIT: Record<HubError['kind'], number> = {
  'invalid-id': ExitCode.usage,
  unreachable: ExitCode.unreachable,
  unauthorized: ExitCode.apiError,
  'not-found': ExitCode.apiError,
  http: ExitCode.apiError,
  'size-mismatch': ExitCode.failed,
  'checksum-mismatch': ExitCode.failed,
  'no-onnx': ExitCode.failed,
  busy: ExitCode.failed,
  'too-large': ExitCode.failed,
  timeout: ExitCode.unreachable,
};

/** `inferq models pull ORG/NAME`: downloads a model from the Hub into MODELS_DIR. */
export async function pull(ctx: CommandContext, id: string, options: PullCommandOptions): Promise<number> {
  const modelsDir = resolve(ctx.io.cwd, options.modelsDir ?? (ctx.io.env.MODELS_DIR || 'models'));
  let bar: Progress | undefined;
  const onEvent = (event: PullEvent): void => {
    switch (event.type) {
      case 'listing':
        ctx.err(`${event.id}: listing files at ${event.revision}`);
        break;
      case 'file-start':
        bar = new Progress({ stream: ctx.io.stderr, total: event.size ?? 0, unit: 'bytes', label: event.path, lineIntervalMs: 10_000 });
        if (event.resumeFrom > 0) ctx.err(`${event.path}: resuming at ${formatAmount(event.resumeFrom, 'bytes')}`);
        bar.update(event.resumeFrom);
        break;
      case 'bytes':
        bar?.update(event.received, event.size !== undefined ? { total: event.size } : {});
        break;
      case 'retry':
        bar?.finish(`${event.path}: ${event.reason}; retry ${event.attempt}, resuming at ${formatAmount(event.received, 'bytes')}`);
        bar = new Progress({ stream: ctx.io.stderr, total: 0, unit: 'bytes', label: event.path, lineIntervalMs: 10_000 });
        break;
      case 'verifying':
        break;
      case 'file-done':
        bar?.update(event.size, { total: event.size });
        bar?.finish();
        bar = undefined;
        break;
    }
  };
  // Loaded here: the id check reads @inferq/contracts, whose schemas take a while to build.
  const { HubError, pullModel } = await import('../hub-download.js');
  const positive = (name: string): number | undefined => {
    const text = ctx.io.env[name];
    if (!text) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value <= 0) throw new CliError(`${name} must be a positive whole number, not "${text}"`, ExitCode.usage);
    return value;
  };
  const maxBytes = positive('PULL_MAX_BYTES');
  const timeoutMs = positive('PULL_TIMEOUT_MS');
  try {
    const result = await pullModel({
      id,
      modelsDir,
      endpoint: ctx.io.env.HF_ENDPOINT || undefined,
      token: ctx.io.env.HF_TOKEN || undefined,
      revision: options.revision,
      variant: options.variant,
      force: options.force,
      ...(maxBytes !== undefined ? { maxBytes } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      onEvent,
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    });
    if (result.skipped) {
      ctx.out(`${id} is already in ${result.dir} (pass --force to download it again)`);
    } else {
      const bytes = result.files.reduce((sum, f) => sum + f.size, 0);
      ctx.out(`${id}: ${result.files.length} files, ${formatAmount(bytes, 'bytes')} in ${result.dir}${result.commit ? ` (commit ${result.commit.slice(0, 12)})` : ''}`);
      ctx.err(`Serve it: WORKER_MODELS=${id} MODELS_DIR=${modelsDir} npm start`);
    }
    return ExitCode.ok;
  } catch (error) {
    bar?.finish();
    if (error instanceof HubError) throw new CliError(error.message, PULL_EXIT[error.kind] as CliError['exitCode']);
    if ((error as Error).name === 'AbortError') throw new CliError(`Interrupted; run the same pull again to resume it.`, ExitCode.interrupted);
    throw error;
  }
}
