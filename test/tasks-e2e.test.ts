import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SummarizationPipeline, TextGenerationPipeline, ZeroShotClassificationPipeline } from '@inferq/inference';
import { ensureModel } from '@inferq/tiny-models';
import { startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

interface View {
  status: string;
  model: string;
  result?: unknown;
  error?: { code: string; message: string };
}

const prefix = uniquePrefix('e2e-tasks');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-tasks-'));
  for (const id of ['inferq/tiny-nli', 'inferq/tiny-bart', 'inferq/tiny-llama']) await ensureModel(modelsDir, id);
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker] = await Promise.all([startApi(env), startWorker({ ...env, WORKER_MODELS: 'inferq/tiny-nli,inferq/tiny-bart,inferq/tiny-llama' })]);
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

async function run(body: unknown): Promise<View> {
  const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(202);
  const { id } = (await res.json()) as { id: string };
  for (;;) {
    const view = (await (await fetch(`${api.url}/v1/jobs/${id}?wait=20`)).json()) as View;
    if (view.status !== 'queued' && view.status !== 'running') return view;
  }
}

describe('every task through the API and a worker process', () => {
  const ticket = 'I was charged twice for my subscription this month and the invoice shows the wrong amount.';
  const labels = ['billing', 'login and account', 'bug', 'shipping'];

  it('detects the issue of a ticket among the labels it chooses (zero-shot), as the pipeline does alone', async () => {
    const view = await run({ task: 'zero-shot-classification', input: ticket, parameters: { candidate_labels: labels } });
    expect(view).toMatchObject({ status: 'succeeded', model: 'inferq/tiny-nli' });
    const result = view.result as { label: string; score: number }[];
    expect(result.map((r) => r.label).sort()).toEqual([...labels].sort());
    const alone = await ZeroShotClassificationPipeline.load(join(modelsDir, 'inferq/tiny-nli'));
    const [expected] = await alone.classify([ticket], labels);
    await alone.release();
    expect(result.map((r) => r.label)).toEqual(expected?.labels);
    result.forEach((r, i) => expect(Math.abs(r.score - (expected?.scores[i] ?? NaN))).toBeLessThan(1e-5));
  });

  it('summarizes a document with beam search', async () => {
    const text = 'The hotel room was clean and quiet. Breakfast was good. The staff at the desk were friendly and helpful.';
    const view = await run({ task: 'summarization', input: text, parameters: { max_new_tokens: 12, num_beams: 2 } });
    expect(view.status).toBe('succeeded');
    const alone = await SummarizationPipeline.load(join(modelsDir, 'inferq/tiny-bart'));
    const [expected] = await alone.summarize([text], { maxNewTokens: 12, numBeams: 2 });
    await alone.release();
    expect(view.result).toEqual({
      text: expected?.text,
      finish_reason: expected?.finishReason,
      usage: { input_tokens: expected?.inputTokens, output_tokens: expected?.outputTokens },
    });
  });

  it('refuses a temperature so small that the scores overflow (issue 13 item 11): INFERQ_ERR_VALIDATION, never a NaN draw', async () => {
    // Python raises in torch.multinomial ("probability tensor contains either inf, nan or element < 0").
    const view = await run({ task: 'generation', input: 'Hello', parameters: { max_new_tokens: 4, do_sample: true, temperature: 1e-45 } });
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('INFERQ_ERR_VALIDATION');
    expect(view.error?.message).toMatch(/temperature 1e-45 is too small/);
  });

  it('returns num_return_sequences samples (issue 13 item 12), and refuses them for greedy decoding as Python does', async () => {
    const view = await run({ task: 'generation', input: 'Hello', parameters: { max_new_tokens: 6, do_sample: true, seed: 3, num_return_sequences: 3 } });
    expect(view.status).toBe('succeeded');
    const result = view.result as { text: string; sequences: { text: string; finish_reason: string; output_tokens: number }[] };
    expect(result.sequences).toHaveLength(3);
    expect(result.sequences[0]!.text).toBe(result.text);
    const greedy = await run({ task: 'generation', input: 'Hello', parameters: { max_new_tokens: 6, num_return_sequences: 2 } });
    expect(greedy.status).toBe('failed');
    expect(greedy.error?.code).toBe('INFERQ_ERR_VALIDATION');
  });

  it('answers a chat with seeded sampling, the same text for the same seed', async () => {
    const body = {
      task: 'generation',
      input: [
        { role: 'system', content: 'You are a helpful support agent.' },
        { role: 'user', content: 'My package has not arrived yet.' },
      ],
      parameters: { max_new_tokens: 16, do_sample: true, temperature: 0.8, top_p: 0.9, seed: 7 },
    };
    const [first, second] = await Promise.all([run(body), run(body)]);
    expect(first.status).toBe('succeeded');
    expect(second.result).toEqual(first.result);
    const alone = await TextGenerationPipeline.load(join(modelsDir, 'inferq/tiny-llama'));
    const [expected] = await alone.generate([body.input as never], { maxNewTokens: 16, doSample: true, temperature: 0.8, topP: 0.9, seed: 7 });
    await alone.release();
    expect((first.result as { text: string }).text).toBe(expected?.text);
  });

  it('triages a ticket: the issue among the default labels and a summary, as one job of two children', async () => {
    const res = await fetch(`${api.url}/v1/tickets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'Charged twice', body: ticket }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    let view: { status: string; result?: { issue: { label: string }; labels: { label: string }[]; summary: string }; jobs: Record<string, string> };
    do view = (await (await fetch(`${api.url}/v1/tickets/${id}?wait=20`)).json()) as typeof view;
    while (view.status === 'queued' || view.status === 'running');
    expect(view.status).toBe('succeeded');
    expect(view.result?.labels.map((l) => l.label).sort()).toEqual(
      ['billing', 'login and account', 'bug', 'feature request', 'shipping', 'refund', 'other'].sort(),
    );
    expect(view.result?.issue).toEqual(view.result?.labels[0]);
    // Its two children are ordinary jobs, readable on their own, and agree with the ticket.
    const summaryJob = (await (await fetch(`${api.url}/v1/jobs/${view.jobs.summary}`)).json()) as { status: string; result: { text: string } };
    expect(summaryJob.status).toBe('succeeded');
    expect(view.result?.summary).toBe(summaryJob.result.text.trim());
    expect((await fetch(`${api.url}/v1/tickets/ticket-${'0'.repeat(32)}`)).status).toBe(404);
  });

  it('streams a generation job token by token over SSE, ending with the final status', async () => {
    // A model no worker serves yet, so the stream is open before the job runs.
    await cp(join(modelsDir, 'inferq/tiny-llama'), join(modelsDir, 'acme/streamer'), { recursive: true });
    const res = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'generation', model: 'acme/streamer', input: 'Hello', stream: true, parameters: { max_new_tokens: 12 } }),
    });
    const { id } = (await res.json()) as { id: string };
    const events = await fetch(`${api.url}/v1/jobs/${id}/events`);
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    const received: { event: string; data: unknown }[] = [];
    let buffer = '';
    let streamer: { proc: ServiceProcess } | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) received.push({ event, data: JSON.parse(data) });
        // Once the stream shows the job queued, start the worker that runs it.
        if (event === 'status' && !streamer) {
          streamer = await startWorker({ REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, WORKER_MODELS: 'acme/streamer', METRICS_PORT: '0' });
        }
      }
    }
    await streamer?.proc.stop();
    const statuses = received.filter((e) => e.event === 'status').map((e) => (e.data as { status: string }).status);
    expect(statuses[0]).toBe('queued');
    expect(statuses.at(-1)).toBe('succeeded');
    const final = received.at(-1)?.data as { result: { text: string; usage: { output_tokens: number } } };
    const tokens = received.filter((e) => e.event === 'token').map((e) => (e.data as { delta: string }).delta);
    expect(tokens.length).toBeGreaterThan(1);
    expect(tokens.join('')).toBe(final.result.text);
  });

  it('lists the models with their tasks and whether a live worker serves them', async () => {
    const { data } = (await (await fetch(`${api.url}/v1/models`)).json()) as { data: { id: string; tasks: string[]; served: boolean; workers: number }[] };
    const byId = Object.fromEntries(data.map((m) => [m.id, m]));
    expect(byId['inferq/tiny-nli']).toMatchObject({ tasks: ['zero-shot-classification', 'classification'], served: true, workers: 1 });
    expect(byId['inferq/tiny-bart']).toMatchObject({ tasks: ['summarization'], served: true });
    expect(byId['inferq/tiny-llama']).toMatchObject({ tasks: ['generation'], served: true });
    // The streaming test's worker stopped cleanly, so its model shows unserved at once.
    if (byId['acme/streamer']) expect(byId['acme/streamer']).toMatchObject({ served: false, workers: 0 });
  });

  it('rejects what a task cannot take before anything is queued', async () => {
    const cases: [unknown, number, string][] = [
      [{ task: 'generation', input: 'hi', parameters: { temperature: -1 } }, 400, 'parameters.temperature'],
      [{ task: 'generation', input: 'hi', parameters: { top_p: 1.5 } }, 400, 'parameters.top_p'],
      [{ task: 'generation', input: 'hi', parameters: { max_new_tokens: 100_000 } }, 400, 'at most'],
      [{ task: 'generation', input: 'hi', parameters: { best_of: 2 } }, 400, 'best_of'],
      [{ task: 'zero-shot-classification', input: 'hi', parameters: { candidate_labels: Array.from({ length: 51 }, (_, i) => `l${i}`) } }, 400, 'candidate_labels'],
      [{ task: 'zero-shot-classification', input: 'hi' }, 400, 'candidate_labels'],
      [{ task: 'summarization', input: [{ role: 'user', content: 'hi' }] }, 400, 'input must be a string'],
      [{ task: 'classification', model: 'inferq/tiny-llama', input: 'hi' }, 400, 'INFERQ_ERR_TASK_MISMATCH'],
      [{ task: 'zero-shot-classification', input: 'hi', stream: true, parameters: { candidate_labels: ['a'] } }, 400, 'stream'],
    ];
    for (const [body, status, mention] of cases) {
      const res = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      expect(res.status, text).toBe(status);
      expect(text).toContain(mention);
    }
  });
});
