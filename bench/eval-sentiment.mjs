#!/usr/bin/env node
// Accuracy of a sentiment model served the way inferq serves it: the model folder through
// @inferq/inference's TextClassificationPipeline (tokenizer, padding, ONNX session,
// softmax, id2label), on the 3,000 labelled sentences of the UCI "Sentiment Labelled
// Sentences" set (Kotzias et al., KDD 2015; amazon, imdb, yelp; `sentence<TAB>label`).
//
//   npm run build && node bench/eval-sentiment.mjs [--model DIR] [--data DIR] [--json]
//
// Without --model it builds inferq/starter-sentiment into bench/.models. --data is the
// folder holding sentiment-labelled-sentences/ (default ../shared/data beside the
// repository, or $INFERQ_DATA_DIR). For reference, lexicon libraries measured on the same
// sentences (score 0 counted negative): `sentiment` (AFINN-165) 0.794, `vader-sentiment` 0.809.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TextClassificationPipeline } from '@inferq/inference';
import { ensureModel, STARTER_SENTIMENT_ID } from '@inferq/tiny-models';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const FILES = ['amazon_cells_labelled.txt', 'imdb_labelled.txt', 'yelp_labelled.txt'];
const POSITIVE = new Set(['positive', 'pos', 'label_1', '1']);

/** The labelled sentences of one UCI file: `{text, label}` with label 1 positive, 0 negative. */
export async function readLabelled(file) {
  const rows = [];
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const match = /^(.*)\t\s*([01])\s*$/.exec(line);
    if (match) rows.push({ text: match[1].trim(), label: Number(match[2]) });
  }
  return rows;
}

/** Accuracy of the model in `dir` on each UCI file and overall, through the pipeline, in batches of `batchSize`. */
export async function evaluate(dir, dataDir, batchSize = 32) {
  const pipeline = await TextClassificationPipeline.load(dir);
  try {
    const perFile = {};
    let right = 0;
    let total = 0;
    for (const name of FILES) {
      const rows = await readLabelled(join(dataDir, 'sentiment-labelled-sentences', name));
      let fileRight = 0;
      for (let i = 0; i < rows.length; i += batchSize) {
        const batch = rows.slice(i, i + batchSize);
        const results = await pipeline.classify(batch.map((r) => r.text));
        results.forEach((scores, j) => {
          const predicted = POSITIVE.has(String(scores[0]?.label).toLowerCase()) ? 1 : 0;
          if (predicted === batch[j].label) fileRight++;
        });
      }
      perFile[name.split('_')[0]] = { accuracy: fileRight / rows.length, n: rows.length };
      right += fileRight;
      total += rows.length;
    }
    return { accuracy: right / total, n: total, perFile };
  } finally {
    await pipeline.release();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { model: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const dataDir = resolve(values.data ?? process.env.INFERQ_DATA_DIR ?? join(BENCH_DIR, '..', '..', 'shared', 'data'));
  const dir = values.model ? resolve(values.model) : await ensureModel(join(BENCH_DIR, '.models'), STARTER_SENTIMENT_ID);
  const started = performance.now();
  const result = await evaluate(dir, dataDir);
  if (values.json) {
    console.log(JSON.stringify({ model: dir, ...result }));
  } else {
    console.log(`model: ${dir}`);
    for (const [name, r] of Object.entries(result.perFile)) console.log(`  ${name.padEnd(7)} ${r.accuracy.toFixed(3)} (${r.n})`);
    console.log(`  overall ${result.accuracy.toFixed(3)} (${result.n} sentences, ${Math.round(performance.now() - started)} ms)`);
    console.log('  lexicons on the same sentences: sentiment (AFINN-165) 0.794, vader-sentiment 0.809');
  }
}
