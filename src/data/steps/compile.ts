import { murmur3 } from '../profile/hash.js';
import { parseDatetime } from '../profile/parse-cell.js';
import type {
  CategoryValue,
  ClipSpec,
  CoerceSpec,
  ImputeSpec,
  LogSpec,
  MinMaxScaleSpec,
  OneHotSpec,
  OrdinalSpec,
  StandardizeSpec,
  StepSpec,
} from './spec.js';
import { bad, normalizeCell, show, type Value } from './value.js';

/** What a step learned about one column. */
export interface ImputeParams {
  value: CategoryValue;
  /** Values it was learned from. */
  n: number;
  /** False when a median came from the quantile sketch or a mode from the frequent-items sketch. */
  exact: boolean;
}
export interface ClipParams {
  min?: number;
  max?: number;
  n: number;
  exact: boolean;
}
export interface StandardizeParams {
  mean: number;
  scale: number;
  n: number;
}
export interface MinMaxParams {
  data_min: number;
  data_max: number;
  /** The transform is `x * scale + min`, as scikit-learn's MinMaxScaler. */
  scale: number;
  min: number;
  n: number;
}
export interface CategoriesParams {
  categories: CategoryValue[];
}

/** A step with what it learned, per column (`fitted`), for the steps that learn from data. */
export type FittedStep =
  | (ImputeSpec & { fitted?: Record<string, ImputeParams> })
  | (ClipSpec & { fitted?: Record<string, ClipParams> })
  | (StandardizeSpec & { fitted: Record<string, StandardizeParams> })
  | (MinMaxScaleSpec & { fitted: Record<string, MinMaxParams> })
  | (OneHotSpec & { fitted?: Record<string, CategoriesParams> })
  | (OrdinalSpec & { fitted?: Record<string, CategoriesParams> })
  | Exclude<StepSpec, ImputeSpec | ClipSpec | StandardizeSpec | MinMaxScaleSpec | OneHotSpec | OrdinalSpec>;

/** One step compiled over slots of a working row; false drops the row (drop_duplicates). */
export type Op = (work: Value[], row: number) => boolean;

/**
 * The table's columns as steps change them: each name owns a slot of the working row. The
 * original columns hold slots 0..n-1; one-hot outputs get new slots.
 */
export class Layout {
  readonly names: string[];
  private readonly slots = new Map<string, number>();
  /** Names a step named or created: the output when the remainder is dropped. */
  readonly touched = new Set<string>();
  /** Original columns (slot < original) some step reads. */
  readonly read = new Set<number>();
  size: number;
  readonly original: number;

  constructor(columns: readonly string[]) {
    this.names = [...columns];
    columns.forEach((c, i) => {
      this.slots.set(c, i);
    });
    this.size = columns.length;
    this.original = columns.length;
  }

  has(name: string): boolean {
    return this.slots.has(name);
  }

  /**
   * The slot of a column a step reads. `touch` (default) counts it among the columns steps name
   * (kept when the remainder is dropped); `read` (default) counts it among the inputs.
   */
  slot(name: string, at: string, { touch = true, read = true } = {}): number {
    const s = this.slots.get(name);
    if (s === undefined) {
      const list =
        this.names.length > 12 ? `${this.names.slice(0, 12).join(', ')}, …` : this.names.join(', ');
      return bad(`${at}: '${name}' is not a column here (columns: ${list})`);
    }
    if (read && s < this.original) this.read.add(s);
    if (touch) this.touched.add(name);
    return s;
  }

  /** Replaces `name` by `created` at its position; returns the new names' slots. */
  replace(name: string, created: readonly string[], at: string): number[] {
    const i = this.names.indexOf(name);
    this.slots.delete(name);
    for (const c of created) {
      if (this.slots.has(c) || created.indexOf(c) !== created.lastIndexOf(c)) {
        bad(`${at}: output column '${c}' would collide with another column; choose another separator`);
      }
    }
    this.names.splice(i, 1, ...created);
    return created.map((c) => {
      const s = this.size++;
      this.slots.set(c, s);
      this.touched.add(c);
      return s;
    });
  }

  /** Slots of the output columns (all, or only those steps touched), in order. */
  outputs(remainder: 'passthrough' | 'drop'): { names: string[]; slots: number[] } {
    const names = remainder === 'drop' ? this.names.filter((n) => this.touched.has(n)) : [...this.names];
    const slots = names.map((n) => this.slots.get(n) as number);
    for (const s of slots) if (s < this.original) this.read.add(s);
    return { names, slots };
  }
}

const label = (at: string, step: StepSpec) => `${at} ${step.step}`;

