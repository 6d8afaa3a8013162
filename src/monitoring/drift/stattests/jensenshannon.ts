import { binnedShares } from '../binning.js';
import {
  type ColumnSummary,
  type DriftColumn,
  type StatTestResult,
  type SummaryStatTest,
  summarize,
} from '../stat-test.js';
import { relEntr } from './kl-div.js';

/**
 * Jensen-Shannon distance, `scipy.spatial.distance.jensenshannon(ref, cur)` with base None: the
 * square root of the divergence in nats (at most √ln 2 ≈ 0.833), over Evidently's bins with
 * empty bins left empty. Drift when ≥ threshold.
 */
export const jensenshannon: SummaryStatTest = {
  name: 'jensenshannon',
  kinds: ['categorical', 'numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    return jensenshannon.runSummary(summarize(reference), summarize(current), threshold);
  },
  runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number): StatTestResult {
    const [r, c] = binnedShares(reference, current, false);
    const score = jensenShannonDistance(r, c);
    return { score, drifted: score >= threshold };
  },
};

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
