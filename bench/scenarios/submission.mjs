// Scenario 4, the submission rate: autocannon against POST /v1/jobs (no worker running:
// jobs only pile up in the queue) vs BullMQ Queue.add in this process on the same Redis,
// with the same job data, options and concurrency. Every key is deleted afterwards.
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import { createRedis, inferenceJobOptions, newJobId, queueNameForModel } from '@inferq/queue';
import { selfCpuSeconds, startLoadMeter } from '../lib/load.mjs';
import { cpuSeconds, deletePrefix, redisInfo, REDIS_URL, startApi, uniquePrefix } from '../lib/services.mjs';

async function apiRate({ root, modelsDir, modelId, input, connections, durationS, env = {} }) {
  const prefix = uniquePrefix('submit-api');
  const api = await startApi(root, { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, DEFAULT_MODEL_CLASSIFICATION: modelId, ...env });
  const redis = await redisInfo();
  try {
    const cpu0 = { api: cpuSeconds(api.proc.pid), redis: cpuSeconds(redis.pid) };
    const self0 = process.cpuUsage();
    const meter = startLoadMeter();
    const result = await autocannon({
      url: `${api.url}/v1/jobs`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'classification', input }),
      connections,
      duration: durationS,
    });
    const cpu = { api: cpuSeconds(api.proc.pid) - cpu0.api, redis: cpuSeconds(redis.pid) - cpu0.redis, autocannon: selfCpuSeconds(self0) };
    const { backgroundCores } = meter.stop(cpu.api + cpu.redis + cpu.autocannon);
    return {
      acceptedPerSecond: result['2xx'] / durationS,
      apiCpuUsPerRequest: (cpu.api / Math.max(1, result['2xx'])) * 1e6,
      cpuCores: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / durationS])),
      backgroundCores,
      non2xx: result.non2xx,
      errors: result.errors,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
    };
  } finally {
    await api.proc.stop();
    await deletePrefix(prefix);
  }
}

async function queueAddRate({ modelId, input, connections, durationS }) {
  const prefix = uniquePrefix('submit-raw');
  const connection = createRedis(REDIS_URL, 'producer');
  const queue = new Queue(queueNameForModel(modelId), { connection, prefix });
  await queue.waitUntilReady();
  const options = inferenceJobOptions();
  const data = { task: 'classification', model: modelId, input, parameters: {} };
  let added = 0;
  try {
    const self0 = process.cpuUsage();
    const deadline = performance.now() + durationS * 1000;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < deadline) {
          await queue.add('infer', data, { ...options, jobId: newJobId(modelId) });
          added++;
        }
      }),
    );
    return { jobsPerSecond: (added / (performance.now() - start)) * 1000, cpuUsPerAdd: (selfCpuSeconds(self0) / Math.max(1, added)) * 1e6 };
  } finally {
    await queue.close();
    connection.disconnect();
    await deletePrefix(prefix);
  }
}

export async function runSubmission({ root, modelsDir, modelId, input, connections, durationS, repeats, log }) {
  const api = [];
  const apiQuiet = [];
  const raw = [];
  for (let r = 0; r < repeats; r++) {
    api.push(await apiRate({ root, modelsDir, modelId, input, connections, durationS }));
    raw.push(await queueAddRate({ modelId, input, connections, durationS }));
    // Profile: the same API without its per-request log lines (LOG_LEVEL=warn).
    apiQuiet.push(await apiRate({ root, modelsDir, modelId, input, connections, durationS, env: { LOG_LEVEL: 'warn' } }));
    log(
      `  submission run ${r + 1}/${repeats}: API ${api[r].acceptedPerSecond.toFixed(0)} accepted/s ` +
        `(p50 ${api[r].p50Ms} ms, p99 ${api[r].p99Ms} ms, ${api[r].apiCpuUsPerRequest.toFixed(0)} µs API CPU per request), ` +
        `Queue.add ${raw[r].jobsPerSecond.toFixed(0)} jobs/s, API at LOG_LEVEL=warn ${apiQuiet[r].acceptedPerSecond.toFixed(0)} accepted/s ` +
        `(${apiQuiet[r].apiCpuUsPerRequest.toFixed(0)} µs); background load ${api[r].backgroundCores.toFixed(2)} cores`,
    );
  }
  return { api, apiQuiet, raw };
}
