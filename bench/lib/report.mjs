// Turns the raw runs into figures (median and spread), ratios with their targets, and the
// results markdown.
import { fmt, round, summarize } from './stats.mjs';


/** Per-run ratio a[i] / b[i] (runs of both were interleaved in the same order). */
function ratioRuns(a, b) {
  const n = Math.min(a.length, b.length);
  return Array.from({ length: n }, (_, i) => a[i] / b[i]);
}

export function buildReport(r) {
  const figures = {};
  const ratios = [];
  const R = r.plan.repeats;

  let ceilingRuns;
  if (r.ceiling) {
    const configs = r.ceiling.configs;
    for (const c of configs) figures[`ceiling: ${c.name}`] = summarize(c.runs);
    ceilingRuns = Array.from({ length: R }, (_, i) => Math.max(...configs.map((c) => c.runs[i])));
    figures['ceiling (best)'] = summarize(ceilingRuns);
    const best = configs.reduce((a, b) => (summarize(b.runs).median > summarize(a.runs).median ? b : a));
    figures['ceiling (best)'].config = best.name;
  }

  let service;
  if (r.scheduler) {
    for (const [name, runs] of Object.entries(r.scheduler)) figures[`service: ${name}`] = summarize(runs.map((x) => x.textsPerSecond));
    service = r.scheduler['default (adaptive)']?.map((x) => x.textsPerSecond);
    const one = r.scheduler['batch 1']?.map((x) => x.textsPerSecond);
    const large = r.scheduler['fixed 64']?.map((x) => x.textsPerSecond);
    if (service && one && large) {
      const better = one.map((v, i) => Math.max(v, large[i]));
      ratios.push({ name: 'scheduler default / better fixed setting (batch 1 or fixed 64)', ...summarize(ratioRuns(service, better)), target: 1.0 });
    }
  }
  if (service && ceilingRuns) {
    ratios.push({
      name: 'service (single jobs) / ceiling',
      ...summarize(ratioRuns(service, ceilingRuns)),
      target: 0.85,
      note: 'the 0.85 target is for bulk via the batches API; single jobs shown for reference',
      informational: true,
    });
  }
  if (r.peer) {
    figures['peer: per text'] = summarize(r.peer.perText);
    figures['peer: arrays of 32'] = summarize(r.peer.arrays);
    if (service) {
      ratios.push({ name: 'service / transformers.js per text', ...summarize(ratioRuns(service, r.peer.perText)), target: 0.9 });
      ratios.push({ name: 'service / transformers.js arrays of 32', ...summarize(ratioRuns(service, r.peer.arrays)), target: 2.5 });
    }
  }
  if (r.submission) {
    const api = r.submission.api.map((x) => x.acceptedPerSecond);
    const raw = r.submission.raw.map((x) => x.jobsPerSecond);
    figures['API POST /v1/jobs accepted/s'] = summarize(api);
    figures['API POST p50 latency ms'] = summarize(r.submission.api.map((x) => x.p50Ms));
    figures['API POST p99 latency ms'] = summarize(r.submission.api.map((x) => x.p99Ms));
    figures['BullMQ Queue.add jobs/s'] = summarize(raw);
    figures['API CPU µs per request'] = summarize(r.submission.api.map((x) => x.apiCpuUsPerRequest));
    if (r.submission.apiQuiet) {
      figures['API (LOG_LEVEL=warn) accepted/s'] = summarize(r.submission.apiQuiet.map((x) => x.acceptedPerSecond));
      figures['API (LOG_LEVEL=warn) CPU µs per request'] = summarize(r.submission.apiQuiet.map((x) => x.apiCpuUsPerRequest));
    }
    ratios.push({ name: 'API accepted/s / raw Queue.add jobs/s', ...summarize(ratioRuns(api, raw)), target: 0.5 });
  }
  if (r.bulk) {
    figures['bulk via the batches API'] = summarize(r.bulk.rates);
    if (ceilingRuns) ratios.push({ name: 'bulk via the batches API / ceiling', ...summarize(ratioRuns(r.bulk.rates, ceilingRuns)), target: 0.85 });
  }
  if (r.interactive) {
    figures['interactive idle p50'] = summarize(r.interactive.map((x) => x.idle.p50));
    figures['interactive idle p95'] = summarize(r.interactive.map((x) => x.idle.p95));
    figures['interactive under bulk p50'] = summarize(r.interactive.map((x) => x.busy.p50));
    figures['interactive under bulk p95'] = summarize(r.interactive.map((x) => x.busy.p95));
    // Lower is better: the target is a ceiling, so it is checked as idle/busy >= 0.5.
    ratios.push({ name: 'idle p95 / p95 under bulk (p95 under bulk at most 2x idle)', ...summarize(r.interactive.map((x) => x.idle.p95 / x.busy.p95)), target: 0.5 });
  }
  if (r.generation) {
    figures['generation, 16 concurrent'] = summarize(r.generation.concurrent);
    figures['generation, one at a time'] = summarize(r.generation.sequential);
    ratios.push({ name: 'generation tokens/s: 16 concurrent / one at a time', ...summarize(ratioRuns(r.generation.concurrent, r.generation.sequential)), target: 4 });
    if (r.generation.split) {
      const { concurrent: c, sequential: q } = r.generation.split;
      figures['generation profile'] = {
        prefillMs: { concurrent: summarize(c.map((x) => x.prefillMs)), sequential: summarize(q.map((x) => x.prefillMs)) },
        decodeMsPerStep: { concurrent: summarize(c.map((x) => x.decodeMs / x.steps)), sequential: summarize(q.map((x) => x.decodeMs / x.steps)) },
        decodeMs: { concurrent: summarize(c.map((x) => x.decodeMs)), sequential: summarize(q.map((x) => x.decodeMs)) },
        decodeRatio: summarize(c.map((x, i) => q[i].decodeMs / x.decodeMs)),
      };
    }
  }
  if (r.largeVocab) {
    const v = r.largeVocab;
    figures['large vocab, 1 row'] = summarize(v.one);
    figures['large vocab, 16 rows'] = summarize(v.sixteen);
    figures['large vocab, outside session.run'] = summarize(v.outsideShare.map((x) => 100 * x));
    ratios.push({ name: 'large vocab tokens/s: 16 rows / 1 row', ...summarize(ratioRuns(v.sixteen, v.one)), target: 4 });
  }
  if (r.memory && r.memory.length >= 2) {
    const [small, large] = [r.memory[0], r.memory.at(-1)];
    for (const m of r.memory) {
      figures[`memory ${m.inputs}: API peak`] = summarize([m.apiPeakMiB]);
      figures[`memory ${m.inputs}: worker peak`] = summarize([m.workerPeakMiB]);
    }
    // At most 1.5x: checked as small/large >= 1/1.5.
    ratios.push({ name: `API peak RSS, ${small.inputs} / ${large.inputs} inputs (large at most 1.5x small)`, ...summarize([small.apiPeakMiB / large.apiPeakMiB]), target: round(1 / 1.5, 2) });
    ratios.push({ name: `worker peak RSS, ${small.inputs} / ${large.inputs} inputs (large at most 1.5x small)`, ...summarize([small.workerPeakMiB / large.workerPeakMiB]), target: round(1 / 1.5, 2) });
  }
  if (r.longInputs) {
    const L = r.longInputs;
    for (const key of ['idle', 'zeroShotOnly', 'bulkOnly', 'busy']) {
      figures[`long inputs ${key} p50`] = summarize(L.map((x) => x[key].p50));
      figures[`long inputs ${key} p95`] = summarize(L.map((x) => x[key].p95));
      figures[`long inputs ${key} loop max`] = summarize(L.map((x) => x[key].loop.maxMs));
      figures[`long inputs ${key} loop p99`] = summarize(L.map((x) => x[key].loop.p99Ms));
      figures[`long inputs ${key} background`] = summarize(L.map((x) => x[key].backgroundCores ?? NaN));
    }
    // Lower is better: at most 2x idle, checked as idle/busy >= 0.5.
    ratios.push({ name: 'idle p95 / p95 under long inputs (bulk 100k-char lines and zero-shot 50 labels x 100k chars; at most 2x idle)', ...summarize(L.map((x) => x.idle.p95 / x.busy.p95)), target: 0.5 });
  }
  if (r.staggered) {
    const { continuous: c, static: st } = r.staggered.runs;
    for (const [name, runs] of Object.entries(r.staggered.runs)) {
      for (const key of ['tokensPerSecond', 'ttftP50', 'ttftP95', 'e2eP50', 'e2eP95', 'meanInFlight', 'backgroundCores', 'prefillS', 'decodeS', 'meanRows', 'paddingRatio']) {
        figures[`staggered ${name} ${key}`] = summarize(runs.map((x) => x[key]));
      }
    }
    const pick = (runs, key) => runs.map((x) => x[key]);
    ratios.push({ name: 'staggered arrivals tokens/s: continuous / static', ...summarize(ratioRuns(pick(c, 'tokensPerSecond'), pick(st, 'tokensPerSecond'))), target: 1.5 });
    // Lower is better: p95 TTFT at most 0.5x static, checked as static/continuous >= 2.
    ratios.push({ name: 'staggered arrivals p95 time to first token: static / continuous (continuous at most 0.5x static)', ...summarize(ratioRuns(pick(st, 'ttftP95'), pick(c, 'ttftP95'))), target: 2 });
  }
  for (const x of ratios) x.met = x.median >= x.target;
  return { figures, ratios };
}

