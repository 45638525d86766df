import type { RedisClient } from './connection.js';
import { FINAL_BATCH_STATUSES } from '@inferq/contracts';
import { modelIdFromJobId, queueNameForModel } from './names.js';

/** What a tenant has in flight: inputs not yet run (jobs and batch inputs) and batches not yet ended. */
export interface TenantUsage {
  inputs: number;
  batches: number;
}

const PRUNE_CHUNK = 500;

/**
 * What each tenant has in flight, for its caps, under the BullMQ prefix `P`:
 * `P:quota:<tenant>` is a hash, `j:<job id>` or `b:<batch id>` → inputs not yet run. A route
 * adds what it accepted; nothing removes it when it runs. Instead, when a new request would
 * pass a cap, the hash is pruned first: jobs that are finished (or gone) and batches that
 * ended are dropped, running batches count their remaining inputs. So the work is paid only
 * near the cap, and is bounded by it (each entry holds at least one input). The hash expires
 * a day after its last addition. Concurrent requests can pass a cap together by a little: the
 * caps are there for fairness, not accounting.
 */
export class TenantQuota {
  constructor(
    readonly redis: RedisClient,
    readonly prefix: string,
  ) {}

  key(tenant: string): string {
    return `${this.prefix}:quota:${tenant}`;
  }

  /** Records what a request accepted: `inputs` for a job (`kind` job) or a batch. */
  async add(tenant: string, kind: 'job' | 'batch', id: string, inputs: number, ttlSeconds = 86_400 * 8): Promise<void> {
    await this.redis.multi().hset(this.key(tenant), `${kind === 'job' ? 'j' : 'b'}:${id}`, inputs).expire(this.key(tenant), ttlSeconds).exec();
  }

  /** Usage as recorded (a bound from above: finished work not yet pruned still counts). */
  async recorded(tenant: string): Promise<TenantUsage> {
    return usageOf(await this.redis.hgetall(this.key(tenant)));
  }

  /** Drops finished work from the record and resolves with the usage left. */
  async prune(tenant: string): Promise<TenantUsage> {
    const key = this.key(tenant);
    const entries = Object.entries(await this.redis.hgetall(key));
    const remaining: Record<string, string> = {};
    for (let i = 0; i < entries.length; i += PRUNE_CHUNK) {
      const chunk = entries.slice(i, i + PRUNE_CHUNK);
      const pipeline = this.redis.pipeline();
      for (const [member] of chunk) {
        const id = member.slice(2);
        if (member.startsWith('j:')) {
          const model = modelIdFromJobId(id);
          if (model) pipeline.hmget(`${this.prefix}:${queueNameForModel(model)}:${id}`, 'timestamp', 'finishedOn');
          else pipeline.hmget(`${this.prefix}:none`, 'timestamp', 'finishedOn');
        } else {
          pipeline.hmget(`${this.prefix}:batch:${id}`, 'status', 'total', 'completed', 'failed');
        }
      }
      const replies = (await pipeline.exec()) ?? [];
      const done: string[] = [];
      const update = this.redis.pipeline();
      chunk.forEach(([member, value], k) => {
        const [err, fields] = replies[k] ?? [null, []];
        if (err) throw err;
        const [a, b, c, d] = fields as (string | null)[];
        if (member.startsWith('j:')) {
          // Gone (a is null: no timestamp) or finished: no longer queued.
          if (a === null || b !== null) done.push(member);
          else remaining[member] = value;
        } else if (a === null || FINAL_BATCH_STATUSES.includes(a as (typeof FINAL_BATCH_STATUSES)[number])) {
          done.push(member);
        } else {
          const left = Math.max(0, Number(b) - Number(c ?? 0) - Number(d ?? 0));
          remaining[member] = String(left);
          if (String(left) !== value) update.hset(key, member, left);
        }
      });
      if (done.length > 0) update.hdel(key, ...done);
      if (update.length > 0) await update.exec();
    }
    return usageOf(remaining);
  }
}

function usageOf(entries: Record<string, string>): TenantUsage {
  let inputs = 0;
  let batches = 0;
  for (const [member, value] of Object.entries(entries)) {
    inputs += Number(value) || 0;
    if (member.startsWith('b:')) batches++;
  }
  return { inputs, batches };
}
