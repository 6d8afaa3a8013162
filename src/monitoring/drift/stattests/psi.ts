import { binnedTest } from '../binning.js';

/** Population stability index Σ (r − c)·ln(r / c) over Evidently's bins, empty bins filled. Drift when ≥ threshold. */
export const psi = binnedTest('psi', true, (r, c) => {
  let score = 0;
  for (let i = 0; i < r.length; i++) score += (r[i] - c[i]) * Math.log(r[i] / c[i]);
  return score;
});
