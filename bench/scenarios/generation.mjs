// Scenario 7, generation: tokens/s for 16 concurrent requests (128 new tokens each) through
// the worker's path (TextGenerationPipeline behind a BatchScheduler, as apps/worker runs it),
// vs the same requests one at a time. Decode steps are small matrix-vector products, so
// batching them should pay even on a CPU.
import { BatchScheduler, TextGenerationPipeline } from '@inferq/inference';

export async function runGeneration({ modelDir, threads, prompts, newTokens = 128, repeats = 3, log = () => {} }) {
  const pipeline = await TextGenerationPipeline.load(modelDir, { intraOpThreads: threads });
  const scheduler = new BatchScheduler({
    prepare: (p) => p,
    cost: (p) => pipeline.cost(p),
    groupKey: (p) => pipeline.groupKey(p),
    run: (batch) => pipeline.run(batch),
    maxBatchSize: 32,
    maxBatchTokens: 16_384,
    maxDelayMs: 5,
    onBatch: (stats) => batchSizes.push(stats.size),
  });
  // Exactly `newTokens` each, whatever the random model says (no early end of sequence).
  const requests = () => prompts.map((input) => pipeline.prepare({ input, maxNewTokens: newTokens, minNewTokens: newTokens }));
  const tokens = (outs) => outs.reduce((n, o) => n + o.outputTokens, 0);
  const concurrent = [];
  const sequential = [];
  // Profile: session time split into prefill (the prompts) and decoding steps, per mode.
  const split = { concurrent: [], sequential: [] };
  let current;
  // The prefill runs on its own session (a worker thread) unless prefillThread is false.
  const profile = (session) => {
    const run = session.run.bind(session);
    session.run = async (feeds, ...rest) => {
      const t0 = performance.now();
      const out = await run(feeds, ...rest);
      if (current) {
        const ms = performance.now() - t0;
        if ((feeds.input_ids?.dims[1] ?? 1) > 1) current.prefillMs += ms;
        else {
          current.decodeMs += ms;
          current.steps++;
        }
      }
      return out;
    };
  };
  for (const session of new Set([pipeline.session, pipeline.prefillSession ?? pipeline.session])) profile(session);
  const measure = (mode) => {
    current = { prefillMs: 0, decodeMs: 0, steps: 0 };
    split[mode].push(current);
  };
  /** Sizes of the batches the scheduler ran in the timed concurrent rounds. */
  const batchSizes = [];
  try {
    // Warm-up, untimed: the session's first runs, and the adaptive policy's first batches
    // (it tries a few sizes to learn what batches cost on this device, as in the service).
    await pipeline.run(requests().slice(0, 2));
    await Promise.all(requests().map((p) => scheduler.submit(p)));
    batchSizes.length = 0;
    for (let r = 0; r < repeats; r++) {
      measure('concurrent');
      let start = performance.now();
      const outs = await Promise.all(requests().map((p) => scheduler.submit(p)));
      concurrent.push((tokens(outs) / (performance.now() - start)) * 1000);
      measure('sequential');
      start = performance.now();
      const alone = [];
      for (const p of requests()) alone.push(...(await pipeline.run([p])));
      sequential.push((tokens(alone) / (performance.now() - start)) * 1000);
      current = undefined;
      log(`generation run ${r + 1}/${repeats}: ${concurrent.at(-1).toFixed(0)} tokens/s concurrent, ${sequential.at(-1).toFixed(0)} one at a time`);
    }
  } finally {
    await scheduler.close();
    await pipeline.release();
  }
  return { concurrent, sequential, requests: prompts.length, newTokens, batchSizes, split };
}
