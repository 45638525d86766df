// Embeddings and clusters, measured through the service (real API, worker, Redis):
//
//   node bench/embeddings.mjs [--only=opinosis,throughput,scale] [--n=N] [--scale=N]
//
// 1. opinosis: the 51 Opinosis topics (~7,000 review sentences, ../shared/data; never used
//    for training) clustered through POST /v1/clusters with inferq/starter-embeddings, k = 51
//    and automatic k: purity, ARI, NMI. Next to them, in the same run on the same sentences,
//    TF-IDF (terms in at least 2 sentences, sublinear idf, unit rows) + k-means k = 51 with the
//    same library and starts (clusterVectors).
// 2. throughput: texts per second of an embedding batch (the bulk path) on a bench-sized
//    sentence-transformers model (6 x 384, inferq/bench-embeddings), and of transformers.js
//    feature-extraction on the same texts and model, one text per call and arrays of 32; ratios.
// 3. scale: a cluster run over N (default 100,000) review texts: embedding and clustering
//    time, and the worker's peak RSS (VmHWM).
// Writes bench/results/<date>-embeddings.md and .json (`<date>-embeddings-<parts>.*` with --only).
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env as hfEnv, pipeline as hfPipeline } from '@huggingface/transformers';
import { adjustedRandIndex, clusterVectors, keywordTerms, normalizedMutualInformation, purity } from '@inferq/inference';
import { BENCH_EMBEDDINGS_ID, STARTER_EMBEDDINGS_ID, ensureModel } from '@inferq/tiny-models';
import { machineInfo } from './lib/machine.mjs';
import { REDIS_URL, deletePrefix, startApi, startWorker, uniquePrefix } from './lib/services.mjs';
import { dataDir, reviewTexts } from './lib/texts.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH_DIR, '..');
const MODELS_DIR = join(BENCH_DIR, '.models');
const PARTS = ['opinosis', 'throughput', 'scale'];
const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const only = (args.only ?? PARTS.join(',')).split(',');
const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${msg}`);
const results = { machine: machineInfo(ROOT), startedAt: new Date(started).toISOString() };

async function post(url, body, headers = { 'content-type': 'application/json' }) {
  const res = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`POST ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function untilDone(url) {
  for (;;) {
    const view = await (await fetch(`${url}?wait=30`)).json();
    if (['completed', 'failed', 'cancelled', 'expired'].includes(view.status)) return view;
  }
}

const ndjson = (texts) => texts.map((input, i) => JSON.stringify({ custom_id: `t${i}`, input })).join('\n') + '\n';
const scores = (truth, found) => ({
  purity: purity(truth, found),
  ari: adjustedRandIndex(truth, found),
  nmi: normalizedMutualInformation(truth, found),
});

/** Starts an API and a worker on their own queue prefix. */
async function stack(models, apiEnv = {}, workerEnv = {}) {
  const prefix = uniquePrefix('bench-emb');
  const env = { REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR, LOG_LEVEL: 'warn' };
  const worker = await startWorker(ROOT, { ...env, LOG_LEVEL: 'info', WORKER_MODELS: models.join(','), ...workerEnv });
  const api = await startApi(ROOT, { ...env, DEFAULT_MODEL_EMBEDDING: models[0], BATCH_CHUNK_SIZE: '256', ...apiEnv });
  return {
    api,
    worker,
    async stop() {
      await Promise.all([api.proc.stop(), worker.proc.stop()]);
      await deletePrefix(prefix);
    },
  };
}

function opinosisSentences() {
  const dir = join(dataDir(ROOT), 'opinosis', 'topics');
  const texts = [];
  const topics = [];
  for (const file of readdirSync(dir).sort()) {
    for (const line of readFileSync(join(dir, file), 'latin1').split(/\r?\n/)) {
      if (line.trim()) {
        texts.push(line.trim());
        topics.push(file.replace(/\.txt\.data$/, ''));
      }
    }
  }
  return { texts, topics };
}

/** TF-IDF rows (terms in 2+ sentences, idf ln(n/df)+1, unit length), dense for ml-kmeans. */
function tfidf(texts) {
  const docs = texts.map(keywordTerms);
  const df = new Map();
  for (const d of docs) for (const w of new Set(d)) df.set(w, (df.get(w) ?? 0) + 1);
  const terms = [...df.keys()].filter((w) => df.get(w) >= 2).sort();
  const index = new Map(terms.map((w, i) => [w, i]));
  const rows = docs.map((d) => {
    const v = new Float32Array(terms.length);
    for (const w of d) {
      const i = index.get(w);
      if (i !== undefined) v[i] += 1;
    }
    let norm = 0;
    for (let i = 0; i < v.length; i++) {
      if (v[i]) {
        v[i] *= Math.log(texts.length / df.get(terms[i])) + 1;
        norm += v[i] ** 2;
      }
    }
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < v.length; i++) v[i] /= norm;
    return v;
  });
  return { rows, terms: terms.length };
}

