import { bad, isCategory } from './value.js';

/** The step kinds, in the order the docs list them. */
export const STEP_KINDS = [
  'impute',
  'clip',
  'standardize',
  'min_max_scale',
  'log',
  'one_hot',
  'ordinal',
  'coerce',
  'trim',
  'lowercase',
  'drop_duplicates',
] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export const IMPUTE_STRATEGIES = ['mean', 'median', 'most_frequent', 'constant'] as const;
export const COERCE_TYPES = ['integer', 'float', 'boolean', 'string', 'datetime'] as const;

type Columns = readonly string[];
export type CategoryValue = number | string | boolean;

export interface ImputeSpec {
  step: 'impute';
  columns: Columns;
  strategy: (typeof IMPUTE_STRATEGIES)[number];
  /** The value a `constant` strategy fills in. */
  fill_value?: CategoryValue;
}
export interface ClipSpec {
  step: 'clip';
  columns: Columns;
  /** Fixed bounds… */
  min?: number;
  max?: number;
  /** …or bounds fitted as quantiles of each column (pandas' linear interpolation). */
  lower_quantile?: number;
  upper_quantile?: number;
}
export interface StandardizeSpec {
  step: 'standardize';
  columns: Columns;
  with_mean: boolean;
  with_std: boolean;
}
export interface MinMaxScaleSpec {
  step: 'min_max_scale';
  columns: Columns;
  feature_range: readonly [number, number];
  /** Clip transformed values to feature_range (values outside the fitted min/max). */
  clip: boolean;
}
export interface LogSpec {
  step: 'log';
  columns: Columns;
  function: 'log1p' | 'log';
  /** Values outside the domain (≤ -1 for log1p, ≤ 0 for log): an error, or missing. */
  invalid: 'error' | 'missing';
}
export interface OneHotSpec {
  step: 'one_hot';
  columns: Columns;
  /** Output columns are named `<column><separator><value>`. */
  separator: string;
  /** Fixed categories per column (in output order); columns not listed learn theirs. */
  categories?: Readonly<Record<string, readonly CategoryValue[]>>;
}
export interface OrdinalSpec {
  step: 'ordinal';
  columns: Columns;
  unknown_value: number | null;
  missing_value: number | null;
  categories?: Readonly<Record<string, readonly CategoryValue[]>>;
}
export interface CoerceSpec {
  step: 'coerce';
  columns: Columns;
  to: (typeof COERCE_TYPES)[number];
  /** A cell that cannot be converted: an error, or missing. */
  errors: 'error' | 'missing';
}
export interface TextSpec {
  step: 'trim' | 'lowercase';
  columns: Columns;
}
export interface DropDuplicatesSpec {
  step: 'drop_duplicates';
  /** Columns that make two rows duplicates; all columns when absent. */
  columns?: Columns;
}

export type StepSpec =
  | ImputeSpec
  | ClipSpec
  | StandardizeSpec
  | MinMaxScaleSpec
  | LogSpec
  | OneHotSpec
  | OrdinalSpec
  | CoerceSpec
  | TextSpec
  | DropDuplicatesSpec;

/** What becomes of the columns no step names: kept as they are, or dropped from the output. */
export type Remainder = 'passthrough' | 'drop';

/**
 * A steps spec as written by hand (`steps.json`): ordered steps, each naming its columns.
 *
 * @example
 *   { "steps": [
 *       { "step": "impute", "columns": ["workclass"], "strategy": "most_frequent" },
 *       { "step": "standardize", "columns": ["age", "hours_per_week"] },
 *       { "step": "one_hot", "columns": ["workclass"] } ] }
 */
export interface StepsSpec {
  steps: readonly StepSpec[];
  remainder: Remainder;
}

type Raw = Record<string, unknown>;

const KEYS: Record<StepKind, readonly string[]> = {
  impute: ['strategy', 'fill_value'],
  clip: ['min', 'max', 'lower_quantile', 'upper_quantile'],
  standardize: ['with_mean', 'with_std'],
  min_max_scale: ['feature_range', 'clip'],
  log: ['function', 'invalid'],
  one_hot: ['separator', 'categories'],
  ordinal: ['unknown_value', 'missing_value', 'categories'],
  coerce: ['to', 'errors'],
  trim: [],
  lowercase: [],
  drop_duplicates: [],
};

