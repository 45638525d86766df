import fp from 'fastify-plugin';
import { Queue, QueueKeys } from 'bullmq';
import {
  BATCHES_QUEUE,
  TICKETS_QUEUE,
  CLUSTERS_QUEUE,
  WEBHOOKS_QUEUE,
  bulkQueueNameForModel,
  queueNameForModel,
  workersInfoKey,
  type WorkerInfo,
} from '@inferq/queue';

/** The reaper's scheduler queue (`apps/worker/src/batch-reaper.ts`); the API never imports the worker. */
export const MAINTENANCE_QUEUE = 'maintenance';

/** A queue's job counts by state, as operators read them. */
export interface QueueDepth {
  /** Waiting to start (BullMQ `wait` and `prioritized`). */
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

export interface QueueSnapshot {
  name: string;
  /** The model of a model's single or bulk queue (`org/name`); empty for the shared queues. */
  model: string;
  depth: QueueDepth;
  /** Age of the job next in line (the oldest waiting one), in seconds; 0 when none waits. */
  oldestWaitingSeconds: number;
}

export interface QueueInventoryOptions {
  /** BullMQ key prefix shared with the workers. */
  prefix: string;
  /** How long the list of queues and their counts are reused, in milliseconds. @defaultValue 5000 */
  cacheTtlMs?: number;
}

export interface QueueInventory {
  /**
   * Every inferq queue, sorted: each model's single and bulk queues (the models folder, the
   * bulk queues batches used, the models live workers serve), `batches`, `tickets`, `webhooks`,
   * `maintenance`, `clusters`. Cached `cacheTtlMs`.
   */
  names(): Promise<string[]>;
  /** A read-only BullMQ queue on the producer connection, created once per name. */
  queue(name: string): Queue;
  /** Counts and oldest-waiting age of every queue, read at most once per `cacheTtlMs` (scrapes share one read). */
  snapshot(): Promise<QueueSnapshot[]>;
}

declare module 'fastify' {
  interface FastifyInstance {
    queueInventory: QueueInventory;
  }
}

/** `model--org--name` and `bulk--org--name` belong to `org/name` (model ids never hold `--`). */
export function modelOfQueue(name: string): string {
  const parts = name.split('--');
  return parts.length === 3 && (parts[0] === 'model' || parts[0] === 'bulk') ? `${parts[1]}/${parts[2]}` : '';
}

interface Cached<T> {
  expires: number;
  value: Promise<T>;
}

/**
 * `app.queueInventory`: which queues inferq has and how full they are, for the dashboard and
 * `/metrics`. Model ids come from the model catalog (the folder), `P:bulk-queues` (queues
 * batches were put on) and the workers' heartbeats, so a queue of a model removed from the
 * folder still shows while work for it remains. Reads are cached so that a scrape every few
 * seconds, or a dashboard open in ten tabs, costs one round of Redis reads per period.
 */
export const queueInventoryPlugin = fp<QueueInventoryOptions>(
  async (app, opts) => {
    const { prefix, cacheTtlMs } = { cacheTtlMs: 5000, ...opts };
    const redis = app.queues.redis;
    const keys = new QueueKeys(prefix);
    const queues = new Map<string, Queue>();
    let names: Cached<string[]> | undefined;
    let snapshot: Cached<QueueSnapshot[]> | undefined;

    function queue(name: string): Queue {
      let q = queues.get(name);
      if (!q) {
        q = new Queue(name, { connection: redis, prefix });
        q.on('error', (err) => app.log.debug({ err, queue: name }, 'queue error'));
        queues.set(name, q);
      }
      return q;
    }

    async function readNames(): Promise<string[]> {
      const modelIds = new Set((await app.models.list()).map((m) => m.id));
      const found = new Set<string>([BATCHES_QUEUE, TICKETS_QUEUE, WEBHOOKS_QUEUE, MAINTENANCE_QUEUE, CLUSTERS_QUEUE]);
      for (const info of Object.values(await redis.hgetall(workersInfoKey(prefix)))) {
        try {
          for (const modelId of (JSON.parse(info) as Partial<WorkerInfo>).models ?? []) modelIds.add(modelId);
        } catch {
          // A heartbeat of another version: its models show once they are in the folder.
        }
      }
      for (const modelId of modelIds) {
        try {
          found.add(queueNameForModel(modelId));
          found.add(bulkQueueNameForModel(modelId));
        } catch {
          // Not a model id we would queue for.
        }
      }
      for (const name of await redis.smembers(`${prefix}:bulk-queues`)) found.add(name);
      return [...found].sort();
    }

    async function readSnapshot(): Promise<QueueSnapshot[]> {
      const now = Date.now();
      return Promise.all(
        (await listNames()).map(async (name) => {
          const q = queue(name);
          const counts = await q.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'failed');
          // New jobs are pushed on the left of `wait`: the one next in line is on the right.
          const next = await redis.lindex(keys.toKey(name, 'wait'), -1);
          const since = next ? await redis.hget(keys.toKey(name, next), 'timestamp') : null;
          const oldestWaitingSeconds = since ? Math.max(0, (now - Number(since)) / 1000) : 0;
          const depth: QueueDepth = {
            waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0),
            active: counts.active ?? 0,
            delayed: counts.delayed ?? 0,
            failed: counts.failed ?? 0,
          };
          return { name, model: modelOfQueue(name), depth, oldestWaitingSeconds };
        }),
      );
    }

    function cached<T>(entry: Cached<T> | undefined, load: () => Promise<T>): Cached<T> {
      if (entry && entry.expires > Date.now()) return entry;
      const fresh = { expires: Date.now() + cacheTtlMs, value: load() };
      // A failed read is not reused: the next call tries again.
      fresh.value.catch(() => {
        fresh.expires = 0;
      });
      return fresh;
    }

    function listNames(): Promise<string[]> {
      names = cached(names, readNames);
      return names.value;
    }

    app.decorate('queueInventory', {
      names: listNames,
      queue,
      snapshot() {
        snapshot = cached(snapshot, readSnapshot);
        return snapshot.value;
      },
    } satisfies QueueInventory);

    app.addHook('onClose', async () => {
      await Promise.allSettled([...queues.values()].map((q) => q.close()));
    });
  },
  { name: 'inferq-queue-inventory', dependencies: ['inferq-queues', 'inferq-model-catalog'] },
);
