/**
 * The few numpy/scipy behaviours the drift tests must reproduce to the last bit or draw:
 * numpy's pairwise summation order, the legacy global generator (`np.random.seed`, MT19937 with
 * numpy's bounded-integer rejection and Fisher–Yates shuffle), average ranks with tie counts,
 * scipy's linear quantile, and the SlipwayError a test raises when Evidently would raise.
 *
 * @example
 *   const rng = new LegacyRandomState(0);
 *   rng.permutation(5); // the same as np.random.seed(0); np.random.permutation(5)
 */
import { SlipwayError } from '../../../errors/index.js';
import {
  type CategoryKey,
  type ColumnSummary,
  type DriftColumn,
  expand,
  type StatTest,
  type SummaryStatTest,
} from '../stat-test.js';

/** An error where Evidently's test raises: a client error naming the test and the condition. */
export function testError(test: string, message: string): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${test}: ${message}`);
}

const same = (x: number): number => x;

/**
 * numpy's pairwise summation of a[from, from + n) (blocks of 8 accumulators, halves above 128);
 * `round` holds every partial sum in a narrower float (Math.fround for float32).
 */
function pairwise(a: ArrayLike<number>, from: number, n: number, round: (x: number) => number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = round(res + a[from + i]);
    return res;
  }
  if (n <= 128) {
    let r0 = a[from];
    let r1 = a[from + 1];
    let r2 = a[from + 2];
    let r3 = a[from + 3];
    let r4 = a[from + 4];
    let r5 = a[from + 5];
    let r6 = a[from + 6];
    let r7 = a[from + 7];
    const end = n - (n % 8);
    let i = 8;
    if (round === same) {
      for (; i < end; i += 8) {
        r0 += a[from + i];
        r1 += a[from + i + 1];
        r2 += a[from + i + 2];
        r3 += a[from + i + 3];
        r4 += a[from + i + 4];
        r5 += a[from + i + 5];
        r6 += a[from + i + 6];
        r7 += a[from + i + 7];
      }
    } else {
      for (; i < end; i += 8) {
        r0 = round(r0 + a[from + i]);
        r1 = round(r1 + a[from + i + 1]);
        r2 = round(r2 + a[from + i + 2]);
        r3 = round(r3 + a[from + i + 3]);
        r4 = round(r4 + a[from + i + 4]);
        r5 = round(r5 + a[from + i + 5]);
        r6 = round(r6 + a[from + i + 6]);
        r7 = round(r7 + a[from + i + 7]);
      }
    }
    let res = round(round(round(r0 + r1) + round(r2 + r3)) + round(round(r4 + r5) + round(r6 + r7)));
    for (; i < n; i++) res = round(res + a[from + i]);
    return res;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return round(pairwise(a, from, half, round) + pairwise(a, from + half, n - half, round));
}

/**
 * `np.sum` of a contiguous array (checked against numpy 2.4 for n = 1…300 and up to 20 000). `round`
 * emulates a narrower dtype's accumulator (Math.fround: float32; float16 sums accumulate in float32
 * and round once at the end, which the caller does).
 */
export function numpySum(a: ArrayLike<number>, round: (x: number) => number = same): number {
  return pairwise(a, 0, a.length, round);
}

/** `np.mean`. */
export function numpyMean(a: ArrayLike<number>): number {
  return numpySum(a) / a.length;
}

/** Ascending copy of a numeric column. */
export function sorted(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** Index of the first element of an ascending array ≥ v (`right`: > v). */
export function bisect(ascending: ArrayLike<number>, v: number, right = false): number {
  let lo = 0;
  let hi = ascending.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (right ? ascending[mid] <= v : ascending[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Average ranks (1-based, ties share the mean of their positions) of `values`, as
 * scipy.stats.rankdata(method='average'), plus the size of every tie group. Sorting a copy
 * natively and bisecting beats an index sort with a comparator several times over.
 */
export function averageRanks(values: ArrayLike<number>): { ranks: Float64Array; ties: number[] } {
  const asc = sorted(values);
  const ranks = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    ranks[i] = (bisect(asc, v) + bisect(asc, v, true) + 1) / 2;
  }
  const ties: number[] = [];
  for (let i = 0; i < asc.length; ) {
    let j = i + 1;
    while (j < asc.length && asc[j] === asc[i]) j++;
    ties.push(j - i);
    i = j;
  }
  return { ranks, ties };
}

/** scipy.stats.quantile(method='linear') of an ascending array (what scipy.stats.iqr uses). */
export function quantileLinear(ascending: ArrayLike<number>, p: number): number {
  const n = ascending.length;
  const jg = p * n + (1 - p);
  const jp1 = Math.floor(jg);
  let j = jp1 - 1;
  let g = jg % 1;
  if (j < 0) g = 0;
  j = Math.min(Math.max(j, 0), n - 1);
  const k = Math.min(Math.max(jp1, 0), n - 1);
  return (1 - g) * ascending[j] + g * ascending[k];
}

/** `np.percentile(a, q, method='nearest')` of an ascending array: index round-half-even((n − 1)·q). */
export function percentileNearest(ascending: ArrayLike<number>, q: number): number {
  const v = (ascending.length - 1) * (q / 100);
  let idx = Math.round(v);
  if (Math.abs(v % 1) === 0.5 && idx % 2 !== 0) idx -= 1; // half to even
  return ascending[idx];
}

const N = 624;
const M = 397;

/**
 * numpy's legacy global generator (`np.random.seed(s)` then `np.random.permutation`/`choice`):
 * MT19937 seeded by init_genrand, bounded integers by masked rejection on 32-bit draws, and a
 * Fisher–Yates shuffle from the last element down.
 */
export class LegacyRandomState {
  private readonly mt = new Uint32Array(N);
  private mti = N;

  constructor(seed: number) {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      mt[i] = (Math.imul(1812433253, mt[i - 1] ^ (mt[i - 1] >>> 30)) + i) >>> 0;
    }
  }

  private refill(): void {
    const mt = this.mt;
    let kk = 0;
    let y: number;
    for (; kk < N - M; kk++) {
      y = (mt[kk] & 0x80000000) | (mt[kk + 1] & 0x7fffffff);
      mt[kk] = mt[kk + M] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    for (; kk < N - 1; kk++) {
      y = (mt[kk] & 0x80000000) | (mt[kk + 1] & 0x7fffffff);
      mt[kk] = mt[kk + (M - N)] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    y = (mt[N - 1] & 0x80000000) | (mt[0] & 0x7fffffff);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    this.mti = 0;
  }

  /** The next 32-bit output (genrand_int32). */
  nextUint32(): number {
    if (this.mti >= N) this.refill();
    let y = this.mt[this.mti++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A uniform integer in [0, max] by masked rejection (numpy's legacy random_interval). */
  interval(max: number): number {
    if (max === 0) return 0;
    if (max > 0xffffffff) throw new RangeError('interval: above 2^32 is not needed here');
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let value: number;
    do value = (this.nextUint32() & mask) >>> 0;
    while (value > max);
    return value;
  }

  /** Shuffles in place as numpy's legacy `shuffle`. */
  shuffle(a: { [i: number]: number; length: number }): void {
    for (let i = a.length - 1; i >= 1; i--) {
      const j = this.interval(i);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /** `np.random.permutation(n)`. */
  permutation(n: number): Uint32Array {
    const a = new Uint32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    this.shuffle(a);
    return a;
  }
}

/** A numerical column's values, or the error a numerical-only test raises on a categorical one. */
export function numericValues(column: DriftColumn, test: string): Float64Array {
  if (column.kind !== 'numerical') throw testError(test, 'applies to numerical columns only');
  return column.values;
}

/** Counts per category over the union of both columns' keys (reference keys first). */
export function categoryCounts(
  reference: DriftColumn,
  current: DriftColumn,
): { keys: CategoryKey[]; ref: Float64Array; cur: Float64Array } {
  const index = new Map<CategoryKey, number>();
  const refList: number[] = [];
  const curList: number[] = [];
  const add = (v: CategoryKey, into: number[], other: number[]) => {
    let k = index.get(v);
    if (k === undefined) {
      k = index.size;
      index.set(v, k);
      into.push(0);
      other.push(0);
    }
    into[k]++;
  };
  for (const v of reference.values) add(v, refList, curList);
  for (const v of current.values) add(v, curList, refList);
  return { keys: [...index.keys()], ref: Float64Array.from(refList), cur: Float64Array.from(curList) };
}

/**
 * The column a value-count summary stands for (ascending values, categories grouped), carrying
 * pandas' dtype for a numerical column (`integer` summaries are int64) for tests that depend on it.
 */
export function columnOf(summary: ColumnSummary): DriftColumn {
  const column = expand(summary);
  if (summary.kind === 'numerical')
    return Object.assign(column, { dtype: summary.integer ? 'int64' : 'float64' });
  return column;
}

/**
 * A test that does not depend on row order also runs on value counts, so the engine need not read
 * the column again in row order. Sums then run in ascending order instead of row order: the last
 * bits of a score may differ, never more than rounding.
 */
export function orderFree(test: StatTest): SummaryStatTest {
  return {
    ...test,
    run: test.run.bind(test),
    runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number) {
      return test.run(columnOf(reference), columnOf(current), threshold);
    },
  };
}
