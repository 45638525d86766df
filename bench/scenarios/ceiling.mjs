// Scenario 1, the ceiling: onnxruntime's session.run alone, on inputs tokenized and padded
// before the clock starts. Batch 1, and length-sorted batches under a sweep of token
// budgets (cut as the static scheduler cuts them); the best of these is the ceiling.
import { padBatch } from '@inferq/inference';
import { cut } from '../lib/slices.mjs';

/** Sorted by length, cut when `maxSize` inputs or when one more would pass `budget` tokens after padding. */
export function sortedBatches(encoded, budget, maxSize) {
  const sorted = [...encoded].sort((a, b) => a.ids.length - b.ids.length);
  const batches = [];
  let current = [];
  for (const e of sorted) {
    if (current.length > 0 && (current.length === maxSize || (current.length + 1) * e.ids.length > budget)) {
      batches.push(current);
      current = [];
    }
    current.push(e);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function feedsOf(pipeline, rows) {
  const b = padBatch(rows, { padId: pipeline.tokenizer.padId, side: 'right' });
  return {
    feeds: { input_ids: b.inputIds, attention_mask: b.attentionMask, token_type_ids: b.tokenTypeIds },
    padded: b.batchSize * b.seqLen,
    real: rows.reduce((s, r) => s + r.ids.length, 0),
  };
}

/**
 * The ceiling as slices: `runSlice(k, slices)` runs slice k of every configuration (in a
 * rotating order) and adds its time to the current run.
 */
export function createCeiling({ pipeline, texts, budgets, maxSize }) {
  const t0 = performance.now();
  const encoded = texts.map((t) => pipeline.encode(t));
  const tokenizeMsPerText = (performance.now() - t0) / texts.length;
  const configs = [
    { name: 'batch 1', batches: encoded.map((e) => [e]) },
    ...budgets.map((budget) => ({ name: `sorted, ≤${budget} tokens`, budget, batches: sortedBatches(encoded, budget, maxSize) })),
  ];
  const p0 = performance.now();
  let padCount = 0;
  for (const c of configs) {
    c.prepared = c.batches.map((rows) => feedsOf(pipeline, rows));
    padCount += c.batches.length;
    c.meanBatch = texts.length / c.batches.length;
    c.paddingRatio = c.prepared.reduce((s, b) => s + b.padded, 0) / c.prepared.reduce((s, b) => s + b.real, 0);
    c.runs = [];
  }
  const padMsPerBatch = (performance.now() - p0) / padCount;
  let ms = {};
  let sessionMs = 0;
  let sessionTexts = 0;
  return {
    name: 'ceiling',
    async warmUp() {
      // First runs of a fresh session allocate its arenas.
      for (const c of [configs[configs.length - 1], configs[0]]) for (const b of c.prepared.slice(0, 8)) await pipeline.session.run(b.feeds, ['logits']);
    },
    startRun() {
      ms = Object.fromEntries(configs.map((c) => [c.name, 0]));
    },
    async runSlice(k, slices) {
      for (let j = 0; j < configs.length; j++) {
        const c = configs[(j + k) % configs.length];
        const start = performance.now();
        for (const b of cut(c.prepared, k, slices)) await pipeline.session.run(b.feeds, ['logits']);
        ms[c.name] += performance.now() - start;
      }
    },
    snapshot() {
      return { ...ms };
    },
    restore(snap) {
      ms = { ...snap };
    },
    endRun() {
      for (const c of configs) {
        c.runs.push((texts.length / ms[c.name]) * 1000);
        sessionMs += ms[c.name];
        sessionTexts += texts.length;
      }
      return configs.map((c) => `${c.name} ${c.runs[c.runs.length - 1].toFixed(1)}`).join(', ') + ' texts/s';
    },
    result() {
      return {
        configs: configs.map((c) => ({ name: c.name, budget: c.budget, meanBatch: c.meanBatch, paddingRatio: c.paddingRatio, runs: c.runs })),
        tokens: tokenStats(encoded),
        tokenizeMsPerText,
        padMsPerBatch,
        sessionMsPerText: sessionMs / sessionTexts,
      };
    },
  };
}

function tokenStats(encoded) {
  const lens = encoded.map((e) => e.ids.length).sort((a, b) => a - b);
  const at = (q) => lens[Math.min(lens.length - 1, Math.floor(q * lens.length))];
  return { min: lens[0], p50: at(0.5), p90: at(0.9), max: lens[lens.length - 1], mean: lens.reduce((a, b) => a + b, 0) / lens.length };
}
