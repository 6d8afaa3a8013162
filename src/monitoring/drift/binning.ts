import {
  type CategoryKey,
  type ColumnSummary,
  type DriftColumn,
  type StatTestResult,
  type SummaryStatTest,
  summarize,
} from './stat-test.js';

/**
 * Evidently's `get_binned_data` (stattests/utils.py), shared by psi, kl_div and jensenshannon.
 * A numerical column with more than 20 distinct reference values is cut into equal-width bins
 * over the pooled data, as many as numpy's Sturges rule gives (`np.histogram_bin_edges(concat,
 * bins="sturges")`; Evidently's `n_bins` argument is ignored); anything else is counted per
 * value over the union of both columns' values. Shares are counts over each column's length.
 * With `fillZeroes`, an empty share becomes min_nonzero/1e6 when min_nonzero ≤ 1e-4, else 1e-4
 * (psi and kl_div; jensenshannon leaves zeroes).
 */
export function binnedShares(
  reference: ColumnSummary,
  current: ColumnSummary,
  fillZeroes: boolean,
): [Float64Array, Float64Array] {
  let ref: Float64Array;
  let cur: Float64Array;
  if (reference.kind === 'numerical' && current.kind === 'numerical' && reference.values.length > 20) {
    const edges = sturgesEdges(reference, current);
    ref = histogram(reference, edges);
    cur = histogram(current, edges);
  } else {
    const keys = unionKeys(reference, current);
    const rc = keyCounts(reference);
    const cc = keyCounts(current);
    ref = new Float64Array(keys.length);
    cur = new Float64Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      ref[i] = rc.get(keys[i]) ?? 0;
      cur[i] = cc.get(keys[i]) ?? 0;
    }
  }
  for (let i = 0; i < ref.length; i++) {
    ref[i] /= reference.n;
    cur[i] /= current.n;
  }
  if (fillZeroes) {
    fill(ref);
    fill(cur);
  }
  return [ref, cur];
}

function fill(shares: Float64Array): void {
  let min = Number.POSITIVE_INFINITY;
  for (const s of shares) if (s !== 0 && s < min) min = s;
  const value = min <= 0.0001 ? min / 10 ** 6 : 0.0001;
  for (let i = 0; i < shares.length; i++) if (shares[i] === 0) shares[i] = value;
}

/** Every distinct value of either column (reference first), as the keys of a value count. */
export function unionKeys(reference: ColumnSummary, current: ColumnSummary): CategoryKey[] {
  const keys = new Set<CategoryKey>();
  for (const s of [reference, current]) {
    if (s.kind === 'categorical') for (const k of s.counts.keys()) keys.add(k);
    else for (const v of s.values) keys.add(v);
  }
  return [...keys];
}

export function keyCounts(s: ColumnSummary): Map<CategoryKey, number> {
  if (s.kind === 'categorical') return s.counts;
  const m = new Map<CategoryKey, number>();
  for (let i = 0; i < s.values.length; i++) m.set(s.values[i], s.counts[i]);
  return m;
}

type Numeric = Extract<ColumnSummary, { kind: 'numerical' }>;

/** `np.histogram_bin_edges(concat(reference, current), bins="sturges")`. */
export function sturgesEdges(reference: Numeric, current: Numeric): Float64Array {
  let first = Math.min(reference.values[0], current.values[0]);
  let last = Math.max(
    reference.values[reference.values.length - 1],
    current.values[current.values.length - 1],
  );
  const size = reference.n + current.n;
  const ptp = last - first;
  let width = ptp / (Math.log2(size) + 1);
  if (first === last) {
    first -= 0.5;
    last += 0.5;
  }
  let bins = 1;
  if (width) {
    // numpy widens bins of an integer array to at least 1.
    if (reference.integer && current.integer && width < 1) width = 1;
    bins = Math.ceil((last - first) / width);
  }
  // np.linspace(first, last, bins + 1): i·step + first, the last edge exactly `last`.
  const edges = new Float64Array(bins + 1);
  const step = (last - first) / bins;
  for (let i = 0; i <= bins; i++) edges[i] = i * step + first;
  edges[bins] = last;
  return edges;
}

/** `np.histogram(values, edges)[0]`: [e_i, e_i+1) per bin, the last bin closed. */
export function histogram(s: Numeric, edges: Float64Array): Float64Array {
  const bins = edges.length - 1;
  const out = new Float64Array(bins);
  let b = 0;
  for (let i = 0; i < s.values.length; i++) {
    const v = s.values[i];
    if (v < edges[0] || v > edges[bins]) continue;
    while (b < bins - 1 && v >= edges[b + 1]) b++;
    out[b] += s.counts[i];
  }
  return out;
}

/**
 * A test scored on Evidently's bins (`psi`, `kl_div`, `jensenshannon`): numbers or categories,
 * threshold 0.1, drift when the score reaches it. `fillEmpty` replaces empty bins as Evidently
 * does for the tests that take logarithms of both sides.
 */
export function binnedTest(
  name: string,
  fillEmpty: boolean,
  score: (reference: Float64Array, current: Float64Array) => number,
): SummaryStatTest {
  const test: SummaryStatTest = {
    name,
    kinds: ['categorical', 'numerical'],
    defaultThreshold: 0.1,
    run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
      return test.runSummary(summarize(reference), summarize(current), threshold);
    },
    runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number): StatTestResult {
      const [r, c] = binnedShares(reference, current, fillEmpty);
      const s = score(r, c);
      return { score: s, drifted: s >= threshold };
    },
  };
  return test;
}
