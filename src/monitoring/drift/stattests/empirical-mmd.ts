/**
 * `empirical_mmd`: the maximum mean discrepancy between reference and current under an RBF
 * kernel whose σ is the median heuristic on the reference (σ = √(median(d²)/2), numpy's
 * 'nearest' percentile; 1/√2 when that is 0), with a 100-permutation p-value: p = share of
 * permutations of the pooled sample whose MMD is at least the observed one.
 *
 * Evidently draws the permutations from numpy's global generator without seeding it, so its own
 * p-value varies from run to run. Here the draws are those of `np.random.seed(0)` followed by
 * Evidently's calls (see LegacyRandomState): deterministic, and equal to Evidently's whenever the
 * generator is in that state (the values in row order). Score = p-value; drift when p < threshold.
 *
 * The pooled kernel matrix is held in memory (N² doubles), so N = reference + current is capped.
 */
import type { DriftColumn, StatTest, StatTestResult } from '../stat-test.js';
import { LegacyRandomState, numericValues, percentileNearest, testError } from './numpy-compat.js';

const PERMUTATIONS = 100;
/** 4000² doubles = 128 MB. */
export const MMD_MAX_VALUES = 4000;

/** Squared distance exactly as Evidently forms it: y² − 2·x·y + x². */
function squaredDistance(x: number, y: number): number {
  return y * y - 2 * (x * y) + x * x;
}

function medianSigma(x: Float64Array): number {
  const n = x.length;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) dist[i * n + j] = squaredDistance(x[i], x[j]);
  dist.sort();
  const sigma = (0.5 * percentileNearest(dist, 50)) ** 0.5;
  return sigma === 0 ? 0.5 ** 0.5 : sigma;
}

/**
 * MMD of a split of the pooled sample: `inX[i]` is 1 for the indices in X. Each kernel row is
 * dotted once with the 0/1 mask (sequential memory, no branches); the Y×Y part is the row total
 * minus that. Evidently's Kxy is the block of rows in Y and columns in X (the kernel is not
 * bit-symmetric), which is what the rows outside X give.
 */
function mmdOf(kernel: Float64Array, rowTotals: Float64Array, inX: Float64Array, nx: number): number {
  const n = inX.length;
  const ny = n - nx;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const row = i * n;
    let dot = 0;
    for (let j = 0; j < n; j++) dot += kernel[row + j] * inX[j];
    if (inX[i] === 1) sxx += dot;
    else {
      sxy += dot;
      syy += rowTotals[i] - dot;
    }
  }
  return (1 / (nx * (nx - 1))) * sxx + (1 / (ny * (ny - 1))) * syy - 2 * (sxy / (nx * ny));
}

export function empiricalMmd(x: Float64Array, y: Float64Array): { mmd: number; pvalue: number } {
  const nx = x.length;
  const ny = y.length;
  const n = nx + ny;
  if (n > MMD_MAX_VALUES) {
    throw testError(
      'empirical_mmd',
      `holds an N×N kernel matrix; reference + current has ${n} values, more than ${MMD_MAX_VALUES} — sample the data or choose another test`,
    );
  }
  const sigma = medianSigma(x);
  const gamma = 1 / (2 * sigma ** 2);
  const pooled = new Float64Array(n);
  pooled.set(x, 0);
  pooled.set(y, nx);
  // Blocks as Evidently builds them: K(x,x), K(x,y), K(x,y)ᵀ below it, K(y,y); the formula is not
  // bit-symmetric, so the lower-left block takes its entries from K(x,y). Diagonal zeroed.
  const kernel = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const d =
        i >= nx && j < nx ? squaredDistance(pooled[j], pooled[i]) : squaredDistance(pooled[i], pooled[j]);
      kernel[i * n + j] = Math.exp(-gamma * d);
    }
  }
  const rowTotals = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let total = 0;
    for (let j = 0; j < n; j++) total += kernel[i * n + j];
    rowTotals[i] = total;
  }
  const inX = new Float64Array(n);
  inX.fill(1, 0, nx);
  const mmd = mmdOf(kernel, rowTotals, inX, nx);
  const rng = new LegacyRandomState(0);
  let atLeast = 0;
  for (let p = 0; p < PERMUTATIONS; p++) {
    const order = rng.permutation(n);
    inX.fill(0);
    for (let i = 0; i < nx; i++) inX[order[i]] = 1;
    if (mmd <= mmdOf(kernel, rowTotals, inX, nx)) atLeast++;
  }
  return { mmd, pvalue: atLeast / PERMUTATIONS };
}

export const empiricalMmdTest: StatTest = {
  name: 'empirical_mmd',
  kinds: ['numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const { pvalue } = empiricalMmd(
      numericValues(reference, 'empirical_mmd'),
      numericValues(current, 'empirical_mmd'),
    );
    return { score: pvalue, drifted: pvalue < threshold };
  },
};
