/**
 * `cramer_von_mises`: Evidently's own two-sample Cramér–von Mises test. The statistic T from the
 * average ranks of the combined sample; the p-value exact (Xiao, Gordon & Yakovlev 2006, counting
 * lattice paths) when neither sample has more than 20 values, otherwise from the limiting
 * distribution (Csörgő & Faraway 1996, series summed until a term falls below 1e-7, as Evidently
 * does — the truncation is part of its number). Score = p-value; drift when p ≤ threshold.
 */

import { besselK, logGamma } from '../special.js';
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { averageRanks, numericValues, numpySum, orderFree, sorted, testError } from './numpy-compat.js';

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Python/numpy float floor division a // b. */
function floorDivide(a: number, b: number): number {
  let mod = a % b;
  let div = (a - mod) / b;
  if (mod && b < 0 !== mod < 0) {
    mod += b;
    div -= 1;
  }
  let floordiv = Math.floor(div);
  if (div - floordiv > 0.5) floordiv += 1;
  return floordiv;
}

/** Round to the nearest IEEE half-precision value (ties to even), as numpy's float16 casts do. */
export function toFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const ax = Math.abs(x);
  if (ax >= 65520) return Math.sign(x) * Number.POSITIVE_INFINITY;
  let e = Math.floor(Math.log2(ax));
  if (2 ** e > ax) e--;
  else if (2 ** (e + 1) <= ax) e++;
  const quantum = 2 ** (Math.max(e, -14) - 10);
  const scaled = ax / quantum;
  let r = Math.round(scaled);
  if (r - scaled === 0.5 && r % 2 !== 0) r -= 1; // Math.round rounds halves up; numpy to even
  return Math.sign(x) * r * quantum;
}

type Rounding = (x: number) => number;
const exact: Rounding = (x) => x;

/**
 * Exact P(U ≥ s) for samples of sizes m and n: over all lattice paths from (0,0) to (n,m), the
 * distribution of Σ (a·v − b·u)² along the path (a = lcm/m, b = lcm/n), built row by row.
 *
 * `round` is the precision the counts and sums are held in. Evidently keeps them in
 * np.min_scalar_type(max(lcm²(m+n), C(m+n, m) as a float)): when the binomial is the larger, that
 * is float16 (up to 65504) or float32, and its p-value carries that rounding (e.g. 8 vs 8 values:
 * three significant digits). To reproduce it bit for bit the merge keeps numpy's array order and
 * duplicate handling (np.intersect1d on first occurrences, then np.delete, then concatenation).
 */
export function cvmExactPValue(s: number, m: number, n: number, round: Rounding = exact): number {
  const lcm = (m * n) / gcd(m, n);
  const a = lcm / m;
  const b = lcm / n;
  const mn = m * n;
  const zeta = floorDivide(lcm ** 2 * (m + n) * (6 * s - mn * (4 * mn - 1)), 6 * mn ** 2);
  let combinations = 1;
  for (let i = 1; i <= m; i++) combinations = (combinations * (n + i)) / i;
  if (round !== toFloat16) return sortedMerge(zeta, a, b, m, n, combinations, round);
  type Row = { values: number[]; counts: number[] };
  const firstIndex = (values: number[]): Map<number, number> => {
    const first = new Map<number, number>();
    for (let i = 0; i < values.length; i++) if (!first.has(values[i])) first.set(values[i], i);
    return first;
  };
  // gs[v]: the (value, paths) pairs reaching (u, v); the row "before" u = 0 seeds (0, 0).
  let gs: Row[] = [{ values: [0], counts: [1] }];
  for (let v = 1; v <= m; v++) gs.push({ values: [], counts: [] });
  for (let u = 0; u <= n; u++) {
    const next: Row[] = [];
    let tmp: Row = { values: [], counts: [] };
    for (let v = 0; v <= m; v++) {
      const g = gs[v];
      const inTmp = firstIndex(tmp.values);
      const inG = firstIndex(g.values);
      const common = [...inTmp.keys()].filter((x) => inG.has(x)).sort((x, y) => x - y);
      const i0 = new Set<number>();
      const i1 = new Set<number>();
      const values: number[] = [];
      const counts: number[] = [];
      for (const x of common) {
        const p = inTmp.get(x) as number;
        const q = inG.get(x) as number;
        i0.add(p);
        i1.add(q);
        values.push(x);
        counts.push(round(tmp.counts[p] + g.counts[q]));
      }
      for (let i = 0; i < tmp.values.length; i++) {
        if (i0.has(i)) continue;
        values.push(tmp.values[i]);
        counts.push(tmp.counts[i]);
      }
      for (let i = 0; i < g.values.length; i++) {
        if (i1.has(i)) continue;
        values.push(g.values[i]);
        counts.push(g.counts[i]);
      }
      const step = (a * v - b * u) ** 2;
      for (let i = 0; i < values.length; i++) values[i] = round(values[i] + step);
      tmp = { values, counts };
      next.push(tmp);
    }
    gs = next;
  }
  const last = gs[m];
  const above: number[] = [];
  for (let i = 0; i < last.values.length; i++) if (last.values[i] >= zeta) above.push(last.counts[i]);
  // float16 sums accumulate in float32 and round once; float32 sums round at every step.
  const sum = round === toFloat16 ? toFloat16(numpySum(above, Math.fround)) : numpySum(above, round);
  return round(sum / round(combinations));
}

