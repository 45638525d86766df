#!/usr/bin/env node
// Peak memory of the API while it takes NDJSON batch uploads of growing size.
//
// For each size, starts a fresh API process (apps/api/dist/server.js) on a private queue prefix,
// streams an upload of that many `{custom_id, input}` lines (inputs of about 1 KB each) and reads
// the API's peak resident set (VmHWM in /proc/<pid>/status) once the batch is accepted. An upload
// is parsed line by line and staged in Redis chunk by chunk, so the peak should stay flat while
// the upload grows tenfold. No worker runs: the batch is only accepted, then its keys are deleted.
//
//   npm run build && node bench/memory-batch.mjs            (10,000 and 100,000 inputs)
//   node bench/memory-batch.mjs 1000 10000 100000           (sizes of your choice)
//
// Needs Redis at REDIS_URL (default redis://127.0.0.1:6379) and Linux (/proc).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '@inferq/queue';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (sizes.length === 0) sizes.push(10_000, 100_000);

const WORDS = ['battery', 'screen', 'refund', 'shipping', 'arrived', 'broken', 'great', 'terrible', 'support', 'password', 'love', 'late'];
/** About 1 KB of review-like text, different for every i. */
function review(i) {
  let text = `Review ${i}:`;
  for (let k = 0; text.length < 1000; k++) text += ` ${WORDS[(i * 7 + k * 13) % WORDS.length]}`;
  return `${text}.`;
}

/** The upload as a stream of bytes, generated as it is sent (the client holds one block at a time). */
function uploadStream(n) {
  let i = 0;
  const encoder = new TextEncoder();
  return new ReadableStream({
    pull(controller) {
      if (i >= n) return controller.close();
      const lines = [];
      for (let end = Math.min(n, i + 500); i < end; i++) lines.push(JSON.stringify({ custom_id: `review-${i}`, input: review(i) }));
      controller.enqueue(encoder.encode(lines.join('\n') + '\n'));
    },
  });
}

async function memoryOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

async function startApi(env) {
  const child = spawn(process.execPath, [...(process.env.API_NODE_FLAGS ?? '').split(' ').filter(Boolean), join(ROOT, 'apps/api/dist/server.js')], {
    env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`api exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /Server listening at (http:\/\/[^\s"]+)/.exec(line);
      if (match) resolve(match[1]);
    });
  });
  return { child, url };
}

const modelsDir = await mkdtemp(join(tmpdir(), 'inferq-bench-memory-'));
await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
const redis = new Redis(REDIS_URL);
const rows = [];
try {
  for (const n of sizes) {
    const prefix = `bench-memory-${process.pid}-${n}`;
    const { child, url } = await startApi({ REDIS_URL, QUEUE_PREFIX: prefix, MODELS_DIR: modelsDir, DEFAULT_MODEL_CLASSIFICATION: TINY_CLASSIFIER_ID });
    try {
      const idle = await memoryOf(child.pid);
      let bytes = 0;
      const counted = uploadStream(n).pipeThrough(
        new TransformStream({
          transform(chunk, controller) {
            bytes += chunk.length;
            controller.enqueue(chunk);
          },
        }),
      );
      const started = performance.now();
      const res = await fetch(`${url}/v1/batches?task=classification`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: counted,
        duplex: 'half',
      });
      const body = await res.json();
      const seconds = (performance.now() - started) / 1000;
      if (res.status !== 202) throw new Error(`upload of ${n}: ${res.status} ${JSON.stringify(body)}`);
      if (body.request_counts.total !== n) throw new Error(`upload of ${n}: total ${body.request_counts.total}`);
      const after = await memoryOf(child.pid);
      rows.push({ inputs: n, uploadMb: bytes / 2 ** 20, seconds, idleRssMb: idle.rssMb, peakRssMb: after.peakMb });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await deleteKeysWithPrefix(redis, prefix);
    }
  }
} finally {
  redis.disconnect();
  await rm(modelsDir, { recursive: true, force: true });
}

const fmt = (x, d = 1) => x.toFixed(d).padStart(9);
console.log('\nAPI memory while accepting NDJSON batch uploads (a fresh API process per size)\n');
console.log('   inputs  upload MB  seconds  idle RSS MB  peak RSS MB  peak / smallest');
const base = rows[0]?.peakRssMb ?? 1;
for (const r of rows) {
  console.log(
    `${String(r.inputs).padStart(9)}${fmt(r.uploadMb, 1).padStart(11)}${fmt(r.seconds, 2)}${fmt(r.idleRssMb).padStart(13)}${fmt(r.peakRssMb).padStart(13)}${fmt(r.peakRssMb / base, 2).padStart(17)}`,
  );
}