/**
 * Squared Euclidean distance that reads only a row's non-zero entries: |p|^2 + |c|^2 - 2 p.c,
 * with each centroid's |c|^2 computed once. The same distance as the default, so the same
 * clusters; about 300 times fewer operations on TF-IDF rows of a few words out of thousands.
 */
function sparseDistance(rows) {
  const nonZero = new WeakMap();
  const centroidNorm = new WeakMap();
  return (p, c) => {
    let nz = nonZero.get(p);
    if (!nz) {
      nz = [];
      let sq = 0;
      for (let i = 0; i < p.length; i++) if (p[i] !== 0) (nz.push(i), (sq += p[i] * p[i]));
      nz = { idx: Int32Array.from(nz), sq };
      nonZero.set(p, nz);
    }
    let cn = centroidNorm.get(c);
    if (cn === undefined) {
      cn = 0;
      for (let i = 0; i < c.length; i++) cn += c[i] * c[i];
      centroidNorm.set(c, cn);
    }
    let dot = 0;
    for (const i of nz.idx) dot += p[i] * c[i];
    return nz.sq + cn - 2 * dot;
  };
}

async function opinosis() {
  const { texts, topics } = opinosisSentences();
  log(`opinosis: ${texts.length} sentences, ${new Set(topics).size} topics`);
  await ensureModel(MODELS_DIR, STARTER_EMBEDDINGS_ID);
  const s = await stack([STARTER_EMBEDDINGS_ID]);
  const out = { sentences: texts.length, topics: new Set(topics).size };
  try {
    for (const [name, settings] of [
      ['starter k=51', { num_clusters: 51 }],
      ['starter auto k', { max_clusters: 100 }],
    ]) {
      const t0 = performance.now();
      const run = await post(`${s.api.url}/v1/clusters?${new URLSearchParams(Object.entries(settings).map(([k, v]) => [k, String(v)]))}`, ndjson(texts), {
        'content-type': 'application/x-ndjson',
      });
      const view = await untilDone(`${s.api.url}/v1/clusters/${run.id}`);
      if (view.status !== 'completed') throw new Error(`cluster run ${view.status}: ${JSON.stringify(view.error)}`);
      const members = (await (await fetch(`${s.api.url}/v1/clusters/${run.id}/members`)).text()).trim().split('\n').map((l) => JSON.parse(l));
      const found = members.map((m) => m.cluster);
      const truth = members.map((m) => topics[Number(m.custom_id.slice(1))]);
      out[name] = { k: view.result.num_clusters, seconds: (performance.now() - t0) / 1000, ...scores(truth, found) };
      log(`opinosis ${name}: ${JSON.stringify(out[name])}`);
    }
  } finally {
    await s.stop();
  }
  const t0 = performance.now();
  const { rows, terms } = tfidf(texts);
  const baseline = clusterVectors(rows, { numClusters: 51, distance: sparseDistance(rows) });
  out['TF-IDF + k-means k=51'] = { k: 51, terms, seconds: (performance.now() - t0) / 1000, ...scores(topics, Array.from(baseline.assignments)) };
  log(`opinosis TF-IDF: ${JSON.stringify(out['TF-IDF + k-means k=51'])}`);
  return out;
}

async function throughput() {
  const n = Number(args.n ?? 2000);
  const texts = reviewTexts(n, { root: ROOT }).texts;
  const dir = await ensureModel(MODELS_DIR, BENCH_EMBEDDINGS_ID);
  log(`throughput: ${n} review texts, ${BENCH_EMBEDDINGS_ID} in ${dir}`);
  const out = { texts: n };
  const s = await stack([BENCH_EMBEDDINGS_ID]);
  try {
    // Warm-up batch, then the measured one.
    const warm = await post(`${s.api.url}/v1/batches?task=embedding`, ndjson(texts.slice(0, 64)), { 'content-type': 'application/x-ndjson' });
    await untilDone(`${s.api.url}/v1/batches/${warm.id}`);
    const t0 = performance.now();
    const batch = await post(`${s.api.url}/v1/batches?task=embedding`, ndjson(texts), { 'content-type': 'application/x-ndjson' });
    const done = await untilDone(`${s.api.url}/v1/batches/${batch.id}`);
    out.bulk = { textsPerSecond: n / ((performance.now() - t0) / 1000), status: done.status };
    log(`bulk: ${out.bulk.textsPerSecond.toFixed(1)} texts/s`);
  } finally {
    await s.stop();
  }
  hfEnv.localModelPath = MODELS_DIR;
  hfEnv.allowRemoteModels = false;
  const extractor = await hfPipeline('feature-extraction', BENCH_EMBEDDINGS_ID, { dtype: 'fp32' });
  await extractor(texts.slice(0, 8), { pooling: 'mean', normalize: true });
  const m = Math.min(n, 500);
  let t0 = performance.now();
  for (const text of texts.slice(0, m)) await extractor(text, { pooling: 'mean', normalize: true });
  out.transformersOne = { texts: m, textsPerSecond: m / ((performance.now() - t0) / 1000) };
  t0 = performance.now();
  for (let i = 0; i < n; i += 32) await extractor(texts.slice(i, i + 32), { pooling: 'mean', normalize: true });
  out.transformers32 = { texts: n, textsPerSecond: n / ((performance.now() - t0) / 1000) };
  await extractor.dispose();
  out.ratioOne = out.bulk.textsPerSecond / out.transformersOne.textsPerSecond;
  out.ratio32 = out.bulk.textsPerSecond / out.transformers32.textsPerSecond;
  log(`transformers.js: one ${out.transformersOne.textsPerSecond.toFixed(1)}/s, arrays of 32 ${out.transformers32.textsPerSecond.toFixed(1)}/s`);
  return out;
}

