import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown; parameters?: unknown[] }>>;
  components?: { schemas?: Record<string, unknown> };
}

/** Every `$ref` in the document, e.g. `#/components/schemas/def-0`. */
function refs(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) refs(item, found);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value);
      else refs(value, found);
    }
  }
  return found;
}

describe('OpenAPI', () => {
  it('/docs/json is an OpenAPI 3.1 document of the API', async () => {
    const res = await env.app.inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json() as OpenApiDoc;
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'inferq', version });

    const create = doc.paths['/v1/jobs']?.post;
    expect(create?.requestBody).toBeDefined();
    expect(Object.keys(create?.responses ?? {}).sort()).toEqual(['202', '400', '404', '413', '415', '422', '429', '500', '503']);
    const read = doc.paths['/v1/jobs/{id}']?.get;
    expect(Object.keys(read?.responses ?? {})).toEqual(expect.arrayContaining(['200', '404']));
    expect(doc.paths['/v1/models']?.get).toBeDefined();
    expect(doc.paths['/readyz']?.get?.responses).toHaveProperty('503');

    for (const ref of refs(doc)) {
      const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
      expect(name && doc.components?.schemas?.[name], `dangling ${ref}`).toBeTruthy();
    }
  });

  it('/docs serves the UI', async () => {
    const res = await env.app.inject({ url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
  });
});
