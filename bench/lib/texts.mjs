// Review-like inputs for the benchmarks: 10 to 200 words, log-uniform (most reviews are
// short, a few are long), built from the real sentences in ../shared/data when that folder
// is there, synthetic otherwise. Nothing from the data sets is copied into the repository.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE_VOCAB, mulberry32 } from '@inferq/tiny-models';

/** Where the shared data sets live: `../shared/data` relative to the repository root. */
export function dataDir(root) {
  return join(root, '..', 'shared', 'data');
}

/**
 * Sentence pools, one per source (a review is built from one source, as a real review
 * comes from one site): the UCI sentiment files (`sentence<TAB>label`, UTF-8) and
 * rt-polarity (Latin-1). Empty when the data folder is absent.
 */
function loadSources(dir) {
  const sources = [];
  const uci = join(dir, 'sentiment-labelled-sentences');
  if (existsSync(uci)) {
    for (const file of readdirSync(uci).filter((f) => f.endsWith('_labelled.txt')).sort()) {
      const sentences = readFileSync(join(uci, file), 'utf8')
        .split(/\r?\n/)
        .map((line) => line.split('\t')[0]?.trim() ?? '')
        .filter((s) => s.length > 0);
      if (sentences.length > 0) sources.push({ name: `uci/${file}`, sentences });
    }
  }
  const rt = join(dir, 'rt-polarity');
  for (const file of ['rt-polarity.pos', 'rt-polarity.neg']) {
    const path = join(rt, file);
    if (!existsSync(path)) continue;
    const sentences = readFileSync(path, 'latin1')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (sentences.length > 0) sources.push({ name: `rt-polarity/${file}`, sentences });
  }
  return sources;
}

/** Synthetic sentences from the tiny models' real-word vocabulary, for machines without the data. */
function syntheticSource(rand) {
  const words = BASE_VOCAB.filter((w) => /^[a-z]{2,}$/.test(w));
  const sentences = [];
  for (let i = 0; i < 2000; i++) {
    const n = 4 + Math.floor(rand() * 18);
    const picked = Array.from({ length: n }, () => words[Math.floor(rand() * words.length)]);
    const s = picked.join(' ');
    sentences.push(`${s[0]?.toUpperCase() ?? ''}${s.slice(1)}.`);
  }
  return { name: 'synthetic', sentences };
}

const countWords = (s) => s.split(/\s+/).filter(Boolean).length;

/**
 * `n` review texts, deterministic for a seed. Word counts are log-uniform from `minWords`
 * to `maxWords` (median about 45 words); sentences are added until the count is reached,
 * and the last one is cut at `maxWords`.
 */
export function reviewTexts(n, { root, seed = 20240601, minWords = 10, maxWords = 200 } = {}) {
  const rand = mulberry32(seed);
  let sources = root ? loadSources(dataDir(root)) : [];
  const origin = sources.length > 0 ? 'shared-data' : 'synthetic';
  if (sources.length === 0) sources = [syntheticSource(rand)];
  const texts = [];
  for (let i = 0; i < n; i++) {
    const source = sources[Math.floor(rand() * sources.length)];
    const target = Math.round(minWords * (maxWords / minWords) ** rand());
    const words = [];
    while (words.length < target) {
      const sentence = source.sentences[Math.floor(rand() * source.sentences.length)];
      words.push(...sentence.split(/\s+/).filter(Boolean));
    }
    texts.push(words.slice(0, maxWords).join(' '));
  }
  return { texts, origin, sources: sources.map((s) => s.name), words: summarizeWords(texts) };
}

function summarizeWords(texts) {
  const counts = texts.map(countWords).sort((a, b) => a - b);
  const at = (q) => counts[Math.min(counts.length - 1, Math.floor(q * counts.length))] ?? 0;
  return { min: counts[0] ?? 0, p50: at(0.5), p90: at(0.9), max: counts[counts.length - 1] ?? 0 };
}
