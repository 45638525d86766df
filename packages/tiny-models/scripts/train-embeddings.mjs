#!/usr/bin/env node
// Trains the word vectors of the starter embedding model (inferq/starter-embeddings) and
// writes packages/tiny-models/data/starter-embeddings.json, which is committed: building the
// model needs no data. Run after `npm run build` (it uses this package's dist):
//
//   node packages/tiny-models/scripts/train-embeddings.mjs [--data DIR] [--out FILE]
//
// Data, read from DIR (default ../shared/data beside the repository, or $INFERQ_DATA_DIR):
// rt-polarity (10,662 movie-review snippets, Latin-1) and the 3,000 UCI sentiment-labelled
// sentences (amazon, imdb, yelp; the label is dropped). Opinosis is NOT read: it is kept for
// evaluating the clusters (bench/). The output holds tokens and int8 vectors, no sentence.
// Deterministic: the same data gives the same bytes.
import { readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EMBEDDING_TRAINING_DEFAULTS, quantizeEmbeddings, trainEmbeddings } from '../dist/index.js';

const PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const REPO = join(PACKAGE_DIR, '..', '..');
const { values: args } = parseArgs({
  options: { data: { type: 'string' }, out: { type: 'string', default: join(PACKAGE_DIR, 'data', 'starter-embeddings.json') } },
});
const dataDir = resolve(args.data ?? process.env.INFERQ_DATA_DIR ?? join(REPO, '..', 'shared', 'data'));

async function lines(file, encoding) {
  try {
    return (await readFile(file, encoding)).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  } catch (error) {
    throw new Error(`cannot read ${file} (${error.code ?? error.message}): pass --data DIR holding rt-polarity/ and sentiment-labelled-sentences/`);
  }
}

const FILES = [
  ['rt-polarity/rt-polarity.pos', 'latin1', false],
  ['rt-polarity/rt-polarity.neg', 'latin1', false],
  ['sentiment-labelled-sentences/amazon_cells_labelled.txt', 'utf8', true],
  ['sentiment-labelled-sentences/imdb_labelled.txt', 'utf8', true],
  ['sentiment-labelled-sentences/yelp_labelled.txt', 'utf8', true],
];
const sentences = [];
for (const [file, encoding, labelled] of FILES) {
  for (const line of await lines(join(dataDir, file), encoding)) sentences.push(labelled ? line.replace(/\t[01]$/, '') : line);
}
const started = performance.now();
const trained = trainEmbeddings(sentences);
const file = quantizeEmbeddings(trained, {
  description: `Starter sentence embeddings: PPMI + SVD word vectors (${trained.dims} dims) with SIF weights and sub-word pieces, mean-pooled`,
  provenance: {
    data: FILES.map(([f]) => f),
    sentences: sentences.length,
    words: trained.wordCount,
    pieces: trained.vocab.length - trained.wordCount - 5,
    hyperparameters: EMBEDDING_TRAINING_DEFAULTS,
    script: 'packages/tiny-models/scripts/train-embeddings.mjs',
  },
});
const text = JSON.stringify(file) + '\n';
await writeFile(args.out, text);
console.log(
  `${sentences.length} sentences -> ${trained.wordCount} words + ${trained.vocab.length - trained.wordCount - 5} pieces x ${trained.dims} dims ` +
    `in ${Math.round(performance.now() - started)} ms; ${args.out} (${(text.length / 1e6).toFixed(2)} MB, sha256 ${createHash('sha256').update(text).digest('hex').slice(0, 16)})`,
);
