import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggerOptions } from 'pino';
import { buildApp, type ApiApp } from '../src/app.js';
import { loadConfig, type ApiConfig } from '../src/config.js';
import { loggerOptions, serializeError } from '../src/logger.js';
import { deleteKeys, makeModelsDir, REDIS_URL, SENTIMENT } from './helpers.js';

/**
 * Issue 15 item 12: an upload's settings travel in the query string (a webhook URL with its
 * token) and inputs travel in bodies; neither may reach a log line, at the most verbose level.
 */
const TOKEN = `tok-${randomBytes(8).toString('hex')}`;
const INPUT = `private-words-${randomBytes(8).toString('hex')}`;

let app: ApiApp;
let config: ApiConfig;
let modelsDir: string;
const lines: string[] = [];

beforeAll(async () => {
  modelsDir = await makeModelsDir();
  config = loadConfig({
    REDIS_URL,
    QUEUE_PREFIX: `test-logs-${randomBytes(6).toString('hex')}`,
    MODELS_DIR: modelsDir,
    DEFAULT_MODEL_CLASSIFICATION: SENTIMENT,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    LOG_LEVEL: 'trace',
  });
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  // The options the server uses, writing to this test instead of stdout.
  app = await buildApp(config, { logger: { ...loggerOptions(config), transport: undefined, stream } as LoggerOptions });
});
afterAll(async () => {
  await app?.close();
  await deleteKeys(REDIS_URL, config.QUEUE_PREFIX);
  await rm(modelsDir, { recursive: true, force: true });
});

describe('logs carry no secret and no input', () => {
  it('query strings, webhook tokens and inputs never reach a log line; paths do', async () => {
    const hook = `http://127.0.0.1:9/hook?token=${TOKEN}`;
    const job = await app.inject({
      method: 'POST',
      url: `/v1/jobs?token=${TOKEN}`,
      payload: { task: 'classification', model: SENTIMENT, input: `${INPUT} is great`, webhook_url: hook },
    });
    expect(job.statusCode).toBe(202); // a query string /v1/jobs does not read is ignored
    const accepted = await app.inject({
      method: 'POST',
      url: '/v1/jobs',
      payload: { task: 'classification', model: SENTIMENT, input: `${INPUT} is great`, webhook_url: hook },
    });
    expect(accepted.statusCode).toBe(202);
    const upload = await app.inject({
      method: 'POST',
      url: `/v1/batches?model=${encodeURIComponent(SENTIMENT)}&task=classification&webhook_url=${encodeURIComponent(hook)}`,
      headers: { 'content-type': 'application/x-ndjson' },
      payload: `{"custom_id":"a","input":"${INPUT} one"}\n{"custom_id":"b","input":"${INPUT} two"}\n`,
    });
    expect(upload.statusCode).toBeLessThan(300);
    const badUpload = await app.inject({
      method: 'POST',
      url: `/v1/batches?model=${encodeURIComponent(SENTIMENT)}&task=classification&webhook_url=${encodeURIComponent(hook)}`,
      headers: { 'content-type': 'application/x-ndjson' },
      payload: `{"custom_id":"a","input":"${INPUT} one"}\nnot json ${INPUT}\n`,
    });
    expect(badUpload.statusCode).toBe(400);
    const tooLong = await app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', input: `${INPUT} `.repeat(5000) } });
    expect(tooLong.statusCode).toBe(413);
    const unknown = await app.inject({ method: 'GET', url: `/v1/nowhere?token=${TOKEN}` });
    expect(unknown.statusCode).toBe(404);
    const read = await app.inject({ url: `/v1/jobs/${(accepted.json() as { id: string }).id}?wait=0&token=${TOKEN}` });
    expect(read.statusCode).toBe(400);

    const joined = lines.join('\n');
    // The logs are there (so this test can see a leak)...
    expect(lines.some((l) => l.includes('"url":"/v1/batches?[redacted]"'))).toBe(true);
    expect(lines.some((l) => l.includes('"url":"/v1/jobs"'))).toBe(true);
    // ...and hold neither the token nor the input.
    expect(joined).not.toContain(TOKEN);
    expect(joined).not.toContain(INPUT);
  });

  it("an ioredis error's failed command is logged by name, without its arguments", () => {
    const err = Object.assign(new Error('ERR something'), { command: { name: 'evalsha', args: ['sha', '1', `{"input":"${INPUT}"}`] } });
    const logged = JSON.stringify(serializeError(err));
    expect(logged).toContain('evalsha');
    expect(logged).not.toContain(INPUT);
  });
});
