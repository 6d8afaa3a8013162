// The table readers and profiles only: the offline engine needs no store (and `slipway drift`
// starts faster without loading one).
import { detectFormat, readTable } from '../../data/formats/index.js';
import { profileCsv } from '../../data/profile/csv-profile.js';
import { sortedCounts } from '../../data/profile/distribution.js';
import { type ColumnProfile, profileTable, TableProfile } from '../../data/profile/index.js';
import { Kind, type Parsed, parseCell } from '../../data/profile/parse-cell.js';
import type { RowBatch } from '../../data/table.js';
import { SlipwayError } from '../../errors/index.js';
import {
  type CategoryKey,
  type ColumnKind,
  type ColumnSummary,
  type DriftColumn,
  expand,
  hasSummaryRun,
  type StatTest,
} from './stat-test.js';
import { statTests } from './stattests/index.js';

/** A test and/or threshold for one column (or all), by Evidently's test name. */
export interface ColumnOverride {
  test?: string;
  threshold?: number;
}

export interface DriftOptions {
  /** Dataset drift when the share of drifted columns is at least this (Evidently's default 0.5). */
  driftShare?: number;
  /** A test for every column (Evidently's `method`); a column's own override wins. */
  test?: string;
  /** A threshold for every column (Evidently's `threshold`); a column's own override wins. */
  threshold?: number;
  /** Per column (Evidently's `per_column_method` / `per_column_threshold`). */
  columns?: Readonly<Record<string, ColumnOverride>>;
  /**
   * Columns of `columns` chosen ahead (a model's config.json) rather than asked for: a current
   * table without them is compared without them instead of refused.
   */
  optionalColumns?: readonly string[];
  /** The catalogue to pick from (default: every registered test). */
  tests?: ReadonlyMap<string, StatTest>;
}

export interface ColumnDrift {
  type: ColumnKind;
  test: string;
  score: number;
  threshold: number;
  drifted: boolean;
}

/** The result `slipway drift --json` prints. */
export interface DriftReport {
  dataset_drift: boolean;
  /** Share of tested columns that drifted. */
  drift_share: number;
  columns: Record<string, ColumnDrift>;
}

export interface ColumnComparison {
  name: string;
  reference: ColumnSummary;
  current: ColumnSummary;
  drift: ColumnDrift;
}

export interface DriftAnalysis {
  report: DriftReport;
  /** Each tested column's exact value counts on both sides (for charts), in table order. */
  columns: ColumnComparison[];
  /** Columns left out, with why (no values, or a type Evidently does not test). */
  skipped: { name: string; reason: string }[];
}

/** A table: a file (CSV, JSON Lines, Parquet), a stream of batches, or a profile with exact counts. */
export type TableSource = string | AsyncIterable<RowBatch> | TableProfile;

export const DEFAULT_DRIFT_SHARE = 0.5;

/** Evidently's `INTEGER_CARDINALITY_LIMIT`: an integer column with at most this many distinct values is categorical. */
const INTEGER_CARDINALITY_LIMIT = 10;
const SMALL_REFERENCE = 1000;

/** Exact counts past any number of distinct values: the tests need every value, not a sketch. */
const EXACT_PROFILE = { exactLimit: Number.MAX_SAFE_INTEGER, exactBytes: Number.MAX_SAFE_INTEGER };

/**
 * Compares a current table with a reference the way Evidently's DataDriftPreset does: each column
 * typed as Evidently types the pandas frame read from the same CSV, tested with Evidently's
 * default test for its type, size and number of values (or the one named), and the dataset
 * drifting when at least `driftShare` of the columns do.
 *
 * Each table is read once into exact value counts per column, so memory grows with distinct
 * values, not rows. A column whose test needs the values in row order (a test without
 * `runSummary`, e.g. a permutation test) is read again from its file for that column alone.
 *
 * @example
 *   const { report } = await analyzeDrift('train.csv', 'today.csv', { columns: { age: { test: 'psi' } } });
 *   report.dataset_drift; // false
 */
export async function analyzeDrift(
  reference: TableSource,
  current: TableSource,
  options: DriftOptions = {},
): Promise<DriftAnalysis> {
  // One file after the other (a large CSV is split across threads by profileCsv): two small
  // files at once, one on a worker, came out slower on two cores (a worker's start and second
  // warm-up cost more than the overlap saved: Adult, 0.37 s vs 0.28 s median).
  const ref = await toProfile(reference);
  const cur = await toProfile(current);
  const file = (side: 'reference' | 'current') => {
    const source = side === 'reference' ? reference : current;
    return typeof source === 'string' ? source : null;
  };
  return compareProfiles(
    ref,
    cur,
    options,
    async (side, column) => {
      const path = file(side);
      return path === null ? null : orderedColumn(path, column);
    },
    async (side, column) => {
      const path = file(side);
      return path === null ? null : textColumn(path, column);
    },
  );
}

