// `npm run demo` (= `npm run build && node scripts/demo.mjs`): inferq end to end on one machine,
// with models that give sensible answers and no download.
//
// 1. Redis: the one at REDIS_URL if it answers, else a private `redis-server` on a free port.
// 2. The API and one worker (the built dist entry points) serving the starter models:
//    inferq/starter-sentiment (the default classifier) and inferq/starter-tickets.
// 3. `inferq submit samples/reviews.jsonl` as a bulk batch, with its progress bar, and a table
//    of the results; then the sample tickets, each classified by the ticket model; then
//    `inferq cluster samples/common-issues.jsonl`: the common issues among 160 sample tickets
//    (inferq/starter-embeddings), and how well they agree with the issues they were written for.
// 4. Everything it started is stopped, also on Ctrl-C.
//
// Logs of the API and the worker go to files in a temporary folder (printed on failure).
// INFERQ_DEMO_TRIAGE_MODELS=<zero-shot-id>,<summarization-id> (models in MODELS_DIR, e.g.
// pulled with `inferq models pull`) triages the tickets with `inferq triage` instead.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRedis, deleteKeysWithPrefix } from '@inferq/queue';
import { adjustedRandIndex } from '@inferq/inference';
import { ensureModel, STARTER_EMBEDDINGS_ID, STARTER_SENTIMENT_ID, STARTER_TICKETS_ID } from '@inferq/tiny-models';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'apps/cli/dist/main.js');
const API = join(ROOT, 'apps/api/dist/server.js');
const WORKER = join(ROOT, 'apps/worker/dist/main.js');
const REVIEWS = join(ROOT, 'samples/reviews.jsonl');
const TICKETS = join(ROOT, 'samples/tickets.jsonl');
const COMMON_ISSUES = join(ROOT, 'samples/common-issues.jsonl');
const TICKETS_SHOWN = 8;

const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[22m` : s);
const step = (s) => console.log(`\n${bold(`== ${s}`)}`);

/** Processes this script started, stopped in reverse order at the end. */
const children = [];
let stopping = false;
/** A Redis the demo shares with others, and its key prefix there: its keys are deleted at the end. */
let queue;

class DemoError extends Error {}

function fail(message) {
  throw new DemoError(message);
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/** Whether a Redis server answers PING at host:port within a second. */
function redisAnswers(host, port) {
  return new Promise((ok) => {
    const socket = connect(port, host);
    const done = (answer) => {
      socket.destroy();
      ok(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

async function waitFor(what, check, timeoutMs, logFile) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  fail(`${what} did not start within ${timeoutMs / 1000}s${logFile ? `; its log: ${logFile}` : ''}`);
}

/** Starts a child whose output goes to `logFile`; it is stopped at the end. */
function startChild(name, command, args, env, logFile) {
  const log = createWriteStream(logFile);
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const entry = { name, child, logFile, exited: once(child, 'exit') };
  children.push(entry);
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`\n${name} exited on its own (${signal ?? code}); its log: ${logFile}`);
  });
  return entry;
}

async function stopAll() {
  stopping = true;
  for (const { child, exited } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  if (queue) await deleteKeys(queue.url, queue.prefix);
}

/** Deletes the demo's keys from a Redis it shares with others. */
async function deleteKeys(url, prefix) {
  queue = undefined;
  const redis = createRedis(url, 'worker');
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } catch (error) {
    console.error(`could not delete the demo's keys (${prefix}:*) from ${url}: ${error.message}`);
  } finally {
    redis.disconnect();
  }
}

async function ensureRedis(workDir) {
  const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const host = url.hostname || '127.0.0.1';
  const port = Number(url.port || 6379);
  if (await redisAnswers(host, port)) {
    console.log(`Redis answers at ${url.host}`);
    return { url: url.href, shared: true };
  }
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) {
    fail(
      `No Redis answers at ${url.host}, and there is no redis-server here to start one.\n` +
        'Install Redis (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or set REDIS_URL to one that runs.',
    );
  }
  const own = await freePort();
  const logFile = join(workDir, 'redis.log');
  startChild('redis-server', 'redis-server', ['--port', String(own), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workDir], process.env, logFile);
  await waitFor('redis-server', () => redisAnswers('127.0.0.1', own), 10_000, logFile);
  console.log(`No Redis at ${url.host}: started redis-server on 127.0.0.1:${own} for the demo`);
  return { url: `redis://127.0.0.1:${own}`, shared: false };
}

