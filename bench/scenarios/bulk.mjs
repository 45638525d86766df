// Scenario 2 (bulk): N reviews as one batch through the API, Redis and one worker, timed from
// the start of the upload to the last result line read. Compared with the ceiling.
import { readResults, startStack, uploadBatch, waitForBatch } from './service-batch.mjs';

export async function runBulk({ root, modelsDir, modelId, threads, texts, warmupTexts, repeats, log = () => {} }) {
  const stack = await startStack(root, { modelsDir, modelId, threads });
  const rates = [];
  try {
    await waitForBatch(stack.api.url, await uploadBatch(stack.api.url, warmupTexts));
    for (let r = 0; r < repeats; r++) {
      const start = performance.now();
      const id = await uploadBatch(stack.api.url, texts);
      const view = await waitForBatch(stack.api.url, id);
      const lines = await readResults(stack.api.url, id);
      const seconds = (performance.now() - start) / 1000;
      if (view.status !== 'completed' || lines !== texts.length) throw new Error(`bulk run: ${view.status}, ${lines} result lines for ${texts.length}`);
      rates.push(texts.length / seconds);
      log(`bulk run ${r + 1}/${repeats}: ${texts.length} texts in ${seconds.toFixed(1)} s = ${rates.at(-1).toFixed(1)} texts/s`);
    }
  } finally {
    await stack.stop();
  }
  return { rates, texts: texts.length };
}
