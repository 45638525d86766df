import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchList, BatchView, ErrorBody, JobAccepted, JobView, TicketView } from '@inferq/contracts';
import { createTestEnv, SENTIMENT, startWorker, writeModel, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv({ DEFAULT_MODEL_ZERO_SHOT: 'acme/nli', DEFAULT_MODEL_SUMMARIZATION: 'acme/bart' });
  await writeModel(env.config.MODELS_DIR, 'acme/nli', {
    architectures: ['BertForSequenceClassification'],
    id2label: { '0': 'entailment', '1': 'neutral', '2': 'contradiction' },
  });
  await writeModel(env.config.MODELS_DIR, 'acme/bart', { architectures: ['BartForConditionalGeneration'], model_type: 'bart' });
});
afterAll(async () => {
  await env?.close();
});

/** Every key under the env's prefix whose value (of any Redis type) contains `text`. */
async function keysHolding(text: string): Promise<string[]> {
  const redis = env.app.queues.redis;
  const found: string[] = [];
  for (const key of await redis.keys(`${env.config.QUEUE_PREFIX}:*`)) {
    const type = await redis.type(key);
    let dump = '';
    if (type === 'string') dump = (await redis.get(key)) ?? '';
    else if (type === 'hash') dump = JSON.stringify(await redis.hgetall(key));
    else if (type === 'list') dump = JSON.stringify(await redis.lrange(key, 0, -1));
    else if (type === 'zset' || type === 'set') dump = JSON.stringify(type === 'set' ? await redis.smembers(key) : await redis.zrange(key, 0, -1));
    else if (type === 'stream') dump = JSON.stringify(await redis.xrange(key, '-', '+'));
    if (dump.includes(text)) found.push(key);
  }
  return found;
}

const secret = () => `private-${randomBytes(8).toString('hex')}`;
const del = (url: string) => env.app.inject({ method: 'DELETE', url });

describe('DELETE', () => {
  it('a finished job: 204, then 404, and neither its input nor its result is left anywhere in Redis', async () => {
    const text = secret();
    const label = secret();
    const worker = startWorker(env.config, SENTIMENT, async () => [{ label, score: 1 }]);
    try {
      const res = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: text } });
      const { id } = res.json() as JobAccepted;
      const done = (await env.app.inject({ url: `/v1/jobs/${id}?wait=20` })).json() as JobView;
      expect(done.status).toBe('succeeded');
      expect(await keysHolding(text)).not.toEqual([]);
      expect(await keysHolding(label)).not.toEqual([]); // the job and its `completed` event

      expect((await del(`/v1/jobs/${id}`)).statusCode).toBe(204);
      expect((await env.app.inject({ url: `/v1/jobs/${id}` })).statusCode).toBe(404);
      expect(await keysHolding(text)).toEqual([]);
      expect(await keysHolding(label)).toEqual([]);
      expect((await del(`/v1/jobs/${id}`)).statusCode).toBe(404);
    } finally {
      await worker.close();
    }
  });

  it('a running job: 409 INFERQ_ERR_DELETE_RUNNING, and deleted once it ends', async () => {
    let release: () => void = () => {};
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => (started = resolve));
    const worker = startWorker(env.config, SENTIMENT, async () => {
      started();
      await new Promise<void>((resolve) => (release = resolve));
      return [{ label: 'positive', score: 1 }];
    });
    try {
      const res = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: secret() } });
      const { id } = res.json() as JobAccepted;
      await running;
      const refused = await del(`/v1/jobs/${id}`);
      expect({ status: refused.statusCode, code: (refused.json() as ErrorBody).error.code }).toEqual({ status: 409, code: 'INFERQ_ERR_DELETE_RUNNING' });
      release();
      expect(((await env.app.inject({ url: `/v1/jobs/${id}?wait=20` })).json() as JobView).status).toBe('succeeded');
      expect((await del(`/v1/jobs/${id}`)).statusCode).toBe(204);
    } finally {
      await worker.close();
    }
  });

  it('a ticket: its two jobs go with it, and its text is left nowhere', async () => {
    const text = secret();
    const res = await env.app.inject({ method: 'POST', url: '/v1/tickets', payload: { subject: 'Refund', body: text } });
    const { id } = res.json() as { id: string };
    const view = (await env.app.inject({ url: `/v1/tickets/${id}` })).json() as TicketView;
    expect(await keysHolding(text)).not.toEqual([]);
    expect((await del(`/v1/tickets/${id}`)).statusCode).toBe(204);
    for (const url of [`/v1/tickets/${id}`, `/v1/jobs/${view.jobs.classification}`, `/v1/jobs/${view.jobs.summary}`]) {
      expect((await env.app.inject({ url })).statusCode, url).toBe(404);
    }
    expect(await keysHolding(text)).toEqual([]);
  });

  it('a batch in progress: cancelled and erased, inputs and staging gone, gone from the list', async () => {
    const text = secret();
    const res = await env.app.inject({
      method: 'POST',
      url: '/v1/batches',
      payload: { task: 'classification', inputs: [{ custom_id: 'a', input: text }, { custom_id: 'b', input: `${text} again` }] },
    });
    const batch = res.json() as BatchView;
    expect(batch.status).toBe('in_progress');
    expect(await keysHolding(text)).not.toEqual([]);
    expect((await del(`/v1/batches/${batch.id}`)).statusCode).toBe(204);
    for (const url of [`/v1/batches/${batch.id}`, `/v1/batches/${batch.id}/results`]) expect((await env.app.inject({ url })).statusCode, url).toBe(404);
    const list = (await env.app.inject({ url: '/v1/batches?limit=100' })).json() as BatchList;
    expect(list.data.map((b) => b.id)).not.toContain(batch.id);
    expect(await keysHolding(text)).toEqual([]);
    expect(await env.app.queues.redis.keys(`${env.config.QUEUE_PREFIX}:batch:${batch.id}*`)).toEqual([]);
  });
});