async function toProfile(source: TableSource): Promise<TableProfile> {
  if (source instanceof TableProfile) return source;
  if (typeof source === 'string') {
    if ((await detectFormat(source)) === 'csv') return profileCsv(source, { profile: EXACT_PROFILE });
    return profileTable(source, { profile: EXACT_PROFILE });
  }
  const profile = new TableProfile(EXACT_PROFILE);
  for await (const batch of source) profile.add(batch);
  return profile;
}

/** pandas' dtype for a column read from CSV, from the kinds of its cells. */
type Dtype = 'empty' | 'int' | 'uint64' | 'float' | 'bool' | 'bool-with-missing' | 'object';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * How pandas holds a column of integers alone: int64; uint64 when one passes int64 and none is
 * negative; as text (object) when one fits neither. Only integers past 2^53 (kept exact as bigint
 * by the profile) can pass int64.
 */
function integerDtype(column: ColumnProfile): 'int' | 'uint64' | 'object' {
  let past = false;
  let negative = false;
  let beyond = false;
  column.exact?.forEach((key) => {
    if (typeof key === 'bigint') {
      if (key > INT64_MAX) past = true;
      if (key > UINT64_MAX || key < INT64_MIN) beyond = true;
    }
    if ((typeof key === 'number' || typeof key === 'bigint') && key < 0) negative = true;
  });
  if (beyond || (past && negative)) return 'object';
  return past ? 'uint64' : 'int';
}

export function pandasDtype(column: ColumnProfile): Dtype {
  const t = column.types;
  const n = column.count;
  if (n === 0) return 'empty';
  if (t.string > 0 || t.datetime > 0) return 'object';
  if (t.boolean === n) return column.missing > 0 ? 'bool-with-missing' : 'bool';
  if (t.boolean > 0) return 'object';
  if (t.float > 0 || t.infinite > 0 || column.missing > 0) return 'float';
  return integerDtype(column);
}

/**
 * Evidently's `infer_column_type` on the current frame: floats numerical; integers numerical past
 * 10 distinct values, else categorical; booleans and strings categorical (a string column Evidently
 * would call text is categorical here). Null when Evidently leaves the column out.
 */
export function driftColumnKind(column: ColumnProfile): { kind: ColumnKind } | { skip: string } {
  const dtype = pandasDtype(column);
  switch (dtype) {
    case 'empty':
      return { skip: 'no values' };
    case 'bool-with-missing':
      return { skip: 'booleans with missing values (pandas object column; Evidently leaves it untyped)' };
    case 'uint64':
      return { skip: 'integers past 2^63-1 (a pandas uint64 column; Evidently leaves it untyped)' };
    case 'float':
      return { kind: 'numerical' };
    case 'int':
      return { kind: distinctCount(column) <= INTEGER_CARDINALITY_LIMIT ? 'categorical' : 'numerical' };
    default:
      return { kind: 'categorical' };
  }
}

function distinctCount(column: ColumnProfile): number {
  if (!column.exact) throw new Error(`column '${column.name}': drift needs exact value counts`);
  // Missing and infinite cells never enter the counts.
  return column.exact.size;
}

/** A column's non-missing, finite values as counts, keyed as pandas would hold them. */
export function columnSummary(column: ColumnProfile, kind: ColumnKind): ColumnSummary {
  if (!column.exact) throw new Error(`column '${column.name}': drift needs exact value counts`);
  const dtype = pandasDtype(column);
  if (kind === 'numerical') {
    if (dtype === 'object' || dtype === 'bool') {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `column '${column.name}' should contain numerical values only`,
      );
    }
    const size = column.exact.size;
    let values = new Float64Array(size);
    let counts = new Float64Array(size);
    let d = 0;
    let n = 0;
    let sorted = true;
    column.exact.forEach((key, count) => {
      const v = Number(key);
      if (!Number.isFinite(v)) return;
      if (d > 0 && v < values[d - 1]!) sorted = false;
      values[d] = v;
      counts[d++] = count;
      n += count;
    });
    if (!sorted) ({ values, counts } = sortedCounts(values, counts, d));
    else if (d < size) {
      values = values.slice(0, d);
      counts = counts.slice(0, d);
    }
    return { kind: 'numerical', values, counts, n, integer: dtype === 'int' };
  }
  const counts = new Map<CategoryKey, number>();
  let n = 0;
  column.exact.forEach((key, count) => {
    const k = categoryKey(key, dtype);
    if (k === null) return;
    counts.set(k, (counts.get(k) ?? 0) + count);
    n += count;
  });
  return { kind: 'categorical', counts, n };
}

