/**
 * `t_test`: Student's two-sample t-test with pooled variance (scipy `ttest_ind`, equal_var=True,
 * two-sided), as Evidently runs it. Score = p-value; drift when p < threshold.
 */

import { studentTSf } from '../special.js';
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { numericValues, numpyMean, orderFree } from './numpy-compat.js';

/** Sample variance with ddof = 1 as scipy computes it: mean of squared deviations × n/(n − 1). */
function variance(values: Float64Array, mean: number): number {
  const sq = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const d = values[i] - mean;
    sq[i] = d * d;
  }
  const n = values.length;
  return numpyMean(sq) * (n / (n - 1));
}

/** Two-sided p-value of the pooled two-sample t statistic (NaN when undefined, as scipy). */
export function tTestPValue(a: Float64Array, b: Float64Array): number {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0) return Number.NaN;
  const m1 = numpyMean(a);
  const m2 = numpyMean(b);
  const v1 = n1 === 1 ? 0 : variance(a, m1);
  const v2 = n2 === 1 ? 0 : variance(b, m2);
  const df = n1 + n2 - 2;
  const svar = ((n1 - 1) * v1 + (n2 - 1) * v2) / df;
  const denom = Math.sqrt(svar * (1 / n1 + 1 / n2));
  const t = (m1 - m2) / denom;
  if (Number.isNaN(t)) return Number.NaN;
  return 2 * studentTSf(Math.abs(t), df);
}

export const tTest: SummaryStatTest = orderFree({
  name: 't_test',
  kinds: ['numerical'],
  defaultThreshold: 0.05,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const p = tTestPValue(numericValues(reference, 't_test'), numericValues(current, 't_test'));
    return { score: p, drifted: p < threshold };
  },
});