const rowFor = (label, s, unit, digits = 1) => `| ${label} | ${fmt(s, digits)} | ${unit} |`;

export function renderMarkdown(r, report, { tablesOnly = false } = {}) {
  const f = report.figures;
  const lines = [];
  const R = r.plan.repeats;
  if (!tablesOnly) {
    lines.push(`# inferq bench, ${r.startedAt.slice(0, 10)} (${r.mode})`, '');
    const m = r.machine;
    lines.push(
      `- Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB; Node ${m.node}; onnxruntime-node ${m.onnxruntimeNode}; ` +
        `@huggingface/transformers ${m.transformers}; BullMQ ${m.bullmq}; Redis ${m.redis}; commit ${m.commit}.`,
      `- Model: \`inferq/bench-bert-classifier\` (tiny-models, 6 layers x 384, 30,522 vocabulary, fp32), the same folder for every scenario; ${r.threads} intra-op threads everywhere (the worker's THREADS, our session, transformers.js \`session_options.intraOpNumThreads\`).`,
      `- Inputs: review texts of ${r.inputs.words.min}–${r.inputs.words.max} words (log-uniform; median ${r.inputs.words.p50}, p90 ${r.inputs.words.p90}), built from ${r.inputs.origin === 'shared-data' ? `real sentences of ${r.inputs.sources.join(', ')} in ../shared/data` : 'synthetic sentences (../shared/data absent)'}.` +
        (r.ceiling ? ` Tokens per text: median ${r.ceiling.tokens.p50}, p90 ${r.ceiling.tokens.p90}, max ${r.ceiling.tokens.max}.` : ''),
      `- Other processes share this machine (other sessions' builds and test runs): each slice's background load (machine CPU time minus ours, in cores) is measured, a slice taken under too much of it is measured again, and what remains is summarized below; on 2 cores every figure is sensitive to it.`,
      `- Every figure: median (min–max) over ${R} runs; runs of compared settings are interleaved (ceiling and peer finely: every run is cut into slices that alternate between configurations). Ceiling and peer: ${r.plan.m} texts per run; service: ${r.plan.n} single jobs per run (after ${r.plan.warmup} untimed warm-up jobs). Wall time of this bench: ${(r.wallSeconds / 60).toFixed(1)} min.`,
      '',
    );
  }

  lines.push('## Results', '', '| scenario | median (min–max) | unit |', '|---|---|---|');
  if (f['ceiling (best)']) lines.push(rowFor(`1. ceiling: raw session.run, best of the sweep (${f['ceiling (best)'].config})`, f['ceiling (best)'], 'texts/s'));
  else lines.push('| 1. ceiling | not run | |');
  if (r.scheduler) {
    for (const name of Object.keys(r.scheduler)) lines.push(rowFor(`2. service, single jobs, ${name}`, f[`service: ${name}`], 'texts/s'));
  } else lines.push('| 2. service | not run | |');
  if (f['bulk via the batches API']) lines.push(rowFor(`2. bulk via the batches API (${r.bulk.texts} reviews, upload to last result read)`, f['bulk via the batches API'], 'texts/s'));
  else lines.push('| 2. bulk via the batches API | not run | |');
  if (f['peer: per text']) {
    lines.push(rowFor('3. transformers.js pipeline, per text', f['peer: per text'], 'texts/s'));
    lines.push(rowFor('3. transformers.js pipeline, arrays of 32', f['peer: arrays of 32'], 'texts/s'));
  } else lines.push('| 3. peer | not run | |');
  if (f['API POST /v1/jobs accepted/s']) {
    lines.push(rowFor('4. API POST /v1/jobs, no worker running (autocannon, 32 connections)', f['API POST /v1/jobs accepted/s'], 'accepted jobs/s', 0));
    lines.push(rowFor('4. API POST /v1/jobs latency p50', f['API POST p50 latency ms'], 'ms'));
    lines.push(rowFor('4. API POST /v1/jobs latency p99', f['API POST p99 latency ms'], 'ms'));
    lines.push(rowFor('4. BullMQ Queue.add in-process, 32 in flight, same Redis', f['BullMQ Queue.add jobs/s'], 'jobs/s', 0));
    if (f['API (LOG_LEVEL=warn) accepted/s']) lines.push(rowFor('4. (profile) the same API at LOG_LEVEL=warn: no per-request log lines', f['API (LOG_LEVEL=warn) accepted/s'], 'accepted jobs/s', 0));
  } else lines.push('| 4. submission rate | not run | |');
  if (f['interactive idle p95']) {
    const n = r.interactive[0].bulkInputs;
    lines.push(rowFor('6. single jobs at 5/s, idle: p50', f['interactive idle p50'], 'ms', 0));
    lines.push(rowFor('6. single jobs at 5/s, idle: p95', f['interactive idle p95'], 'ms', 0));
    lines.push(rowFor(`6. single jobs at 5/s, during a ${n}-input batch: p50`, f['interactive under bulk p50'], 'ms', 0));
    lines.push(rowFor(`6. single jobs at 5/s, during a ${n}-input batch: p95`, f['interactive under bulk p95'], 'ms', 0));
  } else lines.push('| 6. interactive latency under bulk | not run | |');
  if (f['generation, 16 concurrent']) {
    const sizes = r.generation.batchSizes ?? [];
    const batches = sizes.length > 0 ? `, batches of ${[...new Set(sizes)].sort((a, b) => b - a).join('/')}` : '';
    lines.push(rowFor(`7. generation, 16 concurrent requests x 128 new tokens (bench llama 6 x 384, 32k vocabulary${batches})`, f['generation, 16 concurrent'], 'tokens/s', 0));
    lines.push(rowFor('7. generation, the same requests one at a time', f['generation, one at a time'], 'tokens/s', 0));
  } else lines.push('| 7. generation | not run | |');
  if (f['large vocab, 1 row']) {
    const v = r.largeVocab;
    const label = `10. generation, bench llama 6 x 384 with a 151,936-token vocabulary, ${v.newTokens} new tokens`;
    lines.push(rowFor(`${label}: 1 row`, f['large vocab, 1 row'], 'tokens/s', 1));
    lines.push(rowFor(`${label}: 16 rows (one batch)`, f['large vocab, 16 rows'], 'tokens/s', 1));
    lines.push(rowFor('10. share of a 16-row decoding step spent outside session.run (goal < 10 %)', f['large vocab, outside session.run'], '%', 1));
    if (v.backgroundCores) lines.push(rowFor('10. (load) cores other processes used during the 16-row runs', summarize(v.backgroundCores), 'cores', 1));
    for (const [name, p] of Object.entries(v.prefill)) {
      const where = {
        thread: 'on its session thread (default, 256 MiB of logits per run)',
        main: 'on the main thread (prefillThread: false)',
        thread64: 'on its session thread, prefillLogitsBytes 64 MiB',
      }[name] ?? name;
      lines.push(`| 10. prefill ${v.prefillRows} x ${v.prefillTokens} ${where}: peak RSS (after load ${p.loadedRssMiB.toFixed(0)}; all logits would be ${v.fullLogitsMiB.toFixed(0)}) | ${p.peakRssMiB.toFixed(0)} | MiB |`);
      const load = p.backgroundCores === undefined ? '' : `; other processes used ${p.backgroundCores.toFixed(1)} cores`;
      lines.push(`| 10. prefill ${v.prefillRows} x ${v.prefillTokens} ${where}: event loop delay p99 (max ${p.loopMaxMs.toFixed(0)}; prefill ${(p.prefillMs / 1000).toFixed(1)} s${load}) | ${p.loopP99Ms.toFixed(0)} | ms |`);
    }
  } else lines.push('| 10. large vocabulary | not run | |');
  if (f['staggered continuous tokensPerSecond']) {
    const g = r.staggered;
    const label = `11. staggered arrivals, ${g.requests} chat requests, max_new_tokens 32-256 (mean ${g.meanTokens.toFixed(0)}), Poisson ${g.ratePerSecond.toFixed(2)}/s (bench llama)`;
    for (const name of ['continuous', 'static']) {
      lines.push(rowFor(`${label}, ${name}: tokens/s`, f[`staggered ${name} tokensPerSecond`], 'tokens/s', 0));
      lines.push(rowFor(`11. ${name}: time to first token p50`, f[`staggered ${name} ttftP50`], 'ms', 0));
      lines.push(rowFor(`11. ${name}: time to first token p95`, f[`staggered ${name} ttftP95`], 'ms', 0));
      lines.push(rowFor(`11. ${name}: end-to-end latency p50`, f[`staggered ${name} e2eP50`], 'ms', 0));
      lines.push(rowFor(`11. ${name}: end-to-end latency p95`, f[`staggered ${name} e2eP95`], 'ms', 0));
      lines.push(rowFor(`11. ${name}: requests in flight (time-weighted mean)`, f[`staggered ${name} meanInFlight`], 'requests', 1));
      lines.push(rowFor(`11. (load) ${name}: cores other processes used`, f[`staggered ${name} backgroundCores`], 'cores', 1));
      if (f[`staggered ${name} paddingRatio`]) {
        lines.push(rowFor(`11. (profile) ${name}: rows per decoding step`, f[`staggered ${name} meanRows`], 'rows', 1));
        lines.push(rowFor(`11. (profile) ${name}: attention-mask cells per real token in decoding steps (padding)`, f[`staggered ${name} paddingRatio`], 'x', 2));
        lines.push(rowFor(`11. (profile) ${name}: session time in decoding steps`, f[`staggered ${name} decodeS`], 's', 1));
        lines.push(rowFor(`11. (profile) ${name}: session time in prefills`, f[`staggered ${name} prefillS`], 's', 1));
      }
    }
  } else lines.push('| 11. staggered arrivals | not run | |');
  if (r.memory) {
    for (const m of r.memory) {
      lines.push(`| 8. peak RSS, batch of ${m.inputs} inputs run to the end (${m.seconds.toFixed(0)} s): API | ${m.apiPeakMiB.toFixed(0)} | MiB |`);
      lines.push(`| 8. peak RSS, batch of ${m.inputs} inputs run to the end: worker | ${m.workerPeakMiB.toFixed(0)} | MiB |`);
    }
  } else lines.push('| 8. memory | not run | |');
  if (f['long inputs busy p95']) {
    const L = r.longInputs[0];
    const phases = {
      idle: 'idle',
      zeroShotOnly: `zero-shot jobs of ${L.labels} labels x ${L.chars} chars (bench NLI)`,
      bulkOnly: `a bulk batch of ${L.bulkInputs} lines of ${L.chars} chars`,
      busy: 'both',
    };
    for (const [key, label] of Object.entries(phases)) {
      lines.push(rowFor(`9. single jobs at 5/s, ${label}: p50 / p95`, f[`long inputs ${key} p50`], 'ms', 0).replace(/ \| ms \|$/, ` / ${fmt(f[`long inputs ${key} p95`], 0)} | ms |`));
      lines.push(rowFor(`9. worker event loop delay, ${label}: max / p99 (worst 1 s window)`, f[`long inputs ${key} loop max`], 'ms', 0).replace(/ \| ms \|$/, ` / ${fmt(f[`long inputs ${key} loop p99`], 0)} | ms |`));
    }
    lines.push(`| 9. other processes' CPU meanwhile (idle / zero-shot / bulk / both) | ${['idle', 'zeroShotOnly', 'bulkOnly', 'busy'].map((k) => fmt(f[`long inputs ${k} background`], 2)).join(' / ')} | cores |`);
  } else lines.push('| 9. long inputs | not run | |');
  lines.push('');

  lines.push('## Ratios and targets', '', '| ratio | median (min–max) | target | |', '|---|---|---|---|');
  for (const x of report.ratios) {
    const verdict = x.informational ? `— (${x.note})` : x.met ? 'met' : 'missed';
    lines.push(`| ${x.name} | ${fmt(x, 2)} | ≥ ${x.target} | ${verdict} |`);
  }
  lines.push('');
  if (tablesOnly) return lines.join('\n');

  if (r.ceiling) {
    lines.push('## Ceiling sweep (scenario 1)', '', 'Pre-tokenized, pre-padded inputs; `session.run` only. Sorted batches are cut as the static scheduler cuts them (at most 64 inputs).', '');
    lines.push('| configuration | mean batch | padded / real tokens | texts/s |', '|---|---|---|---|');
    for (const c of r.ceiling.configs) lines.push(`| ${c.name} | ${c.meanBatch.toFixed(1)} | ${c.paddingRatio.toFixed(2)} | ${fmt(summarize(c.runs))} |`);
    lines.push('');
  }

  if (r.scheduler) {
    lines.push('## Scheduler detail (scenario 2)', '');
    lines.push('Settings: ' + r.schedulerSettings.map((s) => `**${s.name}**: ${Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join(' ') || 'no batching variables (BATCHING=adaptive, caps MAX_BATCH_SIZE=32, MAX_BATCH_TOKENS=8192, MAX_DELAY_MS=5)'}`).join('; ') + '. Worker concurrency is 2 x MAX_BATCH_SIZE in each.', '');
    lines.push('| setting | texts/s | texts per service CPU-second | mean batch | padded / real | session busy | batch ms per text | CPU s per 1000 texts: worker / API / Redis / bench client | background load, cores |', '|---|---|---|---|---|---|---|---|---|');
    for (const [name, runs] of Object.entries(r.scheduler)) {
      const med = (fn) => summarize(runs.map(fn));
      const cpu = (k) => med((x) => (x.cpuSeconds[k] / r.plan.n) * 1000).median.toFixed(1);
      lines.push(
        `| ${name} | ${fmt(med((x) => x.textsPerSecond))} | ${fmt(med((x) => r.plan.n / (x.cpuSeconds.worker + x.cpuSeconds.api + x.cpuSeconds.redis)))} | ${fmt(med((x) => x.meanBatch))} | ${fmt(med((x) => x.meanPaddingRatio), 2)} | ${fmt(med((x) => x.sessionBusy * 100), 0)}% | ${fmt(med((x) => x.batchMsPerText), 2)} | ${cpu('worker')} / ${cpu('api')} / ${cpu('redis')} / ${cpu('benchClient')} | ${fmt(med((x) => x.backgroundCores), 2)} |`,
      );
    }
    lines.push('');
  }

  const bg = [];
  if (r.ceiling?.backgroundCores) bg.push(`ceiling ${fmt(summarize(r.ceiling.backgroundCores), 2)}`);
  if (r.peer?.backgroundCores) bg.push(`peer ${fmt(summarize(r.peer.backgroundCores), 2)}`);
  if (r.scheduler) bg.push(`service runs ${fmt(summarize(Object.values(r.scheduler).flat().map((x) => x.backgroundCores)), 2)}`);
  if (r.submission) bg.push(`submission ${fmt(summarize(r.submission.api.map((x) => x.backgroundCores)), 2)}`);
  const rerun = r.rerun
    ? ` A slice measured while other processes used more than ${r.rerun.maxBackgroundCores} cores was measured again (at most ${r.rerun.retries} times); discarded slices: ${JSON.stringify(r.rerun.discardedSlices)}.` +
      (r.rerun.serviceRestarts ? ` A service process was killed from outside ${r.rerun.serviceRestarts} time(s); its stack was restarted (new queue, warm-up) and the slice measured again.` : '')
    : '';
  lines.push('## Background load', '', `Cores used by other processes while each scenario ran, in the slices kept (median, min–max over runs): ${bg.join('; ')}.${rerun}`, '');

  lines.push('## Profile: where the time goes', '');
  if (r.ceiling) {
    lines.push(
      `- Tokenization (in the worker, at submit): ${r.ceiling.tokenizeMsPerText.toFixed(2)} ms per text; padding a batch (\`padBatch\`): ${r.ceiling.padMsPerBatch.toFixed(2)} ms per batch; ` +
        `\`session.run\` in the ceiling sweep: ${r.ceiling.sessionMsPerText.toFixed(1)} ms per text on average.`,
    );
  }
  if (r.scheduler) {
    for (const [name, runs] of Object.entries(r.scheduler)) {
      const busy = summarize(runs.map((x) => x.sessionBusy)).median;
      const perText = summarize(runs.map((x) => x.batchMsPerText)).median;
      lines.push(
        `- ${name}: the session ran batches ${(busy * 100).toFixed(0)}% of the wall time (the rest: waiting for jobs to arrive and results to be stored); ` +
          `a batch cost ${perText.toFixed(2)} ms per text inside the worker (padding, session, softmax).`,
      );
    }
  }
  if (r.submission) {
    const q = f['API (LOG_LEVEL=warn) CPU µs per request'];
    lines.push(
      `- Submission: the API spent ${fmt(f['API CPU µs per request'], 0)} µs of CPU per accepted POST` +
        (q ? ` at its default LOG_LEVEL=info, ${fmt(q, 0)} µs at LOG_LEVEL=warn (no per-request log lines), which accepted ${fmt(f['API (LOG_LEVEL=warn) accepted/s'], 0)} jobs/s` : '') +
        `. Per run, cores used by the API / Redis / autocannon: ${r.submission.api.map((x) => `${x.cpuCores.api.toFixed(2)} / ${x.cpuCores.redis.toFixed(2)} / ${x.cpuCores.autocannon.toFixed(2)}`).join('; ')}. ` +
        `Queue.add in-process: ${fmt(summarize(r.submission.raw.map((x) => x.cpuUsPerAdd)), 0)} µs of CPU per job.`,
    );
  }
  const g = f['generation profile'];
  if (g) {
    lines.push(
      `- Generation, session time: the prompts (prefill) took ${fmt(g.prefillMs.concurrent, 0)} ms as one batch of 16 (left-padded to the longest prompt) vs ${fmt(g.prefillMs.sequential, 0)} ms one at a time ` +
        `(compute-bound either way: batching saves little there). A decoding step took ${fmt(g.decodeMsPerStep.concurrent, 1)} ms for 16 rows vs ${fmt(g.decodeMsPerStep.sequential, 1)} ms for one row; ` +
        `decoding alone, 16 concurrent / one at a time: ${fmt(g.decodeRatio, 2)}x. The rest of a run is the decoding loop in JS (logits processors, argmax over 32,000 logits per row).`,
    );
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}
