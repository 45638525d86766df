// Child process of scenario 9 (large-vocab): one prefill of ROWS prompts x TOKENS tokens on a
// fresh process, so that its peak RSS is the prefill's own. Prints one JSON line:
// RSS after load, peak RSS, event loop delay p99/max during the prefill, wall time.
// Usage: node prefill-child.mjs <modelDir> <threads> <rows> <tokens> <prefillThread 0|1> [prefillLogitsBytes in MiB]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { TextGenerationPipeline } from '@inferq/inference';

const [modelDir, threads, rows, tokens, thread, budgetMiB] = process.argv.slice(2);
const pipeline = await TextGenerationPipeline.load(modelDir, {
  intraOpThreads: Number(threads),
  prefillThread: thread === '1',
  ...(budgetMiB ? { prefillLogitsBytes: Number(budgetMiB) * 2 ** 20 } : {}),
});
const base = pipeline.prepare({ input: 'x', maxNewTokens: 1 });
// Prompts of exactly TOKENS ids each (ordinary byte-level tokens, different per row).
const prepared = Array.from({ length: Number(rows) }, (_, r) => ({
  ...base,
  promptIds: Array.from({ length: Number(tokens) }, (_, i) => 32 + ((i * 7 + r * 13) % 400)),
}));
const mib = (bytes) => bytes / 2 ** 20;
const loadedRss = mib(process.memoryUsage().rss);
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
const t0 = performance.now();
await pipeline.run(prepared);
const ms = performance.now() - t0;
delay.disable();
const peakRss = process.resourceUsage().maxRSS / 1024;
await pipeline.release();
const cpu = process.cpuUsage();
console.log(JSON.stringify({ loadedRssMiB: loadedRss, peakRssMiB: peakRss, loopP99Ms: delay.percentile(99) / 1e6, loopMaxMs: delay.max / 1e6, prefillMs: ms, cpuSeconds: (cpu.user + cpu.system) / 1e6 }));
