/**
 * One drift test of Evidently's catalogue: a score for a reference and a current column and the
 * decision at a threshold. Each test states its own comparison (p-values drift below the
 * threshold, distances at or above it), exactly as Evidently's implementation does.
 *
 * @example
 * const r = ks.run(ref, cur, ks.defaultThreshold); // { score: 0.0123, drifted: true }
 */
export type ColumnKind = 'numerical' | 'categorical';

/** A column's non-missing values as Evidently sees them after dropping NaN: numbers, or category keys. */
export type DriftColumn =
  | { kind: 'numerical'; values: Float64Array }
  | { kind: 'categorical'; values: (string | number | boolean)[] };

export interface StatTestResult {
  score: number;
  drifted: boolean;
}

export interface StatTest {
  /** Evidently's name: 'ks', 'chisquare', … */
  readonly name: string;
  readonly kinds: readonly ColumnKind[];
  readonly defaultThreshold: number;
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult;
}

/** A category key as pandas holds it: a string from a text column, a number, or a boolean. */
export type CategoryKey = string | number | boolean;

/**
 * A column reduced to exact value counts, which is all the engine's own tests need: memory grows
 * with the number of distinct values, not rows. `values` are sorted ascending and distinct.
 */
export type ColumnSummary =
  | { kind: 'numerical'; values: Float64Array; counts: Float64Array; n: number; integer: boolean }
  | { kind: 'categorical'; counts: Map<CategoryKey, number>; n: number };

/** A test that can also run on value counts (the engine prefers it: no column is expanded). */
export interface SummaryStatTest extends StatTest {
  runSummary(reference: ColumnSummary, current: ColumnSummary, threshold: number): StatTestResult;
}

export function hasSummaryRun(test: StatTest): test is SummaryStatTest {
  return typeof (test as Partial<SummaryStatTest>).runSummary === 'function';
}

/** Exact counts of a column's values (sorted distinct numbers, or a key → count map). */
export function summarize(column: DriftColumn): ColumnSummary {
  if (column.kind === 'categorical') {
    const counts = new Map<CategoryKey, number>();
    for (const v of column.values) counts.set(v, (counts.get(v) ?? 0) + 1);
    return { kind: 'categorical', counts, n: column.values.length };
  }
  const sorted = Float64Array.from(column.values).sort();
  let d = 0;
  const values = new Float64Array(sorted.length);
  const counts = new Float64Array(sorted.length);
  let integer = true;
  for (let i = 0; i < sorted.length; i++) {
    const v = sorted[i];
    if (!Number.isInteger(v)) integer = false;
    if (d > 0 && values[d - 1] === v) counts[d - 1]++;
    else {
      values[d] = v;
      counts[d++] = 1;
    }
  }
  return {
    kind: 'numerical',
    values: values.slice(0, d),
    counts: counts.slice(0, d),
    n: sorted.length,
    integer,
  };
}

/** The column a summary stands for (values in ascending order, categories grouped). */
export function expand(summary: ColumnSummary): DriftColumn {
  if (summary.kind === 'categorical') {
    const values: CategoryKey[] = [];
    for (const [k, c] of summary.counts) for (let i = 0; i < c; i++) values.push(k);
    return { kind: 'categorical', values };
  }
  const values = new Float64Array(summary.n);
  let at = 0;
  for (let i = 0; i < summary.values.length; i++) {
    values.fill(summary.values[i], at, at + summary.counts[i]);
    at += summary.counts[i];
  }
  return { kind: 'numerical', values };
}
