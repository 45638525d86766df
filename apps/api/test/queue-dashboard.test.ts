import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody } from '@inferq/contracts';
import { createTestEnv, SENTIMENT, type TestEnv } from './helpers.js';

const ADMIN_KEY = 'k'.repeat(20) + '-admin-test-key-0123456789';

describe('/admin/queues without ADMIN_API_KEY', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({ QUEUE_STATS_CACHE_MS: '0' });
  });
  afterAll(async () => {
    await env?.close();
  });

  it('serves the dashboard page and lists every inferq queue in its API', async () => {
    const page = await env.app.inject({ url: '/admin/queues' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: 'hello' } });
    const api = await env.app.inject({ url: '/admin/queues/api/queues' });
    expect(api.statusCode).toBe(200);
    const { queues } = api.json() as { queues: { name: string; counts: Record<string, number>; readOnlyMode: boolean }[] };
    const byName = new Map(queues.map((q) => [q.name, q]));
    for (const name of ['model--acme--sentiment', 'bulk--acme--sentiment', 'model--acme--gpt', 'batches', 'tickets', 'webhooks', 'maintenance', 'clusters']) {
      expect(byName.has(name), name).toBe(true);
    }
    expect(byName.get('model--acme--sentiment')?.counts.waiting).toBe(1);
    expect(byName.get('batches')?.readOnlyMode).toBe(true);
  });

  it('shows the clusters queue with its counts', async () => {
    const clusters = new Queue('clusters', { connection: env.app.queues.redis, prefix: env.config.QUEUE_PREFIX });
    try {
      await clusters.add('run', {});
      const api = await env.app.inject({ url: '/admin/queues/api/queues' });
      const { queues } = api.json() as { queues: { name: string; counts: Record<string, number> }[] };
      expect(queues.find((q) => q.name === 'clusters')?.counts.waiting).toBe(1);
    } finally {
      await clusters.close();
    }
  });
});

describe('/admin/queues with ADMIN_API_KEY', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv({ ADMIN_API_KEY: ADMIN_KEY });
  });
  afterAll(async () => {
    await env?.close();
  });

  it('refuses the page, its assets and its API without the key: 401 with a challenge', async () => {
    for (const url of ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/favicon-32x32.png']) {
      const res = await env.app.inject({ url });
      expect(res.statusCode, url).toBe(401);
      expect((res.json() as ErrorBody).error.code).toBe('INFERQ_ERR_UNAUTHORIZED');
      expect(String(res.headers['www-authenticate'])).toMatch(/Basic realm=/);
    }
  });

  it('refuses a wrong key', async () => {
    const res = await env.app.inject({ url: '/admin/queues/api/queues', headers: { authorization: `Bearer ${ADMIN_KEY}x` } });
    expect(res.statusCode).toBe(401);
    expect((res.json() as ErrorBody).error.message).toMatch(/not the admin key/);
  });

  it('serves it with the key as a Bearer token or as a Basic password', async () => {
    const bearer = await env.app.inject({ url: '/admin/queues/api/queues', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(bearer.statusCode).toBe(200);
    const basic = Buffer.from(`admin:${ADMIN_KEY}`).toString('base64');
    const page = await env.app.inject({ url: '/admin/queues', headers: { authorization: `Basic ${basic}` } });
    expect(page.statusCode).toBe(200);
  });

  it('guards only the dashboard: the API and /metrics answer as before', async () => {
    expect((await env.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await env.app.inject({ url: '/metrics' })).statusCode).toBe(200);
  });

  it('refuses an admin key shorter than 32 characters at start', async () => {
    await expect(createTestEnv({ ADMIN_API_KEY: 'short' })).rejects.toThrow(/ADMIN_API_KEY/);
  });
});
