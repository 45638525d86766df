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
 * Files of the OpenAI Batch API: one Redis hash per file, `P:oai-file:<id>` (its metadata and
 * its content), expiring `ttlSeconds` after the upload; `DELETE` removes it sooner. Who owns a
 * file is the routes' business (`app.owners`, kind `file`). A file is held whole (its size is
 * capped by the upload limit), as OpenAI holds it.
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

  /** A new file's id. */
  static newId(): string {
    return `file-${randomUUID().replaceAll('-', '')}`;
  }

  async put(id: string, filename: string, purpose: string, content: Buffer): Promise<OpenAIFile> {
    const file: OpenAIFile = {
      id,
      object: 'file',
      bytes: content.length,
      created_at: Math.floor(Date.now() / 1000),
      filename,
      purpose,
    };
    const key = this.key(file.id);
    await this.redis
      .multi()
      .hset(key, { filename, purpose, bytes: String(file.bytes), created_at: String(file.created_at), content })
      .expire(key, this.ttlSeconds)
      .exec();
    return file;
  }

  /** The file, if it exists. */
  async get(id: string): Promise<OpenAIFile | undefined> {
    const [filename, purpose, bytes, createdAt] = await this.redis.hmget(this.key(id), 'filename', 'purpose', 'bytes', 'created_at');
    if (typeof filename !== 'string' || typeof purpose !== 'string') return undefined;
    return { id, object: 'file', bytes: Number(bytes), created_at: Number(createdAt), filename, purpose };
  }

  /** The file's bytes, if it exists. */
  async content(id: string): Promise<Buffer | undefined> {
    return (await this.redis.hgetBuffer(this.key(id), 'content')) ?? undefined;
  }

  /** Deletes the file; whether there was one. */
  async delete(id: string): Promise<boolean> {
    return (await this.redis.del(this.key(id))) === 1;
  }
}
