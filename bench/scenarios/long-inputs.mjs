// Scenario 9, long inputs (issue 15.1): the worker's event loop delay while it serves a bulk
// batch of 100,000-character inputs and zero-shot jobs of 50 labels x 100,000 characters,
// and the latency of single jobs posted meanwhile, against the same with nothing else
// running. The worker serves the bench classifier (bulk and single jobs) and a bench-sized
// NLI model (zero-shot).
import { jsonRequest } from '../lib/http.mjs';
import { startLoadMeter } from '../lib/load.mjs';
import { REDIS_URL, cpuSeconds, deletePrefix, redisInfo, scrapeSum, startApi, startWorker, uniquePrefix } from '../lib/services.mjs';

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** About `chars` characters from the texts, joined (a long review thread, a pasted log). */
function longText(texts, chars, offset) {
  const parts = [];
  for (let i = offset, n = 0; n < chars; i++) {
    const t = texts[i % texts.length];
    parts.push(t);
    n += t.length + 1;
  }
  return parts.join(' ').slice(0, chars);
}

/**
 * Reads the worker's event loop delay (prom-client's monitorEventLoopDelay, reset at every
 * scrape) every `everyMs` until stopped: the worst window's max and p99, in milliseconds.
 * (1-second windows: about 100 samples each at its 10 ms resolution). A scrape the worker
 * can't answer waits, and the next window reports the stall.
 */
function watchLoop(port, everyMs = 1000) {
  let stop = false;
  const windows = [];
  const done = (async () => {
    await scrapeSum(port, 'inferq_worker_nodejs_eventloop_lag_max_seconds'); // reset the window
    while (!stop) {
      await new Promise((r) => setTimeout(r, everyMs));
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const read = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
      windows.push({ max: read('inferq_worker_nodejs_eventloop_lag_max_seconds'), p99: read('inferq_worker_nodejs_eventloop_lag_p99_seconds') });
    }
  })();
  return async () => {
    stop = true;
    await done;
    return { maxMs: Math.max(...windows.map((w) => w.max)), p99Ms: Math.max(...windows.map((w) => w.p99)), windows: windows.length };
  };
}

async function probe(apiUrl, texts, rate) {
  const latencies = [];
  const inflight = [];
  const t0 = performance.now();
  for (const [i, input] of texts.entries()) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      (async () => {
        const start = performance.now();
        const { body } = await jsonRequest(`${apiUrl}/v1/jobs`, { method: 'POST', body: { task: 'classification', input } });
        let view;
        do view = (await jsonRequest(`${apiUrl}/v1/jobs/${body.id}?wait=30`)).body;
        while (view.status === 'queued' || view.status === 'running');
        if (view.status !== 'succeeded') throw new Error(`probe ${view.status}: ${JSON.stringify(view.error)}`);
        latencies.push(performance.now() - start);
      })(),
    );
  }
  await Promise.all(inflight);
  return latencies.sort((a, b) => a - b);
}

async function waitJob(apiUrl, id) {
  for (;;) {
    const view = (await jsonRequest(`${apiUrl}/v1/jobs/${id}?wait=30`)).body;
    if (view.status !== 'queued' && view.status !== 'running') return view;
  }
}