/** Runs the CLI; with `show`, its output goes to this terminal (progress bar included). */
function inferq(args, { show = false } = {}) {
  return new Promise((ok, ko) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: show ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', ko);
    child.on('exit', (code) => ok({ code, stdout, stderr }));
  });
}

async function readJsonl(file) {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

function cut(text, max) {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === cells.length - 1 ? String(c) : String(c).padEnd(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main() {
  for (const file of [CLI, API, WORKER]) {
    if (!existsSync(file)) fail(`${file} is missing: build first (\`npm run demo\` runs \`npm run build\` before this script)`);
  }
  const workDir = await mkdtemp(join(tmpdir(), 'inferq-demo-'));
  const modelsDir = resolve(ROOT, process.env.MODELS_DIR ?? 'models');
  const width = Math.max(80, Math.min(process.stdout.columns || 100, 140));

  step('Starting Redis, the API and a worker');
  const redis = await ensureRedis(workDir);
  const redisUrl = redis.url;
  for (const id of [STARTER_SENTIMENT_ID, STARTER_TICKETS_ID, STARTER_EMBEDDINGS_ID]) {
    const started = performance.now();
    await ensureModel(modelsDir, id);
    console.log(`${id}: ready in ${modelsDir} (${Math.round(performance.now() - started)} ms)`);
  }
  const triageModels = (process.env.INFERQ_DEMO_TRIAGE_MODELS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (triageModels.length !== 0 && triageModels.length !== 2) fail('INFERQ_DEMO_TRIAGE_MODELS must be "<zero-shot model>,<summarization model>"');
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  if (redis.shared) queue = { url: redisUrl, prefix: `inferq-demo-${process.pid}` };
  const env = {
    ...process.env,
    REDIS_URL: redisUrl,
    // A prefix of its own, so the demo never mixes with other queues on a shared Redis; its
    // keys are deleted when it stops.
    QUEUE_PREFIX: `inferq-demo-${process.pid}`,
    MODELS_DIR: modelsDir,
    LOG_LEVEL: 'info',
  };
  const worker = startChild(
    'worker',
    process.execPath,
    [WORKER],
    { ...env, WORKER_MODELS: [STARTER_SENTIMENT_ID, STARTER_TICKETS_ID, STARTER_EMBEDDINGS_ID, ...triageModels].join(','), METRICS_PORT: '0' },
    join(workDir, 'worker.log'),
  );
  const workerReady = new Promise((ok) => {
    createInterface({ input: worker.child.stdout }).on('line', (line) => {
      if (line.includes('"worker ready"')) ok(true);
    });
  });
  startChild(
    'api',
    process.execPath,
    [API],
    {
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DEFAULT_MODEL_CLASSIFICATION: STARTER_SENTIMENT_ID,
      DEFAULT_MODEL_EMBEDDING: STARTER_EMBEDDINGS_ID,
      ...(triageModels.length === 2 ? { DEFAULT_MODEL_ZERO_SHOT: triageModels[0], DEFAULT_MODEL_SUMMARIZATION: triageModels[1] } : {}),
    },
    join(workDir, 'api.log'),
  );
  await waitFor('the API', () => fetch(`${apiUrl}/readyz`).then((r) => r.ok, () => false), 30_000, join(workDir, 'api.log'));
  await Promise.race([
    workerReady,
    worker.exited.then(() => fail(`the worker stopped while starting; its log: ${worker.logFile}`)),
    new Promise((_, ko) => setTimeout(() => ko(new DemoError(`the worker did not get ready within 60s; its log: ${worker.logFile}`)), 60_000)),
  ]);
  console.log(`API at ${apiUrl}, worker ready (logs in ${workDir})`);

  const models = await inferq(['models', 'list', '--api', apiUrl]);
  console.log(models.stdout.trimEnd());

  step(`inferq submit samples/reviews.jsonl --task classification`);
  const results = join(workDir, 'reviews.results.jsonl');
  const submitted = await inferq(['submit', REVIEWS, '--task', 'classification', '--out', results, '--interval', '0.2', '--api', apiUrl], { show: true });
  let exitCode = 0;
  if (submitted.code !== 0) {
    exitCode = 1;
    console.error(`inferq submit exited ${submitted.code}; see the message above`);
  } else {
    const reviews = new Map((await readJsonl(REVIEWS)).map((r) => [r.custom_id, r]));
    const lines = await readJsonl(results);
    const rows = [];
    let agree = 0;
    const counts = { positive: 0, negative: 0 };
    for (const line of lines) {
      const review = reviews.get(line.custom_id);
      const best = line.result?.[0];
      if (!best) continue;
      counts[best.label] = (counts[best.label] ?? 0) + 1;
      if (best.label === review?.expected) agree++;
      // The sample's own label, shown where the model disagrees.
      rows.push([line.custom_id, best.label, best.score.toFixed(2), review?.expected === best.label ? '' : review?.expected ?? '?', review?.input ?? '']);
    }
    const shown = rows.slice(0, 15).map((r) => [...r.slice(0, 4), cut(r[4], width - 53)]);
    console.log(`\n${table(['id', 'label', 'score', 'written as', 'review'], shown)}`);
    console.log(`… ${rows.length - shown.length} more in ${results}`);
    console.log(
      `\n${lines.length} reviews: ${counts.positive} positive, ${counts.negative} negative; ` +
        `the label agrees with the one the sample was written with for ${agree} (${((100 * agree) / lines.length).toFixed(1)}%).`,
    );
  }

  step(triageModels.length === 2 ? 'inferq triage: sample tickets' : 'Sample tickets, classified by inferq/starter-tickets');
  const tickets = (await readJsonl(TICKETS)).slice(0, TICKETS_SHOWN);
  const ticketRows = [];
  for (const ticket of tickets) {
    const args =
      triageModels.length === 2
        ? ['triage', '--json', ticket.input, '--api', apiUrl]
        : ['classify', '--model', STARTER_TICKETS_ID, '--top-k', '1', '--json', ticket.input, '--api', apiUrl];
    const run = await inferq(args);
    if (run.code !== 0) {
      exitCode = 1;
      console.error(`inferq ${args[0]} exited ${run.code}: ${run.stderr.trim()}`);
      continue;
    }
    const answer = JSON.parse(run.stdout);
    const best = triageModels.length === 2 ? answer.result?.issue : answer.result?.[0];
    ticketRows.push([ticket.custom_id, best?.label ?? '?', best ? best.score.toFixed(2) : '', cut(ticket.input, width - 48)]);
  }
  if (ticketRows.length > 0) console.log(`\n${table(['ticket', 'category', 'score', 'text'], ticketRows)}`);
  if (triageModels.length !== 2) {
    console.log(
      '\n`inferq triage "<ticket>"` runs the full triage (issue by zero-shot NLI and a one-line summary) through POST /v1/tickets;\n' +
        'it needs real NLI and summarization models: pull them with `inferq models pull <org/name>` and set INFERQ_DEMO_TRIAGE_MODELS.',
    );
  }

  step('Common issues among the sample tickets: inferq cluster samples/common-issues.jsonl --num-clusters 8');
  const membersFile = join(workDir, 'common-issues.members.jsonl');
  const clustered = await inferq(['cluster', COMMON_ISSUES, '--num-clusters', '8', '--out', membersFile, '--interval', '0.2', '--api', apiUrl], { show: true });
  if (clustered.code !== 0) {
    exitCode = 1;
    console.error(`inferq cluster exited ${clustered.code}; see the message above`);
  } else {
    const written = new Map((await readJsonl(COMMON_ISSUES)).map((t) => [t.custom_id, t.issue]));
    const members = await readJsonl(membersFile);
    const ari = adjustedRandIndex(members.map((m) => written.get(m.custom_id) ?? '?'), members.map((m) => m.cluster));
    console.log(
      `\nAgreement with the ${new Set(written.values()).size} issues the ${members.length} tickets were written for: adjusted Rand index ${ari.toFixed(2)} ` +
        '(1 = the same grouping, 0 = chance). To cluster with a real sentence-transformers export, see README, "Adding a real model".',
    );
  }

  step('Stopping');
  await stopAll();
  console.log(`Stopped the worker, the API${children.some((c) => c.name === 'redis-server') ? ' and redis-server' : ''}. Results and logs: ${workDir}`);
  return exitCode;
}

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  console.error('\nInterrupted: stopping what the demo started…');
  stopAll().then(() => process.exit(130));
});

try {
  process.exitCode = await main();
} catch (error) {
  console.error(`\ndemo: ${error instanceof DemoError ? error.message : error.stack}`);
  await stopAll();
  process.exitCode = 1;
}
