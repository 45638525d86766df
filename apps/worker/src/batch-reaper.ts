import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { ERRORS, FINAL_BATCH_STATUSES, type BatchStatus, type ErrorDetail, type WebhookEvent } from '@inferq/contracts';
import {
  BATCHES_QUEUE,
  BatchStore,
  WEBHOOKS_QUEUE,
  CLUSTERS_QUEUE,
  ClusterStore,
  addBatchFlow,
  isClusterId,
  type FlowParent,
  type ClusterJobData,
  batchJobId,
  bulkQueueNameForModel,
  bulkQueuesKey,
  chunkJobId,
  createRedis,
  toBatchView,
  type BatchRecord,
  type RedisClient,
} from '@inferq/queue';
import type { WebhookOutbox } from './webhook-outbox.js';

/** The queue of the reaper's repeatable job: one scheduler, so one run at a time across all workers. */
export const MAINTENANCE_QUEUE = 'maintenance';
const SCHEDULER_ID = 'batch-reaper';

export interface BatchReaperOptions {
  redisUrl: string;
  prefix: string;
  /** Time between two runs, in milliseconds. @defaultValue 60000 */
  intervalMs?: number;
  /**
   * How long a batch may stay `validating` (the API died between its record and its flow) or
   * `cancelling` with no flow before the reaper takes it over, in milliseconds. @defaultValue 600000
   */
  stuckAfterMs?: number;
  /** How long an undelivered webhook waits (no worker has `WEBHOOK_SECRET`) before it is dropped, in milliseconds. @defaultValue 604800000 (7 days) */
  webhookMaxAgeMs?: number;
}

/** What one run did, for logs and tests. */
export interface ReapReport {
  /** `validating` batches whose flow was added again. */
  resumed: number;
  /** Batches the reaper finalized itself (past their window with no worker, or cancelled before their flow). */
  finalized: number;
  /** Chunks not run because their batch's window had passed (or it was cancelled), taken out of their queue. */
  expiredChunks: number;
  /** Ids dropped from the batch index (record gone). */
  pruned: number;
  /** Chunk and parent jobs removed because their batch record is gone. */
  orphanJobs: number;
  /** Webhook deliveries dropped, undelivered past their age. */
  staleWebhooks: number;
}

const PAGE = 500;
const EXPIRED: ErrorDetail = { code: 'INFERQ_ERR_BATCH_EXPIRED', message: ERRORS.INFERQ_ERR_BATCH_EXPIRED.message };
const CANCELLED: ErrorDetail = { code: 'INFERQ_ERR_BATCH_CANCELLED', message: ERRORS.INFERQ_ERR_BATCH_CANCELLED.message };

/**
 * Expires, finalizes and cleans what no event will: BullMQ runs a batch's finalizer only when
 * its chunks end, and they end only where a worker serves the model. Runs as a BullMQ job
 * scheduler on {@link MAINTENANCE_QUEUE}: every worker process registers the same scheduler and
 * listens, BullMQ gives each run to one of them.
 *
 * A run, over the batch index and the bulk queues batches were queued on:
 * - an id whose record is gone leaves the index;
 * - a `validating` batch older than `stuckAfterMs` gets its flow added again (ids are stable, so
 *   nothing is added twice) and goes `in_progress`;
 * - a batch past `expires_at`, or `cancelling`: each chunk with no results whose job is not
 *   running is taken out of its queue and gets `INFERQ_ERR_BATCH_EXPIRED` (or `_CANCELLED`)
 *   lines; once every chunk has results the batch is finalized (`expired`, `cancelled`) and its
 *   webhook queued, even with no worker for its model (a cancelling batch with no flow waits
 *   `stuckAfterMs` first: the API may still be adding it);
 * - chunk and parent jobs whose batch record is gone (past retention) are removed, in any state
 *   but active; webhook deliveries older than `webhookMaxAgeMs` are dropped.
 */
export class BatchReaper {
  private closing: Promise<void> | undefined;
  private readonly options: Required<BatchReaperOptions>;
  private readonly store: BatchStore;
  private readonly flows: FlowProducer;
  private readonly queues = new Map<string, Queue>();
  private worker: Worker | undefined;
  private scheduler: Queue | undefined;

  constructor(
    options: BatchReaperOptions,
    private readonly outbox: WebhookOutbox,
    private readonly log: Logger,
    private readonly redis: RedisClient = createRedis(options.redisUrl, 'worker'),
  ) {
    this.options = { intervalMs: 60_000, stuckAfterMs: 600_000, webhookMaxAgeMs: 604_800_000, ...options };
    this.store = new BatchStore(this.redis, this.options.prefix);
    this.flows = new FlowProducer({ connection: this.redis, prefix: this.options.prefix });
  }

