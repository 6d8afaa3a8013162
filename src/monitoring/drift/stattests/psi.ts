import { binnedShares } from '../binning.js';
import {
  type ColumnSummary,
  type DriftColumn,
  type StatTestResult,
  type SummaryStatTest,
  summarize,
} from '../stat-test.js';

/** Population stability index Σ (r − c)·ln(r / c) over Evidently's bins, empty bins filled. Drift when ≥ threshold. */
export const psi: SummaryStatTest = {
  name: 'psi',
  kinds: ['categorical', 'numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    return psi.runSummary(summarize(reference), summarize(current), threshold);
  },
  runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number): StatTestResult {
    const [r, c] = binnedShares(reference, current, true);
    let score = 0;
    for (let i = 0; i < r.length; i++) score += (r[i] - c[i]) * Math.log(r[i] / c[i]);
    return { score, drifted: score >= threshold };
  },
};
