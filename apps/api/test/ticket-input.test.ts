import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_INPUT_CHARS, type ErrorBody } from '@inferq/contracts';
import { createTestEnv, writeModel, type TestEnv } from './helpers.js';

const NLI = 'acme/nli';
const BART = 'acme/bart';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ DEFAULT_MODEL_ZERO_SHOT: NLI, DEFAULT_MODEL_SUMMARIZATION: BART });
  await writeModel(env.config.MODELS_DIR, NLI, { architectures: ['BertForSequenceClassification'], id2label: { '0': 'entailment', '1': 'contradiction' } });
  await writeModel(env.config.MODELS_DIR, BART, { architectures: ['BartForConditionalGeneration'] });
});
afterAll(async () => {
  await env?.close();
});

describe('POST /v1/tickets counts characters as /v1/jobs does (issue 14, defect 10)', () => {
  it('a body of 60,000 emoji (120,000 UTF-16 units) is within the 100,000-character limit', async () => {
    const body = '🙂'.repeat(60_000);
    const res = await env.app.inject({ method: 'POST', url: '/v1/tickets', payload: { body } });
    expect(res.statusCode).toBe(202);
    const job = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'summarization', input: body } });
    expect(job.statusCode).toBe(202);
  });

  it('past the limit, both answer 413 with the count in characters', async () => {
    const body = '🙂'.repeat(MAX_INPUT_CHARS + 1);
    const ticket = await env.app.inject({ method: 'POST', url: '/v1/tickets', payload: { body } });
    const job = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'summarization', input: body } });
    for (const res of [ticket, job]) {
      expect(res.statusCode).toBe(413);
      expect((res.json() as ErrorBody).error).toEqual({
        code: 'INFERQ_ERR_INPUT_TOO_LARGE',
        message: `The input is ${MAX_INPUT_CHARS + 1} characters; the limit is ${MAX_INPUT_CHARS}`,
      });
    }
  });
});
