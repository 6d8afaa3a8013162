/**
 * `g_test`: the G-test (scipy `power_divergence`, lambda_="log-likelihood") of the current
 * counts against the reference counts, unscaled, over the union of categories — as Evidently
 * calls it. scipy refuses expected and observed totals that differ (relative 1.5e-8), so the test
 * needs reference and current of the same size; otherwise it raises, as Evidently does.
 * Score = p-value; drift when p < threshold.
 */

import { chi2Sf } from '../special.js';
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { categoryCounts, numpySum, orderFree, testError } from './numpy-compat.js';

export function gTestPValue(observed: Float64Array, expected: Float64Array): number {
  const obsSum = numpySum(observed);
  const expSum = numpySum(expected);
  if (Math.abs(obsSum - expSum) / Math.min(obsSum, expSum) > Math.sqrt(2.220446049250313e-16)) {
    throw testError(
      'g_test',
      `compares current counts with unscaled reference counts, so both need the same number of values (reference ${expSum}, current ${obsSum})`,
    );
  }
  const terms = new Float64Array(observed.length);
  for (let i = 0; i < observed.length; i++) {
    const o = observed[i];
    terms[i] = o === 0 ? 0 : 2 * o * Math.log(o / expected[i]);
  }
  return chi2Sf(numpySum(terms), observed.length - 1);
}

export const gTest: SummaryStatTest = orderFree({
  name: 'g_test',
  kinds: ['categorical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const { ref, cur } = categoryCounts(reference, current);
    const p = gTestPValue(cur, ref);
    return { score: p, drifted: p < threshold };
  },
});
