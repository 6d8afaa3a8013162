import {
  type ColumnSummary,
  type DriftColumn,
  type StatTestResult,
  type SummaryStatTest,
  summarize,
} from '../stat-test.js';

/**
 * Normed Wasserstein-1 distance: `scipy.stats.wasserstein_distance(ref, cur)` divided by
 * max(np.std(ref), 0.001) (population standard deviation). Drift when ≥ threshold.
 */
export const wasserstein: SummaryStatTest = {
  name: 'wasserstein',
  kinds: ['numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    return wasserstein.runSummary(summarize(reference), summarize(current), threshold);
  },
  runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number): StatTestResult {
    if (reference.kind !== 'numerical' || current.kind !== 'numerical') {
      throw new TypeError('wasserstein: numerical columns only');
    }
    const norm = Math.max(std(reference), 0.001);
    const score = wassersteinDistance(reference, current) / norm;
    return { score, drifted: score >= threshold };
  },
};

type Numeric = Extract<ColumnSummary, { kind: 'numerical' }>;

/** ∫ |U − V| between the two empirical distribution functions. */
export function wassersteinDistance(a: Numeric, b: Numeric): number {
  let i = 0;
  let j = 0;
  let ca = 0;
  let cb = 0;
  let prev = Number.NaN;
  let prevDiff = 0;
  let sum = 0;
  while (i < a.values.length || j < b.values.length) {
    const va = i < a.values.length ? a.values[i] : Number.POSITIVE_INFINITY;
    const vb = j < b.values.length ? b.values[j] : Number.POSITIVE_INFINITY;
    const v = Math.min(va, vb);
    if (!Number.isNaN(prev)) sum += prevDiff * (v - prev);
    if (va === v) ca += a.counts[i++];
    if (vb === v) cb += b.counts[j++];
    prevDiff = Math.abs(ca / a.n - cb / b.n);
    prev = v;
  }
  return sum;
}

/** Population standard deviation (numpy's np.std, ddof 0). */
export function std(s: Numeric): number {
  let sum = 0;
  for (let i = 0; i < s.values.length; i++) sum += s.values[i] * s.counts[i];
  const mean = sum / s.n;
  let ss = 0;
  for (let i = 0; i < s.values.length; i++) {
    const d = s.values[i] - mean;
    ss += d * d * s.counts[i];
  }
  return Math.sqrt(ss / s.n);
}
