// Small statistics helpers: nearest-rank percentiles over plain arrays of numbers.

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function summary(values, digits = 1) {
  return {
    n: values.length,
    p50: round(percentile(values, 50), digits),
    p99: round(percentile(values, 99), digits),
    max: round(
      values.reduce((a, b) => Math.max(a, b), -Infinity),
      digits,
    ),
    mean: round(values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN, digits),
  };
}

export function round(x, digits = 1) {
  if (!Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function ratio(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return null;
  return round(a / b, 2);
}

export function verdict(ok) {
  return ok ? 'PASS' : 'FAIL';
}

export function megabytes(bytes) {
  return `${round(bytes / (1024 * 1024), 1)} MB`;
}

export function seconds(ms) {
  return `${round(ms / 1000, 1)} s`;
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median, minimum and maximum of some runs, and the spread (max - min) as a share of the median. */
export function spreadOf(values) {
  const m = median(values);
  return {
    values: [...values],
    median: round(m, 1),
    min: round(Math.min(...values), 1),
    max: round(Math.max(...values), 1),
    spread_pct: round((100 * (Math.max(...values) - Math.min(...values))) / m, 0),
  };
}

/** "12.3 s (median of 12.1 s, 12.3 s, 13.0 s; spread 7%)" */
export function withSpread(ms, spread) {
  return spread
    ? `${seconds(ms)} (median of ${spread.values.map(seconds).join(', ')}; spread ${spread.spread_pct}%)`
    : seconds(ms);
}