function oneOf<T extends string>(raw: Raw, key: string, at: string, allowed: readonly T[], fallback?: T): T {
  const v = raw[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    return bad(
      `${at ? `${at}.` : ''}${key} must be one of ${allowed.join(', ')}${v === undefined ? '' : ` (got ${JSON.stringify(v)})`}`,
    );
  }
  return v as T;
}

function bool(raw: Raw, key: string, at: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') return bad(`${at}.${key} must be true or false`);
  return v;
}

function finite(raw: Raw, key: string, at: string): number | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) return bad(`${at}.${key} must be a finite number`);
  return v;
}

function numberOrNull(raw: Raw, key: string, at: string, fallback: number | null): number | null {
  const v = raw[key];
  if (v === undefined) return fallback;
  if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) {
    return bad(`${at}.${key} must be a finite number or null`);
  }
  return v;
}

function columnList(v: unknown, at: string): string[] {
  if (!Array.isArray(v) || v.length === 0) return bad(`${at} must be a non-empty array of column names`);
  const seen = new Set<string>();
  v.forEach((c, i) => {
    if (typeof c !== 'string' || c === '') bad(`${at}[${i}] must be a non-empty string`);
    if (seen.has(c)) bad(`${at}[${i}]: column '${c}' is listed twice`);
    seen.add(c);
  });
  return v as string[];
}

function categoryMap(raw: Raw, at: string, columns: Columns): Record<string, CategoryValue[]> | undefined {
  const v = raw.categories;
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    return bad(`${at}.categories must be an object mapping columns to arrays of values`);
  }
  const out: Record<string, CategoryValue[]> = {};
  for (const [column, list] of Object.entries(v as Raw)) {
    const here = `${at}.categories.${column}`;
    if (!columns.includes(column)) bad(`${here}: '${column}' is not one of ${at}.columns`);
    if (!Array.isArray(list) || list.length === 0) bad(`${here} must be a non-empty array`);
    const seen = new Set<unknown>();
    (list as unknown[]).forEach((c, i) => {
      if (!isCategory(c)) bad(`${here}[${i}] must be a string, a finite number or a boolean`);
      if (seen.has(c)) bad(`${here}[${i}]: ${JSON.stringify(c)} is listed twice`);
      seen.add(c);
    });
    out[column] = list as CategoryValue[];
  }
  return out;
}

function quantile(raw: Raw, key: string, at: string): number | undefined {
  const q = finite(raw, key, at);
  if (q !== undefined && (q < 0 || q > 1)) bad(`${at}.${key} must be between 0 and 1`);
  return q;
}

