// A real Prometheus scrapes a real API and worker with deploy/prometheus.yml's settings (targets
// rewritten to this test's processes) and loads deploy/alerts.yml; after a batch ran, what an
// operator would query comes back as numbers, the alerts evaluate on real series, and every
// query of the Grafana dashboard is valid PromQL with data behind it.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';
import { ndjsonOf, uploadBatch, waitForBatch } from './support/batches.js';
import { PrometheusServer, type PromSample } from './support/prometheus.js';
import { ROOT, startApi, startWorker, type ServiceProcess } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';
import { reviewTexts } from './support/texts.js';

/** A model in the folder that no worker serves: its jobs wait, as when its workers are down. */
const UNSERVED = 'acme/unserved-classifier';
const UNSERVED_QUEUE = 'model--acme--unserved-classifier';
const N = 300;
const prefix = uniquePrefix('e2e-prometheus');
let modelsDir: string;
let api: { proc: ServiceProcess; url: string };
let worker: { proc: ServiceProcess; metricsPort: number };
let prometheus: PrometheusServer;

beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-e2e-prometheus-'));
  const modelDir = await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  await mkdir(join(modelsDir, UNSERVED), { recursive: true });
  await writeFile(join(modelsDir, UNSERVED, 'config.json'), await readFile(join(modelDir, 'config.json')));
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
  [api, worker] = await Promise.all([
    startApi({ ...env, BATCH_CHUNK_SIZE: '50', QUEUE_STATS_CACHE_MS: '500' }),
    startWorker({ ...env, WORKER_MODELS: TINY_CLASSIFIER_ID, MAX_BATCH_SIZE: '8', BATCHING: 'static' }),
  ]);
  prometheus = await PrometheusServer.start({
    'inferq-api': [new URL(api.url).host],
    'inferq-worker': [`127.0.0.1:${worker.metricsPort}`],
  });
});

afterAll(async () => {
  await Promise.all([api?.proc.stop(), worker?.proc.stop(), prometheus?.stop()]);
  await deletePrefix(prefix);
  await rm(modelsDir, { recursive: true, force: true });
});

const one = (samples: PromSample[]): number => {
  expect(samples).toHaveLength(1);
  return samples[0]!.value;
};

