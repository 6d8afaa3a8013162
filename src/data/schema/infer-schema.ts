import type { ColumnSummary, Key, TableProfile } from '../profile/index.js';
import { type ColumnSchema, SCHEMA_FORMAT, SCHEMA_VERSION, type Schema, type SchemaType } from './schema.js';

export interface InferOptions {
  /** Label columns: required in training, absent at serving. */
  labels?: readonly string[];
  /** Most categories a column may list (default 100); beyond, only its type, length or pattern is checked. */
  maxCategories?: number;
  /**
   * Largest estimated share of future rows with a value never seen (Good–Turing: values seen once
   * over values) for which categories are still listed (default 0.001).
   */
  maxUnseenShare?: number;
  /**
   * Share of the observed span added below the minimum and above the maximum of numeric ranges
   * (default 0.05); a bound that was not negative stays so, integer bounds round outward.
   */
  rangeMargin?: number;
}

/** Fewest values a column needs before uniqueness or a pattern is inferred from it. */
const MIN_VALUES = 20;

/**
 * Writes an editable schema from a profile. Conservative, so that clean data from the same
 * source rarely fails: numeric ranges are the observed bounds widened by 5% of their span (the
 * observed bounds alone would flag about 2/(n+1) of new values per column, several percent of
 * the rows of a small table), datetime ranges have a minimum but no maximum (new data is
 * later), categories are listed only when rare values are rare enough that unseen ones are
 * unlikely, nullability follows what was seen, uniqueness and patterns need at least 20 values.
 *
 * @example
 *   const schema = inferSchema(await profileTable('adult.csv'), { labels: ['income'] });
 */
export function inferSchema(profile: TableProfile, options: InferOptions = {}): Schema {
  const maxCategories = options.maxCategories ?? 100;
  const maxUnseen = options.maxUnseenShare ?? 0.001;
  const margin = options.rangeMargin ?? 0.05;
  const labels = new Set(options.labels ?? []);
  const summary = profile.summary();
  const columns = summary.columns.map((c): ColumnSchema => {
    const type: SchemaType = c.type === 'empty' ? 'any' : c.type;
    const col: ColumnSchema = { name: c.name, type, nullable: c.missing > 0 };
    if (labels.has(c.name)) col.environments = ['training'];
    const numeric = type === 'integer' || type === 'float';
    if ((numeric && c.typeCounts.infinite === 0) || type === 'datetime') {
      if (c.min !== undefined && c.max !== undefined) col.range = { min: c.min, max: c.max };
      if (col.range && type === 'datetime') delete col.range.max;
      if (col.range && numeric) col.range = widen(col.range, margin, type === 'integer');
      // Beyond 2^53 a bound the summary gives as a number is a big integer rounded to a double
      // (-2^63 prints as -9223372036854776000): write the exact integer instead.
      const exact = profile.get(c.name);
      if (col.range && type === 'integer' && exact) {
        const { min, max } = col.range;
        if (typeof min === 'number' && !Number.isSafeInteger(min) && exact.bigMin !== null)
          col.range.min = String(exact.bigMin);
        if (typeof max === 'number' && !Number.isSafeInteger(max) && exact.bigMax !== null)
          col.range.max = String(exact.bigMax);
      }
    }
    const values = profile.get(c.name)?.frequencies();
    const exact = values?.exact === true ? values.counts : null;
    if (type === 'categorical' && exact && exact.length <= maxCategories) {
      const once = exact.reduce((n, [, count]) => n + (count === 1 ? 1 : 0), 0);
      if (c.count > 0 && once / c.count <= maxUnseen) {
        col.categories = exact
          .slice()
          .sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])))
          .map(([k]) => (typeof k === 'bigint' ? String(k) : k));
      }
    }
    const onlyStrings = c.typeCounts.string === c.count;
    if ((type === 'categorical' || type === 'text') && !col.categories && onlyStrings && c.length) {
      col.length = { min: c.length.min, max: c.length.max };
      if (exact && c.count >= MIN_VALUES) {
        const pattern = patternOf(exact.map(([k]) => k));
        if (pattern) col.pattern = pattern;
      }
    }
    if (isUnique(c, summary.rows)) col.unique = true;
    return col;
  });
  return {
    format: SCHEMA_FORMAT,
    version: SCHEMA_VERSION,
    columns,
    // An empty source infers a schema its own (empty) table passes.
    table: { rows: { min: summary.rows > 0 ? 1 : 0 }, extra_columns: false },
    rules: [],
  };
}

