// Scenario 11, staggered arrivals (issue 11): chat requests with mixed max_new_tokens
// (32-256, exactly that many each: no early end of sequence) arrive as a Poisson process, and
// are served through the worker's two generation policies in the same run, on the same
// arrival schedule: continuous batching (one decode loop, newcomers join at the next step)
// and the static policy (the BatchScheduler: a batch starts together and runs to its end).
// Per policy: tokens/s over the run (first arrival to last answer), time to first streamed
// text and end-to-end latency (p50/p95, from each request's arrival), and the time-weighted
// mean of requests in flight. The arrival rate is calibrated once, before both policies, from
// the continuous loop's throughput at 12 rows, so that about 8-16 requests are in flight.
import { BatchScheduler, TextGenerationPipeline } from '@inferq/inference';
import { selfCpuSeconds, startLoadMeter } from '../lib/load.mjs';
import { quantile } from '../lib/stats.mjs';

/** A seeded PRNG (mulberry32), so every repeat and both policies see the same schedule. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export async function runStaggered({ modelDir, threads, prompts, requests = 48, repeats = 1, maxRows = 32, maxTokens = 8192, rateShare = 0.85, log = () => {} }) {
  const pipeline = await TextGenerationPipeline.load(modelDir, { intraOpThreads: threads });
  const random = rng(11);
  const plan = Array.from({ length: requests }, (_, i) => ({
    messages: [{ role: 'user', content: prompts[i % prompts.length] }],
    maxNewTokens: 32 + Math.floor(random() * 225),
  }));
  const meanTokens = plan.reduce((n, p) => n + p.maxNewTokens, 0) / plan.length;
  const prepare = (p, onToken) =>
    pipeline.prepare({ input: p.messages, maxNewTokens: p.maxNewTokens, minNewTokens: p.maxNewTokens, ...(onToken ? { onToken } : {}) });

  const policies = {
    continuous: () => {
      const loop = pipeline.continuous({ maxRows, maxTokens });
      return { submit: (p) => loop.submit(p), close: () => loop.close() };
    },
    static: () => {
      const scheduler = new BatchScheduler({
        prepare: (p) => p,
        cost: (p) => pipeline.cost(p),
        groupKey: (p) => pipeline.groupKey(p),
        run: (batch) => pipeline.run(batch),
        maxBatchSize: maxRows,
        maxBatchTokens: maxTokens,
        maxDelayMs: 5,
      });
      return { submit: (p) => scheduler.submit(p), close: () => scheduler.close() };
    },
  };

  /** Serves the plan with arrivals at `gaps` (ms between arrivals) through one policy. */
  async function serve(name, gaps) {
    const policy = policies[name]();
    current = { prefillMs: 0, decodeMs: 0, steps: 0, rowSteps: 0, maskCells: 0, maskOnes: 0 };
    const meter = startLoadMeter();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const rows = [];
    let inFlight = 0;
    let inFlightArea = 0;
    let lastChange = t0;
    const change = (delta) => {
      const now = performance.now();
      inFlightArea += inFlight * (now - lastChange);
      lastChange = now;
      inFlight += delta;
    };
    const pending = [];
    let at = 0;
    for (const [i, p] of plan.entries()) {
      at += gaps[i];
      await sleep(t0 + at - performance.now());
      const arrived = performance.now();
      const row = { arrived, first: undefined, done: undefined, tokens: 0 };
      rows.push(row);
      change(+1);
      const prepared = prepare(p, () => (row.first ??= performance.now()));
      pending.push(
        policy.submit(prepared).then((out) => {
          row.done = performance.now();
          row.first ??= row.done;
          row.tokens = out.outputTokens;
          change(-1);
        }),
      );
    }
    await Promise.all(pending);
    await policy.close();
    const end = performance.now();
    const { backgroundCores } = meter.stop(selfCpuSeconds(cpu0));
    const tokens = rows.reduce((n, r) => n + r.tokens, 0);
    const ttft = rows.map((r) => r.first - r.arrived);
    const e2e = rows.map((r) => r.done - r.arrived);
    return {
      tokensPerSecond: (tokens / (end - t0)) * 1000,
      ttftP50: quantile(ttft, 0.5),
      ttftP95: quantile(ttft, 0.95),
      e2eP50: quantile(e2e, 0.5),
      e2eP95: quantile(e2e, 0.95),
      meanInFlight: inFlightArea / (end - t0),
      wallS: (end - t0) / 1000,
      tokens,
      backgroundCores,
      prefillS: current.prefillMs / 1000,
      decodeS: current.decodeMs / 1000,
      steps: current.steps,
      meanRows: current.rowSteps / Math.max(1, current.steps),
      paddingRatio: current.maskCells / Math.max(1, current.maskOnes),
    };
  }

  // Profile: session time of prefills and decoding steps, and the decoding steps' padding
  // (attention-mask cells over real ones: a row that joins later is left-padded to the
  // batch's cache length).
  let current;
  const profile = (session) => {
    const run = session.run.bind(session);
    session.run = async (feeds, ...rest) => {
      const t = performance.now();
      const out = await run(feeds, ...rest);
      if (current) {
        const ms = performance.now() - t;
        if ((feeds.input_ids?.dims[1] ?? 1) > 1) current.prefillMs += ms;
        else {
          current.decodeMs += ms;
          current.steps++;
          current.rowSteps += feeds.input_ids.dims[0];
          const mask = feeds.attention_mask.data;
          current.maskCells += mask.length;
          for (let i = 0; i < mask.length; i++) current.maskOnes += Number(mask[i]);
        }
      }
      return out;
    };
  };
  for (const session of new Set([pipeline.session, pipeline.prefillSession ?? pipeline.session])) profile(session);

  const runs = { continuous: [], static: [] };
  let ratePerSecond;
  try {
    // Warm-up, untimed; then the calibration: the loop's tokens/s with 12 rows in flight.
    await pipeline.run([prepare({ ...plan[0], maxNewTokens: 8 })]);
    // Twice, keeping the lower: other processes come and go on this host, and a rate taken in
    // a quiet spell overloads every policy for the rest of the run (then both only queue).
    const capacities = [];
    for (let k = 0; k < 2; k++) {
      const loop = pipeline.continuous({ maxRows, maxTokens });
      const t = performance.now();
      const outs = await Promise.all(plan.slice(0, 12).map((p) => loop.submit(prepare({ ...p, maxNewTokens: 64 }))));
      await loop.close();
      capacities.push((outs.reduce((n, o) => n + o.outputTokens, 0) / (performance.now() - t)) * 1000);
    }
    const capacity = Math.min(...capacities);
    // Requests per second the loop serves at 12 rows, lowered a little so the queue stays stable.
    ratePerSecond = (rateShare * capacity) / meanTokens;
    log(`staggered: calibration ${capacity.toFixed(0)} tokens/s at 12 rows; ${ratePerSecond.toFixed(2)} arrivals/s (mean ${meanTokens.toFixed(0)} new tokens)`);
    for (let r = 0; r < repeats; r++) {
      const arrivals = rng(100 + r);
      const gaps = plan.map((_, i) => (i === 0 ? 0 : (-Math.log(1 - arrivals()) / ratePerSecond) * 1000));
      // Alternate which policy goes first, so a spell of other load hits both alike.
      const order = r % 2 === 0 ? ['continuous', 'static'] : ['static', 'continuous'];
      for (const name of order) {
        const res = await serve(name, gaps);
        runs[name].push(res);
        log(
          `staggered run ${r + 1}/${repeats}, ${name}: ${res.tokensPerSecond.toFixed(0)} tokens/s, TTFT p50/p95 ${res.ttftP50.toFixed(0)}/${res.ttftP95.toFixed(0)} ms, ` +
            `e2e p50/p95 ${res.e2eP50.toFixed(0)}/${res.e2eP95.toFixed(0)} ms, ${res.meanInFlight.toFixed(1)} in flight; other processes ${res.backgroundCores.toFixed(1)} cores; ` +
            `prefill ${res.prefillS.toFixed(1)} s, ${res.steps} steps of ${res.meanRows.toFixed(1)} rows ${res.decodeS.toFixed(1)} s, attention padding x${res.paddingRatio.toFixed(2)}`,
        );
      }
    }
  } finally {
    await pipeline.release();
  }
  return { requests, repeats, maxRows, maxTokens, meanTokens, ratePerSecond, rateShare, runs };
}
