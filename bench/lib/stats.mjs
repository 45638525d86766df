// Figures over repeated runs: median and spread.

export function quantile(values, q) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (v[lo] ?? NaN) + ((v[hi] ?? NaN) - (v[lo] ?? NaN)) * (pos - lo);
}

/** `{median, min, max, q1, q3, runs}` of the values (one per run). */
export function summarize(values) {
  return {
    median: quantile(values, 0.5),
    min: Math.min(...values),
    max: Math.max(...values),
    q1: quantile(values, 0.25),
    q3: quantile(values, 0.75),
    runs: values.map((v) => round(v, 3)),
  };
}

export function round(x, digits = 1) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** `123.4 (118.0–127.9)`: median and min–max. */
export function fmt(s, digits = 1) {
  if (!s || !Number.isFinite(s.median)) return 'n/a';
  if (s.runs.length === 1) return `${s.median.toFixed(digits)} (1 run)`;
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}
