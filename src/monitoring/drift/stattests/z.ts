import { unionKeys } from '../binning.js';
import { erf, erfc } from '../special.js';
import {
  type CategoryKey,
  type ColumnSummary,
  type DriftColumn,
  type StatTestResult,
  type SummaryStatTest,
  summarize,
} from '../stat-test.js';

/**
 * Two-sided pooled two-proportion z-test on "is not the smallest value" (Evidently sorts the
 * union of values and tests the share of everything but the first). Both columns holding one
 * and the same value give p = 1. The p-value is 2·(1 − Φ(|z|)), computed as Evidently does.
 * Drift when p < threshold.
 */
export const z: SummaryStatTest = {
  name: 'z',
  kinds: ['categorical'],
  defaultThreshold: 0.05,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    return z.runSummary(summarize(reference), summarize(current), threshold);
  },
  runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number): StatTestResult {
    const keys = unionKeys(reference, current).sort(compareKeys);
    const refKeys = unionKeys(reference, reference);
    const curKeys = unionKeys(current, current);
    let score: number;
    if (refKeys.length === 1 && curKeys.length === 1 && refKeys[0] === curKeys[0]) score = 1;
    else {
      const first = keys[0];
      const n1 = reference.n;
      const n2 = current.n;
      const p1 = (n1 - countOf(reference, first)) / n1;
      const p2 = (n2 - countOf(current, first)) / n2;
      const P = (p1 * n1 + p2 * n2) / (n1 + n2);
      const stat = (p1 - p2) / Math.sqrt(P * (1 - P) * (1 / n1 + 1 / n2));
      score = 2 * (1 - ndtr(Math.abs(stat)));
    }
    return { score, drifted: score < threshold };
  },
};

function countOf(s: ColumnSummary, key: CategoryKey): number {
  if (s.kind === 'categorical') return s.counts.get(key) ?? 0;
  let lo = 0;
  let hi = s.values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s.values[mid] < (key as number)) lo = mid + 1;
    else hi = mid;
  }
  return s.values[lo] === key ? s.counts[lo] : 0;
}

/** Python's ordering of one kind of key: numbers (and booleans) by value, strings by code point. */
export function compareKeys(a: CategoryKey, b: CategoryKey): number {
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return Number(a) - Number(b);
}

/** scipy's `ndtr` (cephes): Φ(a) with erf near 0 and erfc beyond, 1 − tail for positive a. */
function ndtr(a: number): number {
  const x = a * Math.SQRT1_2;
  const zz = Math.abs(x);
  if (zz < Math.SQRT1_2) return 0.5 + 0.5 * erf(x);
  const y = 0.5 * erfc(zz);
  return x > 0 ? 1 - y : y;
}