/**
 * The same path count with each row kept sorted by value and merged linearly: fast (20 vs 19 in
 * ~0.1 s). Values are integers below 2^24, exact in float32 and float64 alike, and each count is
 * one rounded addition per merge, so only the final sum's order differs from numpy's (float32: an
 * ulp at most).
 */
function sortedMerge(
  zeta: number,
  a: number,
  b: number,
  m: number,
  n: number,
  combinations: number,
  round: Rounding,
): number {
  type Row = { values: Float64Array; counts: Float64Array; size: number };
  const empty = (): Row => ({ values: new Float64Array(0), counts: new Float64Array(0), size: 0 });
  let gs: Row[] = [{ values: Float64Array.of(0), counts: Float64Array.of(1), size: 1 }];
  for (let v = 1; v <= m; v++) gs.push(empty());
  for (let u = 0; u <= n; u++) {
    const next: Row[] = [];
    let tmp = empty();
    for (let v = 0; v <= m; v++) {
      const g = gs[v];
      const values = new Float64Array(tmp.size + g.size);
      const counts = new Float64Array(tmp.size + g.size);
      const step = (a * v - b * u) ** 2;
      let i = 0;
      let j = 0;
      let k = 0;
      while (i < tmp.size || j < g.size) {
        if (j >= g.size || (i < tmp.size && tmp.values[i] < g.values[j])) {
          values[k] = tmp.values[i] + step;
          counts[k++] = tmp.counts[i++];
        } else if (i >= tmp.size || g.values[j] < tmp.values[i]) {
          values[k] = g.values[j] + step;
          counts[k++] = g.counts[j++];
        } else {
          values[k] = tmp.values[i] + step;
          counts[k++] = round(tmp.counts[i++] + g.counts[j++]);
        }
      }
      tmp = { values, counts, size: k };
      next.push(tmp);
    }
    gs = next;
  }
  const last = gs[m];
  const above: number[] = [];
  for (let i = 0; i < last.size; i++) if (last.values[i] >= zeta) above.push(last.counts[i]);
  return round(numpySum(above, round) / round(combinations));
}

/**
 * The precision Evidently's exact path holds its counts in, or null where it fails: with numpy 2
 * an unsigned-integer dtype (lcm²(m+n) ≥ C(m+n, m)) makes its in-place add raise. There the exact
 * p-value is computed in full precision instead (scipy's cramervonmises_2samp gives the same).
 */
function evidentlyRounding(m: number, n: number): Rounding | null {
  const lcm = (m * n) / gcd(m, n);
  const zetaBound = lcm ** 2 * (m + n);
  let combinations = 1;
  for (let i = 1; i <= m; i++) combinations = (combinations * (n + i)) / i;
  if (!(combinations > zetaBound)) return null;
  return combinations <= 65504 ? toFloat16 : Math.fround;
}

/** The limiting cdf of the Cramér–von Mises statistic (Csörgő & Faraway, eq. 1.2). */
function cdfCvmInf(x: number): number {
  let total = 0;
  for (let k = 0; ; k++) {
    const u = Math.exp(logGamma(k + 0.5) - logGamma(k + 1)) / (Math.PI ** 1.5 * Math.sqrt(x));
    const y = 4 * k + 1;
    const q = (y * y) / (16 * x);
    const term = u * Math.sqrt(y) * Math.exp(-q) * besselK(0.25, q);
    total += term;
    if (!(Math.abs(term) >= 1e-7)) return total;
  }
}

export function cramerVonMises(x: Float64Array, y: Float64Array): { statistic: number; pvalue: number } {
  const xa = sorted(x);
  const ya = sorted(y);
  if (xa.length <= 1 || ya.length <= 1) {
    throw testError('cramer_von_mises', 'needs at least two values in reference and in current');
  }
  const nx = xa.length;
  const ny = ya.length;
  const z = new Float64Array(nx + ny);
  z.set(xa, 0);
  z.set(ya, nx);
  const { ranks } = averageRanks(z);
  const dx = new Float64Array(nx);
  for (let i = 0; i < nx; i++) dx[i] = (ranks[i] - (i + 1)) ** 2;
  const dy = new Float64Array(ny);
  for (let j = 0; j < ny; j++) dy[j] = (ranks[nx + j] - (j + 1)) ** 2;
  let u = nx * numpySum(dx);
  u += ny * numpySum(dy);
  const k = nx * ny;
  const n = nx + ny;
  const t = u / (k * n) - (4 * k - 1) / (6 * n);
  if (Math.max(nx, ny) <= 20) {
    return { statistic: t, pvalue: cvmExactPValue(u, nx, ny, evidentlyRounding(nx, ny) ?? exact) };
  }
  const et = (1 + 1 / n) / 6;
  let vt = (n + 1) * (4 * k * n - 3 * (nx ** 2 + ny ** 2) - 2 * k);
  vt = vt / (45 * n ** 2 * 4 * k);
  const tn = 1 / 6 + (t - et) / Math.sqrt(45 * vt);
  const pvalue = tn < 0.003 ? 1 : Math.max(0, 1 - cdfCvmInf(tn));
  return { statistic: t, pvalue };
}

export const cramerVonMisesTest: SummaryStatTest = orderFree({
  name: 'cramer_von_mises',
  kinds: ['numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const { pvalue } = cramerVonMises(
      numericValues(reference, 'cramer_von_mises'),
      numericValues(current, 'cramer_von_mises'),
    );
    return { score: pvalue, drifted: pvalue <= threshold };
  },
});
