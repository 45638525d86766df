// `inferq keys` against a real API process (built dist) on real Redis, started with an admin key.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '@inferq/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, startApi, type Service } from './helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-cli-keys-${randomBytes(4).toString('hex')}`;
const ADMIN = randomBytes(32).toString('hex');
let dir: string;
let api: { service: Service; url: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inferq-cli-keys-'));
  api = await startApi({ REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: join(dir, 'models'), ADMIN_API_KEY: ADMIN });
});

afterAll(async () => {
  await api?.service.stop();
  const redis = new Redis(REDIS_URL);
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
  await rm(dir, { recursive: true, force: true });
});

const run = (argv: string[], env: Record<string, string> = {}) => cli([...argv, '--api', api.url], { cwd: dir, env });

describe('inferq keys', () => {
  it('create prints a key that works, list shows it without the key, revoke ends it at once', async () => {
    const created = await run(['keys', 'create', 'acme'], { INFERQ_ADMIN_KEY: ADMIN });
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^iq_[A-Za-z0-9_-]{43}$/);
    const id = /(key_[0-9a-f]{16})/.exec(created.stderr)?.[1] ?? '';
    expect(id).not.toBe('');

    const models = await run(['models', 'list'], { INFERQ_API_KEY: key });
    expect(models.code).toBe(0);

    const list = await run(['keys', 'list'], { INFERQ_ADMIN_KEY: ADMIN });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+acme`));
    expect(list.stdout).not.toContain(key);

    const revoked = await run(['keys', 'revoke', id], { INFERQ_ADMIN_KEY: ADMIN });
    expect(revoked.code).toBe(0);
    const after = await run(['models', 'list'], { INFERQ_API_KEY: key });
    expect(after.code).toBe(4);
    expect(after.stderr).toContain('INFERQ_ERR_UNAUTHORIZED');
  });

  it('without a key, or with a tenant key, key management is refused with what to do', async () => {
    const none = await run(['keys', 'list']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('INFERQ_ADMIN_KEY');
    const noKey = await run(['models', 'list']);
    expect(noKey.code).toBe(4);
    expect(noKey.stderr).toContain('INFERQ_API_KEY');
    const wrong = await run(['keys', 'list'], { INFERQ_ADMIN_KEY: 'not-the-admin-key' });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain('INFERQ_ERR_FORBIDDEN');
  });
});
