/**
 * Groups sentence vectors into clusters: k-means from mljs `ml-kmeans` (k-means++ seeding,
 * seeded, so the same vectors give the same clusters), with k chosen by the silhouette on a
 * sample when not given; clusters smaller than `minClusterSize` become outliers. Then each
 * cluster is named: class-based TF-IDF keywords (BERTopic's c-TF-IDF) and the members nearest
 * its centroid as examples.
 *
 * Why `ml-kmeans`: maintained (mljs), no native code, seedable, typed, and k-means is what a
 * "which issues keep coming back" view needs on normalized sentence vectors (spherical
 * clusters, every ticket placed). Density methods (HDBSCAN) leave many short tickets as noise
 * and have no well-kept JavaScript implementation.
 */
import { kmeans } from 'ml-kmeans';
import { mulberry32 } from '../generation/sampler.js';

/** Options of {@link clusterVectors}. */
export interface ClusterVectorsOptions {
  /** The number of clusters; chosen by the silhouette when left out. */
  numClusters?: number;
  /** Clusters with fewer members are dissolved into outliers. @defaultValue 2 */
  minClusterSize?: number;
  /** Largest k tried when choosing k. @defaultValue 60 */
  maxClusters?: number;
  /** Seed of k-means++ and of the silhouette sample. @defaultValue 42 */
  seed?: number;
  /** k-means iterations at most. @defaultValue 100 */
  maxIterations?: number;
  /** Points the silhouette is measured on when choosing k. @defaultValue 1000 */
  silhouetteSample?: number;
  /**
   * k-means' distance between a point and a centroid (squared Euclidean when left out), e.g.
   * one that skips the zeros of sparse TF-IDF rows. @defaultValue undefined
   */
  distance?: (point: number[], centroid: number[]) => number;
}

export const CLUSTER_DEFAULTS = Object.freeze({ minClusterSize: 2, maxClusters: 60, seed: 42, maxIterations: 100, silhouetteSample: 1000 });

/** The clusters of a set of vectors. */
export interface VectorClusters {
  /** Cluster of each input in input order, `-1` for an outlier; clusters numbered largest first. */
  assignments: Int32Array;
  /** Members of each cluster, nearest to its centroid first. */
  members: number[][];
  /** Outliers (members of dissolved clusters), in input order. */
  outliers: number[];
  /** The k k-means ran with (given or chosen). */
  k: number;
  /** Silhouette of each k tried, when k was chosen. */
  silhouettes?: { k: number; score: number }[];
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
}

/** A seeded sample of `size` indices out of `n`, in increasing order. */
function sampleIndices(n: number, size: number, seed: number): number[] {
  if (size >= n) return Array.from({ length: n }, (_, i) => i);
  const rng = mulberry32(seed);
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(rng() * (n - i));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, size).sort((a, b) => a - b);
}

/** Mean silhouette with cosine distance (vectors are unit length). */
export function silhouette(points: readonly ArrayLike<number>[], labels: readonly number[], k: number): number {
  const n = points.length;
  let total = 0;
  const sums = new Float64Array(k);
  const sizes = new Int32Array(k);
  for (const l of labels) sizes[l]!++;
  for (let i = 0; i < n; i++) {
    sums.fill(0);
    for (let j = 0; j < n; j++) if (j !== i) sums[labels[j]!]! += 1 - dot(points[i]!, points[j]!);
    const own = labels[i]!;
    if (sizes[own]! <= 1) continue;
    const a = sums[own]! / (sizes[own]! - 1);
    let b = Number.POSITIVE_INFINITY;
    for (let c = 0; c < k; c++) if (c !== own && sizes[c]! > 0) b = Math.min(b, sums[c]! / sizes[c]!);
    if (Number.isFinite(b)) total += (b - a) / Math.max(a, b);
  }
  return total / n;
}

const K_GRID = [2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200];

/**
 * k-means from several seeded k-means++ starts (as scikit-learn's `n_init`), keeping the run
 * with the least inertia: one start can land badly on a few hundred short texts. Fewer starts
 * for large sets, where one start is already stable and each costs seconds.
 */
function runKmeans(data: number[][], k: number, seed: number, maxIterations: number, distance?: ClusterVectorsOptions['distance']): number[] {
  const starts = data.length <= 5000 ? 8 : data.length <= 20_000 ? 3 : 1;
  let best: { clusters: number[]; inertia: number } | undefined;
  for (let s = 0; s < starts; s++) {
    const { clusters, centroids } = kmeans(data, k, { seed: seed + s, maxIterations, initialization: 'kmeans++', ...(distance ? { distanceFunction: distance } : {}) });
    let inertia = 0;
    clusters.forEach((c, i) => {
      const centroid = centroids[c]!;
      const point = data[i]!;
      for (let j = 0; j < point.length; j++) inertia += (point[j]! - centroid[j]!) ** 2;
    });
    if (!best || inertia < best.inertia) best = { clusters, inertia };
  }
  return best!.clusters;
}

/** Clusters unit vectors; see the file's comment. Throws for fewer than 2 vectors or k out of [1, n]. */
export function clusterVectors(vectors: readonly ArrayLike<number>[], options: ClusterVectorsOptions = {}): VectorClusters {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ClusterVectorsOptions;
  const o = { ...CLUSTER_DEFAULTS, ...given };
  const n = vectors.length;
  if (n < 2) throw new Error(`clustering needs at least 2 inputs, got ${n}`);
  if (o.numClusters !== undefined && (!Number.isInteger(o.numClusters) || o.numClusters < 1 || o.numClusters > n)) {
    throw new Error(`num_clusters must be from 1 to the number of inputs (${n}), got ${o.numClusters}`);
  }
  const data = vectors.map((v) => Array.from(v));
  let k = o.numClusters;
  let silhouettes: { k: number; score: number }[] | undefined;
  if (k === undefined) {
    const sample = sampleIndices(n, o.silhouetteSample, o.seed);
    const points = sample.map((i) => data[i]!);
    silhouettes = [];
    for (const candidate of K_GRID.filter((c) => c <= o.maxClusters && c < points.length)) {
      const labels = runKmeans(points, candidate, o.seed, o.maxIterations);
      silhouettes.push({ k: candidate, score: silhouette(points, labels, candidate) });
    }
    k = silhouettes.reduce((best, s) => (s.score > best.score ? s : best), silhouettes[0] ?? { k: 1, score: 0 }).k;
  }
  const raw = k === 1 ? new Array<number>(n).fill(0) : runKmeans(data, k, o.seed, o.maxIterations, o.distance);

  // Centroids of the unit vectors, then clusters by size (largest first, ties by first member).
  const width = data[0]?.length ?? 0;
  const groups: number[][] = Array.from({ length: k }, () => []);
  raw.forEach((c, i) => groups[c]!.push(i));
  const kept = groups.filter((g) => g.length >= o.minClusterSize).sort((a, b) => b.length - a.length || a[0]! - b[0]!);
  const assignments = new Int32Array(n).fill(-1);
  const members = kept.map((group, c) => {
    const centroid = new Float64Array(width);
    for (const i of group) for (let j = 0; j < width; j++) centroid[j]! += data[i]![j]!;
    for (const i of group) assignments[i] = c;
    const score = new Map(group.map((i) => [i, dot(data[i]!, centroid)]));
    return [...group].sort((a, b) => score.get(b)! - score.get(a)! || a - b);
  });
  const outliers: number[] = [];
  assignments.forEach((c, i) => c < 0 && outliers.push(i));
  return { assignments, members, outliers, k, ...(silhouettes ? { silhouettes } : {}) };
}
