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