/** Polls a batch until it ends (a cancelled batch ends once its running chunk has). */
async function batchEnded(apiUrl, id) {
  for (;;) {
    const view = (await jsonRequest(`${apiUrl}/v1/batches/${id}`)).body;
    if (['completed', 'failed', 'cancelled', 'expired'].includes(view.status)) return view;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Probes idle, then under each load in turn (zero-shot jobs only, bulk only, both), each
 * phase ending before the next starts; `busy` is the last (both), the issue's scenario.
 */
export async function runLongInputs({ root, modelsDir, modelId, nliId, threads, texts, probeTexts, bulkInputs, chars = 100_000, labels = 50, rate = 5, log = () => {} }) {
  const prefix = uniquePrefix('long');
  const common = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, DEFAULT_MODEL_CLASSIFICATION: modelId, DEFAULT_MODEL_ZERO_SHOT: nliId };
  const [api, worker] = await Promise.all([
    startApi(root, { ...common, LOG_LEVEL: 'warn' }),
    startWorker(root, { ...common, WORKER_MODELS: `${modelId},${nliId}`, THREADS: String(threads) }),
  ]);
  const lines = Array.from({ length: bulkInputs }, (_, i) => JSON.stringify({ custom_id: `l${i}`, input: longText(texts, chars, i * 13) }));
  const candidateLabels = Array.from({ length: labels }, (_, i) => `${texts[i % texts.length].split(' ').slice(0, 3).join(' ')} ${i}`);

  const redisPid = (await redisInfo()).pid;
  const ourCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6 + [redisPid, api.proc.pid, worker.proc.pid].reduce((sum, pid) => sum + (cpuSeconds(pid) || 0), 0);
  };

  async function phase(name, { bulk, zeroShot }) {
    const ours0 = ourCpu();
    const meter = startLoadMeter();
    const watch = watchLoop(worker.metricsPort);
    let batchId;
    if (bulk) {
      const upload = await fetch(`${api.url}/v1/batches?task=classification`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
      if (upload.status !== 202) throw new Error(`upload: ${upload.status} ${await upload.text()}`);
      batchId = (await upload.json()).id;
    }
    // Zero-shot jobs of `labels` labels x `chars` characters, one after another, for as long as the probes run.
    let probing = zeroShot;
    const zeroShotJobs = { done: 0, failed: 0 };
    const zeroShotLoop = (async () => {
      for (let k = 0; probing; k++) {
        const { body } = await jsonRequest(`${api.url}/v1/jobs`, {
          method: 'POST',
          body: { task: 'zero-shot-classification', model: nliId, input: longText(texts, chars, 1000 + k * 17), parameters: { candidate_labels: candidateLabels } },
        });
        const view = await waitJob(api.url, body.id);
        if (view.status === 'succeeded') zeroShotJobs.done++;
        else zeroShotJobs.failed++;
      }
    })();
    const latencies = await probe(api.url, probeTexts, rate);
    probing = false;
    await zeroShotLoop;
    let bulkDone = 0;
    if (batchId) {
      const view = (await jsonRequest(`${api.url}/v1/batches/${batchId}`)).body;
      bulkDone = view.request_counts.completed + view.request_counts.failed;
      await fetch(`${api.url}/v1/batches/${batchId}/cancel`, { method: 'POST' });
      await batchEnded(api.url, batchId);
    }
    const loop = await watch();
    // Other processes' CPU use meanwhile (this machine is shared), in cores.
    const { backgroundCores } = meter.stop(ourCpu() - ours0);
    const result = { p50: pct(latencies, 50), p95: pct(latencies, 95), loop, bulkDone, zeroShotJobs, backgroundCores };
    log(
      `long inputs, ${name}: probes p50 ${result.p50.toFixed(0)} ms, p95 ${result.p95.toFixed(0)} ms; event loop delay max ${loop.maxMs.toFixed(0)} ms, ` +
        `p99 ${loop.p99Ms.toFixed(0)} ms${bulk ? `; ${bulkDone} bulk inputs done` : ''}${zeroShot ? `; ${zeroShotJobs.done} zero-shot jobs done` : ''}; ` +
        `other processes ${backgroundCores.toFixed(2)} cores`,
    );
    return result;
  }

  try {
    await probe(api.url, probeTexts.slice(0, 10), rate); // warm-up
    const idle = await phase('idle', { bulk: false, zeroShot: false });
    const zeroShotOnly = await phase(`under zero-shot jobs of ${labels} labels x ${chars} chars`, { bulk: false, zeroShot: true });
    const bulkOnly = await phase(`under a bulk batch of ${bulkInputs} x ${chars} chars`, { bulk: true, zeroShot: false });
    const busy = await phase('under both', { bulk: true, zeroShot: true });
    return { idle, zeroShotOnly, bulkOnly, busy, bulkInputs, chars, labels, probes: probeTexts.length, rate };
  } finally {
    await Promise.all([api.proc.stop(), worker.proc.stop()]);
    await deletePrefix(prefix);
  }
}
