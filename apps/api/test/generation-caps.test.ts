/** Issue 15 item 2: beam search is capped in tokens (num_beams x max_new_tokens) at the door. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody } from '@inferq/contracts';
import { createTestEnv, GENERATOR, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ MAX_BEAM_TOKENS: '1024' });
});
afterAll(async () => {
  await env?.close();
});

const job = (parameters: Record<string, unknown>) =>
  env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'generation', model: GENERATOR, input: 'Once upon a time', parameters } });

describe('num_beams x max_new_tokens cap (MAX_BEAM_TOKENS)', () => {
  it('15.2 refuses 16 beams x 128 new tokens over a cap of 1024 with 400 INFERQ_ERR_BEAMS_TOO_COSTLY, naming both numbers', async () => {
    const res = await job({ num_beams: 16, max_new_tokens: 128 });
    expect(res.statusCode).toBe(400);
    const body = res.json() as ErrorBody;
    expect(body.error.code).toBe('INFERQ_ERR_BEAMS_TOO_COSTLY');
    expect(body.error.message).toContain('2048');
    expect(body.error.message).toContain('1024');
  });

  it('15.2 accepts a request at the cap, and a request that leaves one of the two to the model', async () => {
    expect((await job({ num_beams: 8, max_new_tokens: 128 })).statusCode).toBe(202);
    expect((await job({ num_beams: 16 })).statusCode).toBe(202);
  });

  it('15.2 refuses a batch whose settings pass the cap before reading its inputs', async () => {
    const res = await env.app.inject({
      method: 'POST',
      url: '/v1/batches',
      payload: { task: 'generation', model: GENERATOR, parameters: { num_beams: 4, max_new_tokens: 512 }, inputs: [{ custom_id: 'a', input: 'Once' }] },
    });
    expect(res.statusCode).toBe(400);
    expect((res.json() as ErrorBody).error.code).toBe('INFERQ_ERR_BEAMS_TOO_COSTLY');
  });
});