/** Observed bounds widened by a share of their span, keeping a non-negative minimum so. */
function widen(
  range: { min?: number | string; max?: number | string },
  margin: number,
  integer: boolean,
): { min?: number | string; max?: number | string } {
  const { min, max } = range;
  if (typeof min !== 'number' || typeof max !== 'number' || margin <= 0) return range;
  const pad = (max - min) * margin;
  let lo = min - pad;
  let hi = max + pad;
  if (min >= 0 && lo < 0) lo = 0;
  if (!integer) return { min: roundOut(lo, -1), max: roundOut(hi, 1) };
  // Beyond 2^53 a bound stays as observed (exact big integers are written below); so does one the
  // margin would carry past 2^53 (-2^63 and 5 would widen 5 to a rounded double, then read as a
  // big bound and replaced by the column's largest big integer, -2^63, failing its own rows).
  lo = Math.floor(lo);
  hi = Math.ceil(hi);
  return {
    min: Number.isSafeInteger(min) && Number.isSafeInteger(lo) ? lo : min,
    max: Number.isSafeInteger(max) && Number.isSafeInteger(hi) ? hi : max,
  };
}

/**
 * A float bound at 6 significant digits, rounded away from the data (`dir` -1 down, 1 up) so it
 * stays outside: the nearest 6-digit decimal, or the next one out when that is inside. (Scaling
 * by a power of ten instead leaves bounds like 1589750000.0000002, and can land an ulp inside.)
 */
function roundOut(x: number, dir: -1 | 1): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const near = Number(x.toPrecision(6));
  if ((near - x) * dir >= 0) return near;
  const [digits, exponent] = near.toExponential(5).split('e');
  const out = Number(`${(Number(digits) + dir * 1e-5).toFixed(5)}e${exponent}`);
  return Number.isFinite(out) ? out : x;
}

function isUnique(c: ColumnSummary, rows: number): boolean {
  return (
    rows >= MIN_VALUES &&
    c.missing === 0 &&
    c.distinctExact &&
    c.distinct === c.count &&
    (c.type === 'integer' || c.type === 'categorical' || c.type === 'text' || c.type === 'datetime')
  );
}

interface Run {
  cls: string;
  min: number;
  max: number;
}

const CLASS_REGEX: Record<string, string> = { A: '[A-Z]', a: '[a-z]', '9': '[0-9]' };

function classOf(ch: string): string {
  if (ch >= 'A' && ch <= 'Z') return 'A';
  if (ch >= 'a' && ch <= 'z') return 'a';
  if (ch >= '0' && ch <= '9') return '9';
  return `=${ch}`;
}

function runsOf(text: string): Run[] {
  const runs: Run[] = [];
  for (const ch of text) {
    const cls = classOf(ch);
    const last = runs[runs.length - 1];
    if (last && last.cls === cls) last.min = last.max = last.min + 1;
    else runs.push({ cls, min: 1, max: 1 });
  }
  return runs;
}

/**
 * A pattern every value shares, from runs of upper-case letters, lower-case letters, digits and
 * literal characters (`A11`, `A12`, `A143` → `[A-Z][0-9]{2,}`); null when the values do not share
 * one shape or the shape says nothing beyond "letters".
 */
export function patternOf(values: readonly Key[]): string | null {
  let shape: Run[] | null = null;
  for (const v of values) {
    if (typeof v !== 'string') return null;
    const runs = runsOf(v);
    if (!shape) {
      shape = runs;
      continue;
    }
    if (runs.length !== shape.length) return null;
    for (let i = 0; i < runs.length; i++) {
      const a = shape[i]!;
      const b = runs[i]!;
      if (a.cls !== b.cls) return null;
      a.min = Math.min(a.min, b.min);
      a.max = Math.max(a.max, b.max);
    }
  }
  if (!shape || shape.length === 0) return null;
  if (shape.every((r) => r.cls === 'A' || r.cls === 'a')) return null;
  return shape
    .map((r) => {
      const atom = CLASS_REGEX[r.cls] ?? escapeRegex(r.cls.slice(1));
      if (r.min === r.max) return r.min === 1 ? atom : `${atom}{${r.min}}`;
      return r.min === 1 ? `${atom}+` : `${atom}{${r.min},}`;
    })
    .join('');
}

/** Escapes a syntax character; `-` stays bare, as the `u` flag refuses `\-` outside a class. */
function escapeRegex(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}
