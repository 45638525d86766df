import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@inferq/queue';

/** A file uploaded to `/openai/v1/files`, as OpenAI describes one. */
export interface OpenAIFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
}

/**
 * Files of the OpenAI Batch API: one Redis hash per file, `P:oai-file:<id>` (its metadata, its
 * tenant and its content), expiring `ttlSeconds` after the upload; `DELETE` removes it sooner.
 * A file is held whole (its size is capped by the upload limit), as OpenAI holds it.
 */
export class OpenAIFileStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    /** How long a file is kept, in seconds. */
    private readonly ttlSeconds: number,
  ) {}

  private key(id: string): string {
    return `${this.prefix}:oai-file:${id}`;
  }

  async put(tenant: string, filename: string, purpose: string, content: Buffer): Promise<OpenAIFile> {
    const file: OpenAIFile = {
      id: `file-${randomUUID().replaceAll('-', '')}`,
      object: 'file',
      bytes: content.length,
      created_at: Math.floor(Date.now() / 1000),
      filename,
      purpose,
    };
    const key = this.key(file.id);
    await this.redis
      .multi()
      .hset(key, { tenant, filename, purpose, bytes: String(file.bytes), created_at: String(file.created_at), content })
      .expire(key, this.ttlSeconds)
      .exec();
    return file;
  }

  /** The file, if it exists and `tenant` owns it. */
  async get(id: string, tenant: string): Promise<OpenAIFile | undefined> {
    const [owner, filename, purpose, bytes, createdAt] = await this.redis.hmget(this.key(id), 'tenant', 'filename', 'purpose', 'bytes', 'created_at');
    if (owner !== tenant || typeof filename !== 'string' || typeof purpose !== 'string') return undefined;
    return { id, object: 'file', bytes: Number(bytes), created_at: Number(createdAt), filename, purpose };
  }

  /** The file's bytes, if it exists and `tenant` owns it. */
  async content(id: string, tenant: string): Promise<Buffer | undefined> {
    const key = this.key(id);
    const [owner, content] = await Promise.all([this.redis.hget(key, 'tenant'), this.redis.hgetBuffer(key, 'content')]);
    return owner === tenant && content !== null ? content : undefined;
  }

  /** Deletes the file if `tenant` owns it; whether it did. */
  async delete(id: string, tenant: string): Promise<boolean> {
    if ((await this.redis.hget(this.key(id), 'tenant')) !== tenant) return false;
    return (await this.redis.del(this.key(id))) === 1;
  }
}
