import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import {
  CreateJobBody,
  ErrorBody,
  FINAL_STATUSES,
  JobAccepted,
  JobParams,
  JobQuery,
  JobView,
  MAX_INPUT_CHARS,
  TASKS,
  CHAT_TASKS,
  checkParameters,
  isTask,
  type ChatMessage,
  type JobStatus,
  type TaskName,
} from '@inferq/contracts';
import {
  inferenceJobOptions,
  modelIdFromJobId,
  newJobId,
  statusFromState,
  type InferenceJobData,
} from '@inferq/queue';
import { clientGone } from '../client-gone.js';
import { httpError } from '../errors.js';
import { checkWebhookUrl } from '../webhook-url.js';

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x20-\\x7E]+$',
      description: 'Printable ASCII, 1 to 255 characters. For 24 hours the same key (per tenant) with the same body answers the first job, so a retried post does not run twice; with another body it is a 422.',
    }),
  ),
});

const isFinal = (status: JobStatus): boolean => FINAL_STATUSES.includes(status);

/** Length in characters (code points), counted only when the cheap UTF-16 length is over the limit. */
function inputTooLong(input: string): number | undefined {
  if (input.length <= MAX_INPUT_CHARS) return undefined;
  let chars = 0;
  for (const _ of input) chars++;
  return chars > MAX_INPUT_CHARS ? chars : undefined;
}

/** A text for every task, or chat messages where the task takes them; never empty, never over the limit. */
export function checkInput(task: TaskName, input: string | ChatMessage[]): void {
  if (typeof input !== 'string' && !CHAT_TASKS.includes(task)) {
    throw httpError('INFERQ_ERR_VALIDATION', `input must be a string for task "${task}" (chat messages are for ${CHAT_TASKS.join(', ')})`);
  }
  const text = typeof input === 'string' ? input : input.map((m) => m.content).join('');
  if (text.trim() === '') throw httpError('INFERQ_ERR_EMPTY_INPUT');
  const chars = inputTooLong(text);
  if (chars !== undefined) throw httpError('INFERQ_ERR_INPUT_TOO_LARGE', chars, MAX_INPUT_CHARS);
}

/** The task's parameters against its schema, and `max_new_tokens` against the server's cap. */
export function checkTaskParameters(task: TaskName, parameters: Record<string, unknown>, maxNewTokens: number): void {
  const problems = checkParameters(task, parameters);
  if (problems.length > 0) throw httpError('INFERQ_ERR_VALIDATION', problems.join('; '));
  const asked = parameters.max_new_tokens;
  if (typeof asked === 'number' && asked > maxNewTokens) {
    throw httpError('INFERQ_ERR_VALIDATION', `parameters.max_new_tokens is ${asked}; this server allows at most ${maxNewTokens}`);
  }
}

