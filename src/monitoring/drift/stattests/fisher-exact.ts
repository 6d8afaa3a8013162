/**
 * `fisher_exact`: Fisher's exact test (two-sided, scipy `fisher_exact`) on the 2×2 table of a
 * binary category in current and reference. Evidently requires at most two categories per side
 * and reference and current of equal length, and raises otherwise; so does this.
 * Score = p-value; drift when p < threshold.
 */

import { logGamma } from '../special.js';
import type { CategoryKey, DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { orderFree, testError } from './numpy-compat.js';

/** ln C(n, k). */
function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/**
 * Two-sided p-value of the 2×2 table [[a, b], [c, d]]: the probability, under the hypergeometric
 * null with the margins fixed, of every table no more likely than the observed one (with scipy's
 * relative tolerance of 1e-14 for ties).
 */
export function fisherExactPValue(a: number, b: number, c: number, d: number): number {
  const n1 = a + b;
  const n2 = c + d;
  const n = a + c;
  if (n1 === 0 || n2 === 0 || n === 0 || b + d === 0) return 1;
  const total = n1 + n2;
  const lo = Math.max(0, n - n2);
  const hi = Math.min(n, n1);
  const logNorm = logChoose(total, n);
  // ln C(n1, x) + ln C(n2, n − x) is added in a fixed order, so mirrored tables (x ↔ n − x when
  // n1 = n2) get bit-identical probabilities and tie exactly, as they do in theory.
  const pmf = (x: number): number =>
    x < lo || x > hi ? 0 : Math.exp(logChoose(n1, x) + logChoose(n2, n - x) - logNorm);
  const mode = Math.floor(((n + 1) * (n1 + 1)) / (total + 2));
  const pexact = pmf(a);
  const pmode = pmf(mode);
  const epsilon = 1e-14;
  if (Math.abs(pexact - pmode) / Math.max(pexact, pmode) <= epsilon) return 1;
  const bound = pexact * (1 + epsilon);
  let p = 0;
  for (let x = lo; x <= hi; x++) {
    const q = pmf(x);
    if (x === a || q <= bound) p += q;
  }
  return Math.min(p, 1);
}

export const fisherExact: SummaryStatTest = orderFree({
  name: 'fisher_exact',
  kinds: ['categorical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const refKeys = new Set<CategoryKey>(reference.values);
    const curKeys = new Set<CategoryKey>(current.values);
    if (refKeys.size > 2 || curKeys.size > 2) {
      throw testError(
        'fisher_exact',
        'expects binary data in reference and current, found more than 2 categories',
      );
    }
    if (reference.values.length !== current.values.length) {
      throw testError(
        'fisher_exact',
        `needs reference and current of equal length (reference ${reference.values.length}, current ${current.values.length})`,
      );
    }
    // The first category seen is "0", any other "1" (with three categories across both sides,
    // each side binary, Evidently maps two by Python's set order and counts the unmapped third as
    // "1"). Which is which only swaps rows and columns: the two-sided p-value does not change.
    const zero = reference.values.length > 0 ? reference.values[0] : current.values[0];
    let oneRef = 0;
    let oneCur = 0;
    for (const v of reference.values) if (v !== zero) oneRef++;
    for (const v of current.values) if (v !== zero) oneCur++;
    const p = fisherExactPValue(
      oneCur,
      current.values.length - oneCur,
      oneRef,
      reference.values.length - oneRef,
    );
    return { score: p, drifted: p < threshold };
  },
});