/** A number from a value: booleans are 1 and 0 (numpy's reading); text is an error naming the cell. */
function num(v: number | string | boolean, row: number, column: string, where: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return bad(`row ${row}, column '${column}': ${show(v)} is not a number (${where})`);
}

export { num as numberOf };

/**
 * Compiles one fitted step over the layout (which it updates: one-hot replaces its columns).
 * `mode` 'records' leaves out drop_duplicates: a single request cannot be deduplicated against
 * the training data, and two identical records are two predictions.
 */
export function compileStep(
  step: FittedStep,
  layout: Layout,
  at: string,
  mode: 'batch' | 'records',
): Op | null {
  const where = label(at, step);
  if (step.step === 'drop_duplicates') {
    // A row filter: it names no output column, and serving does not run it (nor read for it).
    const use = { touch: false, read: mode === 'batch' };
    const slots = (step.columns ?? layout.names).map((c) => layout.slot(c, `${at}.columns`, use));
    if (mode === 'records') return null;
    return dropDuplicates(slots);
  }
  const columns = step.columns;
  const slots = columns.map((c) => layout.slot(c, `${at}.columns`));
  const n = slots.length;
  switch (step.step) {
    case 'impute': {
      const fills = columns.map((c) =>
        step.strategy === 'constant' ? step.fill_value : step.fitted?.[c]?.value,
      );
      fills.forEach((f, k) => {
        if (f === undefined) bad(`${at}.fitted.${columns[k]} is missing: the step is not fitted`);
      });
      return (w) => {
        for (let k = 0; k < n; k++) if (w[slots[k]] === null) w[slots[k]] = fills[k] as CategoryValue;
        return true;
      };
    }
    case 'clip': {
      const lo = columns.map(
        (c) => step.min ?? (step.lower_quantile === undefined ? -Infinity : fittedOf(step, c, at).min),
      );
      const hi = columns.map(
        (c) => step.max ?? (step.upper_quantile === undefined ? Infinity : fittedOf(step, c, at).max),
      );
      return (w, row) => {
        for (let k = 0; k < n; k++) {
          const v = w[slots[k]];
          if (v === null) continue;
          const x = num(v, row, columns[k], where);
          w[slots[k]] = Math.min(Math.max(x, lo[k] as number), hi[k] as number);
        }
        return true;
      };
    }
    case 'standardize': {
      // Learned either way (as scikit-learn's mean_ and scale_); with_mean/with_std choose what applies.
      const mean = columns.map((c) => (step.with_mean ? fittedOf(step, c, at).mean : 0));
      const scale = columns.map((c) => (step.with_std ? fittedOf(step, c, at).scale : 1));
      return (w, row) => {
        for (let k = 0; k < n; k++) {
          const v = w[slots[k]];
          if (v !== null) w[slots[k]] = (num(v, row, columns[k], where) - mean[k]) / scale[k];
        }
        return true;
      };
    }
    case 'min_max_scale': {
      const scale = columns.map((c) => fittedOf(step, c, at).scale);
      const min = columns.map((c) => fittedOf(step, c, at).min);
      const [lo, hi] = step.feature_range;
      const clip = step.clip;
      return (w, row) => {
        for (let k = 0; k < n; k++) {
          const v = w[slots[k]];
          if (v === null) continue;
          const x = num(v, row, columns[k], where) * scale[k] + min[k];
          w[slots[k]] = clip ? Math.min(Math.max(x, lo), hi) : x;
        }
        return true;
      };
    }
    case 'log':
      return logOp(step, slots, where);
    case 'one_hot': {
      const ops = columns.map((c, k) => {
        const categories = step.categories?.[c] ?? fittedOf(step, c, at).categories;
        const index = categoryIndex(categories);
        const out = layout.replace(
          c,
          categories.map((v) => `${c}${step.separator}${String(v)}`),
          at,
        );
        const src = slots[k];
        const m = out.length;
        return (w: Value[]) => {
          const v = w[src];
          for (let i = 0; i < m; i++) w[out[i]] = 0;
          if (v !== null) {
            const i = index.get(v);
            if (i !== undefined) w[out[i]] = 1;
          }
        };
      });
      return (w) => {
        for (const op of ops) op(w);
        return true;
      };
    }
    case 'ordinal': {
      const index = columns.map((c) => {
        return categoryIndex(step.categories?.[c] ?? fittedOf(step, c, at).categories);
      });
      const { unknown_value: unknown, missing_value: missing } = step;
      return (w) => {
        for (let k = 0; k < n; k++) {
          const v = w[slots[k]];
          w[slots[k]] = v === null ? missing : (index[k].get(v) ?? unknown);
        }
        return true;
      };
    }
    case 'coerce':
      return coerceOp(step, columns, slots, where);
    case 'trim':
    case 'lowercase': {
      const lower = step.step === 'lowercase';
      return (w) => {
        for (let k = 0; k < n; k++) {
          const v = w[slots[k]];
          if (typeof v !== 'string') continue;
          const t = lower ? v.toLowerCase() : v.trim();
          // An empty field reads as missing; so does an empty result.
          w[slots[k]] = t === '' ? null : t;
        }
        return true;
      };
    }
  }
}