/** In an object column every value is text (as read_csv leaves a mixed column); elsewhere numbers and booleans stay. */
function categoryKey(key: number | bigint | boolean | string, dtype: Dtype): CategoryKey | null {
  if (typeof key === 'number' && !Number.isFinite(key)) return null;
  // An integer past 2^53 stays exact (as text), as pandas' int64 keeps 2^53 and 2^53+1 apart.
  if (dtype !== 'object') return typeof key === 'bigint' ? key.toString() : key;
  if (typeof key === 'boolean') return key ? 'True' : 'False';
  return String(key);
}

/** Evidently's `_get_default_stattest`, by the reference's non-missing length and the distinct values of both. */
export function defaultTestName(kind: ColumnKind, referenceLength: number, distinctValues: number): string {
  if (referenceLength <= SMALL_REFERENCE) {
    if (kind === 'numerical' && distinctValues > 5) return 'ks';
    return distinctValues > 2 ? 'chisquare' : 'z';
  }
  if (kind === 'numerical' && distinctValues > 5) return 'wasserstein';
  return 'jensenshannon';
}

function distinctUnion(a: ColumnSummary, b: ColumnSummary): number {
  if (a.kind === 'numerical' && b.kind === 'numerical') {
    let i = 0;
    let j = 0;
    let d = 0;
    while (i < a.values.length || j < b.values.length) {
      const va = i < a.values.length ? a.values[i] : Number.POSITIVE_INFINITY;
      const vb = j < b.values.length ? b.values[j] : Number.POSITIVE_INFINITY;
      const v = Math.min(va, vb);
      if (va === v) i++;
      if (vb === v) j++;
      d++;
    }
    return d;
  }
  const keys = new Set<CategoryKey>();
  for (const s of [a, b]) {
    if (s.kind === 'categorical') for (const k of s.counts.keys()) keys.add(k);
    else for (const v of s.values) keys.add(v);
  }
  return keys.size;
}

type OrderedReader = (side: 'reference' | 'current', column: string) => Promise<Parsed[] | null>;

/** A column's non-missing values as pandas holds them in an object column, in row order. */
type TextReader = (side: 'reference' | 'current', column: string) => Promise<string[] | null>;

/**
 * Whether a column's values, counted by what they parse to, would merge values pandas keeps
 * apart: in an object column (a mixed one) pandas keeps each cell's text, so `1`, `1.0` and ` 1`
 * are three categories there, and `True` and `true` two.
 */
function needsText(column: ColumnProfile): boolean {
  const t = column.types;
  return pandasDtype(column) === 'object' && t.integer + t.float + t.infinite + t.boolean + t.datetime > 0;
}

function textSummary(values: readonly string[]): ColumnSummary {
  const counts = new Map<CategoryKey, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return { kind: 'categorical', counts, n: values.length };
}

/**
 * The comparison on two profiles holding exact counts (`exactLimit` and `exactBytes` unbounded):
 * what `analyzeDrift` does after reading. `ordered` supplies a column's cells in row order for
 * tests that need them; without it they get the values grouped by value.
 */
