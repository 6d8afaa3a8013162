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

/** The exact distribution of (value, count) pairs. */
export class ExactDistribution implements Distribution {
  readonly n: number;
  readonly exact = true;
  private readonly values: Float64Array;
  /** cumulative[i]: values at indices ≤ i. */
  private readonly cumulative: Float64Array;

  constructor(pairs: Iterable<readonly [number, number]>) {
    const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
    this.values = Float64Array.from(sorted, (p) => p[0]);
    this.cumulative = new Float64Array(sorted.length);
    let total = 0;
    sorted.forEach(([, c], i) => {
      total += c;
      this.cumulative[i] = total;
    });
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
