import { randomUUID } from 'node:crypto';
import type { RedisClient } from './connection.js';
import type { ClusterResult, ClusterSource, ClusterStatus } from '@inferq/contracts';

/**
 * Cluster runs (`POST /v1/clusters`) in Redis, under the BullMQ prefix `P`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P:cluster:<id>` | hash | settings, the embedding batch's id, status, timestamps, error |
 * | `P:cluster:<id>:result` | string | the result JSON (clusters with members inlined up to a limit) |
 * | `P:cluster:<id>:members` | string | `{custom_id, cluster}` JSONL, every input |
 *
 * A run is a BullMQ flow: its clustering job (queue {@link CLUSTERS_QUEUE}, job id = run id)
 * is the parent of an ordinary embedding batch's flow, so it runs once every embedding chunk
 * has ended. Every key expires `retentionSeconds` after the run ends (or is created, until then).
 */
export const CLUSTERS_QUEUE = 'clusters';

/** The clustering job's data. */
export interface ClusterJobData {
  cluster: string;
  batch: string;
}

/** What a cluster run was asked for. */
export interface ClusterSettings {
  numClusters?: number;
  minClusterSize?: number;
  maxClusters?: number;
  titleModel?: string;
}

export interface ClusterRecord {
  id: string;
  batch: string;
  model: string;
  source: ClusterSource;
  settings: ClusterSettings;
  status: ClusterStatus;
  error: { code: string; message: string } | undefined;
  createdAt: number;
  finishedAt: number | undefined;
  retentionSeconds: number;
}

/** Cluster run ids: `clu_<32 hex>`. */
export function newClusterId(): string {
  return 'clu_' + randomUUID().replaceAll('-', '');
}

export function isClusterId(id: string): boolean {
  return /^clu_[0-9a-f]{32}$/.test(id);
}

export class ClusterStore {
  constructor(
    readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  key(id: string): string {
    return `${this.prefix}:cluster:${id}`;
  }

  async create(record: Omit<ClusterRecord, 'status' | 'error' | 'finishedAt'>): Promise<void> {
    const key = this.key(record.id);
    await this.redis
      .multi()
      .hset(key, {
        id: record.id,
        batch: record.batch,
        model: record.model,
        source: record.source,
        settings: JSON.stringify(record.settings),
        status: 'embedding',
        created_at: record.createdAt,
        retention_seconds: record.retentionSeconds,
      })
      // Until it ends: the embedding batch's window (24 h at most) plus the retention.
      .pexpireat(key, record.createdAt + 86_400_000 + record.retentionSeconds * 1000)
      .exec();
  }

  async get(id: string): Promise<ClusterRecord | undefined> {
    const h = await this.redis.hgetall(this.key(id));
    if (!h.id) return undefined;
    return {
      id: h.id,
      batch: h.batch ?? '',
      model: h.model ?? '',
      source: (h.source ?? 'inputs') as ClusterSource,
      settings: JSON.parse(h.settings ?? '{}') as ClusterSettings,
      status: (h.status ?? 'embedding') as ClusterStatus,
      error: h.error ? (JSON.parse(h.error) as { code: string; message: string }) : undefined,
      createdAt: Number(h.created_at),
      finishedAt: h.finished_at ? Number(h.finished_at) : undefined,
      retentionSeconds: Number(h.retention_seconds ?? 86_400),
    };
  }

  /** Marks the run as clustering (its embeddings are done). */
  async clustering(id: string): Promise<void> {
    await this.redis.hset(this.key(id), 'status', 'clustering');
  }

  /** Stores the result and the members file; the run is `completed`; every key kept for the retention from now. */
  async complete(id: string, result: ClusterResult, members: string, now = Date.now()): Promise<void> {
    const record = await this.get(id);
    if (!record) return;
    const until = now + record.retentionSeconds * 1000;
    await this.redis
      .multi()
      .set(`${this.key(id)}:result`, JSON.stringify(result), 'PXAT', until)
      .set(`${this.key(id)}:members`, members, 'PXAT', until)
      .hset(this.key(id), { status: 'completed', finished_at: now })
      .pexpireat(this.key(id), until)
      .exec();
  }

  async fail(id: string, error: { code: string; message: string }, now = Date.now()): Promise<void> {
    const record = await this.get(id);
    if (!record) return;
    await this.redis
      .multi()
      .hset(this.key(id), { status: 'failed', finished_at: now, error: JSON.stringify(error) })
      .pexpireat(this.key(id), now + record.retentionSeconds * 1000)
      .exec();
  }

  async result(id: string): Promise<ClusterResult | undefined> {
    const text = await this.redis.get(`${this.key(id)}:result`);
    return text === null ? undefined : (JSON.parse(text) as ClusterResult);
  }

  async members(id: string): Promise<string | undefined> {
    return (await this.redis.get(`${this.key(id)}:members`)) ?? undefined;
  }
}