export async function compareProfiles(
  reference: TableProfile,
  current: TableProfile,
  options: DriftOptions = {},
  ordered?: OrderedReader,
  texts?: TextReader,
): Promise<DriftAnalysis> {
  const tests = options.tests ?? statTests;
  const driftShare = options.driftShare ?? DEFAULT_DRIFT_SHARE;
  const overrides = options.columns ?? {};
  for (const name of Object.keys(overrides)) {
    if (!current.get(name) && !options.optionalColumns?.includes(name))
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `no column '${name}' in the current table`);
  }
  const columns: ColumnComparison[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const name of current.columnNames) {
    const cur = current.get(name) as ColumnProfile;
    const typed = driftColumnKind(cur);
    if ('skip' in typed) {
      skipped.push({ name, reason: typed.skip });
      continue;
    }
    const ref = reference.get(name);
    if (!ref) throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `no column '${name}' in the reference table`);
    const kind = typed.kind;
    // A mixed column of a file is counted by its cells' text (a second pass over that column).
    const [refText, curText] = await Promise.all([
      kind === 'categorical' && texts && needsText(ref) ? texts('reference', name) : null,
      kind === 'categorical' && texts && needsText(cur) ? texts('current', name) : null,
    ]);
    const refSummary = refText ? textSummary(refText) : columnSummary(ref, kind);
    const curSummary = curText ? textSummary(curText) : columnSummary(cur, kind);
    if (refSummary.n === 0 || curSummary.n === 0) {
      skipped.push({
        name,
        reason: `no values in the ${refSummary.n === 0 ? 'reference' : 'current'} table`,
      });
      continue;
    }
    const override = overrides[name] ?? {};
    const testName =
      override.test ??
      options.test ??
      defaultTestName(kind, refSummary.n, distinctUnion(refSummary, curSummary));
    const test = tests.get(testName);
    if (!test) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `column '${name}': no drift test '${testName}' (known: ${[...tests.keys()].join(', ')})`,
      );
    }
    if ((override.test ?? options.test) && !test.kinds.includes(kind)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `column '${name}' is ${kind}: test '${testName}' takes ${test.kinds.join(' or ')} columns`,
      );
    }
    const threshold = override.threshold ?? options.threshold ?? test.defaultThreshold;
    let result: { score: number; drifted: boolean };
    if (hasSummaryRun(test)) result = test.runSummary(refSummary, curSummary, threshold);
    else {
      const [r, c] = await Promise.all([
        refText
          ? { kind: 'categorical' as const, values: refText }
          : orderedOrExpanded('reference', name, kind, ref, refSummary, ordered),
        curText
          ? { kind: 'categorical' as const, values: curText }
          : orderedOrExpanded('current', name, kind, cur, curSummary, ordered),
      ]);
      result = test.run(r, c, threshold);
    }
    columns.push({
      name,
      reference: refSummary,
      current: curSummary,
      drift: { type: kind, test: test.name, score: result.score, threshold, drifted: result.drifted },
    });
  }
  const drifted = columns.filter((c) => c.drift.drifted).length;
  const share = columns.length === 0 ? 0 : drifted / columns.length;
  const report: DriftReport = {
    dataset_drift: columns.length > 0 && share >= driftShare,
    drift_share: share,
    columns: Object.fromEntries(columns.map((c) => [c.name, c.drift])),
  };
  return { report, columns, skipped };
}

async function orderedOrExpanded(
  side: 'reference' | 'current',
  name: string,
  kind: ColumnKind,
  profile: ColumnProfile,
  summary: ColumnSummary,
  ordered: OrderedReader | undefined,
): Promise<DriftColumn> {
  const cells = ordered ? await ordered(side, name) : null;
  if (!cells) return expand(summary);
  const dtype = pandasDtype(profile);
  if (kind === 'numerical') {
    const values = new Float64Array(summary.n);
    let at = 0;
    for (const p of cells) {
      const v = Number(p.value);
      if (p.kind !== Kind.Missing && p.kind !== Kind.Infinite && Number.isFinite(v)) values[at++] = v;
    }
    return { kind, values: values.subarray(0, at) };
  }
  const values: CategoryKey[] = [];
  for (const p of cells) {
    if (p.kind === Kind.Missing || p.kind === Kind.Infinite) continue;
    const k = categoryKey(p.value, dtype);
    if (k !== null) values.push(k);
  }
  return { kind, values };
}

/**
 * One column's non-missing cells in row order as pandas keeps them in an object column: a text
 * cell as written, anything else (a JSON Lines number) as `categoryKey` makes it.
 */
async function textColumn(path: string, column: string): Promise<string[]> {
  const out: string[] = [];
  const parsed: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };
  let index = -1;
  for await (const batch of readTable(path)) {
    if (index < 0) index = batch.columns.indexOf(column);
    if (index < 0) return out;
    for (const row of batch.rows) {
      const cell = row[index] ?? null;
      if (parseCell(cell, parsed).kind === Kind.Missing) continue;
      if (typeof cell === 'string') out.push(cell);
      else {
        const k = categoryKey(parsed.value, 'object');
        if (k !== null) out.push(String(k));
      }
    }
  }
  return out;
}

/** One column's parsed cells in row order (a second, single-column pass over the file). */
async function orderedColumn(path: string, column: string): Promise<Parsed[]> {
  const out: Parsed[] = [];
  let index = -1;
  for await (const batch of readTable(path)) {
    if (index < 0) index = batch.columns.indexOf(column);
    if (index < 0) return out;
    for (const row of batch.rows)
      out.push(parseCell(row[index] ?? null, { kind: Kind.Missing, value: 0, ms: 0 }));
  }
  return out;
}
