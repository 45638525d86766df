import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from './helpers.js';

const envs: TestEnv[] = [];
afterEach(async () => {
  for (const env of envs.splice(0)) await env.close();
});
async function envWith(settings: Record<string, string> = {}): Promise<TestEnv> {
  const env = await createTestEnv(settings);
  envs.push(env);
  return env;
}

describe('browser-facing headers', () => {
  it('the docs page carries a Content-Security-Policy and the helmet headers', async () => {
    const env = await envWith();
    const page = await env.app.inject({ url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN');
    const json = await env.app.inject({ url: '/v1/models' });
    expect(json.headers['x-content-type-options']).toBe('nosniff');
  });

  it('CORS is off unless configured: no Access-Control-Allow-Origin for any origin', async () => {
    const env = await envWith();
    const res = await env.app.inject({ url: '/v1/models', headers: { origin: 'https://evil.example' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await env.app.inject({
      method: 'OPTIONS',
      url: '/v1/jobs',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('with CORS_ORIGINS, only those origins are allowed, and a preflight needs no key', async () => {
    const env = await envWith({ CORS_ORIGINS: 'https://app.example', ADMIN_API_KEY: randomBytes(32).toString('hex') });
    const preflight = (origin: string) =>
      env.app.inject({ method: 'OPTIONS', url: '/v1/jobs', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    const allowed = await preflight('https://app.example');
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(String(allowed.headers['access-control-allow-headers'])).toContain('authorization');
    const other = await preflight('https://evil.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    // Without a key the request itself is still refused.
    const noKey = await env.app.inject({ url: '/v1/models', headers: { origin: 'https://app.example' } });
    expect(noKey.statusCode).toBe(401);
  });
});
