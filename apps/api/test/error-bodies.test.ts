import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody } from '@inferq/contracts';
import { createTestEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
  // Routes that fail the way a bug would; registered before the app is ready.
  env.app.get('/test/boom', async () => {
    const secret = new Error('password=hunter2 at /srv/inferq/secret.ts:42');
    throw secret;
  });
  env.app.get('/test/boom-string', async () => {
    throw 'password=hunter2'; // not an Error at all
  });
});
afterAll(async () => {
  await env?.close();
});

describe('error bodies', () => {
  it('unknown route: 404 INFERQ_ERR_NOT_FOUND', async () => {
    const res = await env.app.inject({ method: 'DELETE', url: '/v1/nothing?x=1' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: 'INFERQ_ERR_NOT_FOUND', message: 'Route DELETE /v1/nothing not found' },
    } satisfies ErrorBody);
  });

  it('a malformed URL: 400 with the same body shape', async () => {
    const res = await env.app.inject({ url: '/v1/jobs/%E0%A4%A' });
    expect(res.statusCode).toBe(400);
    expect(Object.keys(res.json() as object)).toEqual(['error']);
    expect((res.json() as ErrorBody).error.code).toBe('INFERQ_ERR_VALIDATION');
  });

  it.each(['/test/boom', '/test/boom-string'])('an unexpected error (%s): 500 with a generic message, no internals', async (url) => {
    const res = await env.app.inject({ url });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INFERQ_ERR_INTERNAL', message: 'Internal error' } } satisfies ErrorBody);
    expect(res.body).not.toMatch(/hunter2|secret|stack|\.ts:/);
  });

  it('error responses are JSON', async () => {
    const res = await env.app.inject({ url: '/nope' });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });
});
