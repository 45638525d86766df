#!/usr/bin/env node
/**
 * Builds the default models into a models folder:
 *
 *   node packages/tiny-models/dist/cli.js --out DIR [--preset tiny|bench|nli|bart|llama|starter-sentiment|starter-tickets|starter-embeddings|embeddings|embeddings-cls] [--force]
 *
 * Without `--preset` it builds all of them. A model already there is kept unless `--force`.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_CLASSIFIER_ID,
  ensureModel,
  parseModelId,
  STARTER_EMBEDDINGS_ID,
  STARTER_SENTIMENT_ID,
  STARTER_TICKETS_ID,
  TINY_BART_ID,
  TINY_CLASSIFIER_ID,
  TINY_EMBEDDINGS_CLS_ID,
  TINY_EMBEDDINGS_ID,
  TINY_LLAMA_ID,
  TINY_NLI_ID,
} from './ensure-model.js';

const PRESET_IDS: Record<string, string> = {
  tiny: TINY_CLASSIFIER_ID,
  bench: BENCH_CLASSIFIER_ID,
  nli: TINY_NLI_ID,
  bart: TINY_BART_ID,
  llama: TINY_LLAMA_ID,
  'starter-sentiment': STARTER_SENTIMENT_ID,
  'starter-tickets': STARTER_TICKETS_ID,
  'starter-embeddings': STARTER_EMBEDDINGS_ID,
  embeddings: TINY_EMBEDDINGS_ID,
  'embeddings-cls': TINY_EMBEDDINGS_CLS_ID,
};
const USAGE = `usage: cli.js --out DIR [--preset ${Object.keys(PRESET_IDS).join('|')}] [--force]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      preset: { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.out) throw new Error(`--out is required\n${USAGE}`);
  let ids = Object.values(PRESET_IDS);
  if (values.preset !== undefined) {
    const id = PRESET_IDS[values.preset];
    if (id === undefined) throw new Error(`unknown preset "${values.preset}"\n${USAGE}`);
    ids = [id];
  }
  for (const id of ids) {
    if (values.force) {
      const { org, name } = parseModelId(id);
      await rm(join(values.out, org, name), { recursive: true, force: true });
    }
    const started = performance.now();
    const dir = await ensureModel(values.out, id);
    console.log(`${id}: ${dir} (${Math.round(performance.now() - started)} ms)`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
