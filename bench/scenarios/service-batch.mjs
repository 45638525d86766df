// Scenarios 2-bulk, 6 and 8: the batches API through the real service. Helpers shared by them.
import { readFileSync } from 'node:fs';
import { REDIS_URL, deletePrefix, startApi, startWorker, uniquePrefix } from '../lib/services.mjs';

/** Peak resident memory of a process so far (VmHWM), in MiB. */
export function peakRssMiB(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Starts an API and a worker for one model under a fresh prefix; `stop()` ends both and deletes the keys. */
export async function startStack(root, { modelsDir, modelId, threads, env = {} }) {
  const prefix = uniquePrefix('batch');
  const common = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, DEFAULT_MODEL_CLASSIFICATION: modelId, ...env };
  const [api, worker] = await Promise.all([
    startApi(root, { ...common, LOG_LEVEL: 'warn' }),
    startWorker(root, { ...common, WORKER_MODELS: modelId, THREADS: String(threads) }),
  ]);
  return {
    api,
    worker,
    async stop() {
      await Promise.all([api.proc.stop(), worker.proc.stop()]);
      await deletePrefix(prefix);
    },
  };
}

/** Uploads texts as one NDJSON batch; resolves with its id. */
export async function uploadBatch(apiUrl, texts, task = 'classification') {
  const body = texts.map((input, i) => JSON.stringify({ custom_id: `t${i}`, input })).join('\n');
  const res = await fetch(`${apiUrl}/v1/batches?task=${task}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  if (res.status !== 202) throw new Error(`upload: ${res.status} ${await res.text()}`);
  return (await res.json()).id;
}

/** Polls a batch (every `everyMs`) until it ends; resolves with its view. */
export async function waitForBatch(apiUrl, id, everyMs = 100) {
  for (;;) {
    const view = await (await fetch(`${apiUrl}/v1/batches/${id}`)).json();
    if (['completed', 'failed', 'cancelled', 'expired'].includes(view.status)) return view;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Reads the whole results file; resolves with its line count. */
export async function readResults(apiUrl, id) {
  const text = await (await fetch(`${apiUrl}/v1/batches/${id}/results`)).text();
  return text.split('\n').filter(Boolean).length;
}
