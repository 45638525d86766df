/** `inferq classify` and `inferq triage`: single jobs (`/v1/jobs`) and tickets (`/v1/tickets`). */
import type { CommandContext } from '../context.js';
import { formatTable } from '../context.js';
import { CliError, ExitCode } from '../errors.js';
import { ApiError } from '../api-client.js';

/** The fields of the API's job view that the CLI reads. */
export interface JobSummary {
  id?: string;
  status: string;
  model?: string;
  result?: unknown;
  error?: { code: string; message: string };
}

const FINAL_JOB_STATUSES = ['succeeded', 'failed', 'cancelled'];

/** The longest `?wait=` asked for in one request, in seconds (the API caps it too). */
const WAIT_SECONDS = 30;

/** Prints a job: its labels (classification), its result as JSON, or its error. */
export function printJob(ctx: CommandContext, job: JobSummary, json: boolean): number {
  if (json) ctx.out(JSON.stringify(job, null, 2));
  else if (job.status === 'succeeded') printResult(ctx, job.result);
  else if (job.status === 'failed') ctx.err(`job ${job.id ?? ''} failed: ${job.error?.code ?? 'error'}: ${job.error?.message ?? ''}`);
  else ctx.out(`job ${job.id ?? ''} is ${job.status}`);
  if (job.status === 'failed' || job.status === 'cancelled') return ExitCode.failed;
  return ExitCode.ok;
}

function printResult(ctx: CommandContext, result: unknown): void {
  const scores = Array.isArray(result) ? result : (result as { labels?: unknown } | undefined)?.labels;
  if (Array.isArray(scores) && scores.every((s) => typeof (s as { label?: unknown }).label === 'string')) {
    const rows = (scores as { label: string; score: number }[]).map((s) => [s.label, s.score.toFixed(3)]);
    ctx.out(formatTable(['label', 'score'], rows));
  } else {
    ctx.out(typeof result === 'string' ? result : JSON.stringify(result, null, 2));
  }
}

/** Reads the job until it ends or `timeoutSeconds` pass, long-polling `?wait=`. */
async function waitForJob(ctx: CommandContext, id: string, timeoutSeconds: number): Promise<JobSummary> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    const wait = Math.max(0, Math.min(WAIT_SECONDS, left));
    const job = await ctx.api.json<JobSummary>('GET', `/v1/jobs/${encodeURIComponent(id)}`, {
      query: { wait },
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    });
    if (FINAL_JOB_STATUSES.includes(job.status)) return job;
    if (Date.now() >= deadline) {
      throw new CliError(`job ${id} is still ${job.status} after ${timeoutSeconds}s: is a worker serving ${job.model ?? 'its model'}? Check later with \`inferq status ${id}\``, ExitCode.failed);
    }
  }
}

export interface ClassifyOptions {
  model?: string;
  topK?: number;
  json: boolean;
  /** Longest wait for the answer, in seconds. */
  timeout: number;
}

/** `inferq classify TEXT`: one classification job, waited for. */
export async function classify(ctx: CommandContext, text: string, options: ClassifyOptions): Promise<number> {
  const accepted = await ctx.api.json<{ id: string; status: string }>('POST', '/v1/jobs', {
    json: {
      task: 'classification',
      input: text,
      ...(options.model ? { model: options.model } : {}),
      ...(options.topK !== undefined ? { parameters: { top_k: options.topK } } : {}),
    },
  });
  const job = await waitForJob(ctx, accepted.id, options.timeout);
  return printJob(ctx, job, options.json);
}

/** The fields of the API's ticket view that the CLI reads. */
export interface TicketSummary {
  id: string;
  status: string;
  result?: { issue: { label: string; score: number }; labels?: { label: string; score: number }[]; summary?: string };
  error?: { code: string; message: string };
}

export interface TriageOptions {
  subject?: string;
  /** Issue labels to choose from (the API's default set when left out). */
  labels?: string[];
  json: boolean;
  /** Longest wait for the answer, in seconds. */
  timeout: number;
}

/** `inferq triage TEXT`: `POST /v1/tickets {body}`, then the ticket's issue and summary, waited for. */
export async function triage(ctx: CommandContext, text: string, options: TriageOptions): Promise<number> {
  let accepted: { id: string; status: string };
  try {
    accepted = await ctx.api.json<{ id: string; status: string }>('POST', '/v1/tickets', {
      json: { body: text, ...(options.subject ? { subject: options.subject } : {}), ...(options.labels ? { labels: options.labels } : {}) },
    });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && error.code === 'INFERQ_ERR_NOT_FOUND') {
      throw new CliError(
        `This API has no ticket triage (POST /v1/tickets answered 404).\n` +
          `Classify the ticket with the starter ticket model instead:\n  inferq classify --model inferq/starter-tickets ${JSON.stringify(text)}`,
        ExitCode.apiError,
      );
    }
    throw error;
  }
  const deadline = Date.now() + options.timeout * 1000;
  let ticket: TicketSummary;
  for (;;) {
    const wait = Math.max(0, Math.min(WAIT_SECONDS, Math.ceil((deadline - Date.now()) / 1000)));
    ticket = await ctx.api.json<TicketSummary>('GET', `/v1/tickets/${encodeURIComponent(accepted.id)}`, {
      query: { wait },
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    });
    if (FINAL_JOB_STATUSES.includes(ticket.status)) break;
    if (Date.now() >= deadline) {
      throw new CliError(`ticket ${accepted.id} is still ${ticket.status} after ${options.timeout}s: are workers serving the zero-shot and summarization models?`, ExitCode.failed);
    }
  }
  if (options.json) ctx.out(JSON.stringify(ticket, null, 2));
  else if (ticket.status === 'succeeded' && ticket.result) {
    ctx.out(`issue:   ${ticket.result.issue.label} (${ticket.result.issue.score.toFixed(3)})`);
    if (ticket.result.summary !== undefined) ctx.out(`summary: ${ticket.result.summary}`);
  } else {
    ctx.err(`ticket ${ticket.id} ${ticket.status}: ${ticket.error?.code ?? ''} ${ticket.error?.message ?? ''}`.trim());
  }
  return ticket.status === 'succeeded' ? ExitCode.ok : ExitCode.failed;
}
