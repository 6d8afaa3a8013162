/**
 * `ed`: the energy distance between the two samples (scipy `energy_distance`: √2 times the L2
 * distance between their empirical cdfs). Score = distance; drift when distance > threshold.
 */
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { numericValues, orderFree, sorted } from './numpy-compat.js';

export function energyDistance(u: ArrayLike<number>, v: ArrayLike<number>): number {
  const us = sorted(u);
  const vs = sorted(v);
  // Walk the merged order; between consecutive merged values both cdfs are constant.
  let i = 0;
  let j = 0;
  let sum = 0;
  let prev = Math.min(us[0], vs[0]);
  while (i < us.length || j < vs.length) {
    const next = j >= vs.length || (i < us.length && us[i] <= vs[j]) ? us[i] : vs[j];
    if (next !== prev) {
      const d = i / us.length - j / vs.length;
      sum += d * d * (next - prev);
      prev = next;
    }
    while (i < us.length && us[i] === next) i++;
    while (j < vs.length && vs[j] === next) j++;
  }
  return Math.SQRT2 * Math.sqrt(sum);
}

export const energyDistanceTest: SummaryStatTest = orderFree({
  name: 'ed',
  kinds: ['numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const distance = energyDistance(numericValues(reference, 'ed'), numericValues(current, 'ed'));
    return { score: distance, drifted: distance > threshold };
  },
});
