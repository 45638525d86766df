// inferq benchmarks. `npm run bench` (full: about 2 h on 2 cores with the default 3 repeats, 85 min with --repeats=2) or
// `npm run bench -- --quick` (a few minutes). Writes bench/results/<date>.md and .json
// (`<date>-quick.*` for --quick). Options: --only=ceiling,scheduler,peer,submission
// --repeats=N --n=N (texts per service run) --m=N (texts for ceiling and peer)
// --slices=N (rounds each run is cut into, see below).
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TextClassificationPipeline } from '@inferq/inference';
import { BENCH_CLASSIFIER, BENCH_CLASSIFIER_ID, BENCH_LLAMA_ID, BENCH_LLAMA_152K_ID, TINY_CLASSIFIER_ID, TINY_NLI, ensureModel } from '@inferq/tiny-models';
import { machineInfo } from './lib/machine.mjs';
import { renderMarkdown, buildReport } from './lib/report.mjs';
import { startLoadMeter } from './lib/load.mjs';
import { cpuSeconds, redisInfo } from './lib/services.mjs';
import { reviewTexts } from './lib/texts.mjs';
import { createCeiling } from './scenarios/ceiling.mjs';
import { createPeer } from './scenarios/peer.mjs';
import { createServiceStacks } from './scenarios/scheduler.mjs';
import { runSubmission } from './scenarios/submission.mjs';
import { runBulk } from './scenarios/bulk.mjs';
import { runInteractive } from './scenarios/interactive.mjs';
import { runGeneration } from './scenarios/generation.mjs';
import { runLargeVocab } from './scenarios/large-vocab.mjs';
import { runStaggered } from './scenarios/staggered.mjs';
import { runMemory } from './scenarios/memory.mjs';
import { runLongInputs } from './scenarios/long-inputs.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH_DIR, '..');
const MODELS_DIR = join(BENCH_DIR, '.models');

const SCENARIOS = ['ceiling', 'peer', 'scheduler', 'submission', 'bulk', 'interactive', 'generation', 'memory', 'long-inputs', 'large-vocab', 'staggered'];

function parseArgs(argv) {
  const args = { quick: false, only: SCENARIOS };
  for (const a of argv) {
    const [k, v] = a.replace(/^--/, '').split('=');
    if (k === 'quick') args.quick = true;
    else if (k === 'only') args.only = (v ?? '').split(',').filter(Boolean);
    else if (k === 'label') args.label = v;
    else if (['repeats', 'n', 'm', 'slices'].includes(k)) args[k] = Number(v);
    else throw new Error(`unknown option ${a}; known: --quick --only=${SCENARIOS.join(',')} --repeats=N --n=N --m=N --slices=N --label=NAME`);
  }
  for (const s of args.only) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
  return args;
}

