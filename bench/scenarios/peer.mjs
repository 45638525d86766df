// Scenario 3, the peer: @huggingface/transformers' text-classification pipeline on the same
// model folder, fp32, same intra-op thread count, called per text and with arrays of 32.
import { env, pipeline } from '@huggingface/transformers';
import { cut } from '../lib/slices.mjs';

export async function createPeer({ modelsDir, modelId, texts, threads, arraySize }) {
  env.localModelPath = modelsDir;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  const classify = await pipeline('text-classification', modelId, {
    dtype: 'fp32',
    device: 'cpu',
    // v4 hands these to onnxruntime's InferenceSession.create as they are.
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  const groups = [];
  for (let i = 0; i < texts.length; i += arraySize) groups.push(texts.slice(i, i + arraySize));
  const perText = [];
  const arrays = [];
  let msText = 0;
  let msArray = 0;
  return {
    name: 'peer',
    async warmUp() {
      for (const t of texts.slice(0, 16)) await classify(t);
      for (const g of groups.slice(0, 2)) await classify(g);
    },
    startRun() {
      msText = 0;
      msArray = 0;
    },
    /** Slice k: its texts one by one, then the same texts as arrays. */
    async runSlice(k, slices) {
      for (const group of cut(groups, k, slices)) {
        let start = performance.now();
        for (const t of group) await classify(t);
        msText += performance.now() - start;
        start = performance.now();
        await classify(group);
        msArray += performance.now() - start;
      }
    },
    snapshot() {
      return { msText, msArray };
    },
    restore(snap) {
      ({ msText, msArray } = snap);
    },
    endRun() {
      perText.push((texts.length / msText) * 1000);
      arrays.push((texts.length / msArray) * 1000);
      return `per text ${perText[perText.length - 1].toFixed(1)}, arrays of ${arraySize} ${arrays[arrays.length - 1].toFixed(1)} texts/s`;
    },
    result() {
      return { perText, arrays };
    },
    async close() {
      await classify.dispose();
    },
  };
}
