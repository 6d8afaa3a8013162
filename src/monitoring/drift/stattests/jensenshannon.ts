import { binnedTest } from '../binning.js';
import { relEntr } from './kl-div.js';

/**
 * Jensen-Shannon distance, `scipy.spatial.distance.jensenshannon(ref, cur)` with base None: the
 * square root of the divergence in nats (at most √ln 2 ≈ 0.833), over Evidently's bins with
 * empty bins left empty. Drift when ≥ threshold.
 */
export const jensenshannon = binnedTest('jensenshannon', false, (r, c) => jensenShannonDistance(r, c));

export function jensenShannonDistance(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i];
    sq += q[i];
  }
  let left = 0;
  let right = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] / sp;
    const qi = q[i] / sq;
    const m = (pi + qi) / 2;
    left += relEntr(pi, m);
    right += relEntr(qi, m);
  }
  return Math.sqrt((left + right) / 2);
}
