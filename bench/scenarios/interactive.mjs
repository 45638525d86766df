// Scenario 6, interactive under bulk: latency of single jobs posted at `rate`/s (post to
// result, long-polling) while a large batch runs, vs the same with nothing else running.
import { jsonRequest } from '../lib/http.mjs';
import { startStack, uploadBatch } from './service-batch.mjs';

async function probe(apiUrl, texts, rate) {
  const latencies = [];
  const inflight = [];
  const gapMs = 1000 / rate;
  const t0 = performance.now();
  for (const [i, input] of texts.entries()) {
    // Open-loop arrivals: post on schedule whether or not earlier ones finished.
    const due = t0 + i * gapMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      (async () => {
        const start = performance.now();
        const { body } = await jsonRequest(`${apiUrl}/v1/jobs`, { method: 'POST', body: { task: 'classification', input } });
        let view;
        do view = (await jsonRequest(`${apiUrl}/v1/jobs/${body.id}?wait=30`)).body;
        while (view.status === 'queued' || view.status === 'running');
        latencies.push(performance.now() - start);
      })(),
    );
  }
  await Promise.all(inflight);
  return latencies.sort((a, b) => a - b);
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

export async function runInteractive({ root, modelsDir, modelId, threads, probeTexts, bulkTexts, rate = 5, log = () => {} }) {
  const stack = await startStack(root, { modelsDir, modelId, threads });
  try {
    await probe(stack.api.url, probeTexts.slice(0, 10), rate); // warm-up
    const idle = await probe(stack.api.url, probeTexts, rate);
    log(`interactive, idle: p50 ${pct(idle, 50).toFixed(0)} ms, p95 ${pct(idle, 95).toFixed(0)} ms`);
    const batch = await uploadBatch(stack.api.url, bulkTexts);
    const busy = await probe(stack.api.url, probeTexts, rate);
    const view = await (await fetch(`${stack.api.url}/v1/batches/${batch}`)).json();
    await fetch(`${stack.api.url}/v1/batches/${batch}/cancel`, { method: 'POST' });
    const done = view.request_counts.completed + view.request_counts.failed;
    log(`interactive, under a ${bulkTexts.length}-input batch (${done} done when the probes ended): p50 ${pct(busy, 50).toFixed(0)} ms, p95 ${pct(busy, 95).toFixed(0)} ms`);
    return {
      idle: { p50: pct(idle, 50), p95: pct(idle, 95) },
      busy: { p50: pct(busy, 50), p95: pct(busy, 95) },
      bulkInputs: bulkTexts.length,
      bulkDoneWhenProbesEnded: done,
      probes: probeTexts.length,
      rate,
    };
  } finally {
    await stack.stop();
  }
}
