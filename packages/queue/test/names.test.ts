import { describe, expect, it } from 'vitest';
import { modelIdFromJobId, newJobId, queueNameForModel } from '../src/index.js';

describe('queue and job names', () => {
  it('gives each model its own queue, without the ":" BullMQ forbids', () => {
    expect(queueNameForModel('Xenova/distilbert-base-uncased-finetuned-sst-2-english')).toBe(
      'model--Xenova--distilbert-base-uncased-finetuned-sst-2-english',
    );
    expect(queueNameForModel('a/b')).not.toBe(queueNameForModel('a/c'));
  });

  it('refuses model ids that are not <org>/<name> or that could leave the models folder', () => {
    for (const bad of ['../etc/passwd', 'a/../../b', 'a/b/c', 'a--b/c', 'noslash', '/abs/path', 'a/..', '.hidden/x']) {
      expect(() => queueNameForModel(bad), bad).toThrow(/Invalid model id/);
    }
  });

  it('finds the model back from a job id', () => {
    const id = newJobId('onnx-community/Qwen2.5-0.5B-Instruct');
    expect(modelIdFromJobId(id)).toBe('onnx-community/Qwen2.5-0.5B-Instruct');
    expect(newJobId('a/b')).not.toBe(newJobId('a/b'));
  });

  it('derives the same job id from the same idempotency key, per model', () => {
    expect(newJobId('a/b', 'key-1')).toBe(newJobId('a/b', 'key-1'));
    expect(newJobId('a/b', 'key-1')).not.toBe(newJobId('a/b', 'key-2'));
    expect(newJobId('a/b', 'key-1')).not.toBe(newJobId('a/c', 'key-1'));
  });

  it('rejects ids that are not ours', () => {
    for (const bad of ['', '123', 'a--b', 'a--b--c--d', 'x--y--NOT_HEX', '..--x--abc']) {
      expect(modelIdFromJobId(bad), bad).toBeUndefined();
    }
  });
});
