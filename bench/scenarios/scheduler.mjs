// Scenario 2, the scheduler: N texts as single jobs through the real service (API + Redis +
// one worker process), timed from the first post to the last result read (per slice, see
// createServiceStacks). Posting runs
// as fast as the API takes it, so the queue is deep and the worker always has its full
// concurrency of jobs to batch from; results are long-polled in submission order.
import { jsonRequest } from '../lib/http.mjs';
import { startLoadMeter } from '../lib/load.mjs';
import { cut } from '../lib/slices.mjs';
import { cpuSeconds, deletePrefix, redisInfo, REDIS_URL, scrapeSum, startApi, startWorker, uniquePrefix } from '../lib/services.mjs';

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

async function post(url, input) {
  const { status, body } = await jsonRequest(`${url}/v1/jobs`, { method: 'POST', body: { task: 'classification', input } });
  if (status !== 202) throw new Error(`POST /v1/jobs answered ${status}: ${JSON.stringify(body)}`);
  return body.id;
}

async function waitFinal(url, id) {
  for (;;) {
    const { status, body } = await jsonRequest(`${url}/v1/jobs/${id}?wait=30`);
    if (status !== 200) throw new Error(`GET /v1/jobs/${id} answered ${status}: ${JSON.stringify(body)}`);
    if (FINAL.has(body.status)) return body;
  }
}

/** Posts every text (`posters` at a time) while `readers` long-poll the results in order. */
export async function pushThrough(url, texts, { posters = 32, readers = 64 } = {}) {
  const ids = texts.map(() => {
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    return { promise, resolve };
  });
  let nextPost = 0;
  let nextRead = 0;
  let failed = 0;
  const postAll = Array.from({ length: posters }, async () => {
    while (nextPost < texts.length) {
      const i = nextPost++;
      ids[i].resolve(await post(url, texts[i]));
    }
  });
  const readAll = Array.from({ length: readers }, async () => {
    while (nextRead < texts.length) {
      const i = nextRead++;
      const view = await waitFinal(url, await ids[i].promise);
      if (view.status !== 'succeeded' || !Array.isArray(view.result) || typeof view.result[0]?.label !== 'string') failed++;
    }
  });
  await Promise.all([...postAll, ...readAll]);
  return { failed };
}

const METRICS = {
  batches: 'inferq_batch_size_count',
  inputs: 'inferq_batch_size_sum',
  batchSeconds: 'inferq_batch_duration_seconds_sum',
  padding: 'inferq_batch_padding_ratio_sum',
};

async function scrapeAll(port) {
  const out = {};
  for (const [k, name] of Object.entries(METRICS)) out[k] = await scrapeSum(port, name);
  return out;
}

/**
 * One API + worker stack per setting, each on its own queue prefix, all started up front.
 * `runSlice(k, slices)` pushes slice k of the texts through every stack in turn (rotating
 * the order), so spells of contention from other processes hit every setting alike; a
 * run's figure for a stack is its texts over the sum of its slices' times.
 */
export async function createServiceStacks({ root, modelsDir, modelId, texts, warmupTexts, threads, settings, ourCpuSeconds }) {
  const redis = await redisInfo();
  const stacks = [];
  const close = async () => {
    for (const st of stacks) {
      await Promise.all([st.api?.proc.stop(), st.worker?.proc.stop()]);
      await deletePrefix(st.prefix);
    }
  };
  try {
    for (const setting of settings) {
      const prefix = uniquePrefix('sched');
      const common = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir };
      const st = { setting, prefix, runs: [] };
      stacks.push(st);
      st.api = await startApi(root, { ...common, DEFAULT_MODEL_CLASSIFICATION: modelId });
      st.worker = await startWorker(root, { ...common, WORKER_MODELS: modelId, THREADS: String(threads), BUILD_TINY_MODELS: 'false', ...setting.env });
    }
  } catch (err) {
    await close();
    throw err;
  }
  const pids = () => [redis.pid, ...stacks.flatMap((st) => [st.api.proc.pid, st.worker.proc.pid])];
  return {
    name: 'service',
    pids,
    async warmUp() {
      // A fresh session's first runs, and the same for every setting.
      for (const st of stacks) await pushThrough(st.api.url, warmupTexts);
    },
    async startRun() {
      for (const st of stacks) {
        st.current = { ms: 0, failed: 0, background: 0, cpu: { worker: 0, api: 0, redis: 0, benchClient: 0 }, before: await scrapeAll(st.worker.metricsPort) };
      }
    },
    /**
     * A stack's slice is run again (up to `retries` times) when other processes used more
     * than `maxBackground` cores meanwhile; the discarded attempts are counted.
     */
    async runSlice(k, slices, { maxBackground = Infinity, retries = 0 } = {}) {
      const slice = cut(texts, k, slices);
      for (let j = 0; j < stacks.length; j++) {
        const st = stacks[(j + k) % stacks.length];
        const c = st.current;
        for (let attempt = 0; ; attempt++) {
          const p0 = { api: cpuSeconds(st.api.proc.pid), worker: cpuSeconds(st.worker.proc.pid), redis: cpuSeconds(redis.pid) };
          const self0 = process.cpuUsage();
          const ours0 = ourCpuSeconds();
          const meter = startLoadMeter();
          const start = performance.now();
          const { failed } = await pushThrough(st.api.url, slice);
          const ms = performance.now() - start;
          const { backgroundCores } = meter.stop(ourCpuSeconds() - ours0);
          if (backgroundCores > maxBackground && attempt < retries) {
            st.discarded = (st.discarded ?? 0) + 1;
            continue;
          }
          c.ms += ms;
          c.failed += failed;
          c.background += backgroundCores * ms;
          c.cpu.api += cpuSeconds(st.api.proc.pid) - p0.api;
          c.cpu.worker += cpuSeconds(st.worker.proc.pid) - p0.worker;
          c.cpu.redis += cpuSeconds(redis.pid) - p0.redis;
          const u = process.cpuUsage(self0);
          c.cpu.benchClient += (u.user + u.system) / 1e6;
          break;
        }
      }
    },
    async endRun() {
      const parts = [];
      for (const st of stacks) {
        const c = st.current;
        const after = await scrapeAll(st.worker.metricsPort);
        const d = Object.fromEntries(Object.keys(METRICS).map((key) => [key, after[key] - c.before[key]]));
        const wallS = c.ms / 1000;
        const run = {
          textsPerSecond: texts.length / wallS,
          wallS,
          failed: c.failed,
          meanBatch: d.inputs / d.batches,
          meanPaddingRatio: d.padding / d.batches,
          sessionBusy: d.batchSeconds / wallS,
          batchMsPerText: (d.batchSeconds * 1000) / d.inputs,
          cpuSeconds: c.cpu,
          backgroundCores: c.background / c.ms,
        };
        st.runs.push(run);
        parts.push(
          `${st.setting.name} ${run.textsPerSecond.toFixed(1)} texts/s (batch ${run.meanBatch.toFixed(1)}, padding x${run.meanPaddingRatio.toFixed(2)}, ` +
            `busy ${(run.sessionBusy * 100).toFixed(0)}%, background ${run.backgroundCores.toFixed(2)})` +
            (run.failed ? ` ${run.failed} FAILED` : ''),
        );
      }
      return parts.join('; ');
    },
    result() {
      return Object.fromEntries(stacks.map((st) => [st.setting.name, st.runs]));
    },
    discarded() {
      return Object.fromEntries(stacks.map((st) => [st.setting.name, st.discarded ?? 0]));
    },
    close,
  };
}
