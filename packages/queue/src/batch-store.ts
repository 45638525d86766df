import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  BATCH_STATUSES,
  FINAL_BATCH_STATUSES,
  type BatchMetadata,
  type BatchStatus,
  type BatchView,
  type ErrorCode,
} from '@inferq/contracts';

/**
 * A batch's records in Redis, all under the BullMQ prefix `P`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P:batch:<id>` | hash | the batch: settings, status, timestamps, counters (`HINCRBY` as chunks end) |
 * | `P:batch:<id>:out:<c>` | string | chunk `c`'s result lines (JSONL, input order), written once when it ends |
 * | `P:batch-index` | sorted set | batch ids scored by creation time, for listing |
 * | `P:batch-stage:<sid>:<c>` | string | chunk `c`'s inputs, NDJSON `{custom_id, input}` lines, from upload until the chunk ends |
 * | `P:batch:<id>:in:<c>` | string | the same lines once the chunk has ended (renamed), kept with the results so a cluster run can read a batch's texts |
 * | `P:batch-stage:<sid>:ids` | hash | custom_id → line, while an upload is parsed (duplicate check) |
 *
 * Every key of a batch expires at its `keep_until` (created: `expires_at` + retention; once
 * final: the end + retention). For each chunk exactly one of its staging and its result key
 * exists: the script that writes the results deletes the inputs.
 */
export interface BatchRecord {
  id: string;
  task: string;
  model: string;
  parameters: Record<string, unknown>;
  status: BatchStatus;
  total: number;
  completed: number;
  failed: number;
  chunks: number;
  chunkSize: number;
  stage: string;
  completionWindow: string;
  createdAt: number;
  expiresAt: number;
  keepUntil: number;
  retentionSeconds: number;
  metadata: BatchMetadata | null;
  webhookUrl: string | undefined;
  /** Chunks not run because the completion window had passed. */
  expiredChunks: number;
  /** Status timestamps, in milliseconds. */
  times: Partial<Record<TimestampField, number>>;
}

const TIMESTAMP_FIELDS = ['in_progress_at', 'finalizing_at', 'completed_at', 'failed_at', 'cancelling_at', 'cancelled_at', 'expired_at'] as const;
type TimestampField = (typeof TIMESTAMP_FIELDS)[number];

/** The timestamp field a status sets when a batch enters it. */
const STATUS_TIME: Partial<Record<BatchStatus, TimestampField>> = {
  in_progress: 'in_progress_at',
  finalizing: 'finalizing_at',
  completed: 'completed_at',
  failed: 'failed_at',
  cancelling: 'cancelling_at',
  cancelled: 'cancelled_at',
  expired: 'expired_at',
};

export interface NewBatch {
  id: string;
  task: string;
  model: string;
  parameters: Record<string, unknown>;
  completionWindow: string;
  /** The completion window, in seconds. */
  windowSeconds: number;
  retentionSeconds: number;
  metadata?: BatchMetadata | undefined;
  webhookUrl?: string | undefined;
}

/** A line that can't be staged; `line` is 1-based. */
export class StagingLineError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

const SCRIPTS = {
  /** KEYS: ids hash, chunk key. ARGV: ttl ms, chunk data, first line, id1, id2... → 0, or {index, earlier line} of a duplicate. */
  inferqBatchStage: {
    keys: 2,
    lua: `
local n = #ARGV - 3
local seen = redis.call('HMGET', KEYS[1], unpack(ARGV, 4))
for i = 1, n do
  if seen[i] then return {i, tonumber(seen[i])} end
end
local first = tonumber(ARGV[3])
for i = 1, n do redis.call('HSET', KEYS[1], ARGV[3 + i], first + i - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
return 0`,
  },
  /** KEYS: batch hash, index. ARGV: keep-until ms, created ms, id, field, value, ... → 1 created, 0 exists. */
  inferqBatchCreate: {
    keys: 2,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1`,
  },
  /** KEYS: batch hash. ARGV: to, timestamp field, now ms, from1, from2... → the status after (false: no batch). */
  inferqBatchTransition: {
    keys: 1,
    lua: `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
for i = 4, #ARGV do
  if status == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], ARGV[2], ARGV[3])
    return ARGV[1]
  end