/** `POST /v1/jobs` and `GET /v1/jobs/:id` (with `?wait=N` long-polling). */
export const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { JOB_RETENTION_SECONDS, MAX_WAIT_SECONDS, BODY_LIMIT_BYTES, MAX_NEW_TOKENS } = app.config;
  const jobOptions = inferenceJobOptions({ retentionSeconds: JOB_RETENTION_SECONDS });

  async function readView(modelId: string, id: string): Promise<JobView> {
    const view = await app.queues.readView(modelId, id);
    if (!view) throw httpError('INFERQ_ERR_JOB_NOT_FOUND', id);
    return view;
  }

  /** Holds until the job is final, `waitMs` passes, the client leaves (`gone`) or the server closes; answers the view then. */
  async function waitForEnd(modelId: string, id: string, view: JobView, waitMs: number, gone: AbortSignal): Promise<JobView> {
    const deadline = Date.now() + waitMs;
    while (!isFinal(view.status) && Date.now() < deadline && !gone.aborted) {
      // Subscribe first, then read: an end between the two is seen by one or the other.
      const watch = await app.queues.watchJobEnd(modelId, id, { timeoutMs: deadline - Date.now(), signal: gone });
      try {
        view = await readView(modelId, id);
        if (isFinal(view.status)) break;
        const outcome = await watch.outcome;
        if (gone.aborted) break;
        view = await readView(modelId, id);
        // 'ended' but not final: a failed attempt that will be retried; keep waiting.
        if (outcome !== 'ended') break;
      } finally {
        watch.stop();
      }
    }
    return view;
  }

  app.post(
    '/v1/jobs',
    {
      bodyLimit: BODY_LIMIT_BYTES,
      schema: {
        summary: 'Queue an inference job',
        description: `Validates the input, resolves the model (the task's default when none is named) and queues the job. Inputs longer than ${MAX_INPUT_CHARS} characters are rejected.`,
        tags: ['jobs'],
        headers: IdempotencyHeaders,
        body: CreateJobBody,
        response: {
          202: JobAccepted,
          400: ErrorBody,
          422: ErrorBody,
          429: ErrorBody,
          404: ErrorBody,
          413: ErrorBody,
          415: ErrorBody,
          500: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const { task, model, input, parameters, stream, webhook_url: webhookUrl } = request.body;
      if (!isTask(task)) throw httpError('INFERQ_ERR_UNKNOWN_TASK', task.slice(0, 100), TASKS.join(', '));
      checkInput(task, input);
      checkTaskParameters(task, parameters ?? {}, MAX_NEW_TOKENS);
      if (stream && task !== 'generation' && task !== 'summarization') {
        throw httpError('INFERQ_ERR_VALIDATION', `stream is for generation and summarization, not "${task}"`);
      }
      const modelId = await app.models.resolve(task, model);
      if (webhookUrl !== undefined) await checkWebhookUrl(webhookUrl, app.config.WEBHOOK_ALLOW_PRIVATE, request.log);

      // The same Idempotency-Key and body (per tenant, for 24 hours) answer the first job; another body, 422.
      const create = await app.idempotency.claim(request, 'job', [request.body], newJobId(modelId));
      const id = create.id;
      const queue = app.queues.forModel(modelId);
      const data: InferenceJobData = {
        task,
        model: modelId,
        input,
        parameters: parameters ?? {},
        ...(stream ? { stream } : {}),
        ...(webhookUrl ? { webhook_url: webhookUrl } : {}),
      };
      if (!create.repeat) {
        try {
          await app.quotas.admit(request, { inputs: 1, models: [modelId] });
          await app.owners.claim(request, 'job', id);
          // Named after its task, so reading the job's view never needs its data (the input).
          await queue.add(task, data, { ...jobOptions, jobId: id });
          await app.quotas.track(request, 'job', id, 1);
        } catch (err) {
          await create.release();
          throw err;
        }
      }
      let status: JobStatus = 'queued';
      if (create.repeat) {
        const job = await queue.getJob(id);
        if (job) status = statusFromState(await job.getState());
      }
      return reply.code(202).header('location', `/v1/jobs/${id}`).send({ id, status });
    },
  );

  app.get(
    '/v1/jobs/:id',
    {
      config: { owned: 'job' },
      schema: {
        summary: 'Read a job',
        description: `Status, and result or error once finished. \`?wait=N\` holds the request until the job ends or N seconds pass (at most ${MAX_WAIT_SECONDS}).`,
        tags: ['jobs'],
        params: JobParams,
        querystring: JobQuery,
        response: {
          200: JobView,
          400: ErrorBody,
          404: ErrorBody,
          500: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      // Before any await: a client that leaves while the job is read ends its wait too.
      const waitMs = Math.min(request.query.wait ?? 0, MAX_WAIT_SECONDS) * 1000;
      const gone = waitMs > 0 ? clientGone(reply) : undefined;
      const release = gone ? app.clientLimits.holdWait(request) : undefined;
      try {
        const { id } = request.params;
        const modelId = modelIdFromJobId(id);
        if (modelId === undefined || !(await app.queues.hasJob(modelId, id))) {
          throw httpError('INFERQ_ERR_JOB_NOT_FOUND', id.slice(0, 300));
        }
        const view = await readView(modelId, id);
        if (!gone || isFinal(view.status) || gone.aborted) return view;
        return await waitForEnd(modelId, id, view, waitMs, gone);
      } finally {
        release?.();
      }
    },
  );
};
