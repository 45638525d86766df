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
export async function createServiceStacks({ root, modelsDir, modelId, texts, warmupTexts, threads, settings, ourCpuSeconds, log = () => {} }) {
  const redis = await redisInfo();
  const stacks = [];
  let restarts = 0;

  async function start(st) {
    st.prefix = uniquePrefix('sched');
    const common = { REDIS_URL, QUEUE_PREFIX: st.prefix, MODELS_DIR: modelsDir };
    st.api = await startApi(root, { ...common, DEFAULT_MODEL_CLASSIFICATION: modelId });
    st.worker = await startWorker(root, { ...common, WORKER_MODELS: modelId, THREADS: String(threads), ...st.setting.env });
  }

  async function stop(st) {
    await Promise.all([st.api?.proc.stop(), st.worker?.proc.stop()]);
    await deletePrefix(st.prefix);
  }

  /** Rejects when the stack's API or worker exits (something outside the bench may kill it). */
  function died(st) {
    const exit = (name, proc) =>
      proc.exited.then((code) => {
        throw new Error(`${st.setting.name}: ${name} exited with ${code}; last lines:\n${proc.tail.slice(-10).join('\n')}`);
      });
    return Promise.race([exit('api', st.api.proc), exit('worker', st.worker.proc)]);
  }

  /** One slice through one stack: its time, failures, CPU per process, worker metrics and background load. */
  async function measureSlice(st, slice) {
    const before = await scrapeAll(st.worker.metricsPort);
    const p0 = { api: cpuSeconds(st.api.proc.pid), worker: cpuSeconds(st.worker.proc.pid), redis: cpuSeconds(redis.pid) };
    const self0 = process.cpuUsage();
    const ours0 = ourCpuSeconds();
    const meter = startLoadMeter();
    const start = performance.now();
    const { failed } = await pushThrough(st.api.url, slice);
    const ms = performance.now() - start;
    const { backgroundCores } = meter.stop(ourCpuSeconds() - ours0);
    const after = await scrapeAll(st.worker.metricsPort);
    const u = process.cpuUsage(self0);
    return {
      ms,
      failed,
      backgroundCores,
      metrics: Object.fromEntries(Object.keys(METRICS).map((key) => [key, after[key] - before[key]])),
      cpu: {
        api: cpuSeconds(st.api.proc.pid) - p0.api,
        worker: cpuSeconds(st.worker.proc.pid) - p0.worker,
        redis: cpuSeconds(redis.pid) - p0.redis,
        benchClient: (u.user + u.system) / 1e6,
      },
    };
  }

  const close = async () => {
    for (const st of stacks) await stop(st);
  };
  try {
    for (const setting of settings) {
      const st = { setting, runs: [] };
      stacks.push(st);
      await start(st);
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
        st.current = { ms: 0, failed: 0, background: 0, cpu: { worker: 0, api: 0, redis: 0, benchClient: 0 }, metrics: Object.fromEntries(Object.keys(METRICS).map((k) => [k, 0])) };
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
          let measured;
          try {
            measured = await Promise.race([measureSlice(st, slice), died(st)]);
          } catch (err) {
            if (st.api.proc.child.exitCode === null && st.worker.proc.child.exitCode === null && !st.worker.proc.child.signalCode && !st.api.proc.child.signalCode) throw err;
            // A process of the stack is gone (killed from outside): start the stack afresh
            // (new queue, warm-up) and run the slice again.
            restarts++;
            log(`  ${err.message}\n  restarting the ${st.setting.name} stack and running its slice again`);
            await stop(st);
            await start(st);
            await pushThrough(st.api.url, warmupTexts);
            c.restarted = true;
            attempt--;
            continue;
          }
          if (measured.backgroundCores > maxBackground && attempt < retries) {
            st.discarded = (st.discarded ?? 0) + 1;
            continue;
          }
          for (const key of Object.keys(METRICS)) c.metrics[key] += measured.metrics[key];
          for (const key of Object.keys(c.cpu)) c.cpu[key] += measured.cpu[key];
          c.ms += measured.ms;
          c.failed += measured.failed;
          c.background += measured.backgroundCores * measured.ms;
          break;
        }
      }
    },
    async endRun() {
      const parts = [];
      for (const st of stacks) {
        const c = st.current;
        const d = c.metrics;
        const wallS = c.ms / 1000;
        const run = {
          textsPerSecond: texts.length / wallS,
          wallS,
          failed: c.failed,
          restarted: Boolean(c.restarted),
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
    restarts() {
      return restarts;
    },
    close,
  };
}