end
return status`,
  },
  /**
   * KEYS: batch hash, out key, stage key, kept-inputs key. ARGV: lines, completed, failed, expired (0|1).
   * → 1 written, 0 already written, -1 no batch.
   */
  inferqBatchFinishChunk: {
    keys: 4,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local keep = redis.call('HGET', KEYS[1], 'keep_until')
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', keep)
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[4])
  redis.call('PEXPIREAT', KEYS[4], keep)
end
redis.call('HINCRBY', KEYS[1], 'completed', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[3])
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'expired_chunks', 1) end
return 1`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/** Writes results lines for inputs: `{custom_id, result}` or `{custom_id, error}`, one per line. */
export type ChunkLine = { custom_id: string; result: unknown } | { custom_id: string; error: { code: ErrorCode | string; message: string } };

const PIPELINE_CHUNK = 500;

/**
 * The batch records (see {@link BatchRecord} for the key layout). One instance per Redis
 * connection: the API's producer connection or a worker's.
 */
export class BatchStore {
  constructor(
    readonly redis: Redis,
    readonly prefix: string,
  ) {
    for (const [name, { keys, lua }] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: keys, lua });
    }
  }

  private script(name: ScriptName): ScriptFn {
    return (this.redis as unknown as Record<ScriptName, ScriptFn>)[name].bind(this.redis);
  }

  batchKey(id: string): string {
    return `${this.prefix}:batch:${id}`;
  }

  outKey(id: string, chunk: number): string {
    return `${this.prefix}:batch:${id}:out:${chunk}`;
  }

  /** Chunk `c`'s inputs once it has ended (see the key table). */
  inputsKey(id: string, chunk: number): string {
    return `${this.batchKey(id)}:in:${chunk}`;
  }

  /** The inputs of an ended chunk as `[custom_id, input]`, or undefined when they are not kept (expired, or the chunk has not ended). */
  async readKeptInputs(id: string, chunk: number): Promise<[string, string][] | undefined> {
    const data = await this.redis.get(this.inputsKey(id, chunk));
    if (data === null) return undefined;
    return data
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const { custom_id: customId, input } = JSON.parse(line) as { custom_id: string; input: string };
        return [customId, input];
      });
  }

  indexKey(): string {
    return `${this.prefix}:batch-index`;
  }

  stageKey(stage: string, chunk: number): string {
    return `${this.prefix}:batch-stage:${stage}:${chunk}`;
  }

  stageIdsKey(stage: string): string {
    return `${this.prefix}:batch-stage:${stage}:ids`;
  }

  /** Starts staging the inputs of a new batch, `chunkSize` per chunk. */
  stager(chunkSize: number, ttlMs = 3_600_000): BatchStager {
    return new BatchStager(this, chunkSize, ttlMs);
  }

  /** @internal used by {@link BatchStager} */
  async stageChunk(stage: string, chunk: number, ids: string[], lines: Buffer, firstLine: number, ttlMs: number): Promise<[number, number] | undefined> {
    const result = await this.script('inferqBatchStage')(this.stageIdsKey(stage), this.stageKey(stage, chunk), ttlMs, lines, firstLine, ...ids);
    return Array.isArray(result) ? [Number(result[0]), Number(result[1])] : undefined;
  }

  /** Deletes a staging: its chunks and its duplicate-check hash. */
  async discardStage(stage: string, chunks: number): Promise<void> {
    const keys = [this.stageIdsKey(stage), ...Array.from({ length: chunks }, (_, c) => this.stageKey(stage, c))];
    for (let i = 0; i < keys.length; i += PIPELINE_CHUNK) await this.redis.del(...keys.slice(i, i + PIPELINE_CHUNK));
  }

  /**
   * Creates the batch record from a complete staging, in status `validating`. Resolves false,
   * touching nothing, when a batch with this id exists (an idempotent repeat).
   */
  async create(batch: NewBatch, staged: StagedBatch, now = Date.now()): Promise<boolean> {
    const expiresAt = now + batch.windowSeconds * 1000;
    const keepUntil = expiresAt + batch.retentionSeconds * 1000;
    const fields: Record<string, string | number> = {
      id: batch.id,
      task: batch.task,
      model: batch.model,
      parameters: JSON.stringify(batch.parameters),
      status: 'validating',
      total: staged.total,
      completed: 0,
      failed: 0,
      chunks: staged.chunks,
      chunk_size: staged.chunkSize,
      stage: staged.stage,
      completion_window: batch.completionWindow,
      created_at: now,
      expires_at: expiresAt,
      keep_until: keepUntil,
      retention: batch.retentionSeconds,
      metadata: batch.metadata ? JSON.stringify(batch.metadata) : '',
      webhook_url: batch.webhookUrl ?? '',
      expired_chunks: 0,
    };
    const created = await this.script('inferqBatchCreate')(
      this.batchKey(batch.id),
      this.indexKey(),
      keepUntil,
      now,
      batch.id,
      ...Object.entries(fields).flat(),
    );
    if (Number(created) !== 1) return false;
    // The staged chunks are the batch's inputs now: keep them as long as the batch.
    for (let c = 0; c < staged.chunks; c += PIPELINE_CHUNK) {
      const pipeline = this.redis.pipeline();
      for (let k = c; k < Math.min(staged.chunks, c + PIPELINE_CHUNK); k++) pipeline.pexpireat(this.stageKey(staged.stage, k), keepUntil);
      await pipeline.exec();
    }
    await this.redis.del(this.stageIdsKey(staged.stage));
    return true;
  }

  /** The batch record, or undefined when there is none (never made, or past its retention). */
  async get(id: string): Promise<BatchRecord | undefined> {
    const hash = await this.redis.hgetall(this.batchKey(id));
    return parseRecord(hash);
  }

  /**
   * Moves a batch to `to` if its status is one of `from` (and stamps the status's time).
   * Resolves with the status after: `to`, or the unchanged one; undefined if there is no batch.
   */
  async transition(id: string, to: BatchStatus, from: readonly BatchStatus[], now = Date.now()): Promise<BatchStatus | undefined> {
    const field = STATUS_TIME[to] ?? 'in_progress_at';
    const after = await this.script('inferqBatchTransition')(this.batchKey(id), to, field, now, ...from);
    return typeof after === 'string' ? (after as BatchStatus) : undefined;
  }

  /** The inputs of a chunk as `[custom_id, input]`, or undefined when they are gone (the chunk's results are written). */
  async readChunk(stage: string, chunk: number): Promise<[string, string][] | undefined> {
    const data = await this.redis.get(this.stageKey(stage, chunk));
    if (data === null) return undefined;
    return data
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const { custom_id: customId, input } = JSON.parse(line) as { custom_id: string; input: string };
        return [customId, input];
      });
  }

  /**
   * Writes a chunk's result lines and adds its counts, once: a second call for the same chunk
   * (a retried job) changes nothing. Resolves 'written', 'exists' or 'gone' (no batch).
   */
  async finishChunk(
    id: string,
    stage: string,
    chunk: number,
    lines: readonly ChunkLine[],
    counts: { completed: number; failed: number; expired?: boolean },
  ): Promise<'written' | 'exists' | 'gone'> {
    const body = lines.map((line) => JSON.stringify(line)).join('\n') + '\n';
    const result = Number(
      await this.script('inferqBatchFinishChunk')(
        this.batchKey(id),
        this.outKey(id, chunk),
        this.stageKey(stage, chunk),
        this.inputsKey(id, chunk),
        body,
        counts.completed,
        counts.failed,
        counts.expired ? 1 : 0,
      ),
    );
    return result === 1 ? 'written' : result === 0 ? 'exists' : 'gone';
  }

  /**
   * The results, chunk by chunk in input order, up to the first chunk not yet written: a
   * prefix of the final file while the batch runs. Reads `window` chunks per round trip.
   */
  async *results(id: string, chunks: number, window = 16): AsyncGenerator<string> {
    for (let c = 0; c < chunks; c += window) {
      const pipeline = this.redis.pipeline();
      const end = Math.min(chunks, c + window);
      for (let k = c; k < end; k++) pipeline.get(this.outKey(id, k));
      const replies = (await pipeline.exec()) ?? [];
      for (const [err, value] of replies) {
        if (err) throw err;
        if (typeof value !== 'string') return;
        yield value;
      }
    }
  }

  /**
   * Newest first: up to `limit` batches after the batch `after` (exclusive). Ids whose record has
   * expired are dropped from the index on the way. Resolves undefined when `after` is unknown.
   */
  async list(limit: number, after?: string): Promise<{ records: BatchRecord[]; hasMore: boolean } | undefined> {
    const index = this.indexKey();
    let start = 0;
    if (after !== undefined) {
      const rank = await this.redis.zrevrank(index, after);
      if (rank === null) return undefined;
      start = rank + 1;
    }
    const records: BatchRecord[] = [];
    for (;;) {
      const want = limit - records.length;
      const ids = await this.redis.zrevrange(index, start, start + want - 1);
      if (ids.length === 0) return { records, hasMore: false };
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.batchKey(id));
      const replies = (await pipeline.exec()) ?? [];
      const gone: string[] = [];
      replies.forEach(([err, hash], i) => {
        if (err) throw err;
        const record = parseRecord(hash as Record<string, string>);
        if (record) records.push(record);
        else gone.push(ids[i] ?? '');
      });
      if (gone.length > 0) await this.redis.zrem(index, ...gone);
      start += ids.length - gone.length;
      if (records.length >= limit) {
        const hasMore = (await this.redis.zcard(index)) > start;
        return { records, hasMore };
      }
    }
  }

  /**
   * Closes a batch whose chunks have all ended: writes error lines for any chunk that never
   * wrote its results (its job failed), picks the final status (cancelled, expired, failed when
   * no input could be run, else completed) and keeps every key for `retention` from now.
   * Resolves with the final record; idempotent.
   */
  async finalize(id: string, now = Date.now()): Promise<BatchRecord | undefined> {
    let record = await this.get(id);
    if (!record) return undefined;
    if (FINAL_BATCH_STATUSES.includes(record.status)) return record;
    await this.transition(id, 'finalizing', ['validating', 'in_progress'], now);
    for (let c = 0; c < record.chunks; c += PIPELINE_CHUNK) {
      const pipeline = this.redis.pipeline();
      const end = Math.min(record.chunks, c + PIPELINE_CHUNK);
      for (let k = c; k < end; k++) pipeline.exists(this.outKey(id, k));
      const replies = (await pipeline.exec()) ?? [];
      for (const [k, [, exists]] of replies.entries()) {
        if (exists === 1) continue;
        const chunk = c + k;
        const inputs = await this.readChunk(record.stage, chunk);
        if (!inputs) continue;
        const error = { code: 'INFERQ_ERR_INFERENCE_FAILED', message: 'Inference failed: the chunk holding this input could not be run' };
        await this.finishChunk(id, record.stage, chunk, inputs.map(([customId]) => ({ custom_id: customId, error })), {
          completed: 0,
          failed: inputs.length,
        });
      }
    }
    record = await this.get(id);
    if (!record) return undefined;
    const final: BatchStatus =
      record.status === 'cancelling'
        ? 'cancelled'
        : record.expiredChunks > 0
          ? 'expired'
          : record.completed === 0 && record.failed === record.total
            ? 'failed'
            : 'completed';
    await this.transition(id, final, ['validating', 'in_progress', 'finalizing', 'cancelling'], now);
    await this.keepFor(id, record.chunks, record.stage, now + record.retentionSeconds * 1000);
    return this.get(id);
  }

  /** Sets when every key of a batch expires, in milliseconds since the epoch. */
  async keepFor(id: string, chunks: number, stage: string, until: number): Promise<void> {
    await this.redis.hset(this.batchKey(id), 'keep_until', until);
    await this.redis.pexpireat(this.batchKey(id), until);
    for (let c = 0; c < chunks; c += PIPELINE_CHUNK) {
      const pipeline = this.redis.pipeline();
      for (let k = c; k < Math.min(chunks, c + PIPELINE_CHUNK); k++) {
        pipeline.pexpireat(this.outKey(id, k), until);
        pipeline.pexpireat(this.stageKey(stage, k), until);
        pipeline.pexpireat(this.inputsKey(id, k), until);
      }
      await pipeline.exec();
    }
  }
}