  /** Registers the schedule (idempotent across workers) and starts taking runs. */
  async start(): Promise<this> {
    const { prefix, intervalMs } = this.options;
    this.scheduler = new Queue(MAINTENANCE_QUEUE, { connection: this.redis, prefix });
    await this.scheduler.upsertJobScheduler(SCHEDULER_ID, { every: intervalMs }, { name: 'reap', opts: { removeOnComplete: 10, removeOnFail: 10 } });
    this.worker = new Worker(MAINTENANCE_QUEUE, async () => this.reapOnce(), {
      connection: createRedis(this.options.redisUrl, 'worker'),
      prefix,
      concurrency: 1,
      autorun: false,
    });
    this.worker.on('error', (err) => this.log.error({ err }, 'reaper queue error'));
    this.worker.on('completed', (_job: Job, report: ReapReport) => {
      if (Object.values(report).some((n) => n > 0)) this.log.info({ report }, 'reaper run');
    });
    void this.worker.run();
    await this.worker.waitUntilReady();
    return this;
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.redis, prefix: this.options.prefix });
      queue.on('error', (err) => this.log.debug({ err, queue: name }, 'reaper queue error'));
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** One run (what the scheduled job does). */
  async reapOnce(now = Date.now()): Promise<ReapReport> {
    const report: ReapReport = { resumed: 0, finalized: 0, expiredChunks: 0, pruned: 0, orphanJobs: 0, staleWebhooks: 0 };
    await this.reapBatches(now, report);
    await this.reapOrphanJobs(report);
    const webhooks = this.queue(WEBHOOKS_QUEUE);
    for (const type of ['wait', 'paused', 'delayed', 'prioritized', 'completed', 'failed'] as const) {
      report.staleWebhooks += (await webhooks.clean(this.options.webhookMaxAgeMs, 1000, type)).length;
    }
    return report;
  }

  private async reapBatches(now: number, report: ReapReport): Promise<void> {
    const index = this.store.indexKey();
    for (let start = 0; ; ) {
      const ids = await this.redis.zrange(index, start, start + PAGE - 1);
      if (ids.length === 0) return;
      // One round trip a page for what decides whether a batch needs anything.
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hmget(this.store.batchKey(id), 'status', 'created_at', 'expires_at');
      const replies = (await pipeline.exec()) ?? [];
      const gone: string[] = [];
      for (const [i, id] of ids.entries()) {
        const [status, createdAt, expiresAt] = (replies[i]?.[1] as (string | null)[] | undefined) ?? [];
        if (!status) {
          gone.push(id);
          continue;
        }
        if (FINAL_BATCH_STATUSES.includes(status as BatchStatus)) continue;
        const stuck = status === 'validating' && now - Number(createdAt) >= this.options.stuckAfterMs;
        if (!stuck && status !== 'cancelling' && now < Number(expiresAt)) continue;
        try {
          const record = await this.store.get(id);
          if (record) await this.reapBatch(record, now, report);
        } catch (err) {
          this.log.error({ err, batch: id }, 'reaper could not handle a batch');
        }
      }
      if (gone.length > 0) await this.redis.zrem(index, ...gone);
      report.pruned += gone.length;
      start += ids.length - gone.length;
    }
  }

  private async reapBatch(record: BatchRecord, now: number, report: ReapReport): Promise<void> {
    const parent = await this.queue(BATCHES_QUEUE).getJob(batchJobId(record.id, record.stage));
    const stuck = now - record.createdAt >= this.options.stuckAfterMs;
    if (record.status === 'validating' && stuck) {
      // The API stopped between the record and the flow (or before `in_progress`). Its staged
      // chunks live as long as the record; one lost from Redis anyway fails the batch rather than
      // let it end with results cut short.
      const lost = await this.store.lostChunks(record);
      if (lost.length > 0) {
        await this.store.transition(record.id, 'failed', ['validating'], now);
        await this.store.discardStage(record.stage, record.chunks);
        this.log.error({ batch: record.id, lost: lost.length }, 'a batch stuck validating lost staged chunks: failed');
        return;
      }
      const parent = await this.clusterParent(record);
      await addBatchFlow(this.flows, this.redis, record, { prefix: this.options.prefix, retentionSeconds: record.retentionSeconds, ...(parent ? { parent } : {}) });
      await this.store.transition(record.id, 'in_progress', ['validating'], now);
      report.resumed++;
      this.log.warn({ batch: record.id }, 'resumed a batch stuck validating');
      return;
    }
    // A cancelled batch's chunks not yet taken would only be skipped: take them out now, so the
    // cancel ends even where no worker serves the model (a batch cancelled while validating has
    // no flow at all: left to the API creating it until it is stuck).
    if (record.status === 'cancelling' && !parent && !stuck) return;
    if (now < record.expiresAt && record.status !== 'cancelling') return;
    const bulk = this.queue(bulkQueueNameForModel(record.model));
    const lines = record.status === 'cancelling' ? CANCELLED : EXPIRED;
    let pending = 0;
    for (let chunk = 0; chunk < record.chunks; chunk++) {
      if ((await this.redis.exists(this.store.outKey(record.id, chunk))) === 1) continue;
      const job = await bulk.getJob(chunkJobId(record.id, record.stage, chunk));
      // A chunk running now writes its own lines; remove() leaves a locked job alone.
      if (job && (await job.isActive())) {
        pending++;
        continue;
      }
      if (job && (await bulk.remove(job.id ?? '')) !== 1) {
        pending++;
        continue;
      }
      const inputs = await this.store.readChunk(record.stage, chunk);
      if (inputs) {
        const expired = lines === EXPIRED;
        await this.store.finishChunk(record.id, record.stage, chunk, inputs.map(([customId]) => ({ custom_id: customId, error: lines })), {
          completed: 0,
          failed: 0,
          expired,
          cancelled: !expired,
        });
        report.expiredChunks++;
      }
    }
    if (pending > 0) return;
    // Every chunk has its lines. Removing the last chunk job moved a waiting parent on to the
    // finalizer; a parent that is gone, or still waiting on nothing, is finalized here.
    const state = parent ? await parent.getState() : 'unknown';
    if (state === 'waiting' || state === 'active' || state === 'prioritized' || state === 'delayed') return;
    const final = await this.store.finalize(record.id, now);
    if (parent && state === 'waiting-children') await parent.remove({ removeChildren: false }).catch(() => undefined);
    if (!final) return;
    report.finalized++;
    this.log.info({ batch: final.id, status: final.status }, 'reaper finalized a batch');
    if (final.webhookUrl) await this.outbox.send(final.id, final.webhookUrl, `batch.${final.status}` as WebhookEvent, toBatchView(final));
  }

  /**
   * The clustering job above a cluster run's embedding batch, so a resumed batch still feeds
   * its run: only when the run named in the batch's metadata exists and names this batch back.
   */
  private async clusterParent(record: BatchRecord): Promise<FlowParent | undefined> {
    const id = record.metadata?.cluster_run;
    if (!id || !isClusterId(id)) return undefined;
    const run = await new ClusterStore(this.redis, this.options.prefix).get(id);
    if (run?.batch !== record.id) return undefined;
    return { queueName: CLUSTERS_QUEUE, name: 'cluster', jobId: id, data: { cluster: id, batch: record.id } satisfies ClusterJobData };
  }

  /** Removes chunk and parent jobs, in any state but active, whose batch record is gone. */
  private async reapOrphanJobs(report: ReapReport): Promise<void> {
    const names = [BATCHES_QUEUE, ...(await this.redis.smembers(bulkQueuesKey(this.options.prefix)))];
    for (const name of names) {
      const queue = this.queue(name);
      for (const type of ['wait', 'prioritized', 'delayed', 'waiting-children', 'completed', 'failed', 'paused'] as const) {
        for (let start = 0; ; ) {
          // Oldest first: orphans are the old jobs, so a page with none ends the walk of this
          // list and a run stays short however many recent jobs a queue holds.
          const jobs = (await queue.getJobs([type], start, start + PAGE - 1, true)).filter((job): job is Job => Boolean(job));
          if (jobs.length === 0) break;
          const pipeline = this.redis.pipeline();
          for (const job of jobs) pipeline.exists(this.store.batchKey(String((job.data as { batch?: string }).batch)));
          const replies = (await pipeline.exec()) ?? [];
          let removed = 0;
          for (const [i, job] of jobs.entries()) {
            if (replies[i]?.[1] !== 0 || !job.id) continue;
            if ((await queue.remove(job.id, { removeChildren: true })) === 1) removed++;
          }
          report.orphanJobs += removed;
          if (removed === 0) break;
          start += jobs.length - removed;
        }
      }
    }
  }

  /** Stops taking runs (the schedule stays for the other workers). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const step of [() => this.worker?.close(), () => this.scheduler?.close(), () => this.flows.close(), ...[...this.queues.values()].map((q) => () => q.close())]) {
        try {
          await step();
        } catch (err) {
          this.log.warn({ err }, 'closing the reaper failed');
        }
      }
      this.redis.disconnect();
    })();
    return this.closing;
  }
}
