import type { JobState } from 'bullmq';
import type { RedisClient } from './connection.js';
import { decodeJobError, isTask, type JobResult, type JobView, type TaskName } from '@inferq/contracts';
import { modelIdFromJobId } from './names.js';
import { statusFromState } from './job-view.js';

const iso = (ms: string | null | undefined): string | null => (ms && Number(ms) > 0 ? new Date(Number(ms)).toISOString() : null);

/** As BullMQ reads a return value: JSON when it parses, the raw text otherwise. */
function parseResult(text: string | null | undefined): JobResult {
  try {
    return JSON.parse(text ?? 'null') as JobResult;
  } catch {
    return text as unknown as JobResult;
  }
}

/**
 * The public view of a job read with one `HMGET` of the fields it needs, never the job's
 * `data` (its input, up to 100,000 characters) unless the job predates task-named jobs.
 * The API names each inference job after its task (`queue.add(task, ...)`), so the task
 * comes from `name` and the model from the job id. The result is read only once the job has
 * succeeded, the failure reason only once it has failed. Undefined when the hash is gone.
 */
export async function readJobView(
  redis: RedisClient,
  /** The job's hash key, `<prefix>:<queue>:<id>`. */
  key: string,
  jobId: string,
  state: JobState | 'unknown',
): Promise<JobView | undefined> {
  const status = statusFromState(state);
  const outcomeField = status === 'succeeded' ? 'returnvalue' : status === 'failed' ? 'failedReason' : 'name';
  const [name, timestamp, processedOn, finishedOn, outcome] = await redis.hmget(key, 'name', 'timestamp', 'processedOn', 'finishedOn', outcomeField);
  if (timestamp === null || timestamp === undefined) return undefined;
  let task: TaskName | undefined = name && isTask(name) ? name : undefined;
  let model = modelIdFromJobId(jobId);
  if (task === undefined || model === undefined) {
    // A job queued before jobs were named after their task: its data is the only source.
    const data = await redis.hget(key, 'data');
    const parsed = data ? (JSON.parse(data) as { task?: TaskName; model?: string }) : {};
    task = parsed.task ?? task;
    model = parsed.model ?? model;
  }
  const view: JobView = {
    id: jobId,
    task: task as TaskName,
    model: model ?? '',
    status,
    created_at: new Date(Number(timestamp)).toISOString(),
    started_at: iso(processedOn),
    finished_at: status === 'succeeded' || status === 'failed' ? iso(finishedOn) : null,
  };
  if (status === 'succeeded') view.result = parseResult(outcome);
  if (status === 'failed') view.error = decodeJobError(outcome ?? undefined);
  return view;
}
