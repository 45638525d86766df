import Type, { type Static } from 'typebox';

/** What one worker's batches of one model looked like lately (a sliding window). */
export const RecentBatchStats = Type.Object(
  {
    window_seconds: Type.Integer({ description: 'The window these numbers cover, in seconds' }),
    batches: Type.Integer({ description: 'Batch runs in the window' }),
    inputs: Type.Integer({ description: 'Inputs run in those batches' }),
    failed_batches: Type.Integer({ description: 'Runs that threw (their inputs were retried in smaller batches)' }),
    mean_batch_size: Type.Number({ description: 'Inputs per batch, on average' }),
    max_batch_size: Type.Integer({ description: 'The largest batch' }),
    mean_padding_ratio: Type.Number({ description: 'Padded tokens / real tokens, on average (1 = no padding)' }),
    p95_batch_seconds: Type.Number({ description: '95th percentile of a batch run\'s wall time, in seconds' }),
    last_batch_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the last batch ended' }),
  },
  { $id: 'RecentBatchStats' },
);
export type RecentBatchStats = Static<typeof RecentBatchStats>;

/** A live worker process, as its last heartbeat described it. */
export const WorkerView = Type.Object(
  {
    id: Type.String({ description: 'Worker id: host, pid and a random suffix' }),
    hostname: Type.String(),
    pid: Type.Integer(),
    started_at: Type.String({ format: 'date-time' }),
    models: Type.Array(Type.String(), { description: 'Models this worker serves' }),
    devices: Type.Record(Type.String(), Type.String(), { description: 'The device each model runs on (after any fallback to cpu)' }),
    batches: Type.Record(Type.String(), RecentBatchStats, { description: 'Recent batch stats per model' }),
    heartbeat_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the last heartbeat was sent' }),
  },
  { $id: 'WorkerView' },
);
export type WorkerView = Static<typeof WorkerView>;

export const WorkerList = Type.Object({ data: Type.Array(WorkerView) }, { $id: 'WorkerList' });
export type WorkerList = Static<typeof WorkerList>;
