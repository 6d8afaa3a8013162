/**
 * `anderson`: the k-sample Anderson–Darling test (Scholz & Stephens 1987) on reference and
 * current, as scipy `anderson_ksamp([ref, cur])` computes it by default: the midrank statistic
 * A²akN (valid with ties), standardised, and a p-value interpolated from the tabulated critical
 * values by a quadratic in log(significance) — capped at 0.25 and floored at 0.001 outside them
 * (scipy warns there; the capped value is the score, as in Evidently).
 * Score = p-value; drift when p < threshold.
 */
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { numericValues, orderFree, sorted, testError } from './numpy-compat.js';

/** Number of elements of an ascending array < v (side 'left') or ≤ v (side 'right'), from `from`. */
function countBelow(a: Float64Array, v: number, right: boolean): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (right ? a[mid] <= v : a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Equation 7 of Scholz & Stephens: the midrank statistic for k samples. */
function midrankStatistic(samples: Float64Array[], z: Float64Array, distinct: Float64Array): number {
  const total = z.length;
  const l = distinct.length;
  const lj = new Float64Array(l);
  const bj = new Float64Array(l);
  for (let j = 0; j < l; j++) {
    const left = countBelow(z, distinct[j], false);
    lj[j] = total === l ? 1 : countBelow(z, distinct[j], true) - left;
    bj[j] = left + lj[j] / 2;
  }
  let a2 = 0;
  for (const s of samples) {
    const n = s.length;
    let inner = 0;
    for (let j = 0; j < l; j++) {
      const right = countBelow(s, distinct[j], true);
      const fij = right - countBelow(s, distinct[j], false);
      const mij = right - fij / 2;
      const d = total * mij - bj[j] * n;
      inner += ((lj[j] / total) * d * d) / (bj[j] * (total - bj[j]) - (total * lj[j]) / 4);
    }
    a2 += inner / n;
  }
  return (a2 * (total - 1)) / total;
}

const SIGNIFICANCE = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
const B0 = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
const B1 = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
const B2 = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];

/** Least-squares quadratic through (x, y) by Householder QR, coefficients highest power first. */
function quadraticFit(x: number[], y: number[]): [number, number, number] {
  const rows = x.length;
  const a = x.map((v) => [v * v, v, 1]);
  const b = [...y];
  for (let col = 0; col < 3; col++) {
    let norm = 0;
    for (let r = col; r < rows; r++) norm += a[r][col] * a[r][col];
    norm = Math.sqrt(norm);
    const alpha = a[col][col] > 0 ? -norm : norm;
    const v = new Array<number>(rows).fill(0);
    for (let r = col; r < rows; r++) v[r] = a[r][col];
    v[col] -= alpha;
    let vv = 0;
    for (let r = col; r < rows; r++) vv += v[r] * v[r];
    if (vv === 0) continue;
    for (let c = col; c < 3; c++) {
      let dot = 0;
      for (let r = col; r < rows; r++) dot += v[r] * a[r][c];
      for (let r = col; r < rows; r++) a[r][c] -= (2 * dot * v[r]) / vv;
    }
    let dot = 0;
    for (let r = col; r < rows; r++) dot += v[r] * b[r];
    for (let r = col; r < rows; r++) b[r] -= (2 * dot * v[r]) / vv;
  }
  const c2 = b[2] / a[2][2];
  const c1 = (b[1] - a[1][2] * c2) / a[1][1];
  const c0 = (b[0] - a[0][1] * c1 - a[0][2] * c2) / a[0][0];
  return [c0, c1, c2];
}

/** scipy `anderson_ksamp` (midrank) for k samples: the standardised statistic and its p-value. */
export function andersonKSample(samples: Float64Array[]): { statistic: number; pvalue: number } {
  const k = samples.length;
  const sortedSamples = samples.map((s) => sorted(s));
  const total = sortedSamples.reduce((n, s) => n + s.length, 0);
  const z = new Float64Array(total);
  let at = 0;
  for (const s of sortedSamples) {
    z.set(s, at);
    at += s.length;
  }
  z.sort();
  const distinctList: number[] = [];
  for (let i = 0; i < z.length; i++) if (i === 0 || z[i] !== z[i - 1]) distinctList.push(z[i]);
  if (distinctList.length < 2) {
    throw testError('anderson', 'needs more than one distinct value across reference and current');
  }
  const a2kn = midrankStatistic(sortedSamples, z, Float64Array.from(distinctList));

  let h = 0;
  for (const s of sortedSamples) h += 1 / s.length;
  const bigH = h;
  // h = Σ_{i=1}^{N−1} 1/i; g = Σ_{i=1}^{N−2} Σ_{j=i+1}^{N−1} 1/((N − i) j), accumulated as scipy does.
  let cum = 0;
  let g = 0;
  for (let i = 1; i <= total - 2; i++) {
    cum += 1 / (total - i);
    g += cum / (i + 1);
  }
  const hh = cum + 1;
  const n = total;
  const a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * bigH;
  const b = (2 * g - 4) * k ** 2 + 8 * hh * k + (2 * g - 14 * hh - 4) * bigH - 8 * hh + 4 * g - 6;
  const c = (6 * hh + 2 * g - 2) * k ** 2 + (4 * hh - 4 * g + 6) * k + (2 * hh - 6) * bigH + 4 * hh;
  const d = (2 * hh + 6) * k ** 2 - 4 * hh * k;
  const sigmasq = (a * n ** 3 + b * n ** 2 + c * n + d) / ((n - 1) * (n - 2) * (n - 3));
  const m = k - 1;
  const statistic = (a2kn - m) / Math.sqrt(sigmasq);

  const critical = B0.map((b0, i) => b0 + B1[i] / Math.sqrt(m) + B2[i] / m);
  let pvalue: number;
  if (statistic < Math.min(...critical)) pvalue = Math.max(...SIGNIFICANCE);
  else if (statistic > Math.max(...critical)) pvalue = Math.min(...SIGNIFICANCE);
  else {
    const [c2, c1, c0] = quadraticFit(critical, SIGNIFICANCE.map(Math.log));
    pvalue = Math.exp((c2 * statistic + c1) * statistic + c0);
  }
  return { statistic, pvalue };
}

export const anderson: SummaryStatTest = orderFree({
  name: 'anderson',
  kinds: ['numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const { pvalue } = andersonKSample([
      numericValues(reference, 'anderson'),
      numericValues(current, 'anderson'),
    ]);
    return { score: pvalue, drifted: pvalue < threshold };
  },
});
