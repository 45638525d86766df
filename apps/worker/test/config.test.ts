import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../src/config.js';

describe('worker config', () => {
  it('works with no configuration at all: the tiny model of every task on cpu, local Redis', () => {
    const config = loadWorkerConfig({});
    expect(config).toMatchObject({
      REDIS_URL: 'redis://127.0.0.1:6379',
      models: ['inferq/tiny-bert-classifier', 'inferq/tiny-nli', 'inferq/tiny-bart', 'inferq/tiny-llama', 'inferq/tiny-embeddings'],
      DEVICE: 'cpu',
      MAX_BATCH_SIZE: 32,
    });
    expect(config.concurrency).toBe(64);
  });

  it('parses a model list and numbers from strings', () => {
    const config = loadWorkerConfig({ WORKER_MODELS: ' a/b , c/d ', MAX_BATCH_SIZE: '8', WORKER_CONCURRENCY: '3', DEVICE: 'webgpu' });
    expect(config.models).toEqual(['a/b', 'c/d']);
    expect(config.MAX_BATCH_SIZE).toBe(8);
    expect(config.concurrency).toBe(3);
    expect(config.DEVICE).toBe('webgpu');
  });

  it('fails at start with the variable named when a value is wrong', () => {
    expect(() => loadWorkerConfig({ DEVICE: 'tpu' })).toThrow(/DEVICE/);
    expect(() => loadWorkerConfig({ MAX_BATCH_SIZE: '0' })).toThrow(/MAX_BATCH_SIZE/);
    expect(() => loadWorkerConfig({ WORKER_MODELS: ' , ' })).toThrow(/WORKER_MODELS/);
  });
});