/** The inputs of an upload, staged: what {@link BatchStore.create} turns into a batch. */
export interface StagedBatch {
  stage: string;
  chunks: number;
  chunkSize: number;
  total: number;
}

const NEWLINE = Buffer.from('\n');

/**
 * Stages the inputs of one upload in Redis as they are parsed, one chunk per key, so the API
 * holds at most one chunk in memory; custom_ids are checked for duplicates in Redis as well.
 * A chunk is kept as bytes (off the JS heap) from line to Redis, so a big upload leaves no big
 * strings for the garbage collector. On any failure call {@link discard}: nothing of the
 * upload stays behind.
 */
export class BatchStager {
  readonly stage = randomUUID().replaceAll('-', '');
  private buffer: Buffer[] = [];
  private bufferIds = new Map<string, number>();
  private firstLine = 0;
  private chunks = 0;
  private total = 0;

  constructor(
    private readonly store: BatchStore,
    readonly chunkSize: number,
    private readonly ttlMs: number,
  ) {}

  /** Inputs added so far. */
  get count(): number {
    return this.total;
  }

  /**
   * Adds one input (from line `line`, 1-based); throws a {@link StagingLineError} for a duplicate
   * custom_id. `raw`, when given, is the line's JSON text `{custom_id, input}` as uploaded (checked).
   */
  async add(customId: string, input: string, line: number, raw?: Buffer): Promise<void> {
    const earlier = this.bufferIds.get(customId);
    if (earlier !== undefined) throw new StagingLineError(line, `custom_id ${JSON.stringify(customId)} was already used on line ${earlier}`);
    if (this.buffer.length === 0) this.firstLine = line;
    this.buffer.push(raw ?? Buffer.from(JSON.stringify({ custom_id: customId, input })));
    this.bufferIds.set(customId, line);
    this.total++;
    if (this.buffer.length >= this.chunkSize) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.buffer.length === 0) return;
    const data = Buffer.concat(this.buffer.flatMap((line) => [line, NEWLINE]));
    const ids = [...this.bufferIds.keys()];
    const lines = [...this.bufferIds.values()];
    this.buffer = [];
    this.bufferIds = new Map();
    this.chunks++;
    const duplicate = await this.store.stageChunk(this.stage, this.chunks - 1, ids, data, this.firstLine, this.ttlMs);
    if (duplicate) {
      const [index, earlier] = duplicate;
      throw new StagingLineError(lines[index - 1] ?? 0, `custom_id ${JSON.stringify(ids[index - 1])} was already used on line ${earlier}`);
    }
  }

  /** Stages what is buffered and returns the staging. */
  async finish(): Promise<StagedBatch> {
    await this.flush();
    return { stage: this.stage, chunks: this.chunks, chunkSize: this.chunkSize, total: this.total };
  }

  /** Deletes everything staged. */
  async discard(): Promise<void> {
    this.buffer = [];
    this.bufferIds = new Map();
    await this.store.discardStage(this.stage, this.chunks);
  }
}