/** One step, validated; `at` names it in errors (`steps[2]`). Unknown keys are refused (a typo is not ignored). */
export function parseStep(value: unknown, at: string, extraKeys: readonly string[] = []): StepSpec {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return bad(`${at} must be an object`);
  const raw = value as Raw;
  const step = oneOf(raw, 'step', at, STEP_KINDS);
  const allowed = new Set(['step', 'columns', ...KEYS[step], ...extraKeys]);
  for (const key of Object.keys(raw)) {
    if (!allowed.has(key)) {
      bad(
        `${at}.${key} is not a parameter of ${step} (its parameters: columns${KEYS[step].map((k) => `, ${k}`).join('')})`,
      );
    }
  }
  if (step === 'drop_duplicates') {
    return raw.columns === undefined ? { step } : { step, columns: columnList(raw.columns, `${at}.columns`) };
  }
  const columns = columnList(raw.columns, `${at}.columns`);
  switch (step) {
    case 'impute': {
      const strategy = oneOf(raw, 'strategy', at, IMPUTE_STRATEGIES);
      if (strategy === 'constant') {
        if (!isCategory(raw.fill_value)) {
          return bad(`${at}.fill_value must be a string, a finite number or a boolean (strategy constant)`);
        }
        return { step, columns, strategy, fill_value: raw.fill_value };
      }
      if (raw.fill_value !== undefined) bad(`${at}.fill_value is only for strategy constant`);
      return { step, columns, strategy };
    }
    case 'clip': {
      const spec: ClipSpec = {
        step,
        columns,
        min: finite(raw, 'min', at),
        max: finite(raw, 'max', at),
        lower_quantile: quantile(raw, 'lower_quantile', at),
        upper_quantile: quantile(raw, 'upper_quantile', at),
      };
      if (spec.min !== undefined && spec.lower_quantile !== undefined)
        bad(`${at}: give min or lower_quantile, not both`);
      if (spec.max !== undefined && spec.upper_quantile !== undefined)
        bad(`${at}: give max or upper_quantile, not both`);
      const lower = spec.min ?? spec.lower_quantile;
      const upper = spec.max ?? spec.upper_quantile;
      if (lower === undefined && upper === undefined) {
        bad(`${at} needs a lower bound (min or lower_quantile) or an upper one (max or upper_quantile)`);
      }
      if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max)
        bad(`${at}.min must be ≤ ${at}.max`);
      if (
        spec.lower_quantile !== undefined &&
        spec.upper_quantile !== undefined &&
        spec.lower_quantile > spec.upper_quantile
      ) {
        bad(`${at}.lower_quantile must be ≤ ${at}.upper_quantile`);
      }
      for (const k of ['min', 'max', 'lower_quantile', 'upper_quantile'] as const)
        if (spec[k] === undefined) delete spec[k];
      return spec;
    }
    case 'standardize':
      return {
        step,
        columns,
        with_mean: bool(raw, 'with_mean', at, true),
        with_std: bool(raw, 'with_std', at, true),
      };
    case 'min_max_scale': {
      const r = raw.feature_range ?? [0, 1];
      if (
        !Array.isArray(r) ||
        r.length !== 2 ||
        !r.every((x) => typeof x === 'number' && Number.isFinite(x)) ||
        !(r[0] < r[1])
      ) {
        return bad(`${at}.feature_range must be [min, max] with finite numbers, min < max`);
      }
      return { step, columns, feature_range: [r[0], r[1]], clip: bool(raw, 'clip', at, false) };
    }
    case 'log':
      return {
        step,
        columns,
        function: oneOf(raw, 'function', at, ['log1p', 'log'] as const, 'log1p'),
        invalid: oneOf(raw, 'invalid', at, ['error', 'missing'] as const, 'error'),
      };
    case 'one_hot': {
      const separator = raw.separator ?? '=';
      if (typeof separator !== 'string') return bad(`${at}.separator must be a string`);
      const categories = categoryMap(raw, at, columns);
      return categories ? { step, columns, separator, categories } : { step, columns, separator };
    }
    case 'ordinal': {
      const categories = categoryMap(raw, at, columns);
      const spec: OrdinalSpec = {
        step,
        columns,
        unknown_value: numberOrNull(raw, 'unknown_value', at, -1),
        missing_value: numberOrNull(raw, 'missing_value', at, null),
      };
      return categories ? { ...spec, categories } : spec;
    }
    case 'coerce':
      return {
        step,
        columns,
        to: oneOf(raw, 'to', at, COERCE_TYPES),
        errors: oneOf(raw, 'errors', at, ['error', 'missing'] as const, 'error'),
      };
    default:
      return { step, columns };
  }
}

/**
 * Parses and validates a steps spec (the parsed JSON of `steps.json`). A bad field is a
 * SLIPWAY_ERR_BAD_REQUEST naming it: `steps[2].strategy must be one of mean, median, …`.
 */
export function parseStepsSpec(json: unknown): StepsSpec {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return bad('a steps spec must be an object with a "steps" array');
  }
  const raw = json as Raw;
  for (const key of Object.keys(raw)) {
    if (key !== 'steps' && key !== 'remainder')
      bad(`${key} is not a field of a steps spec (fields: steps, remainder)`);
  }
  if (!Array.isArray(raw.steps)) return bad('steps must be an array of steps');
  const steps = raw.steps.map((s, i) => parseStep(s, `steps[${i}]`));
  const remainder = oneOf(raw, 'remainder', '', ['passthrough', 'drop'] as const, 'passthrough');
  return { steps, remainder };
}

/** The columns a step names (drop_duplicates without columns names none). */
export function stepColumns(spec: StepSpec): Columns {
  return spec.columns ?? [];
}
