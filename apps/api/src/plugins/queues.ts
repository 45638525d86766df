import { setMaxListeners, type EventEmitter } from 'node:events';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger } from 'fastify';
import { Queue, QueueEvents, QueueKeys } from 'bullmq';
import type { JobView } from '@inferq/contracts';
import { createRedis, queueNameForModel, readJobView, type RedisClient, type InferenceJobData, type InferenceJobResult } from '@inferq/queue';
import { httpError } from '../errors.js';
import { watchJobEnd, type JobEndWatch } from '../job-end-watch.js';

export type InferenceQueue = Queue<InferenceJobData, InferenceJobResult>;

export interface QueuesOptions {
  /** Redis holding the queues, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** BullMQ key prefix shared with the workers. */
  prefix: string;
  /** How long start-up waits for the first connection before going on without it, in milliseconds. @defaultValue 5000 */
  connectTimeoutMs?: number;
  /** How long closing one queue or event reader may take before it is abandoned, in milliseconds. @defaultValue 2000 */
  closeTimeoutMs?: number;
}

export interface QueueRegistry {
  /** The shared producer connection (fails fast while Redis is down). */
  readonly redis: RedisClient;
  /** Aborted when the server starts closing: long-polls answer at once. */
  readonly closing: AbortSignal;
  /** The BullMQ queue of a model, created on first use. Throws `INFERQ_ERR_QUEUE_UNAVAILABLE` while Redis is down. */
  forModel(modelId: string): InferenceQueue;
  /** Whether a job exists in a model's queue; one Redis round trip, no queue object created. */
  hasJob(modelId: string, jobId: string): Promise<boolean>;
  /**
   * A job's public view, read from the fields it needs (never the job's input); undefined
   * when there is no such job. State first, then the hash: a job only moves forward, so the
   * hash read second holds at least what the state says (a result once it says succeeded).
   */
  readView(modelId: string, jobId: string): Promise<JobView | undefined>;
  /** The event reader of a model's queue, created on first use (its own blocking connection). */
  events(modelId: string): Promise<QueueEvents>;
  /**
   * The event reader of any queue by name (`tickets`), created on first use: one per queue
   * and process, reading from the last event already in the stream, shared by every waiter.
   */
  eventsForQueue(queueName: string): Promise<QueueEvents>;
  /**
   * Starts watching for the end of a job. Resolves once subscribed: read the job's state
   * after this resolves, then await `outcome` if it is not final yet.
   */
  watchJobEnd(modelId: string, jobId: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<JobEndWatch>;
  /** Whether Redis answers `PING` within `timeoutMs` milliseconds. */
  ping(timeoutMs: number): Promise<boolean>;
}

declare module 'fastify' {
  interface FastifyInstance {
    queues: QueueRegistry;
  }
}

/**
 * Logs connection errors without flooding: the first one, then at most one per `everyMs`
 * (a reconnect loop errors every few seconds); and the recovery where the emitter reports it.
 */
function logConnectionErrors(emitter: EventEmitter, log: FastifyBaseLogger, what: string, everyMs = 30_000): void {
  let lastLogged = 0;
  let suppressed = 0;
  emitter.on('error', (err: unknown) => {
    const now = Date.now();
    if (now - lastLogged < everyMs) {
      suppressed++;
      return;
    }
    log.warn({ err, what, suppressed }, 'redis connection error');
    lastLogged = now;
    suppressed = 0;
  });
  emitter.on('ready', () => {
    if (lastLogged === 0) return;
    log.info({ what }, 'redis connection restored');
    lastLogged = 0;
    suppressed = 0;
  });
}

function waitForFirstConnect(redis: RedisClient, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (redis.status === 'ready') return resolve();
    const done = (): void => {
      clearTimeout(timer);
      redis.off('ready', done);
      redis.off('error', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    redis.once('ready', done);
    redis.once('error', done);
  });
}

async function withTimeout(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

const DEFAULTS = { connectTimeoutMs: 5000, closeTimeoutMs: 2000 };

/**
 * `app.queues`: one producer connection shared by a cache of BullMQ queues (one per model),
 * and one `QueueEvents` per queue for long-polls, created lazily. All closed in `onClose`.
 */
export const queuesPlugin = fp<QueuesOptions>(
  async (app, opts) => {
    const { redisUrl, prefix, connectTimeoutMs, closeTimeoutMs } = { ...DEFAULTS, ...opts };
    const log = app.log.child({ plugin: 'queues' });
    const redis = createRedis(redisUrl, 'producer');
    logConnectionErrors(redis, log, 'producer');
    // Template for the event readers' blocking connections: QueueEvents duplicates it, so it never connects itself.
    const eventsConnection = createRedis(redisUrl, 'worker', { lazyConnect: true });
    const keys = new QueueKeys(prefix);
    const queues = new Map<string, InferenceQueue>();
    const events = new Map<string, Promise<QueueEvents>>();
    const closing = new AbortController();
    // Every long-poll and event stream listens for the close: one listener per waiting request.
    setMaxListeners(0, closing.signal);

    function forModel(modelId: string): InferenceQueue {
      if (redis.status !== 'ready') throw httpError('INFERQ_ERR_QUEUE_UNAVAILABLE');
      const name = queueNameForModel(modelId);
      const cached = queues.get(name);
      if (cached) return cached;
      const queue: InferenceQueue = new Queue(name, { connection: redis, prefix });
      // Its connection is the producer's, whose errors are logged already.
      queue.on('error', (err) => log.debug({ err, queue: name }, 'queue error'));
      queues.set(name, queue);
      // A queue whose first connection failed stays broken in BullMQ: forget it so the next call makes a new one.
      queue.waitUntilReady().catch(() => {
        if (queues.get(name) !== queue) return;
        queues.delete(name);
        queue.close().catch(() => {});
      });
      return queue;
    }

    async function createEvents(name: string): Promise<QueueEvents> {
      // Read from the last event now in the stream, not from "$" when the reader first
      // blocks: an end that happens between the caller's state read and that moment is not lost.
      const last = await redis.xrevrange(keys.toKey(name, 'events'), '+', '-', 'COUNT', 1);
      const lastEventId = last[0]?.[0] ?? '0-0';
      const reader = new QueueEvents(name, { connection: eventsConnection, prefix, lastEventId });
      reader.setMaxListeners(0); // one pair of listeners per waiting request
      logConnectionErrors(reader, log, `events ${name}`);
      return reader;
    }

    function eventsFor(modelId: string): Promise<QueueEvents> {
      return eventsForQueue(queueNameForModel(modelId));
    }

    function eventsForQueue(name: string): Promise<QueueEvents> {
      if (closing.signal.aborted) return Promise.reject(httpError('INFERQ_ERR_QUEUE_UNAVAILABLE'));
      let reader = events.get(name);
      if (!reader) {
        reader = createEvents(name);
        events.set(name, reader);
        reader.catch(() => events.delete(name));
      }
      return reader;
    }

    const registry: QueueRegistry = {
      redis,
      closing: closing.signal,
      forModel,
      async hasJob(modelId, jobId) {
        return (await redis.exists(keys.toKey(queueNameForModel(modelId), jobId))) === 1;
      },
      async readView(modelId, jobId) {
        const name = queueNameForModel(modelId);
        const state = await forModel(modelId).getJobState(jobId);
        if (state === 'unknown') return undefined;
        return readJobView(redis, keys.toKey(name, jobId), jobId, state);
      },
      events: eventsFor,
      eventsForQueue,
      async watchJobEnd(modelId, jobId, { timeoutMs, signal }) {
        const reader = await eventsFor(modelId);
        return watchJobEnd(reader, jobId, timeoutMs, signal ? [closing.signal, signal] : [closing.signal]);
      },
      async ping(timeoutMs) {
        try {
          return await withTimeout(redis.ping(), timeoutMs);
        } catch {
          return false;
        }
      },
    };
    app.decorate('queues', registry);

    await waitForFirstConnect(redis, connectTimeoutMs);
    if (redis.status !== 'ready') log.warn({ redisUrl: redactUrl(redisUrl) }, 'redis is not reachable yet; /readyz answers 503 until it is');

    // Long-polls answer as soon as closing starts, so in-flight requests don't hold the shutdown.
    app.addHook('preClose', async () => {
      closing.abort();
    });
    app.addHook('onClose', async () => {
      for (const [name, pending] of events) {
        try {
          const reader = await pending;
          if (!(await withTimeout(reader.close(), closeTimeoutMs))) log.warn({ queue: name }, 'event reader did not close in time');
        } catch (err) {
          log.warn({ err, queue: name }, 'closing an event reader failed');
        }
      }
      for (const [name, queue] of queues) {
        try {
          if (!(await withTimeout(queue.close(), closeTimeoutMs))) log.warn({ queue: name }, 'queue did not close in time');
        } catch (err) {
          log.warn({ err, queue: name }, 'closing a queue failed');
        }
      }
      try {
        if (redis.status === 'ready') await redis.quit();
        else redis.disconnect();
      } catch (err) {
        log.warn({ err }, 'closing the redis connection failed');
        redis.disconnect();
      }
      try {
        eventsConnection.disconnect();
      } catch (err) {
        log.warn({ err }, 'closing the event connection template failed');
      }
    });
  },
  { name: 'inferq-queues' },
);

/** The URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}
