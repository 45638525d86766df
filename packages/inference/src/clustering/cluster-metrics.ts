/**
 * Agreement of a clustering with true classes: purity, adjusted Rand index (Hubert & Arabie)
 * and normalized mutual information (arithmetic mean of the entropies, as scikit-learn's
 * default). Labels are any strings or numbers; an outlier is its own label value.
 */

function contingency(truth: readonly (string | number)[], found: readonly (string | number)[]) {
  if (truth.length !== found.length) throw new Error(`${truth.length} true labels for ${found.length} found`);
  const table = new Map<string, number>();
  const rows = new Map<string | number, number>();
  const cols = new Map<string | number, number>();
  truth.forEach((t, i) => {
    const f = found[i]!;
    const key = `${String(t)}\u0000${String(f)}`;
    table.set(key, (table.get(key) ?? 0) + 1);
    rows.set(t, (rows.get(t) ?? 0) + 1);
    cols.set(f, (cols.get(f) ?? 0) + 1);
  });
  return { table, rows, cols, n: truth.length };
}

const choose2 = (x: number) => (x * (x - 1)) / 2;

/** Adjusted Rand index: 1 for identical partitions, about 0 for chance. */
export function adjustedRandIndex(truth: readonly (string | number)[], found: readonly (string | number)[]): number {
  const { table, rows, cols, n } = contingency(truth, found);
  let index = 0;
  for (const c of table.values()) index += choose2(c);
  let a = 0;
  for (const c of rows.values()) a += choose2(c);
  let b = 0;
  for (const c of cols.values()) b += choose2(c);
  const expected = (a * b) / choose2(n);
  const max = (a + b) / 2;
  return max === expected ? 1 : (index - expected) / (max - expected);
}

/** Normalized mutual information (arithmetic normalization). */
export function normalizedMutualInformation(truth: readonly (string | number)[], found: readonly (string | number)[]): number {
  const { table, rows, cols, n } = contingency(truth, found);
  const entropy = (m: Map<string | number, number>) => [...m.values()].reduce((h, c) => h - (c / n) * Math.log(c / n), 0);
  let mi = 0;
  const rowOf = new Map<string, number>();
  const colOf = new Map<string, number>();
  truth.forEach((t, i) => {
    const key = `${String(t)}\u0000${String(found[i])}`;
    rowOf.set(key, rows.get(t)!);
    colOf.set(key, cols.get(found[i]!)!);
  });
  for (const [key, c] of table) mi += (c / n) * Math.log((n * c) / (rowOf.get(key)! * colOf.get(key)!));
  const hu = entropy(rows);
  const hv = entropy(cols);
  return hu + hv === 0 ? 1 : mi / ((hu + hv) / 2);
}

/** Purity: the share of inputs in their cluster's majority class. */
export function purity(truth: readonly (string | number)[], found: readonly (string | number)[]): number {
  const { table, n } = contingency(truth, found);
  const best = new Map<string, number>();
  for (const [key, c] of table) {
    const f = key.split('\u0000')[1]!;
    best.set(f, Math.max(best.get(f) ?? 0, c));
  }
  return [...best.values()].reduce((a, b) => a + b, 0) / n;
}
