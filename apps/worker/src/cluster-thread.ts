/**
 * Runs on a worker thread: k-means, keywords and examples for one cluster run. Clustering
 * 100,000 vectors takes a while and is synchronous; on the worker's main thread it would
 * stop the event loop, so BullMQ could not renew the job's lock (nor any other job's).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { clusterKeywords, clusterVectors, type ClusterVectorsOptions, type VectorClusters } from '@inferq/inference';

export interface ClusterThreadInput {
  /** `[n, dims]` row-major. */
  vectors: Float32Array;
  dims: number;
  texts: string[];
  options: ClusterVectorsOptions;
}

export interface ClusterThreadOutput {
  clusters: Pick<VectorClusters, 'members' | 'outliers' | 'k'> & { assignments: Int32Array };
  keywords: string[][];
}

const { vectors, dims, texts, options } = workerData as ClusterThreadInput;
const rows = Array.from({ length: vectors.length / dims }, (_, i) => vectors.subarray(i * dims, (i + 1) * dims));
try {
  const clusters = clusterVectors(rows, options);
  const keywords = clusterKeywords(clusters.members.map((m) => m.map((i) => texts[i] ?? '')));
  parentPort?.postMessage({ ok: true, value: { clusters, keywords } satisfies ClusterThreadOutput });
} catch (err) {
  parentPort?.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) });
}
