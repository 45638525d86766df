import { randomUUID } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.js';
import {
  BATCH_STATUSES,
  ERRORS,
  FINAL_BATCH_STATUSES,
  type BatchMetadata,
  type BatchStatus,
  type BatchView,
  type ChatMessage,
  type ErrorCode,
} from '@inferq/contracts';

/**
 * A batch's records in Redis, all under the BullMQ prefix `P`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P:batch:<id>` | hash | the batch: settings, status, timestamps, counters (`HINCRBY` as chunks end) |
 * | `P:batch:<id>:out:<c>` | string | chunk `c`'s result lines (JSONL, input order), written once when it ends |
 * | `P:batch:<id>:run:<c>` | string | present while an attempt runs chunk `c` (renewed; the finalizer waits for it) |
 * | `P:batch-index` | sorted set | batch ids scored by creation time, for listing |
 * | `P:batch-stage:<sid>:<c>` | string | chunk `c`'s inputs, NDJSON `{custom_id, input}` lines, from upload until the chunk ends |
 * | `P:batch:<id>:in:<c>` | string | the same lines once the chunk has ended (renamed), kept with the results so a cluster run can read a batch's texts |
 * | `P:batch-stage:<sid>:ids` | hash | custom_id → line, while an upload is parsed (duplicate check) |
 * | `P:batch-staging` | hash | stage → `<deadline ms> <chunks>` of each upload being staged (for the reaper) |
 *
 * Every key of a batch expires at its `keep_until` (created: `expires_at` + retention; once
 * final: the end + retention); a staging not yet a batch expires `ttlMs` after it was last
 * touched, and the index with its longest-kept batch. For each chunk exactly one of its staging and its result key
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
  /** Chunks not run because the batch was cancelled. */
  cancelledChunks: number;
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
  /**
   * KEYS: ids hash, chunk key. ARGV: ttl ms, chunk data, n, id1..idn, line1..linen → 0, or
   * {index, earlier line} of a duplicate. HMGET goes in slices: Lua's `unpack` fails past
   * about 8,000 values, and a chunk may hold 10,000 inputs.
   */
  inferqBatchStage: {
    keys: 2,
    lua: `
local n = tonumber(ARGV[3])
for s = 1, n, 1000 do
  local e = math.min(s + 999, n)
  local seen = redis.call('HMGET', KEYS[1], unpack(ARGV, 3 + s, 3 + e))
  for i = 1, #seen do
    if seen[i] then return {s + i - 1, tonumber(seen[i])} end
  end
end
for i = 1, n do redis.call('HSET', KEYS[1], ARGV[3 + i], ARGV[3 + n + i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
return 0`,
  },
  /**
   * KEYS: batch hash, index, staging registry. ARGV: keep-until ms, created ms, id, stage, field,
   * value, ... → 1 created, 0 exists. Creating takes the stage out of the registry in the same
   * step, so the reaper never deletes the inputs of a batch. The index lives as long as its
   * longest-kept batch (an index from before it had a TTL keeps none).
   */
  inferqBatchCreate: {
    keys: 3,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if ttl == -2 or (ttl >= 0 and tonumber(ARGV[2]) + ttl < tonumber(ARGV[1])) then redis.call('PEXPIREAT', KEYS[2], ARGV[1]) end
redis.call('HDEL', KEYS[3], ARGV[4])
return 1`,
  },
  /** KEYS: index. ARGV: until ms, now ms. Extends the index's expiry to `until` when it has one that ends sooner. */
  inferqBatchIndexKeep: {
    keys: 1,
    lua: `
local ttl = redis.call('PTTL', KEYS[1])
if ttl >= 0 and tonumber(ARGV[2]) + ttl < tonumber(ARGV[1]) then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return ttl`,
  },
  /** KEYS: staging registry. ARGV: stage, deadline ms, chunks, first (1|0) → 1, or 0 when the stage was reaped. */
  inferqStageBeat: {
    keys: 1,
    lua: `
if ARGV[4] ~= '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return 1`,
  },
  /** KEYS: staging registry. ARGV: stage, now ms → its chunk count once taken out (past its deadline), else -1. */
  inferqStageReap: {
    keys: 1,
    lua: `
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return -1 end
local deadline, chunks = string.match(entry, '^(%d+) (%d+)$')
if deadline and tonumber(deadline) >= tonumber(ARGV[2]) then return -1 end
redis.call('HDEL', KEYS[1], ARGV[1])
return tonumber(chunks or '0')`,
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
   * KEYS: batch hash, out key, stage key, kept-inputs key. ARGV: lines, completed, failed, expired (0|1),
   * cancelled (0|1). The chunk's inputs are kept (renamed) until the batch's `keep_until`, for cluster runs over a batch.
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
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[1], 'cancelled_chunks', 1) end
return 1`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptFn = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/** Writes results lines for inputs: `{custom_id, result}` or `{custom_id, error}`, one per line. */
export type ChunkLine = { custom_id: string; result: unknown } | { custom_id: string; error: { code: ErrorCode | string; message: string } };

const PIPELINE_CHUNK = 500;

/** Staged chunks gone from Redis before their batch could start: the batch is not created. */
export class StagingLostError extends Error {
  constructor(readonly chunks: number[]) {
    super(`${chunks.length} staged chunk(s) of the upload are gone from Redis (first: chunk ${chunks[0]})`);
  }
}

/**
 * The batch records (see {@link BatchRecord} for the key layout). One instance per Redis
 * connection: the API's producer connection or a worker's.
 */
export class BatchStore {
  /**
   * @param stagingGraceMs - how long an upload may go without staging a chunk before the reaper
   *   takes its staging as abandoned, in milliseconds. @defaultValue 300000
   */
  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
    readonly stagingGraceMs = 300_000,
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

  /** While an attempt runs a chunk, this key says so (see {@link holdChunk}). */
  runKey(id: string, chunk: number): string {
    return `${this.prefix}:batch:${id}:run:${chunk}`;
  }

  /**
   * Marks chunk `chunk` as being run by an attempt for `ttlMs`; the attempt renews it while it
   * runs and deletes it once its results are written. The finalizer waits for a chunk so marked
   * instead of writing its error lines: BullMQ can fail a chunk job (stalled too often) while
   * an attempt still runs, and that attempt's results must win.
   */
  async holdChunk(id: string, chunk: number, ttlMs: number): Promise<void> {
    await this.redis.set(this.runKey(id, chunk), '1', 'PX', ttlMs);
  }

  async releaseChunk(id: string, chunk: number): Promise<void> {
    await this.redis.del(this.runKey(id, chunk));
  }

  /**
   * How long to wait, in milliseconds, for the attempts still running chunks of the batch that
   * have no results yet: the longest remaining hold, 0 when none runs.
   */
  async runningChunksMs(id: string, chunks: number): Promise<number> {
    let longest = 0;
    for (let c = 0; c < chunks; c += PIPELINE_CHUNK) {
      const pipeline = this.redis.pipeline();
      const end = Math.min(chunks, c + PIPELINE_CHUNK);
      for (let k = c; k < end; k++) pipeline.exists(this.outKey(id, k)).pttl(this.runKey(id, k));
      const replies = (await pipeline.exec()) ?? [];
      for (let i = 0; i < replies.length; i += 2) {
        const written = replies[i]?.[1] === 1;
        const ttl = Number(replies[i + 1]?.[1] ?? -2);
        if (!written && ttl > longest) longest = ttl;
      }
    }
    return longest;
  }

  /** The uploads being staged: stage → `<deadline ms> <chunks>`, renewed as each chunk is staged. */
  stagingKey(): string {
    return `${this.prefix}:batch-staging`;
  }

  /**
   * Starts staging the inputs of a new batch, `chunkSize` per chunk. The upload renews its
   * entry in the staging registry at least every `graceMs / 3`; one not renewed for `graceMs`
   * (its API process died) is deleted by {@link reapStaging}.
   */
  stager(chunkSize: number, ttlMs = 3_600_000, graceMs = this.stagingGraceMs): BatchStager {
    return new BatchStager(this, chunkSize, ttlMs, graceMs);
  }

  /** @internal used by {@link BatchStager}: renews a stage's deadline; false when it was reaped meanwhile. */
  async beatStage(stage: string, chunks: number, graceMs: number, first: boolean): Promise<boolean> {
    return Number(await this.script('inferqStageBeat')(this.stagingKey(), stage, Date.now() + graceMs, chunks, first ? 1 : 0)) === 1;
  }

  /**
   * Deletes the stagings whose upload stopped renewing them (an API process killed mid-upload):
   * their chunks and duplicate-check hash. Resolves with the stages deleted. Any API process runs it.
   */
  async reapStaging(now = Date.now()): Promise<string[]> {
    const entries = await this.redis.hgetall(this.stagingKey());
    const reaped: string[] = [];
    for (const [stage, entry] of Object.entries(entries)) {
      if (Number(entry.split(' ')[0]) >= now) continue;
      const chunks = Number(await this.script('inferqStageReap')(this.stagingKey(), stage, now));
      if (chunks < 0) continue;
      await this.discardStage(stage, chunks);
      reaped.push(stage);
    }
    return reaped;
  }

  /** @internal used by {@link BatchStager} */
  async stageChunk(stage: string, chunk: number, ids: string[], data: Buffer, lines: number[], ttlMs: number): Promise<[number, number] | undefined> {
    // custom_ids are hash fields as JSON text: Redis stores UTF-8, where every lone surrogate
    // would become U+FFFD and two different ids collide; JSON escapes them (`\ud800`) instead.
    const fields = ids.map((id) => JSON.stringify(id));
    const result = await this.script('inferqBatchStage')(this.stageIdsKey(stage), this.stageKey(stage, chunk), ttlMs, data, ids.length, ...fields, ...lines);
    return Array.isArray(result) ? [Number(result[0]), Number(result[1])] : undefined;
  }

  /**
   * Sets the expiry of a staging (its chunks and its duplicate-check hash) to `ttlMs` from now,
   * so an upload that goes on for hours keeps what it staged first. Resolves with the indexes
   * of the chunks that are gone.
   */
  async touchStage(stage: string, chunks: number, ttlMs: number): Promise<number[]> {
    await this.redis.pexpire(this.stageIdsKey(stage), ttlMs);
    return this.expireStage(stage, chunks, (pipeline, key) => pipeline.pexpire(key, ttlMs));
  }

  /** Applies `expire` to each chunk key of a staging; resolves with the chunks whose key is gone. */
  private async expireStage(stage: string, chunks: number, expire: (pipeline: ChainableCommander, key: string) => unknown): Promise<number[]> {
    const missing: number[] = [];
    for (let c = 0; c < chunks; c += PIPELINE_CHUNK) {
      const pipeline = this.redis.pipeline();
      const end = Math.min(chunks, c + PIPELINE_CHUNK);
      for (let k = c; k < end; k++) expire(pipeline, this.stageKey(stage, k));
      const replies = (await pipeline.exec()) ?? [];
      replies.forEach(([err, set], i) => {
        if (err) throw err;
        if (set !== 1) missing.push(c + i);
      });
    }
    return missing;
  }

  /** Deletes a staging: its chunks and its duplicate-check hash. */
  async discardStage(stage: string, chunks: number): Promise<void> {
    const keys = [this.stageIdsKey(stage), ...Array.from({ length: chunks }, (_, c) => this.stageKey(stage, c))];
    for (let i = 0; i < keys.length; i += PIPELINE_CHUNK) await this.redis.del(...keys.slice(i, i + PIPELINE_CHUNK));
    await this.redis.hdel(this.stagingKey(), stage);
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
      cancelled_chunks: 0,
    };
    // The staged chunks become the batch's inputs: keep them as long as the batch, and never
    // start a batch with one missing (a staging lost in Redis, e.g. to eviction).
    const missing = await this.expireStage(staged.stage, staged.chunks, (pipeline, key) => pipeline.pexpireat(key, keepUntil));
    if (missing.length > 0) throw new StagingLostError(missing);
    const created = await this.script('inferqBatchCreate')(
      this.batchKey(batch.id),
      this.indexKey(),
      this.stagingKey(),
      keepUntil,
      now,
      batch.id,
      staged.stage,
      ...Object.entries(fields).flat(),
    );
    if (Number(created) !== 1) return false;
    await this.redis.del(this.stageIdsKey(staged.stage));
    return true;
  }

  /** The chunks of a batch with neither inputs nor results in Redis (lost, e.g. to eviction). */
  async lostChunks(record: BatchRecord): Promise<number[]> {
    const lost: number[] = [];
    for (let c = 0; c < record.chunks; c += PIPELINE_CHUNK) {
      const pipeline = this.redis.pipeline();
      const end = Math.min(record.chunks, c + PIPELINE_CHUNK);
      for (let k = c; k < end; k++) pipeline.exists(this.stageKey(record.stage, k), this.outKey(record.id, k));
      const replies = (await pipeline.exec()) ?? [];
      replies.forEach(([err, found], i) => {
        if (err) throw err;
        if (found === 0) lost.push(c + i);
      });
    }
    return lost;
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
  async readChunk(stage: string, chunk: number): Promise<[string, string | ChatMessage[]][] | undefined> {
    const data = await this.redis.get(this.stageKey(stage, chunk));
    if (data === null) return undefined;
    return data
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const { custom_id: customId, input } = JSON.parse(line) as { custom_id: string; input: string | ChatMessage[] };
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
    counts: { completed: number; failed: number; expired?: boolean; cancelled?: boolean },
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
        counts.cancelled ? 1 : 0,
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
   * `index` is the sorted set to list: all batches, or one tenant's (`Ownership.indexKey`).
   */
  async list(limit: number, after?: string, index = this.indexKey()): Promise<{ records: BatchRecord[]; hasMore: boolean } | undefined> {
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
        // Cancelled while this chunk never ran: its inputs were cancelled; otherwise its job failed.
        const cancelled = record.status === 'cancelling';
        const error = cancelled
          ? { code: 'INFERQ_ERR_BATCH_CANCELLED', message: ERRORS.INFERQ_ERR_BATCH_CANCELLED.message }
          : { code: 'INFERQ_ERR_INFERENCE_FAILED', message: 'Inference failed: the chunk holding this input could not be run' };
        await this.finishChunk(id, record.stage, chunk, inputs.map(([customId]) => ({ custom_id: customId, error })), {
          completed: 0,
          failed: cancelled ? 0 : inputs.length,
          cancelled,
        });
      }
    }
    record = await this.get(id);
    if (!record) return undefined;
    // A cancel that came after every chunk had run (before this finalization) cancelled nothing.
    const final: BatchStatus =
      record.status === 'cancelling' && record.cancelledChunks > 0
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
    await this.script('inferqBatchIndexKeep')(this.indexKey(), until, Date.now());
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
  private chunks = 0;
  private total = 0;
  private refresher: NodeJS.Timeout | undefined;

  private lastBeat = 0;

  constructor(
    private readonly store: BatchStore,
    readonly chunkSize: number,
    private readonly ttlMs: number,
    private readonly graceMs = 300_000,
  ) {}

  /**
   * Staged keys expire `ttlMs` after they were last touched, and the staging registry's entry
   * after `graceMs`, so an upload abandoned halfway (the API died) leaves nothing for long;
   * while the upload goes on (however slowly, or paused), both are renewed three times per
   * period, so staged data lives as long as the upload does.
   */
  private keepAlive(): void {
    if (this.refresher) return;
    this.refresher = setInterval(() => {
      void this.store.touchStage(this.stage, this.chunks, this.ttlMs).catch(() => undefined);
      if (this.chunks > 0) void this.beat(this.chunks).catch(() => undefined);
    }, Math.max(1, Math.floor(Math.min(this.ttlMs, this.graceMs) / 3)));
    this.refresher.unref();
  }

  private stopKeepAlive(): void {
    clearInterval(this.refresher);
    this.refresher = undefined;
  }

  /** Renews this upload's entry in the staging registry; throws when the reaper took it (the upload stalled). */
  private async beat(chunks: number): Promise<void> {
    const first = this.lastBeat === 0;
    this.lastBeat = Date.now();
    if (!(await this.store.beatStage(this.stage, chunks, this.graceMs, first))) {
      throw Object.assign(new Error(`Invalid request: the upload stalled for over ${Math.round(this.graceMs / 1000)} seconds and was dropped; send it again`), {
        code: 'INFERQ_ERR_VALIDATION',
        statusCode: 400,
      });
    }
  }

  /** Inputs added so far. */
  get count(): number {
    return this.total;
  }

  /**
   * Adds one input (from line `line`, 1-based); throws a {@link StagingLineError} for a duplicate
   * custom_id. `raw`, when given, is the line's JSON text `{custom_id, input}` as uploaded (checked).
   */
  async add(customId: string, input: string | ChatMessage[], line: number, raw?: Buffer): Promise<void> {
    const earlier = this.bufferIds.get(customId);
    if (earlier !== undefined) throw new StagingLineError(line, `custom_id ${JSON.stringify(customId)} was already used on line ${earlier}`);
    this.buffer.push(raw ?? Buffer.from(JSON.stringify({ custom_id: customId, input })));
    this.bufferIds.set(customId, line);
    this.total++;
    if (this.buffer.length >= this.chunkSize) await this.flush();
    else if (this.chunks > 0 && Date.now() - this.lastBeat > this.graceMs / 3) await this.beat(this.chunks);
  }

  private async flush(): Promise<void> {
    if (this.buffer.length === 0) return;
    const data = Buffer.concat(this.buffer.flatMap((line) => [line, NEWLINE]));
    const ids = [...this.bufferIds.keys()];
    const lines = [...this.bufferIds.values()];
    this.buffer = [];
    this.bufferIds = new Map();
    this.chunks++;
    this.keepAlive();
    // Registered before its first key exists, so a crash from here on leaves nothing unreaped.
    await this.beat(this.chunks);
    const duplicate = await this.store.stageChunk(this.stage, this.chunks - 1, ids, data, lines, this.ttlMs);
    if (duplicate) {
      const [index, earlier] = duplicate;
      throw new StagingLineError(lines[index - 1] ?? 0, `custom_id ${JSON.stringify(ids[index - 1])} was already used on line ${earlier}`);
    }
  }

  /** Stages what is buffered and returns the staging. */
  async finish(): Promise<StagedBatch> {
    await this.flush();
    this.stopKeepAlive();
    return { stage: this.stage, chunks: this.chunks, chunkSize: this.chunkSize, total: this.total };
  }

  /** Deletes everything staged. */
  async discard(): Promise<void> {
    this.stopKeepAlive();
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
    cancelledChunks: int(hash.cancelled_chunks),
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
