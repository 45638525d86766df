import type { ChatMessage, JobResult, TaskName } from '@inferq/contracts';

/** What the API stores in a BullMQ job and the worker reads. */
export interface InferenceJobData {
  task: TaskName;
  model: string;
  /** A text, or chat messages for generation. */
  input: string | ChatMessage[];
  /** The task's parameters, already checked by the API (`checkParameters`). */
  parameters: Record<string, unknown>;
  /** Stream generated text as progress events (`GET /v1/jobs/:id/events`). */
  stream?: boolean;
  /** Where the final job view is POSTed (signed), when the client asked for it. */
  webhook_url?: string;
}

export type InferenceJobResult = JobResult;
