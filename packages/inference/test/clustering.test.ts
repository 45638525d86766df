import { describe, expect, it } from 'vitest';
import { adjustedRandIndex, clusterKeywords, clusterVectors, normalizedMutualInformation, purity } from '../src/index.js';

describe('cluster agreement scores', () => {
  it('are 1 for the same partition under other names, and low for an unrelated one', () => {
    const truth = ['a', 'a', 'b', 'b', 'c', 'c'];
    expect(adjustedRandIndex(truth, [2, 2, 0, 0, 1, 1])).toBeCloseTo(1, 12);
    expect(normalizedMutualInformation(truth, [2, 2, 0, 0, 1, 1])).toBeCloseTo(1, 12);
    expect(purity(truth, [2, 2, 0, 0, 1, 1])).toBe(1);
    expect(adjustedRandIndex(truth, [0, 1, 0, 1, 0, 1])).toBeLessThan(0);
    expect(purity(truth, [0, 0, 0, 0, 0, 0])).toBeCloseTo(2 / 6, 12);
  });

  it('match worked values (scikit-learn: ARI 0.242424..., NMI 0.515804...)', () => {
    const truth = [0, 0, 0, 1, 1, 1];
    const found = [0, 0, 1, 1, 2, 2];
    expect(adjustedRandIndex(truth, found)).toBeCloseTo(0.24242424242424246, 12);
    expect(normalizedMutualInformation(truth, found)).toBeCloseTo(0.5158037429793889, 12);
  });
});

describe('clusterVectors', () => {
  const around = (axis: number, jitter: number) => {
    const v = new Float32Array(3);
    v[axis] = 1;
    v[(axis + 1) % 3] = jitter;
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm); // unit vectors, as the embedding models give
  };
  const vectors = [around(0, 0.1), around(1, 0.1), around(2, 0.1), around(0, 0.2), around(1, 0.2), around(2, 0.2), around(0, 0.3)];

  it('groups by direction, largest first, nearest the centroid first', () => {
    const c = clusterVectors(vectors, { numClusters: 3 });
    expect(c.members.map((m) => m.length)).toEqual([3, 2, 2]);
    expect([...c.members[0]!].sort()).toEqual([0, 3, 6]);
    expect(c.members[0]![0]).toBe(3);
    expect(adjustedRandIndex([0, 1, 2, 0, 1, 2, 0], Array.from(c.assignments))).toBeCloseTo(1, 12);
  });

  it('dissolves clusters under min_cluster_size into outliers, and finds k by itself', () => {
    const c = clusterVectors(vectors, { numClusters: 3, minClusterSize: 3 });
    expect(c.members).toHaveLength(1);
    expect(c.outliers).toEqual([1, 2, 4, 5]);
    expect(clusterVectors(vectors).k).toBe(3);
  });

  it('takes a distance of its own (e.g. one for sparse rows) and gives the same clusters for the same distance', () => {
    let calls = 0;
    const squared = (p: number[], c: number[]) => (calls++, p.reduce((s, x, i) => s + (x - (c[i] ?? 0)) ** 2, 0));
    expect(Array.from(clusterVectors(vectors, { numClusters: 3, distance: squared }).assignments)).toEqual(Array.from(clusterVectors(vectors, { numClusters: 3 }).assignments));
    expect(calls).toBeGreaterThan(0);
  });

  it('refuses a k outside 1 to the number of inputs', () => {
    expect(() => clusterVectors(vectors, { numClusters: 8 })).toThrow(/from 1 to the number of inputs \(7\)/);
    expect(() => clusterVectors(vectors.slice(0, 1))).toThrow(/at least 2/);
  });
});

describe('clusterKeywords', () => {
  it("names each cluster by the words that set it apart, not the words all share", () => {
    const keywords = clusterKeywords([
      ['my parcel is late', 'the parcel never came', 'parcel tracking is broken'],
      ['my invoice is wrong', 'wrong invoice amount', 'the invoice total is broken'],
    ]);
    expect(keywords[0]?.[0]).toBe('parcel');
    expect(keywords[1]?.[0]).toBe('invoice');
    expect(keywords[0]).not.toContain('my');
  });
});