const int = (value: string | undefined): number => (value ? Number(value) : 0);

function parseRecord(hash: Record<string, string>): BatchRecord | undefined {
  if (!hash.id || !hash.status || !(BATCH_STATUSES as readonly string[]).includes(hash.status)) return undefined;
  const times: BatchRecord['times'] = {};
  for (const field of TIMESTAMP_FIELDS) if (hash[field]) times[field] = Number(hash[field]);
  return {
    id: hash.id,
    task: hash.task ?? '',
    model: hash.model ?? '',
    parameters: hash.parameters ? (JSON.parse(hash.parameters) as Record<string, unknown>) : {},
    status: hash.status as BatchStatus,
    total: int(hash.total),
    completed: int(hash.completed),
    failed: int(hash.failed),
    chunks: int(hash.chunks),
    chunkSize: int(hash.chunk_size),
    stage: hash.stage ?? '',
    completionWindow: hash.completion_window ?? '',
    createdAt: int(hash.created_at),
    expiresAt: int(hash.expires_at),
    keepUntil: int(hash.keep_until),
    retentionSeconds: int(hash.retention),
    metadata: hash.metadata ? (JSON.parse(hash.metadata) as BatchMetadata) : null,
    webhookUrl: hash.webhook_url || undefined,
    expiredChunks: int(hash.expired_chunks),
    times,
  };
}

const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

/** The public view of a batch, as `GET /v1/batches/:id` returns it. */
export function toBatchView(record: BatchRecord): BatchView {
  return {
    id: record.id,
    object: 'batch',
    task: record.task,
    model: record.model,
    status: record.status,
    completion_window: record.completionWindow,
    request_counts: { total: record.total, completed: record.completed, failed: record.failed },
    results_url: `/v1/batches/${record.id}/results`,
    created_at: new Date(record.createdAt).toISOString(),
    in_progress_at: iso(record.times.in_progress_at),
    finalizing_at: iso(record.times.finalizing_at),
    completed_at: iso(record.times.completed_at),
    failed_at: iso(record.times.failed_at),
    cancelling_at: iso(record.times.cancelling_at),
    cancelled_at: iso(record.times.cancelled_at),
    expired_at: iso(record.times.expired_at),
    expires_at: new Date(record.expiresAt).toISOString(),
    metadata: record.metadata,
  };
}