function peakRss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
}

async function scale() {
  const n = Number(args.scale ?? 100_000);
  const texts = reviewTexts(n, { root: ROOT, maxWords: 60 }).texts;
  await ensureModel(MODELS_DIR, STARTER_EMBEDDINGS_ID);
  const s = await stack([STARTER_EMBEDDINGS_ID], { BATCH_CHUNK_SIZE: '1000' }, { BACKGROUND_BATCH_TOKENS: '8192', BULK_CONCURRENCY: '4' });
  try {
    const rssBefore = peakRss(s.worker.proc.child.pid);
    const t0 = performance.now();
    const run = await post(`${s.api.url}/v1/clusters?num_clusters=50`, ndjson(texts), { 'content-type': 'application/x-ndjson' });
    let view;
    let embeddedAt;
    for (;;) {
      view = await (await fetch(`${s.api.url}/v1/clusters/${run.id}?wait=5`)).json();
      if (!embeddedAt && view.status !== 'embedding') embeddedAt = performance.now();
      if (view.status === 'completed' || view.status === 'failed') break;
    }
    const end = performance.now();
    const logLine = s.worker.proc.lines?.find?.((l) => l.msg === 'cluster run ended');
    const out = {
      vectors: n,
      status: view.status,
      totalSeconds: (end - t0) / 1000,
      embeddingSeconds: ((embeddedAt ?? end) - t0) / 1000,
      clusteringSeconds: logLine?.ms !== undefined ? logLine.ms / 1000 : (end - (embeddedAt ?? end)) / 1000,
      workerPeakRssMB: peakRss(s.worker.proc.child.pid) / 2 ** 20,
      workerRssBeforeMB: rssBefore / 2 ** 20,
    };
    log(`scale: ${JSON.stringify(out)}`);
    return out;
  } finally {
    await s.stop();
  }
}

if (only.includes('opinosis')) results.opinosis = await opinosis();
if (only.includes('throughput')) results.throughput = await throughput();
if (only.includes('scale')) results.scale = await scale();

const f = (x, d = 3) => (typeof x === 'number' ? x.toFixed(d) : '');
const md = [`# inferq embeddings bench, ${results.startedAt}`, '', `Machine: ${JSON.stringify(results.machine)}`, ''];
if (results.opinosis) {
  md.push(`## Opinosis: ${results.opinosis.sentences} sentences, ${results.opinosis.topics} topics`, '', '| method | k | purity | ARI | NMI | seconds |', '|---|---|---|---|---|---|');
  for (const [name, r] of Object.entries(results.opinosis)) if (typeof r === 'object') md.push(`| ${name} | ${r.k} | ${f(r.purity)} | ${f(r.ari)} | ${f(r.nmi)} | ${f(r.seconds, 1)} |`);
  md.push('');
}
if (results.throughput) {
  const t = results.throughput;
  md.push('## Embedding throughput (inferq/bench-embeddings, 6 x 384)', '', '| path | texts/s | inferq bulk / this |', '|---|---|---|');
  md.push(`| inferq bulk batch | ${f(t.bulk.textsPerSecond, 1)} | 1 |`);
  md.push(`| transformers.js, one text per call | ${f(t.transformersOne.textsPerSecond, 1)} | ${f(t.ratioOne, 2)} |`);
  md.push(`| transformers.js, arrays of 32 | ${f(t.transformers32.textsPerSecond, 1)} | ${f(t.ratio32, 2)} |`, '');
}
if (results.scale) {
  const s = results.scale;
  md.push(`## Cluster run over ${s.vectors} texts (starter-embeddings, k = 50)`, '', `Total ${f(s.totalSeconds, 1)} s: embedding ${f(s.embeddingSeconds, 1)} s, clustering ${f(s.clusteringSeconds, 1)} s; worker peak RSS ${f(s.workerPeakRssMB, 0)} MB (${f(s.workerRssBeforeMB, 0)} MB before).`, '');
}
const date = new Date().toISOString().slice(0, 10);
await mkdir(join(BENCH_DIR, 'results'), { recursive: true });
const name = `${date}-embeddings${only.length < PARTS.length ? `-${only.join('-')}` : ''}`;
await writeFile(join(BENCH_DIR, 'results', `${name}.json`), JSON.stringify(results, null, 2) + '\n');
await writeFile(join(BENCH_DIR, 'results', `${name}.md`), md.join('\n') + '\n');
console.log(md.join('\n'));
