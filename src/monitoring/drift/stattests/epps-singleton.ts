/**
 * `es`: the Epps–Singleton two-sample test (scipy `epps_singleton_2samp`, t = (0.4, 0.8)):
 * empirical characteristic functions at t / (IQR/2), their covariance (pseudo-inverted), a
 * statistic asymptotically chi-square with df = the covariance's rank, and the small-sample
 * correction when both samples are under 25. Evidently raises when the pooled IQR is 0 (so does
 * this); below 5 values in a sample scipy's p-value is NaN, and so is the score (never drifted). Score = p-value; drift when
 * p < threshold.
 */

import { chi2Sf } from '../special.js';
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { numericValues, numpyMean, orderFree, quantileLinear, sorted, testError } from './numpy-compat.js';

const EPS = 2.220446049250313e-16;

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations. */
function symmetricEigen(a: number[][]): { values: number[]; vectors: number[][] } {
  const n = a.length;
  const m = a.map((row) => [...row]);
  const v = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j): number => (i === j ? 1 : 0)),
  );
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p][q] * m[p][q];
    if (off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (m[p][q] === 0) continue;
        const theta = (m[q][q] - m[p][p]) / (2 * m[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k][p];
          const mkq = m[k][q];
          m[k][p] = c * mkp - s * mkq;
          m[k][q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p][k];
          const mqk = m[q][k];
          m[p][k] = c * mpk - s * mqk;
          m[q][k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: m.map((row, i) => row[i]), vectors: v };
}

/** The 4 characteristic-function features of each value and their biased covariance and means. */
function features(x: Float64Array, ts: number[]): { mean: number[]; cov: number[][] } {
  const rows = [
    ...ts.map((t) => x.map((v) => Math.cos(t * v))),
    ...ts.map((t) => x.map((v) => Math.sin(t * v))),
  ];
  const mean = rows.map((r) => numpyMean(r));
  const n = x.length;
  const cov = rows.map((ri, i) =>
    rows.map((rj, j) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += (ri[k] - mean[i]) * (rj[k] - mean[j]);
      return ((s / (n - 1)) * (n - 1)) / n;
    }),
  );
  return { mean, cov };
}

export function eppsSingleton(x: Float64Array, y: Float64Array): { statistic: number; pvalue: number } {
  const nx = x.length;
  const ny = y.length;
  const n = nx + ny;
  const pooled = new Float64Array(n);
  pooled.set(x, 0);
  pooled.set(y, nx);
  const asc = sorted(pooled);
  const iqr = quantileLinear(asc, 0.75) - quantileLinear(asc, 0.25);
  if (iqr === 0) {
    throw testError('es', 'the interquartile range of reference and current together is 0');
  }
  // scipy returns NaN (with a warning) below 5 values per sample; so does Evidently's score.
  if (nx < 5 || ny < 5) return { statistic: Number.NaN, pvalue: Number.NaN };
  const sigma = iqr / 2;
  const ts = [0.4 / sigma, 0.8 / sigma];
  const fx = features(x, ts);
  const fy = features(y, ts);
  const dim = 4;
  const est = fx.cov.map((row, i) => row.map((v, j) => (n / nx) * v + (n / ny) * fy.cov[i][j]));
  // numpy's pinv: singular values (|eigenvalues| here) below max(M, N)·eps × the largest are dropped.
  const { values, vectors } = symmetricEigen(est);
  const largest = Math.max(...values.map(Math.abs));
  const cutoff = dim * EPS * largest;
  const inverse = values.map((l) => (Math.abs(l) > cutoff ? 1 / l : 0));
  // Rank of the pseudo-inverse, as scipy takes it (matrix_rank of pinv).
  const invAbs = inverse.map(Math.abs);
  const invMax = Math.max(...invAbs);
  const rank = invAbs.filter((s) => s > invMax * dim * EPS).length;
  const diff = fx.mean.map((m, i) => m - fy.mean[i]);
  let w = 0;
  for (let k = 0; k < dim; k++) {
    if (inverse[k] === 0) continue;
    let proj = 0;
    for (let i = 0; i < dim; i++) proj += vectors[i][k] * diff[i];
    w += inverse[k] * proj * proj;
  }
  w *= n;
  if (Math.max(nx, ny) < 25) {
    const corr = 1 / (1 + n ** -0.45 + 10.1 * (nx ** -1.7 + ny ** -1.7));
    w *= corr;
  }
  return { statistic: w, pvalue: chi2Sf(w, rank) };
}

export const eppsSingletonTest: SummaryStatTest = orderFree({
  name: 'es',
  kinds: ['numerical'],
  defaultThreshold: 0.05,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const { pvalue } = eppsSingleton(numericValues(reference, 'es'), numericValues(current, 'es'));
    return { score: pvalue, drifted: pvalue < threshold };
  },
});
