/**
 * `mannw`: the Mann–Whitney U test of reference against current with alternative='less'
 * (scipy `mannwhitneyu(x=reference, y=current, alternative="less")`, one-sided, as Evidently calls
 * it): small samples without ties (one side ≤ 8) get the exact null distribution, everything else
 * the normal approximation with tie correction and continuity correction.
 * Score = p-value; drift when p < threshold.
 */

import { normalSf } from '../special.js';
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { averageRanks, numericValues, numpySum, orderFree } from './numpy-compat.js';

/** C(n, k) as a float (a product of ratios; scipy uses special.binom). */
function choose(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/**
 * P(U ≥ u) for the U statistic of samples of sizes m ≤ n without ties. The counts of U follow
 * the Gaussian binomial [m + n choose m]_q = Π(1 − q^(n+i)) / Π(1 − q^i), i = 1..m: the
 * denominator gives partitions into parts ≤ m (all positive, summed without cancellation), the
 * numerator a signed sum of at most 2^m shifts.
 */
export function mannWhitneyExactSf(u: number, m: number, n: number): number {
  if (m > n) [m, n] = [n, m];
  const mn = m * n;
  const k = Math.min(u, mn - u); // the distribution is symmetric about mn/2
  // partitions[j] = partitions of j into parts ≤ m, for j ≤ k.
  const partitions = new Float64Array(k + 1);
  partitions[0] = 1;
  for (let part = 1; part <= m; part++) for (let j = part; j <= k; j++) partitions[j] += partitions[j - part];
  const cumulative = new Float64Array(k + 1);
  let run = 0;
  for (let j = 0; j <= k; j++) cumulative[j] = run += partitions[j];
  // Numerator terms: subsets S of {n+1..n+m}, sign (−1)^|S|, shift Σ S.
  let cdf = 0;
  let pmf = 0;
  const visit = (i: number, shift: number, sign: number) => {
    if (shift > k) return;
    if (i > m) {
      cdf += sign * cumulative[k - shift];
      pmf += sign * partitions[k - shift];
      return;
    }
    visit(i + 1, shift, sign);
    visit(i + 1, shift + n + i, -sign);
  };
  visit(1, 0, 1);
  const total = choose(m + n, m);
  // scipy: the mass at or above u, from whichever side of the symmetric distribution is smaller.
  if (u < mn - u) return 1 - cdf / total + pmf / total;
  return cdf / total;
}

export function mannWhitneyLessPValue(x: Float64Array, y: Float64Array): number {
  const n1 = x.length;
  const n2 = y.length;
  const all = new Float64Array(n1 + n2);
  all.set(x, 0);
  all.set(y, n1);
  const { ranks, ties } = averageRanks(all);
  const r1 = numpySum(ranks.subarray(0, n1));
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const u2 = n1 * n2 - u1; // alternative 'less' uses the survival function of U2
  const hasTies = ties.some((t) => t > 1);
  let p: number;
  if ((n1 <= 8 || n2 <= 8) && !hasTies) {
    p = mannWhitneyExactSf(Math.trunc(u2), n1, n2);
  } else {
    const n = n1 + n2;
    let tieTerm = 0;
    for (const t of ties) tieTerm += t ** 3 - t;
    const s = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm / (n * (n - 1))));
    const z = (u2 - (n1 * n2) / 2 - 0.5) / s;
    p = normalSf(z);
  }
  return Math.min(Math.max(p, 0), 1);
}

export const mannWhitney: SummaryStatTest = orderFree({
  name: 'mannw',
  kinds: ['numerical'],
  defaultThreshold: 0.05,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const p = mannWhitneyLessPValue(numericValues(reference, 'mannw'), numericValues(current, 'mannw'));
    return { score: p, drifted: p < threshold };
  },
});
