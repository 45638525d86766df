// Scenario 9, large vocabulary: the bench llama with Qwen2.5's 151,936-token vocabulary.
// - tokens/s at 1 row and at 16 rows (one batch), greedy, exactly `newTokens` each;
// - at 16 rows, the share of a decoding step spent outside session.run (logits processing,
//   token choice, stop/stream checks, KV cache bookkeeping, building the next feeds);
// - a 16 x 512 prefill in a fresh process: peak RSS and event loop delay p99, with the
//   prefill on its session thread (the default) and on the main thread.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TextGenerationPipeline } from '@inferq/inference';
import { selfCpuSeconds, startLoadMeter } from '../lib/load.mjs';

const run = promisify(execFile);

/** Wraps a session's run, recording [start, end] of every call. */
function timed(session, calls) {
  const inner = session.run.bind(session);
  session.run = async (feeds, ...rest) => {
    const start = performance.now();
    const out = await inner(feeds, ...rest);
    calls.push({ start, end: performance.now(), width: feeds.input_ids?.dims[1] ?? 1 });
    return out;
  };
}

export async function runLargeVocab({ modelDir, threads, prompts, newTokens, repeats, prefillRows = 16, prefillTokens = 512, log = () => {} }) {
  const pipeline = await TextGenerationPipeline.load(modelDir, { intraOpThreads: threads });
  const decodeCalls = [];
  timed(pipeline.session, decodeCalls);
  const requests = (n) => prompts.slice(0, n).map((input) => pipeline.prepare({ input, maxNewTokens: newTokens, minNewTokens: newTokens }));
  const one = [];
  const sixteen = [];
  const outsideShare = [];
  /** Cores other processes used while the 16-row runs were measured. */
  const backgroundCores = [];
  try {
    await pipeline.run(requests(2)); // warm-up
    for (let r = 0; r < repeats; r++) {
      let t0 = performance.now();
      let outs = await pipeline.run(requests(1));
      one.push((outs[0].outputTokens / (performance.now() - t0)) * 1000);
      decodeCalls.length = 0;
      const meter = startLoadMeter();
      const cpu0 = process.cpuUsage();
      t0 = performance.now();
      outs = await pipeline.run(requests(16));
      backgroundCores.push(meter.stop(selfCpuSeconds(cpu0)).backgroundCores);
      sixteen.push((outs.reduce((n, o) => n + o.outputTokens, 0) / (performance.now() - t0)) * 1000);
      // Decoding steps: gaps between consecutive session.run calls are the work outside it.
      const steps = decodeCalls.filter((c) => c.width === 1);
      let inside = 0;
      let outside = 0;
      steps.forEach((c, i) => {
        inside += c.end - c.start;
        if (i > 0) outside += c.start - steps[i - 1].end;
      });
      outsideShare.push(outside / (inside + outside));
      log(`large-vocab run ${r + 1}/${repeats}: ${one.at(-1).toFixed(1)} tokens/s at 1 row, ${sixteen.at(-1).toFixed(1)} at 16 rows, ${(100 * outsideShare.at(-1)).toFixed(1)} % of a step outside session.run; other processes used ${backgroundCores.at(-1).toFixed(1)} cores`);
    }
  } finally {
    await pipeline.release();
  }
  const child = fileURLToPath(new URL('./prefill-child.mjs', import.meta.url));
  const prefill = {};
  // The default (prefill thread, 256 MiB of logits per run), the main thread, and a 64 MiB budget.
  for (const [name, thread, budget] of [['thread', '1', ''], ['main', '0', ''], ['thread64', '1', '64']]) {
    const meter = startLoadMeter();
    const args = [child, modelDir, String(threads), String(prefillRows), String(prefillTokens), thread, ...(budget ? [budget] : [])];
    const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 20 });
    prefill[name] = JSON.parse(stdout.trim().split('\n').at(-1));
    prefill[name].backgroundCores = meter.stop(prefill[name].cpuSeconds).backgroundCores;
    log(`large-vocab prefill ${prefillRows} x ${prefillTokens} on the ${name} thread: ${JSON.stringify(prefill[name])}`);
  }
  const fullLogitsMiB = (prefillRows * prefillTokens * 151_936 * 4) / 2 ** 20;
  return { newTokens, repeats, one, sixteen, outsideShare, backgroundCores, prefillRows, prefillTokens, prefill, fullLogitsMiB };
}
