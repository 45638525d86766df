import { describe, expect, it } from 'vitest';
import { ERRORS, decodeJobError, encodeJobError } from '../src/index.js';

describe('error codes', () => {
  it('carry a code through a job failure string', () => {
    expect(decodeJobError(encodeJobError('INFERQ_ERR_INFERENCE_FAILED', 'tokenizer: bad input\nline 2'))).toEqual({
      code: 'INFERQ_ERR_INFERENCE_FAILED',
      message: 'tokenizer: bad input\nline 2',
    });
  });

  it('turn a foreign failure into a generic inference failure, keeping its message', () => {
    expect(decodeJobError('Connection is closed.')).toEqual({
      code: 'INFERQ_ERR_INFERENCE_FAILED',
      message: 'Connection is closed.',
    });
    expect(decodeJobError('INFERQ_ERR_MADE_UP: x').code).toBe('INFERQ_ERR_INFERENCE_FAILED');
  });

  it("read BullMQ's stalled-limit failure as a crashed worker", () => {
    expect(decodeJobError('job stalled more than allowable limit').code).toBe('INFERQ_ERR_WORKER_CRASHED');
  });

  it('send every bad input with a 4xx and only server faults with a 5xx', () => {
    for (const [code, { status }] of Object.entries(ERRORS)) {
      const serverFault = ['INFERQ_ERR_INTERNAL', 'INFERQ_ERR_QUEUE_UNAVAILABLE', 'INFERQ_ERR_INFERENCE_FAILED', 'INFERQ_ERR_MODEL_NOT_LOADED', 'INFERQ_ERR_JOB_TIMEOUT', 'INFERQ_ERR_WORKER_CRASHED', 'INFERQ_ERR_WAIT_TIMEOUT'];
      if (serverFault.includes(code)) expect(status, code).toBeGreaterThanOrEqual(500);
      else expect(status, code).toBeLessThan(500);
    }
  });
});
