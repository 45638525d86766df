/**
 * Issue 15 item 2 (the batch cost model): one zero-shot request bigger than a batch can't
 * hold the model's session while other zero-shot jobs (ticket triage) wait behind it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZeroShotClassificationPipeline } from '@inferq/inference';
import { TINY_NLI_ID, ensureModel } from '@inferq/tiny-models';
import { loadWorkerConfig } from '../src/config.js';
import { WorkerMetrics } from '../src/metrics.js';
import { createRunner, type ModelRunner } from '../src/model-runner.js';

let modelsDir: string;
let runner: ModelRunner;

const SENTENCES = ['The parcel arrived two weeks late and the box was crushed.', 'I was billed twice for the same order.', 'The app logs me out every hour.'];
const longText = (chars: number): string => {
  const parts: string[] = [];
  for (let i = 0, n = 0; n < chars; i++) {
    const s = SENTENCES[i % SENTENCES.length] as string;
    parts.push(s);
    n += s.length + 1;
  }
  return parts.join(' ').slice(0, chars);
};

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-zs-cost-'));
  await ensureModel(modelsDir, TINY_NLI_ID);
  const config = loadWorkerConfig({ MODELS_DIR: modelsDir, WORKER_MODELS: TINY_NLI_ID, MAX_BATCH_TOKENS: '2048', THREADS: '1' });
  runner = await createRunner(TINY_NLI_ID, config, new WorkerMetrics(), pino({ level: 'silent' }));
});
afterAll(async () => {
  await runner?.close();
  await rm(modelsDir, { recursive: true, force: true });
});

describe('zero-shot requests over a batch budget', () => {
  it('15.2 a ticket posted after a 50-label x 100k-character request finishes first, and the big one still gets its right answer', async () => {
    const labels = Array.from({ length: 50 }, (_, i) => `topic number ${i}`);
    const premise = longText(100_000);
    const order: string[] = [];
    const big = runner.run('zero-shot-classification', premise, { candidate_labels: labels }).then((r) => (order.push('big'), r));
    // Posted once the big request's pairs are queued (its tokenization took its turn).
    await new Promise<void>((resolve) => setImmediate(resolve));
    const ticket = runner
      .run('zero-shot-classification', 'I was billed twice for the same order.', { candidate_labels: ['billing', 'shipping', 'login'] })
      .then((r) => (order.push('ticket'), r));
    const [bigResult, ticketResult] = (await Promise.all([big, ticket])) as { label: string; score: number }[][];
    expect(order).toEqual(['ticket', 'big']);
    expect(ticketResult?.map((r) => r.label).sort()).toEqual(['billing', 'login', 'shipping']);

    const alone = await ZeroShotClassificationPipeline.load(join(modelsDir, TINY_NLI_ID));
    const [expected] = await alone.classify([premise], labels);
    await alone.release();
    expect(bigResult?.map((r) => r.label)).toEqual(expected?.labels);
    bigResult?.forEach((r, i) => expect(Math.abs(r.score - (expected?.scores[i] ?? NaN))).toBeLessThan(1e-5));
  });
});