const args = parseArgs(process.argv.slice(2));
const mode = args.quick ? 'quick' : 'full';
const plan = {
  quick: {
    m: 64, budgets: [512, 2048, 8192], n: 150, slices: 2, warmup: 32, repeats: 3, submitSeconds: 2,
    bulkN: 600, probes: 40, bulkInputs: 5000, memorySizes: [1000, 10_000], genRepeats: 2, longInputs: 32, longRepeats: 2, vocabTokens: 32, vocabRepeats: 3, staggeredRepeats: 2,
  },
  full: {
    m: 800, budgets: [256, 512, 1024, 2048, 4096, 8192], n: 10_000, slices: 10, warmup: 256, repeats: 3, submitSeconds: 15,
    bulkN: 10_000, probes: 150, bulkInputs: 50_000, memorySizes: [1000, 100_000], genRepeats: 3, longInputs: 128, longRepeats: 3, vocabTokens: 128, vocabRepeats: 3, staggeredRepeats: 3,
  },
}[mode];
Object.assign(plan, Object.fromEntries(['repeats', 'n', 'm', 'slices'].filter((k) => args[k]).map((k) => [k, args[k]])));
const threads = availableParallelism();
const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${msg}`);

log(`inferq bench, ${mode}: ${args.only.join(', ')}; ${plan.repeats} repeats; ${threads} intra-op threads everywhere`);
const modelDir = await ensureModel(MODELS_DIR, BENCH_CLASSIFIER_ID);
log(`model ${BENCH_CLASSIFIER_ID} in ${modelDir}`);

const corpus = reviewTexts(plan.warmup + plan.n, { root: ROOT });
const warmupTexts = corpus.texts.slice(0, plan.warmup);
const serviceTexts = corpus.texts.slice(plan.warmup);
const sampleTexts = serviceTexts.slice(0, plan.m);
log(`inputs: ${corpus.origin} (${corpus.sources.length} sources), words min/p50/p90/max ${Object.values(corpus.words).join('/')}`);

const results = { mode, plan, threads, machine: { ...machineInfo(ROOT), redis: (await redisInfo()).version }, inputs: corpus, startedAt: new Date(started).toISOString() };
delete results.inputs.texts;

// Scenarios 1-3 run interleaved: every run is cut into slices, and each round runs one
// slice of every scenario (and, inside the service scenario, of every setting), in a
// rotating order. Other processes on this machine come and go; this way a spell of their
// load hits every figure that is compared alike.
const redisPid = (await redisInfo()).pid;
/** Cores other processes may use during a slice before it is measured again, and how often it may be. */
const MAX_BACKGROUND = 0.2;
const RETRIES = 3;
const discarded = {};
let stacks;
const interleaved = [];
const cleanups = [];
const background = new Map();
const ourCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6 + [redisPid, ...(stacks?.pids() ?? [])].reduce((sum, pid) => sum + (cpuSeconds(pid) || 0), 0);
};
try {
  if (args.only.includes('ceiling')) {
    const pipeline = await TextClassificationPipeline.load(modelDir, { intraOpThreads: threads });
    cleanups.push(() => pipeline.release());
    interleaved.push(createCeiling({ pipeline, texts: sampleTexts, budgets: plan.budgets, maxSize: 64 }));
    log(`scenario 1, ceiling: ${sampleTexts.length} texts per run, batch 1 and sorted batches under ${plan.budgets.join('/')} tokens`);
  }
  if (args.only.includes('peer')) {
    const peer = await createPeer({ modelsDir: MODELS_DIR, modelId: BENCH_CLASSIFIER_ID, texts: sampleTexts, threads, arraySize: 32 });
    cleanups.push(() => peer.close());
    interleaved.push(peer);
    log(`scenario 3, peer: @huggingface/transformers on the same ${sampleTexts.length} texts, per text and arrays of 32`);
  }
  if (args.only.includes('scheduler')) {
    results.schedulerSettings = [
      { name: 'batch 1', env: { BATCHING: 'static', MAX_BATCH_SIZE: '1' } },
      { name: 'fixed 64', env: { BATCHING: 'static', MAX_BATCH_SIZE: '64', MAX_BATCH_TOKENS: String(64 * 512) } },
      { name: 'default (adaptive)', env: {} },
    ];
    stacks = await createServiceStacks({
      root: ROOT,
      modelsDir: MODELS_DIR,
      modelId: BENCH_CLASSIFIER_ID,
      texts: serviceTexts,
      warmupTexts,
      threads,
      settings: results.schedulerSettings,
      ourCpuSeconds,
      log,
    });
    cleanups.push(() => stacks.close());
    interleaved.push(stacks);
    log(`scenario 2, service: ${serviceTexts.length} single jobs per run through API + Redis + 1 worker, for each of: ${results.schedulerSettings.map((x) => x.name).join(', ')}`);
  }
  for (const sc of interleaved) await sc.warmUp();
  for (let r = 0; r < plan.repeats; r++) {
    for (const sc of interleaved) await sc.startRun();
    const busy = new Map(interleaved.map((sc) => [sc, { bg: 0, ms: 0 }]));
    for (let k = 0; k < plan.slices; k++) {
      for (let j = 0; j < interleaved.length; j++) {
        const sc = interleaved[(j + k) % interleaved.length];
        // A slice measured while other processes used more than MAX_BACKGROUND cores is
        // run again (at most RETRIES times); the service scenario does this per setting.
        for (let attempt = 0; ; attempt++) {
          const snap = sc.snapshot?.();
          const ours0 = ourCpuSeconds();
          const meter = startLoadMeter();
          await sc.runSlice(k, plan.slices, { maxBackground: MAX_BACKGROUND, retries: RETRIES });
          const { wallS, backgroundCores } = meter.stop(ourCpuSeconds() - ours0);
          if (snap && backgroundCores > MAX_BACKGROUND && attempt < RETRIES) {
            sc.restore(snap);
            discarded[sc.name] = (discarded[sc.name] ?? 0) + 1;
            continue;
          }
          busy.get(sc).bg += backgroundCores * wallS;
          busy.get(sc).ms += wallS;
          break;
        }
      }
      log(`  run ${r + 1}/${plan.repeats}, slice ${k + 1}/${plan.slices} done`);
    }
    for (const sc of interleaved) {
      const b = busy.get(sc);
      const list = background.get(sc.name) ?? [];
      list.push(b.bg / b.ms);
      background.set(sc.name, list);
      log(`  run ${r + 1}/${plan.repeats} ${sc.name}: ${await sc.endRun()}; background load ${(b.bg / b.ms).toFixed(2)} cores`);
    }
    // A checkpoint (git-ignored), so a run killed from outside leaves its finished repeats.
    const checkpoint = Object.fromEntries(interleaved.map((sc) => [sc.name, sc.result()]));
    await mkdir(join(BENCH_DIR, 'results'), { recursive: true });
    await writeFile(join(BENCH_DIR, 'results', `${new Date(started).toISOString().slice(0, 10)}-${mode}.tmp`), JSON.stringify({ plan, repeatsDone: r + 1, checkpoint }, null, 2));
  }
  results.rerun = {
    maxBackgroundCores: MAX_BACKGROUND,
    retries: RETRIES,
    discardedSlices: { ...discarded, ...(stacks ? { service: stacks.discarded() } : {}) },
    serviceRestarts: stacks?.restarts() ?? 0,
  };
  for (const sc of interleaved) {
    const key = sc.name === 'service' ? 'scheduler' : sc.name;
    results[key] = { ...sc.result() };
    if (sc.name !== 'service') results[key].backgroundCores = background.get(sc.name);
  }
} finally {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (err) {
      log(`cleanup failed: ${err.message}`);
    }
  }
}

if (args.only.includes('submission')) {
  log(`scenario 4, submission rate: autocannon POST /v1/jobs (no worker) vs Queue.add, ${plan.submitSeconds} s each`);
  results.submission = await runSubmission({
    root: ROOT,
    modelsDir: MODELS_DIR,
    modelId: BENCH_CLASSIFIER_ID,
    input: sampleTexts.find((t) => t.split(' ').length >= 40) ?? sampleTexts[0],
    connections: 32,
    durationS: plan.submitSeconds,
    repeats: plan.repeats,
    log,
  });
}

// Scenarios that need the machine to themselves run one after another, after the rest.
if (args.only.includes('bulk')) {
  const texts = reviewTexts(plan.bulkN, { root: ROOT, seed: 7 }).texts;
  log(`scenario 2 (bulk): ${texts.length} reviews as one batch through the API, Redis and a worker`);
  results.bulk = await runBulk({ root: ROOT, modelsDir: MODELS_DIR, modelId: BENCH_CLASSIFIER_ID, threads, texts, warmupTexts, repeats: plan.repeats, log });
}
if (args.only.includes('interactive')) {
  const bulkTexts = reviewTexts(plan.bulkInputs, { root: ROOT, seed: 8 }).texts;
  log(`scenario 6, interactive: ${plan.probes} single jobs at 5/s, idle and under a ${bulkTexts.length}-input batch`);
  results.interactive = [];
  for (let r = 0; r < plan.repeats; r++) {
    results.interactive.push(
      await runInteractive({ root: ROOT, modelsDir: MODELS_DIR, modelId: BENCH_CLASSIFIER_ID, threads, probeTexts: sampleTexts.slice(0, plan.probes), bulkTexts, rate: 5, log }),
    );
  }
}
if (args.only.includes('generation')) {
  const llama = await ensureModel(MODELS_DIR, BENCH_LLAMA_ID);
  const prompts = sampleTexts.slice(0, 16).map((t) => t.split(' ').slice(0, 24).join(' '));
  log(`scenario 7, generation: 16 requests x 128 new tokens on ${BENCH_LLAMA_ID}, concurrent vs one at a time`);
  results.generation = await runGeneration({ modelDir: llama, threads, prompts, newTokens: 128, repeats: plan.genRepeats, log });
}
if (args.only.includes('large-vocab')) {
  const llama = await ensureModel(MODELS_DIR, BENCH_LLAMA_152K_ID);
  const prompts = sampleTexts.slice(0, 16).map((t) => t.split(' ').slice(0, 24).join(' '));
  log(`scenario 9, large vocabulary: ${BENCH_LLAMA_152K_ID}, 1 and 16 rows x ${plan.vocabTokens} new tokens; a 16 x 512 prefill in a fresh process`);
  results.largeVocab = await runLargeVocab({ modelDir: llama, threads, prompts, newTokens: plan.vocabTokens, repeats: plan.vocabRepeats, log });
}
if (args.only.includes('staggered')) {
  const llama = await ensureModel(MODELS_DIR, BENCH_LLAMA_ID);
  const prompts = sampleTexts.slice(0, 48).map((t) => t.split(' ').slice(0, 24).join(' '));
  log(`scenario 11, staggered arrivals: 48 chat requests, max_new_tokens 32-256, Poisson arrivals, continuous vs static batching on ${BENCH_LLAMA_ID}`);
  results.staggered = await runStaggered({ modelDir: llama, threads, prompts, requests: 48, repeats: plan.staggeredRepeats, log });
}
if (args.only.includes('memory')) {
  await ensureModel(MODELS_DIR, TINY_CLASSIFIER_ID);
  const pool = reviewTexts(2000, { root: ROOT, seed: 9 }).texts;
  log(`scenario 8, memory: peak RSS of API and worker for batches of ${plan.memorySizes.join(' and ')} inputs (tiny classifier)`);
  results.memory = await runMemory({
    root: ROOT, modelsDir: MODELS_DIR, modelId: TINY_CLASSIFIER_ID, threads, sizes: plan.memorySizes,
    makeTexts: (n) => Array.from({ length: n }, (_, i) => pool[i % pool.length]), log,
  });
}

if (args.only.includes('long-inputs')) {
  // A bench-sized NLI model: the bench classifier's sizes with MNLI's labels.
  const nliId = 'inferq/bench-nli';
  await ensureModel(MODELS_DIR, nliId, { ...BENCH_CLASSIFIER, labels: [...TINY_NLI.labels], seed: TINY_NLI.seed });
  const pool = reviewTexts(2000, { root: ROOT, seed: 10 }).texts;
  log(`scenario 9, long inputs: ${plan.probes} single jobs at 5/s, idle and under ${plan.longInputs} bulk inputs and zero-shot jobs of 50 labels, 100,000 characters each`);
  results.longInputs = [];
  for (let r = 0; r < plan.longRepeats; r++) {
    results.longInputs.push(
      await runLongInputs({ root: ROOT, modelsDir: MODELS_DIR, modelId: BENCH_CLASSIFIER_ID, nliId, threads, texts: pool, probeTexts: sampleTexts.slice(0, plan.probes), bulkInputs: plan.longInputs, log }),
    );
  }
}

results.wallSeconds = (Date.now() - started) / 1000;
const report = buildReport(results);
const date = new Date(started).toISOString().slice(0, 10);
const base = join(BENCH_DIR, 'results', [date, mode === 'quick' ? 'quick' : undefined, args.label].filter(Boolean).join('-'));
await mkdir(dirname(base), { recursive: true });
await writeFile(`${base}.json`, `${JSON.stringify({ ...results, report }, null, 2)}\n`);
await writeFile(`${base}.md`, renderMarkdown(results, report));
log(`wrote ${base}.md and ${base}.json (${(results.wallSeconds / 60).toFixed(1)} min)`);
console.log(`\n${renderMarkdown(results, report, { tablesOnly: true })}`);
