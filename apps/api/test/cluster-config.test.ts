import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('API config on a Redis Cluster', () => {
  it('refuses to start with an untagged QUEUE_PREFIX, saying what to use; starts with a tagged one', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis-cluster://10.0.0.1:7000,10.0.0.2:7000', QUEUE_PREFIX: 'prod' })).toThrow(/QUEUE_PREFIX "prod" has no hash tag.*\{prod\}/);
    expect(loadConfig({ REDIS_URL: 'rediss-cluster://u:p@10.0.0.1:7000', QUEUE_PREFIX: '{prod}' }).REDIS_URL).toMatch(/^rediss-cluster:/);
  });
});
