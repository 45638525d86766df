import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchView } from '@inferq/contracts';
import { createTestEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv();
});
afterAll(async () => {
  await env?.close();
});

const keys = (pattern: string) => env.app.queues.redis.keys(`${env.config.QUEUE_PREFIX}:${pattern}`);

describe('the staging reaper', () => {
  it('deletes the staging of an upload that stopped (its process died), and never a batch\'s inputs', async () => {
    const { store } = env.app.batches;
    // An upload that staged two chunks, then its process died: no finish, no discard.
    const abandoned = store.stager(2, 3_600_000, 50);
    for (let i = 0; i < 5; i++) await abandoned.add(`c${i}`, `text ${i}`, i + 1);
    expect(await keys(`batch-stage:${abandoned.stage}:*`)).toHaveLength(3); // 2 chunks + ids
    // A batch made meanwhile, through the API.
    const res = await env.app.inject({
      method: 'POST',
      url: '/v1/batches',
      payload: { task: 'classification', inputs: [{ custom_id: 'a', input: 'kept' }] },
    });
    const batch = await store.get((res.json() as BatchView).id);

    // Nothing is reaped before its deadline; after it, only the abandoned upload.
    expect(await store.reapStaging(Date.now() - 60_000)).toEqual([]);
    expect(await store.reapStaging(Date.now() + 1000)).toEqual([abandoned.stage]);
    expect(await keys(`batch-stage:${abandoned.stage}:*`)).toEqual([]);
    expect(await store.readChunk(batch?.stage ?? '', 0)).toEqual([['a', 'kept']]);
    expect(await env.app.queues.redis.hlen(store.stagingKey())).toBe(0);
  });

  it('an upload whose staging was reaped fails with a 400, not with missing chunks', async () => {
    const { store } = env.app.batches;
    const stalled = store.stager(1, 3_600_000, 10);
    await stalled.add('a', 'one', 1);
    await store.reapStaging(Date.now() + 1000);
    await expect(stalled.add('b', 'two', 2)).rejects.toMatchObject({ code: 'INFERQ_ERR_VALIDATION', statusCode: 400 });
    await stalled.discard();
  });
});
