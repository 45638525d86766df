import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_INPUT_CHARS, type ErrorBody, type JobAccepted, type JobView } from '@inferq/contracts';
import { createTestEnv, GENERATOR, SENTIMENT, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

function post(payload: unknown, headers: Record<string, string> = {}) {
  return env.app.inject({ method: 'POST', url: '/v1/jobs', payload: payload as object, headers });
}

function expectError(res: { statusCode: number; json(): unknown }, status: number, code: string): ErrorBody {
  const body = res.json() as ErrorBody;
  expect({ status: res.statusCode, code: body.error?.code }).toEqual({ status, code });
  expect(typeof body.error.message).toBe('string');
  return body;
}

describe('POST /v1/jobs', () => {
  it('queues a job: 202, its id, Location, and GET shows it queued', async () => {
    const before = Date.now();
    const res = await post({ task: 'classification', model: SENTIMENT, input: 'The battery lasts all day.' });
    expect(res.statusCode).toBe(202);
    const accepted = res.json() as JobAccepted;
    expect(accepted.status).toBe('queued');
    expect(res.headers.location).toBe(`/v1/jobs/${accepted.id}`);

    const view = await env.app.inject({ url: res.headers.location as string });
    expect(view.statusCode).toBe(200);
    const job = view.json() as JobView;
    expect(job).toMatchObject({
      id: accepted.id,
      task: 'classification',
      model: SENTIMENT,
      status: 'queued',
      started_at: null,
      finished_at: null,
    });
    expect(job.result).toBeUndefined();
    expect(Date.parse(job.created_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(job.created_at)).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it('uses the default model of the task when none is named, and stores the job data', async () => {
    const res = await post({ task: 'classification', input: 'fine', parameters: { top_k: 1 } });
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as JobAccepted;
    const job = await env.app.queues.forModel(SENTIMENT).getJob(id);
    expect(job?.data).toEqual({ task: 'classification', model: SENTIMENT, input: 'fine', parameters: { top_k: 1 } });
    const noParams = await post({ task: 'classification', input: 'fine' });
    const stored = await env.app.queues.forModel(SENTIMENT).getJob((noParams.json() as JobAccepted).id);
    expect(stored?.data.parameters).toEqual({});
  });

  it('with the same Idempotency-Key twice: same id, one job in the queue', async () => {
    const queue = env.app.queues.forModel(SENTIMENT);
    await queue.drain(true);
    const body = { task: 'classification', model: SENTIMENT, input: 'once only' };
    const first = await post(body, { 'idempotency-key': 'ticket-4711' });
    const second = await post(body, { 'idempotency-key': 'ticket-4711' });
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual(first.json());
    expect(second.headers.location).toBe(first.headers.location);
    expect(await queue.getJobCounts('waiting', 'active', 'completed', 'failed')).toMatchObject({
      waiting: 1,
      active: 0,
      completed: 0,
      failed: 0,
    });

    const other = await post(body, { 'idempotency-key': 'ticket-4712' });
    expect((other.json() as JobAccepted).id).not.toBe((first.json() as JobAccepted).id);
    expect((await queue.getJobCounts('waiting')).waiting).toBe(2);
  });

  it('rejects an Idempotency-Key over 255 characters', async () => {
    const res = await post({ task: 'classification', input: 'x' }, { 'idempotency-key': 'k'.repeat(256) });
    const body = expectError(res, 400, 'INFERQ_ERR_VALIDATION');
    expect(body.error.message).toContain('idempotency-key');
  });

  describe('bad input, each with its code and status', () => {
    it('unknown task: 400 INFERQ_ERR_UNKNOWN_TASK', async () => {
      const body = expectError(await post({ task: 'translation', input: 'hola' }), 400, 'INFERQ_ERR_UNKNOWN_TASK');
      expect(body.error.message).toContain('translation');
      expect(body.error.message).toContain('classification');
    });

    it('unknown task is reported before an empty input', async () => {
      expectError(await post({ task: 'translation', input: '' }), 400, 'INFERQ_ERR_UNKNOWN_TASK');
    });

    it('unknown model: 404 INFERQ_ERR_UNKNOWN_MODEL', async () => {
      const body = expectError(
        await post({ task: 'classification', model: 'acme/missing', input: 'x' }),
        404,
        'INFERQ_ERR_UNKNOWN_MODEL',
      );
      expect(body.error.message).toContain('acme/missing');
    });

    it.each(['../../etc/passwd', 'acme/..', '../sentiment', 'acme/sentiment/../../x', '/etc/passwd'])(
      'model id %j: 400 INFERQ_ERR_VALIDATION (never a path read)',
      async (model) => {
        const body = expectError(await post({ task: 'classification', model, input: 'x' }), 400, 'INFERQ_ERR_VALIDATION');
        expect(body.error.message).toContain('body.model');
      },
    );

    it('model that cannot do the task: 400 INFERQ_ERR_TASK_MISMATCH', async () => {
      const body = expectError(
        await post({ task: 'classification', model: GENERATOR, input: 'x' }),
        400,
        'INFERQ_ERR_TASK_MISMATCH',
      );
      expect(body.error.message).toContain(GENERATOR);
    });

    it('empty input: 400 INFERQ_ERR_EMPTY_INPUT', async () => {
      expectError(await post({ task: 'classification', input: '' }), 400, 'INFERQ_ERR_EMPTY_INPUT');
    });

    it('whitespace-only input: 400 INFERQ_ERR_EMPTY_INPUT', async () => {
      expectError(await post({ task: 'classification', input: ' \n\t\u00a0 ' }), 400, 'INFERQ_ERR_EMPTY_INPUT');
    });

    it(`input over ${MAX_INPUT_CHARS} characters: 413 INFERQ_ERR_INPUT_TOO_LARGE`, async () => {
      const body = expectError(
        await post({ task: 'classification', input: 'a'.repeat(MAX_INPUT_CHARS + 1) }),
        413,
        'INFERQ_ERR_INPUT_TOO_LARGE',
      );
      expect(body.error.message).toContain(String(MAX_INPUT_CHARS + 1));
    });

    it(`input of exactly ${MAX_INPUT_CHARS} characters (counted as characters, not UTF-16 units) is accepted`, async () => {
      const res = await post({ task: 'classification', input: '😀'.repeat(MAX_INPUT_CHARS) });
      expect(res.statusCode).toBe(202);
    });

    it('body over the limit: 413 INFERQ_ERR_PAYLOAD_TOO_LARGE', async () => {
      const input = 'a'.repeat(env.config.BODY_LIMIT_BYTES + 1);
      const body = expectError(await post({ task: 'classification', input }), 413, 'INFERQ_ERR_PAYLOAD_TOO_LARGE');
      expect(body.error.message).toContain(String(env.config.BODY_LIMIT_BYTES));
    });

    it('input of the wrong type: 400 INFERQ_ERR_VALIDATION naming the field (no coercion)', async () => {
      const body = expectError(await post({ task: 'classification', input: 5 }), 400, 'INFERQ_ERR_VALIDATION');
      expect(body.error.message).toContain('body.input');
    });

    it('top_k of 0: 400 INFERQ_ERR_VALIDATION naming the field', async () => {
      const body = expectError(
        await post({ task: 'classification', input: 'x', parameters: { top_k: 0 } }),
        400,
        'INFERQ_ERR_VALIDATION',
      );
      expect(body.error.message).toContain('parameters.top_k');
    });

    it('unknown field: 400 INFERQ_ERR_VALIDATION naming it (not silently dropped)', async () => {
      const body = expectError(
        await post({ task: 'classification', input: 'x', priority: 'high' }),
        400,
        'INFERQ_ERR_VALIDATION',
      );
      expect(body.error.message).toContain('"priority"');
    });

    it('missing input: 400 INFERQ_ERR_VALIDATION naming it', async () => {
      const body = expectError(await post({ task: 'classification' }), 400, 'INFERQ_ERR_VALIDATION');
      expect(body.error.message).toContain('"input"');
    });

    it('malformed JSON: 400 INFERQ_ERR_MALFORMED_JSON', async () => {
      const res = await env.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { 'content-type': 'application/json' },
        payload: '{"task": "classification", "input": ',
      });
      expectError(res, 400, 'INFERQ_ERR_MALFORMED_JSON');
    });

    it('empty JSON body: 400 INFERQ_ERR_MALFORMED_JSON', async () => {
      const res = await env.app.inject({
        method: 'POST',
        url: '/v1/jobs',
        headers: { 'content-type': 'application/json' },
        payload: '',
      });
      expectError(res, 400, 'INFERQ_ERR_MALFORMED_JSON');
    });

    it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
      'content type %s: 415 INFERQ_ERR_UNSUPPORTED_MEDIA_TYPE',
      async (type) => {
        const res = await env.app.inject({
          method: 'POST',
          url: '/v1/jobs',
          headers: { 'content-type': type },
          payload: 'task=classification&input=hi',
        });
        const body = expectError(res, 415, 'INFERQ_ERR_UNSUPPORTED_MEDIA_TYPE');
        expect(body.error.message).toContain(type);
      },
    );

    it('nothing bad was queued by any of the above', async () => {
      const queue = env.app.queues.forModel(SENTIMENT);
      const jobs = await queue.getJobs(['waiting']);
      expect(jobs.every((job) => job.data.input.trim() !== '' && job.data.model === SENTIMENT)).toBe(true);
    });
  });
});
