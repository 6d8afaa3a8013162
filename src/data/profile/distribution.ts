import type { KllSketch } from './kll.js';

/**
 * A column's numeric distribution (datetimes in epoch ms), exact or from its KLL sketch: what
 * drift tests read from a reference profile (quantiles for KS or Wasserstein, ranks at bin edges
 * for PSI or Jensen–Shannon).
 *
 * @example
 *   const d = profile.get('age')?.distribution();
 *   const share = d ? (d.rank(40) - d.rank(30)) / d.n : 0;   // share of ages in (30, 40]
 */
export interface Distribution {
  /** Values counted (finite numbers, or datetimes). */
  readonly n: number;
  /** True when computed from exact values; otherwise from the sketch (≈1.65% rank error). */
  readonly exact: boolean;
  /** The q-quantile: pandas' default linear interpolation when exact, a retained value otherwise. */
  quantile(q: number): number;
  /** How many values are ≤ x (or < x when `inclusive` is false). */
  rank(x: number, inclusive?: boolean): number;
}

/**
 * (value, count) pairs sorted by value, with equal values (a big integer and a number of the
 * same value, or -0 and 0) made one: the values are sorted natively (no comparator call per
 * comparison) and each count placed by a binary search. `values` must hold no NaN.
 */
export function sortedCounts(
  values: Float64Array,
  counts: Float64Array,
  length = values.length,
): { values: Float64Array<ArrayBuffer>; counts: Float64Array<ArrayBuffer> } {
  const packed = sortedIntegerCounts(values, counts, length);
  if (packed) return packed;
  const order = values.slice(0, length).sort();
  let w = 0;
  for (let i = 0; i < length; i++) if (w === 0 || order[i] !== order[w - 1]) order[w++] = order[i]!;
  const placed = new Float64Array(w);
  for (let i = 0; i < length; i++) {
    const v = values[i]!;
    let lo = 0;
    let hi = w - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (order[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    placed[lo]! += counts[i]!;
  }
  return { values: order.slice(0, w), counts: placed };
}

/**
 * `sortedCounts` for integers small enough to carry their position: each value times 2^k plus
 * its index is one double, exact below 2^53, so one native sort orders the values and tells
 * where each count goes (no search per value). Null when a value is not such an integer.
 */
function sortedIntegerCounts(
  values: Float64Array,
  counts: Float64Array,
  length: number,
): { values: Float64Array<ArrayBuffer>; counts: Float64Array<ArrayBuffer> } | null {
  if (length === 0) return null;
  const scale = 2 ** Math.ceil(Math.log2(length + 1));
  const limit = Number.MAX_SAFE_INTEGER / scale - 1;
  const keys = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v > limit || v < -limit) return null;
    keys[i] = v * scale + i;
  }
  keys.sort();
  const out = new Float64Array(length);
  const placed = new Float64Array(length);
  let w = 0;
  for (let j = 0; j < length; j++) {
    const key = keys[j]!;
    const v = Math.floor(key / scale);
    const i = key - v * scale;
    // -0 and 0 are one value, as the search below makes them.
    if (w === 0 || out[w - 1] !== v) out[w++] = v;
    placed[w - 1]! += counts[i]!;
  }
  return { values: out.slice(0, w), counts: placed.slice(0, w) };
}

/** The exact distribution of values with their counts (in any order). */
export class ExactDistribution implements Distribution {
  readonly n: number;
  readonly exact = true;
  private readonly values: Float64Array;
  /** cumulative[i]: values at indices ≤ i. */
  private readonly cumulative: Float64Array;

  constructor(values: Float64Array, counts: Float64Array) {
    const sorted = sortedCounts(values, counts);
    this.values = sorted.values;
    this.cumulative = sorted.counts;
    let total = 0;
    for (let i = 0; i < this.cumulative.length; i++) {
      total += this.cumulative[i]!;
      this.cumulative[i] = total;
    }
    this.n = total;
  }

  /**
   * Position (n−1)·q between the neighbouring order statistics, interpolated as numpy's `_lerp`
   * (from the upper neighbour when the fraction is ≥ 0.5), so results equal pandas' bit for bit
   * in most cases and to 1e-15 otherwise.
   */
  quantile(q: number): number {
    if (this.n === 0) return Number.NaN;
    const h = (this.n - 1) * q;
    const lo = Math.floor(h);
    const t = h - lo;
    const a = this.orderStatistic(lo);
    if (t === 0) return a;
    const b = this.orderStatistic(lo + 1);
    const d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
  }

  rank(x: number, inclusive = true): number {
    // First index whose value is > x (inclusive) or ≥ x.
    let lo = 0;
    let hi = this.values.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.values[mid];
      if (v < x || (inclusive && v === x)) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : this.cumulative[lo - 1];
  }

  /** The value at 0-based rank r. */
  private orderStatistic(r: number): number {
    let lo = 0;
    let hi = this.values.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid] > r) hi = mid;
      else lo = mid + 1;
    }
    return this.values[lo];
  }
}

/** The distribution a KLL sketch estimates. */
export function sketchDistribution(kll: KllSketch): Distribution {
  return {
    n: kll.n,
    exact: false,
    quantile: (q) => kll.quantile(q),
    rank: (x, inclusive = true) => kll.rank(x, inclusive),
  };
}

/**
 * Equal-width bins over [min, max] as numpy.histogram: each bin holds values in [lo, hi), the last
 * bin is closed; a constant column gets one unit around its value. Counts come from ranks at the
 * edges (exact, or rounded sketch estimates).
 */
export function histogram(d: Distribution, min: number, max: number, bins: number) {
  const [lo, hi] = min === max ? [min - 0.5, max + 0.5] : [min, max];
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
  const counts = new Array<number>(bins).fill(0);
  let previous = 0;
  for (let i = 1; i <= bins; i++) {
    const below = i === bins ? d.n : d.rank(edges[i], false);
    counts[i - 1] = Math.max(0, Math.round(below - previous));
    previous = below;
  }
  return { edges, counts };
}
