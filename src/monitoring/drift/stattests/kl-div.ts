import { binnedTest } from '../binning.js';

/**
 * Kullback-Leibler divergence of reference from current, `scipy.stats.entropy(ref, cur)` (natural
 * log, both share vectors renormalised after empty bins are filled). Drift when ≥ threshold.
 */
export const klDiv = binnedTest('kl_div', true, (r, c) => entropy(r, c));

/** `scipy.stats.entropy(p, q)`: Σ rel_entr(p/Σp, q/Σq). */
export function entropy(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i];
    sq += q[i];
  }
  let s = 0;
  for (let i = 0; i < p.length; i++) s += relEntr(p[i] / sp, q[i] / sq);
  return s;
}

/** `scipy.special.rel_entr`: x·ln(x/y), 0 at x = 0, ∞ when only y is 0. */
export function relEntr(x: number, y: number): number {
  if (x > 0 && y > 0) return x * Math.log(x / y);
  if (x === 0 && y >= 0) return 0;
  return Number.POSITIVE_INFINITY;
}
