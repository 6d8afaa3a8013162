import { keyCounts, unionKeys } from '../binning.js';
import { chi2Sf } from '../special.js';
import {
  type ColumnSummary,
  type DriftColumn,
  type StatTestResult,
  type SummaryStatTest,
  summarize,
} from '../stat-test.js';

/**
 * Pearson's chi-square goodness of fit of the current counts to the reference counts scaled to
 * the current size (`scipy.stats.chisquare(cur, ref·n_cur/n_ref)`, k − 1 degrees of freedom over
 * the union of values). A value absent from the reference makes the statistic infinite (p = 0).
 * Drift when p < threshold.
 */
export const chisquare: SummaryStatTest = {
  name: 'chisquare',
  kinds: ['categorical'],
  defaultThreshold: 0.05,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    return chisquare.runSummary(summarize(reference), summarize(current), threshold);
  },
  runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number): StatTestResult {
    const keys = unionKeys(reference, current);
    const rc = keyCounts(reference);
    const cc = keyCounts(current);
    const k = current.n / reference.n;
    let stat = 0;
    for (const key of keys) {
      const e = (rc.get(key) ?? 0) * k;
      const o = cc.get(key) ?? 0;
      stat += ((o - e) * (o - e)) / e;
    }
    const score = Number.isNaN(stat) ? Number.NaN : chi2Sf(stat, keys.length - 1);
    return { score, drifted: score < threshold };
  },
};
