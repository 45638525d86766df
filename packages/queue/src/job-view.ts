import type { Job, JobState } from 'bullmq';
import { decodeJobError, type JobStatus, type JobView } from '@inferq/contracts';
import type { InferenceJobData, InferenceJobResult } from './job-data.js';

export function statusFromState(state: JobState | 'unknown'): JobStatus {
  switch (state) {
    case 'active':
      return 'running';
    case 'completed':
      return 'succeeded';
    case 'failed':
      return 'failed';
    default:
      // waiting, prioritized, delayed (a retry's backoff), waiting-children
      return 'queued';
  }
}

const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

/** The public view of a job, as `GET /v1/jobs/:id` returns it. */
export function toJobView(job: Job<InferenceJobData, InferenceJobResult>, state: JobState | 'unknown'): JobView {
  const status = statusFromState(state);
  const view: JobView = {
    id: String(job.id),
    task: job.data.task,
    model: job.data.model,
    status,
    created_at: new Date(job.timestamp).toISOString(),
    started_at: iso(job.processedOn),
    finished_at: status === 'succeeded' || status === 'failed' ? iso(job.finishedOn) : null,
  };
  if (status === 'succeeded') view.result = job.returnvalue;
  if (status === 'failed') view.error = decodeJobError(job.failedReason);
  return view;
}
