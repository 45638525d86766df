// Builds the demo models (inferq/tiny-* and inferq/starter-*) a worker is told to serve, into
// MODELS_DIR, skipping those already there. The worker itself builds nothing: it loads what
// MODELS_DIR holds. `npm start` and `npm run demo` build theirs; docker compose runs this as
// the one-shot `models` service before the worker starts.
//   MODELS_DIR=./models WORKER_MODELS=inferq/tiny-bert-classifier node scripts/build-models.mjs
import { resolve } from 'node:path';
import { ensureModel, DEFAULT_MODELS } from '@inferq/tiny-models';

const modelsDir = resolve(process.env.MODELS_DIR ?? 'models');
const wanted = (process.env.WORKER_MODELS ?? 'inferq/tiny-bert-classifier,inferq/tiny-nli,inferq/tiny-bart,inferq/tiny-llama')
  .split(',')
  .map((m) => m.trim())
  .filter(Boolean);
for (const id of wanted) {
  if (!(id in DEFAULT_MODELS)) {
    console.log(`${id}: not a demo model; put it in ${modelsDir} yourself (inferq models pull)`);
    continue;
  }
  console.log(`${id}: ${await ensureModel(modelsDir, id)}`);
}
