/**
 * `TVD`: total variation distance between the category frequencies of reference and current,
 * with Evidently's permutation p-value: numpy's global generator seeded with 0, then 1000 times
 * a new reference drawn without replacement from reference + current (in row order), the rest
 * the new current; p = share of draws whose distance is at least the observed one. The draws are
 * numpy's own (see LegacyRandomState), so the p-value is Evidently's exactly — given the values in
 * the same row order. Score = p-value; drift when p < threshold.
 */
import type { CategoryKey, DriftColumn, StatTest, StatTestResult } from '../stat-test.js';
import { LegacyRandomState, numpySum } from './numpy-compat.js';

const ITERATIONS = 1000;

/**
 * 0.5 · Σ |r_k/nRef − c_k/nCur| in the order Evidently's floats take (numpy's sum over the keys).
 * The permutation p-value compares these floats, and distinct tables can have the same distance
 * in theory: which of two such ties counts as "at least" is decided by rounding, so the rounding
 * has to be Evidently's too (first-seen key order stands in for Python's set order).
 */
function distance(
  ref: Int32Array,
  total: Int32Array,
  nRef: number,
  nCur: number,
  terms: Float64Array,
): number {
  for (let k = 0; k < ref.length; k++) terms[k] = Math.abs(ref[k] / nRef - (total[k] - ref[k]) / nCur);
  return 0.5 * numpySum(terms);
}

export function totalVariationDistance(reference: DriftColumn, current: DriftColumn): number {
  const { codes, size } = encode(reference, current);
  const nRef = reference.values.length;
  const nCur = current.values.length;
  const { ref, total } = tally(codes, size, nRef);
  return distance(ref, total, nRef, nCur, new Float64Array(size));
}

function encode(reference: DriftColumn, current: DriftColumn): { codes: Int32Array; size: number } {
  const index = new Map<CategoryKey, number>();
  const codes = new Int32Array(reference.values.length + current.values.length);
  let at = 0;
  for (const column of [reference, current]) {
    for (const v of column.values) {
      let k = index.get(v);
      if (k === undefined) {
        k = index.size;
        index.set(v, k);
      }
      codes[at++] = k;
    }
  }
  return { codes, size: index.size };
}

function tally(codes: Int32Array, size: number, nRef: number): { ref: Int32Array; total: Int32Array } {
  const ref = new Int32Array(size);
  const total = new Int32Array(size);
  for (let i = 0; i < codes.length; i++) {
    total[codes[i]]++;
    if (i < nRef) ref[codes[i]]++;
  }
  return { ref, total };
}

/** Evidently's permutation p-value for TVD (1000 draws, seed 0). */
export function tvdPValue(reference: DriftColumn, current: DriftColumn): number {
  const { codes, size } = encode(reference, current);
  const nRef = reference.values.length;
  const nCur = current.values.length;
  const { ref, total } = tally(codes, size, nRef);
  const terms = new Float64Array(size);
  const observed = distance(ref, total, nRef, nCur, terms);
  const rng = new LegacyRandomState(0);
  const n = codes.length;
  const perm = new Uint32Array(n);
  const drawn = new Int32Array(size);
  let atLeast = 0;
  for (let it = 0; it < ITERATIONS; it++) {
    // np.random.choice(combined, nRef, replace=False) = the first nRef of a fresh permutation.
    for (let i = 0; i < n; i++) perm[i] = i;
    rng.shuffle(perm);
    drawn.fill(0);
    for (let i = 0; i < nRef; i++) drawn[codes[perm[i]]]++;
    if (observed <= distance(drawn, total, nRef, nCur, terms)) atLeast++;
  }
  return atLeast / ITERATIONS;
}

export const tvd: StatTest = {
  name: 'TVD',
  kinds: ['categorical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const p = tvdPValue(reference, current);
    return { score: p, drifted: p < threshold };
  },
};
