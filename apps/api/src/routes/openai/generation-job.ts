import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ERRORS, FINAL_STATUSES, isErrorCode, type ChatMessage, type GenerationResult, type JobView } from '@inferq/contracts';
import { inferenceJobOptions, newJobId, type InferenceJobData } from '@inferq/queue';
import { httpError } from '../../errors.js';
import { checkBeamBudget, checkInput, checkTaskParameters } from '../jobs.js';

export interface GenerationJobOptions {
  /** The job's task. @defaultValue 'generation' */
  task?: 'generation' | 'embedding';
  modelId: string;
  /** The job's id. @defaultValue a new one (`newJobId`) */
  id?: string;
  input: string | ChatMessage[];
  /** The job's parameters (checked here against the task's schema). */
  parameters: Record<string, unknown>;
  /** Streams the text: the worker sends it as progress events, handed to `onDelta`. */
  onDelta?: (delta: string) => void;
  /** Aborted when the client leaves: the wait ends (the job runs on, readable at /v1/jobs/:id). */
  gone: AbortSignal;
}

/** A job queued for an OpenAI request. */
export interface QueuedGeneration<R = GenerationResult> {
  id: string;
  /** The result once the job succeeds; its error (the job's code and status) once it fails; undefined if the client left. */
  result: Promise<R | undefined>;
}

/** The error a failed job ended with, as the API sends it: the same code, and that code's status. */
function jobFailure(view: JobView): Error {
  const code = view.error?.code ?? 'INFERQ_ERR_INFERENCE_FAILED';
  const known = isErrorCode(code) ? code : 'INFERQ_ERR_INFERENCE_FAILED';
  return Object.assign(new Error(view.error?.message ?? 'Inference failed'), { code: known, statusCode: ERRORS[known].status });
}

/**
 * Queues one `generation` (or `embedding`) job the way `POST /v1/jobs` does (the same checks, quota, ownership:
 * `GET /v1/jobs/:id` reads it too) and awaits its end through the queue's event stream,
 * subscribed before the job is added, so no token and no end can fall before the listener.
 */
export async function queueGeneration<R = GenerationResult>(app: FastifyInstance, request: FastifyRequest, options: GenerationJobOptions): Promise<QueuedGeneration<R>> {
  const { modelId, input, parameters, onDelta, gone } = options;
  const task = options.task ?? 'generation';
  checkInput(task, input);
  checkTaskParameters(task, parameters, app.config.MAX_NEW_TOKENS);
  checkBeamBudget(parameters, app.config.MAX_BEAM_TOKENS);

  const id = options.id ?? newJobId(modelId);
  const events = (await app.queues.events(modelId)) as unknown as NodeJS.EventEmitter;
  const names = { progress: `progress:${id}`, completed: `completed:${id}`, failed: `failed:${id}` };
  let settle: ((value: R | undefined) => void) | undefined;
  let fail: ((error: unknown) => void) | undefined;
  const result = new Promise<R | undefined>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const waitSeconds = app.config.OPENAI_WAIT_SECONDS;
  const timer = setTimeout(() => fail?.(httpError('INFERQ_ERR_WAIT_TIMEOUT', id, waitSeconds, id)), waitSeconds * 1000);
  const onProgress = ({ data }: { data: unknown }): void => {
    const delta = (data as { delta?: unknown } | undefined)?.delta;
    if (typeof delta === 'string' && delta !== '') onDelta?.(delta);
  };
  // 'failed' is sent for every failed attempt: only a final state ends the wait.
  const onEnd = (): void => {
    app.queues
      .readView(modelId, id)
      .then((view) => {
        if (!view) fail?.(httpError('INFERQ_ERR_JOB_NOT_FOUND', id));
        else if (view.status === 'succeeded') settle?.(view.result as R);
        else if (FINAL_STATUSES.includes(view.status)) fail?.(jobFailure(view));
      })
      .catch((err: unknown) => fail?.(err));
  };
  const onGone = (): void => settle?.(undefined);
  const stop = (): void => {
    clearTimeout(timer);
    events.off(names.progress, onProgress);
    events.off(names.completed, onEnd);
    events.off(names.failed, onEnd);
    gone.removeEventListener('abort', onGone);
    app.queues.closing.removeEventListener('abort', onClosing);
  };
  const onClosing = (): void => fail?.(httpError('INFERQ_ERR_QUEUE_UNAVAILABLE'));
  events.on(names.progress, onProgress);
  events.on(names.completed, onEnd);
  events.on(names.failed, onEnd);
  gone.addEventListener('abort', onGone, { once: true });
  app.queues.closing.addEventListener('abort', onClosing, { once: true });
  void result.then(stop, stop);

  try {
    await app.quotas.admit(request, { inputs: 1, models: [modelId] });
    await app.owners.claim(request, 'job', id);
    const data: InferenceJobData = { task, model: modelId, input, parameters, ...(onDelta ? { stream: true } : {}) };
    await app.queues.forModel(modelId).add(task, data, { ...inferenceJobOptions({ retentionSeconds: app.config.JOB_RETENTION_SECONDS }), jobId: id });
    await app.quotas.track(request, 'job', id, 1);
  } catch (err) {
    settle?.(undefined);
    throw err;
  }
  return { id, result };
}