/**
 * Category → position. A category also matches its other written form — `"13"` in a spec matches
 * the number 13 a cell reads as, and 13 matches the text `"13"` a coerce to string makes — unless
 * that form is a category of its own.
 */
function categoryIndex(categories: readonly CategoryValue[]): Map<Value, number> {
  const index = new Map<Value, number>();
  categories.forEach((c, i) => {
    if (!index.has(c)) index.set(c, i);
  });
  categories.forEach((c, i) => {
    const other = typeof c === 'string' ? normalizeCell(c, 0, '') : String(c);
    if (other !== null && !index.has(other)) index.set(other, i);
  });
  return index;
}

function fittedOf<T>(step: { fitted?: Record<string, T> }, column: string, at: string): T {
  const p = step.fitted?.[column];
  if (p === undefined) return bad(`${at}.fitted.${column} is missing: the step is not fitted`);
  return p;
}

function logOp(step: LogSpec, slots: number[], where: string): Op {
  const n = slots.length;
  const log1p = step.function === 'log1p';
  const missing = step.invalid === 'missing';
  const columns = step.columns;
  return (w, row) => {
    for (let k = 0; k < n; k++) {
      const v = w[slots[k]];
      if (v === null) continue;
      const x = num(v, row, columns[k], where);
      if (log1p ? x > -1 : x > 0) w[slots[k]] = log1p ? Math.log1p(x) : Math.log(x);
      else if (missing) w[slots[k]] = null;
      else
        bad(
          `row ${row}, column '${columns[k]}': ${x} is outside ${step.function}'s domain (${log1p ? 'x > -1' : 'x > 0'}) (${where}; set "invalid": "missing" to make such cells missing)`,
        );
    }
    return true;
  };
}

const TRUE_WORDS = new Set(['true', 't', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['false', 'f', 'no', 'n', 'off']);

/** Converts one value, or returns undefined when it cannot be. */
function coerceValue(to: CoerceSpec['to'], v: number | string | boolean): Value | undefined {
  switch (to) {
    case 'integer':
      if (typeof v === 'boolean') return v ? 1 : 0;
      return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
    case 'float':
      if (typeof v === 'boolean') return v ? 1 : 0;
      return typeof v === 'number' ? v : undefined;
    case 'boolean': {
      if (typeof v === 'boolean') return v;
      if (typeof v === 'number') return v === 1 ? true : v === 0 ? false : undefined;
      const word = v.trim().toLowerCase();
      return TRUE_WORDS.has(word) ? true : FALSE_WORDS.has(word) ? false : undefined;
    }
    case 'string':
      return String(v);
    case 'datetime': {
      if (typeof v !== 'string') return undefined;
      const ms = parseDatetime(v.trim());
      return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
    }
  }
}

function coerceOp(step: CoerceSpec, columns: readonly string[], slots: number[], where: string): Op {
  const n = slots.length;
  const { to } = step;
  const missing = step.errors === 'missing';
  return (w, row) => {
    for (let k = 0; k < n; k++) {
      const v = w[slots[k]];
      if (v === null) continue;
      const c = coerceValue(to, v);
      if (c !== undefined) w[slots[k]] = c;
      else if (missing) w[slots[k]] = null;
      else
        bad(
          `row ${row}, column '${columns[k]}': ${show(v)} is not ${to === 'integer' ? 'an' : 'a'} ${to} (${where}; set "errors": "missing" to make such cells missing)`,
        );
    }
    return true;
  };
}

const TAG = { number: 'n', string: 's', boolean: 'b' } as Record<string, string>;

/**
 * Keeps the first of equal rows. Rows are compared by a 64-bit hash of their typed values, so the
 * set stays small (tens of bytes a row); two different rows collide with probability ~n²/2^65.
 */
function dropDuplicates(slots: number[]): Op {
  const seen = new Set<string>();
  return (w) => {
    let key = '';
    for (const s of slots) {
      const v = w[s];
      if (v === null) key += '-';
      else {
        const text = String(v);
        // Type and length first, so no two different rows spell the same key.
        key += `${TAG[typeof v]}${text.length}:${text}`;
      }
    }
    const h = `${murmur3(key, 0x9747b28c).toString(36)}.${murmur3(key, 0x5bd1e995).toString(36)}`;
    if (seen.has(h)) return false;
    seen.add(h);
    return true;
  };
}
