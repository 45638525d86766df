// `npm start`: the API and one worker in the foreground. Ctrl-C (or SIGTERM) stops both
// cleanly: each finishes what it is doing, then exits.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureModel, DEFAULT_MODELS } from '@inferq/tiny-models';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = { ...process.env };
env.MODELS_DIR = resolve(root, env.MODELS_DIR ?? 'models');
const redisUrl = new URL(env.REDIS_URL ?? 'redis://127.0.0.1:6379');

await new Promise((ok, fail) => {
  const socket = connect(Number(redisUrl.port || 6379), redisUrl.hostname, () => {
    socket.end();
    ok();
  });
  socket.on('error', () => fail(new Error(`No Redis answers at ${redisUrl.host}. Start one (redis-server) or set REDIS_URL.`)));
}).catch((err) => {
  console.error(err.message);
  process.exit(1);
});

// With no configuration, serve the tiny model of each task: build the missing ones first,
// so the API finds them from its first request.
const served = (env.WORKER_MODELS ?? 'inferq/tiny-bert-classifier,inferq/tiny-nli,inferq/tiny-bart,inferq/tiny-llama,inferq/tiny-embeddings').split(',');
for (const id of served.map((m) => m.trim())) if (id in DEFAULT_MODELS) await ensureModel(env.MODELS_DIR, id);

const children = [
  spawn(process.execPath, [resolve(root, 'apps/api/dist/server.js')], { env, stdio: 'inherit', detached: true }),
  spawn(process.execPath, [resolve(root, 'apps/worker/dist/main.js')], { env, stdio: 'inherit', detached: true }),
];
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopping = true;
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  });
}
const codes = await Promise.all(children.map((child) => new Promise((ok) => child.on('exit', (code) => {
  // One process died on its own: stop the other too.
  if (!stopping) {
    stopping = true;
    for (const other of children) if (other !== child && other.exitCode === null) other.kill('SIGTERM');
  }
  ok(code ?? 1);
}))));
process.exit(Math.max(...codes));
