import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../src/config.js';

describe('worker config on a Redis Cluster', () => {
  it('refuses to start with an untagged QUEUE_PREFIX, saying what to use; starts with a tagged one', () => {
    expect(() => loadWorkerConfig({ REDIS_URL: 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000' })).toThrow(/QUEUE_PREFIX "inferq" has no hash tag.*\{inferq\}/);
    expect(loadWorkerConfig({ REDIS_URL: 'redis-cluster://10.0.0.1:7000', QUEUE_PREFIX: '{inferq}' }).QUEUE_PREFIX).toBe('{inferq}');
  });
});