describe('Prometheus on deploy/prometheus.yml, scraping a real API and worker', () => {
  it('after a batch: a batch-size quantile, queue depths and the oldest waiting age come back as numbers', async () => {
    // Three jobs for a model no worker serves wait in its queue; one bad request is rejected.
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${api.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ task: 'classification', model: UNSERVED, input: `waiting ${i}` }),
      });
      expect(res.status).toBe(202);
    }
    const bad = await fetch(`${api.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"task":"classification","input":""}' });
    expect(bad.status).toBe(400);

    // One single job for the served model, answered before the batch.
    const single = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'classification', model: TINY_CLASSIFIER_ID, input: 'served at once' }),
    });
    const { id } = (await single.json()) as { id: string };
    const answered = (await (await fetch(`${api.url}/v1/jobs/${id}?wait=30`)).json()) as { status: string };
    expect(answered.status).toBe('succeeded');

    const { status, json } = await uploadBatch(api.url, ndjsonOf(reviewTexts(N)), `task=classification&model=${TINY_CLASSIFIER_ID}`);
    expect(status).toBe(202);
    const done = await waitForBatch(api.url, json.id, (v) => v.status === 'completed');
    expect(done.request_counts).toEqual({ total: N, completed: N, failed: 0 });

    expect(one(await prometheus.queryUntil('up{job="inferq-api"}', (s) => s.length === 1))).toBe(1);
    expect(one(await prometheus.queryUntil('up{job="inferq-worker"}', (s) => s.length === 1))).toBe(1);

    // Every input (the batch's and the single job) ran in batches of 1 to 8 (MAX_BATCH_SIZE): the median batch size says so.
    const runs = await prometheus.queryUntil(`sum(inferq_batch_size_sum{model="${TINY_CLASSIFIER_ID}"})`, (s) => s[0]?.value === N + 1);
    expect(one(runs)).toBe(N + 1);
    const median = one(await prometheus.query(`histogram_quantile(0.5, sum by (le) (inferq_batch_size_bucket{model="${TINY_CLASSIFIER_ID}"}))`));
    expect(Number.isFinite(median)).toBe(true);
    expect(median).toBeGreaterThanOrEqual(1);
    expect(median).toBeLessThanOrEqual(8);

    // The API's view of the queues, read from Redis at scrape time.
    const waiting = await prometheus.queryUntil(`inferq_queue_jobs{queue="${UNSERVED_QUEUE}",state="waiting"}`, (s) => s[0]?.value === 3);
    expect(waiting[0]?.metric).toMatchObject({ job: 'inferq-api', model: UNSERVED });
    const age1 = one(await prometheus.queryUntil(`inferq_queue_oldest_waiting_age_seconds{queue="${UNSERVED_QUEUE}"}`, (s) => (s[0]?.value ?? 0) > 0));
    expect(Number.isFinite(age1)).toBe(true);
    // Nothing waits for the served model once its batch is done.
    const bulk = `bulk--${TINY_CLASSIFIER_ID.replace('/', '--')}`;
    expect(one(await prometheus.queryUntil(`inferq_queue_jobs{queue="${bulk}",state="waiting"}`, (s) => s[0]?.value === 0))).toBe(0);
    expect(one(await prometheus.query(`inferq_queue_oldest_waiting_age_seconds{queue="${bulk}"}`))).toBe(0);

    // What the API accepted and refused, and how long the chunks waited to start (priority 1).
    const settles = async (expr: string, expected: number) => one(await prometheus.queryUntil(expr, (s) => s[0]?.value === expected));
    expect(await settles(`inferq_api_batch_inputs_accepted_total{model="${TINY_CLASSIFIER_ID}",task="classification"}`, N)).toBe(N);
    expect(await settles(`inferq_api_jobs_accepted_total{model="${UNSERVED}"}`, 3)).toBe(3);
    expect(await settles('inferq_api_rejections_total{code="INFERQ_ERR_EMPTY_INPUT"}', 1)).toBe(1);
    // How long jobs waited to start, by priority: the chunks (1) and the single job (0).
    expect(await settles(`inferq_job_wait_seconds_count{model="${TINY_CLASSIFIER_ID}",priority="1"}`, N / 50)).toBe(N / 50);
    expect(await settles(`inferq_job_wait_seconds_count{model="${TINY_CLASSIFIER_ID}",priority="0"}`, 1)).toBe(1);
  });

  it('deploy/alerts.yml is loaded and its no-worker alert catches the unserved model on real series', async () => {
    const rules = await prometheus.get<{ groups: { rules: { name: string; health: string }[] }[] }>('/api/v1/rules');
    const loaded = rules.groups.flatMap((g) => g.rules);
    expect(loaded.length).toBeGreaterThanOrEqual(9);
    for (const rule of loaded) expect(rule.health, rule.name).not.toBe('err');
    // `for: 2m`: the alert is pending at once, for that model only.
    const alerts = await prometheus.queryUntil('ALERTS{alertname="InferqNoWorkerForModel"}', (s) => s.length > 0);
    expect(alerts.map((a) => [a.metric.model, a.metric.alertstate])).toEqual([[UNSERVED, 'pending']]);
  });

  it("every query of the Grafana dashboard is valid PromQL and has data after the run", async () => {
    const dashboard = JSON.parse(await readFile(join(ROOT, 'deploy/grafana/dashboards/inferq.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        // Grafana's variables as the dashboard's defaults resolve them.
        const query = expr.replaceAll('$__rate_interval', '1m').replaceAll('$model', '.*');
        const samples = await prometheus.queryUntil(query, (s) => s.length > 0).catch((err: Error) => {
          throw new Error(`panel "${panel.title}": ${err.message}\n${prometheus.tail()}`);
        });
        expect(samples.length, `${panel.title}: ${query}`).toBeGreaterThan(0);
      }
    }
  });
});
