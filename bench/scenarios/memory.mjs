// Scenario 8, memory: peak RSS of the API and the worker for a small and a large batch run to
// the end, each on fresh processes. The worker's model is the tiny classifier: what is
// measured is what the batch size does to memory, not the model's weights.
import { peakRssMiB, readResults, startStack, uploadBatch, waitForBatch } from './service-batch.mjs';

export async function runMemory({ root, modelsDir, modelId, threads, sizes, makeTexts, log = () => {} }) {
  const out = [];
  for (const n of sizes) {
    const stack = await startStack(root, { modelsDir, modelId, threads });
    try {
      const start = performance.now();
      const id = await uploadBatch(stack.api.url, makeTexts(n));
      const view = await waitForBatch(stack.api.url, id, 250);
      const lines = await readResults(stack.api.url, id);
      const row = {
        inputs: n,
        status: view.status,
        lines,
        seconds: (performance.now() - start) / 1000,
        apiPeakMiB: peakRssMiB(stack.api.proc.child.pid),
        workerPeakMiB: peakRssMiB(stack.worker.proc.child.pid),
      };
      out.push(row);
      log(`memory, ${n} inputs: ${row.status} in ${row.seconds.toFixed(1)} s; peak RSS API ${row.apiPeakMiB.toFixed(0)} MiB, worker ${row.workerPeakMiB.toFixed(0)} MiB`);
    } finally {
      await stack.stop();
    }
  }
  return out;
}
