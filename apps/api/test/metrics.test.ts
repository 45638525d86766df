import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobAccepted } from '@inferq/contracts';
import { createTestEnv, GENERATOR, SENTIMENT, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(async () => {
  // No cache: every scrape reads the queues again, so a test sees what it just did.
  env = await createTestEnv({ QUEUE_STATS_CACHE_MS: '0' });
});
afterAll(async () => {
  await env?.close();
});

async function scrape(): Promise<string> {
  const res = await env.app.inject({ url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body;
}

/** The value of one sample, or undefined when it is not exposed. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('GET /metrics on the API', () => {
  it('counts accepted jobs and batch inputs by task and model, and rejections by code', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: `text ${i}` } });
      expect(res.statusCode).toBe(202);
    }
    const batch = await env.app.inject({
      method: 'POST',
      url: '/v1/batches',
      payload: { task: 'classification', model: SENTIMENT, inputs: [1, 2, 3, 4, 5].map((n) => ({ custom_id: `c${n}`, input: `line ${n}` })) },
    });
    expect(batch.statusCode).toBe(202);
    const mismatch = await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: GENERATOR, input: 'x' } });
    expect(mismatch.statusCode).toBe(400);
    await env.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', input: '' } });

    const text = await scrape();
    expect(sample(text, 'inferq_api_jobs_accepted_total', { task: 'classification', model: SENTIMENT })).toBe(3);
    expect(sample(text, 'inferq_api_batches_accepted_total', { task: 'classification', model: SENTIMENT })).toBe(1);
    expect(sample(text, 'inferq_api_batch_inputs_accepted_total', { task: 'classification', model: SENTIMENT })).toBe(5);
    expect(sample(text, 'inferq_api_rejections_total', { code: 'INFERQ_ERR_TASK_MISMATCH' })).toBe(1);
    expect(sample(text, 'inferq_api_rejections_total', { code: 'INFERQ_ERR_EMPTY_INPUT' })).toBe(1);
    // Requests are timed by route pattern, not by URL (an id in the path would explode the series).
    expect(sample(text, 'inferq_api_http_request_duration_seconds_count', { method: 'POST', route: '/v1/jobs', status_code: '202' })).toBe(3);
  });

  it('reads queue depth per queue and state, and the age of the oldest waiting job', async () => {
    const text = await scrape();
    const single = 'model--acme--sentiment';
    // Three jobs posted above wait: no worker runs in this test.
    expect(sample(text, 'inferq_queue_jobs', { queue: single, model: SENTIMENT, state: 'waiting' })).toBe(3);
    expect(sample(text, 'inferq_queue_jobs', { queue: single, state: 'active' })).toBe(0);
    expect(sample(text, 'inferq_queue_jobs', { queue: 'bulk--acme--sentiment', model: SENTIMENT, state: 'waiting' })).toBe(1);
    // The shared queues carry no model label (an empty label is no label to Prometheus); a
    // batch parent waits for its chunks (BullMQ waiting-children), not in line.
    expect(text).toMatch(/^inferq_queue_jobs\{queue="batches",model="",state="waiting"\} 0$/m);
    // Every inferq queue is listed, used or not.
    for (const queue of ['batches', 'tickets', 'webhooks', 'maintenance', 'model--acme--gpt', 'bulk--acme--gpt']) {
      expect(sample(text, 'inferq_queue_jobs', { queue, state: 'waiting' }), queue).toBeDefined();
    }
    const age = sample(text, 'inferq_queue_oldest_waiting_age_seconds', { queue: single });
    expect(age).toBeGreaterThan(0);
    const later = sample(await scrape(), 'inferq_queue_oldest_waiting_age_seconds', { queue: single });
    expect(later).toBeGreaterThanOrEqual(age ?? Infinity);
    expect(sample(text, 'inferq_queue_oldest_waiting_age_seconds', { queue: 'model--acme--gpt' })).toBe(0);
  });

  it('exposes the event loop delay and the process metrics', async () => {
    const text = await scrape();
    expect(sample(text, 'inferq_api_event_loop_delay_seconds', { quantile: '0.99' })).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'inferq_api_event_loop_windows_total')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'inferq_api_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('shows a blocked event loop: a 300 ms synchronous stretch is a delay of at least 0.25 s', async () => {
    const windowsBefore = sample(await scrape(), 'inferq_api_event_loop_windows_total') ?? NaN;
    const until = Date.now() + 300;
    while (Date.now() < until) {
      // Hold the loop, as a huge synchronous request would.
    }
    // The delay is recorded once the loop runs again, in the window then open: wait for it to close.
    let text = await scrape();
    while ((sample(text, 'inferq_api_event_loop_windows_total') ?? 0) < windowsBefore + 2) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      text = await scrape();
    }
    expect(sample(text, 'inferq_api_event_loop_delay_max_seconds')).toBeGreaterThanOrEqual(0.25);
  }, 30_000);

  it('shares one read of the queues between scrapes within the cache period', async () => {
    const cached = await createTestEnv({ QUEUE_STATS_CACHE_MS: '60000' });
    try {
      const first = await cached.app.inject({ url: '/metrics' });
      expect(sample(first.body, 'inferq_queue_jobs', { queue: 'model--acme--sentiment', state: 'waiting' })).toBe(0);
      const res = await cached.app.inject({ method: 'POST', url: '/v1/jobs', payload: { task: 'classification', model: SENTIMENT, input: 'x' } });
      expect((res.json() as JobAccepted).status).toBe('queued');
      const second = await cached.app.inject({ url: '/metrics' });
      expect(sample(second.body, 'inferq_queue_jobs', { queue: 'model--acme--sentiment', state: 'waiting' })).toBe(0);
    } finally {
      await cached.close();
    }
  });
});
