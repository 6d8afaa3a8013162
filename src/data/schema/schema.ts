/**
 * A table's schema: what each column may hold, what the table as a whole must look like, and
 * rules across columns. Written by `inferSchema` from a profile, edited by hand, read back by
 * `parseSchema` (which names the field of any mistake), and checked by the validator on files
 * and on serving requests.
 *
 * @example
 *   {
 *     "format": "slipway.schema", "version": 1,
 *     "columns": [
 *       { "name": "age", "type": "integer", "nullable": false, "range": { "min": 17, "max": 90 } },
 *       { "name": "workclass", "type": "categorical", "nullable": true,
 *         "categories": ["Private", "State-gov"], "mostly": { "categories": 0.99 } },
 *       { "name": "income", "type": "categorical", "environments": ["training"] }
 *     ],
 *     "table": { "rows": { "min": 1 }, "extra_columns": false },
 *     "rules": [{ "name": "dates", "expr": "end_date >= start_date" }]
 *   }
 */
import { SlipwayError } from '../../errors/index.js';
import { parseDatetime } from '../profile/index.js';
import { Kind, type Parsed, parseCell } from '../profile/parse-cell.js';
import { compileExpression, type Expression } from './expression.js';

export const SCHEMA_FORMAT = 'slipway.schema';
export const SCHEMA_VERSION = 1;

export type SchemaType = 'integer' | 'float' | 'boolean' | 'categorical' | 'datetime' | 'text' | 'any';
export const SCHEMA_TYPES: readonly SchemaType[] = [
  'integer',
  'float',
  'boolean',
  'categorical',
  'datetime',
  'text',
  'any',
];

/** Where data is checked: files for training carry the label; serving requests must not. */
export type Environment = 'training' | 'serving';
export const ENVIRONMENTS: readonly Environment[] = ['training', 'serving'];

/** Rules a column can carry; these names appear as `rule` in every failure. */
export type ColumnRule =
  | 'required'
  | 'absent'
  | 'type'
  | 'nullable'
  | 'range'
  | 'categories'
  | 'length'
  | 'pattern'
  | 'unique';
export type TableRule = 'row_count' | 'columns' | 'expression';
export type RuleName = ColumnRule | TableRule;

/** Rules whose share of passing values may be relaxed with `mostly`. */
export const RELAXABLE: readonly ColumnRule[] = [
  'type',
  'nullable',
  'range',
  'categories',
  'length',
  'pattern',
  'unique',
];

export interface ColumnSchema {
  name: string;
  type: SchemaType;
  /** The column must be present (default true). */
  required?: boolean;
  /** Missing values allowed (default true). */
  nullable?: boolean;
  /** Inclusive bounds: numbers for numeric columns, ISO dates for datetime columns. */
  range?: { min?: number | string; max?: number | string };
  /** The allowed values (strings, numbers or booleans, as the data reads). */
  categories?: (string | number | boolean)[];
  /** String length bounds, inclusive. */
  length?: { min?: number; max?: number };
  /** A regular expression every value must match in full. */
  pattern?: string;
  unique?: boolean;
  /** Environments the column belongs to (default all); in others it must be absent. */
  environments?: Environment[];
  /** Per rule, the share of checked values that must pass (1 when absent), as in Great Expectations. */
  mostly?: Partial<Record<ColumnRule, number>>;
}

export interface CrossRule {
  /** Shown as the failure's `column`; defaults to the expression. */
  name?: string;
  /** e.g. `end_date >= start_date`; see expression.ts for the language. */
  expr: string;
  mostly?: number;
}

export interface Schema {
  format: typeof SCHEMA_FORMAT;
  version: typeof SCHEMA_VERSION;
  columns: ColumnSchema[];
  table?: {
    rows?: { min?: number; max?: number };
    /** Columns the schema does not name are allowed (default false). */
    extra_columns?: boolean;
  };
  rules?: CrossRule[];
}

/** A parsed schema: the JSON as given, plus the compiled parts the validator needs. */
export interface ParsedSchema {
  schema: Schema;
  byName: Map<string, ColumnSchema>;
  /** Range bounds as numbers (datetimes in ms); integer bounds beyond 2^53 also exactly, as bigints. */
  bounds: Map<string, { min: number; max: number; bigMin?: bigint; bigMax?: bigint }>;
  patterns: Map<string, RegExp>;
  rules: { rule: CrossRule; expression: Expression }[];
}

const bad = (field: string, message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `schema ${field ? `${field} ` : ''}${message}`);
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function checkKeys(value: Record<string, unknown>, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key))
      bad(field ? `${field}.${key}` : key, `is not a schema field (allowed: ${allowed.join(', ')})`);
  }
}

function fraction(v: unknown, field: string): number {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) bad(field, 'must be a number from 0 to 1');
  return v as number;
}

function count(v: unknown, field: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) bad(field, 'must be a non-negative integer');
  return v as number;
}

/** A bound as a number: numbers for numeric columns, ISO dates for datetime columns. */
function bound(v: unknown, type: SchemaType, field: string): number {
  if (type === 'datetime') {
    const ms = typeof v === 'string' ? parseDatetime(v) : Number.NaN;
    if (Number.isNaN(ms))
      bad(field, `must be an ISO date or date-time for a datetime column, got ${JSON.stringify(v)}`);
    return ms;
  }
  if (type === 'integer' || type === 'float') {
    if (typeof v === 'number' && !Number.isNaN(v)) return v;
    if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) return Number(v); // a big integer, as profiles print it
    bad(field, `must be a number, got ${JSON.stringify(v)}`);
  }
  return bad(field, `applies to integer, float and datetime columns, not ${type}`);
}

/**
 * Reads a schema, refusing anything the validator could not apply, each mistake naming its field.
 *
 * @example
 *   const parsed = parseSchema(JSON.parse(readFileSync('schema.json', 'utf8')));
 */
export function parseSchema(json: unknown): ParsedSchema {
  if (!isObject(json)) return bad('', 'must be a JSON object');
  checkKeys(json, '', ['format', 'version', 'columns', 'table', 'rules', 'description']);
  if (json.format !== SCHEMA_FORMAT) bad('format', `must be "${SCHEMA_FORMAT}"`);
  if (json.version !== SCHEMA_VERSION) bad('version', `must be ${SCHEMA_VERSION}`);
  if (!Array.isArray(json.columns)) bad('columns', 'must be an array');
  const byName = new Map<string, ColumnSchema>();
  const bounds: ParsedSchema['bounds'] = new Map();
  const patterns = new Map<string, RegExp>();
  const parsed: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };
  (json.columns as unknown[]).forEach((c, i) => {
    const f = `columns[${i}]`;
    if (!isObject(c)) bad(f, 'must be an object');
    const col = c as Record<string, unknown>;
    checkKeys(col, f, [
      'name',
      'type',
      'required',
      'nullable',
      'range',
      'categories',
      'length',
      'pattern',
      'unique',
      'environments',
      'mostly',
      'description',
    ]);
    if (typeof col.name !== 'string' || col.name === '') bad(`${f}.name`, 'must be a non-empty string');
    const name = col.name as string;
    if (byName.has(name)) bad(`${f}.name`, `repeats column '${name}'`);
    if (!SCHEMA_TYPES.includes(col.type as SchemaType))
      bad(`${f}.type`, `must be one of ${SCHEMA_TYPES.join(', ')}`);
    const type = col.type as SchemaType;
    for (const key of ['required', 'nullable', 'unique'] as const) {
      if (col[key] !== undefined && typeof col[key] !== 'boolean')
        bad(`${f}.${key}`, 'must be true or false');
    }
    if (col.range !== undefined) {
      if (!isObject(col.range)) bad(`${f}.range`, 'must be an object with min and/or max');
      const r = col.range as Record<string, unknown>;
      checkKeys(r, `${f}.range`, ['min', 'max']);
      const min =
        r.min === undefined || r.min === null
          ? Number.NEGATIVE_INFINITY
          : bound(r.min, type, `${f}.range.min`);
      const max =
        r.max === undefined || r.max === null
          ? Number.POSITIVE_INFINITY
          : bound(r.max, type, `${f}.range.max`);
      // A big integer bound (a decimal string, as profiles print one) is also kept exactly.
      const exact = (v: unknown) =>
        typeof v === 'string' && /^[+-]?\d+$/.test(v) && !Number.isSafeInteger(Number(v))
          ? BigInt(v)
          : undefined;
      const bigMin = type === 'datetime' ? undefined : exact(r.min);
      const bigMax = type === 'datetime' ? undefined : exact(r.max);
      if (min > max || (bigMin !== undefined && bigMax !== undefined && bigMin > bigMax))
        bad(`${f}.range`, 'has min above max');
      bounds.set(name, { min, max, bigMin, bigMax });
    }
    if (col.categories !== undefined) {
      if (!Array.isArray(col.categories)) bad(`${f}.categories`, 'must be an array of values');
      (col.categories as unknown[]).forEach((v, k) => {
        if (!['string', 'number', 'boolean'].includes(typeof v)) {
          bad(`${f}.categories[${k}]`, 'must be a string, number or boolean');
        }
        // Such a value never reaches the categories rule (nullable decides it); as a category it
        // would stand for the missing cell's placeholder and admit 0.
        if (parseCell(v as string | number | boolean, parsed).kind === Kind.Missing) {
          bad(`${f}.categories[${k}]`, `${JSON.stringify(v)} reads as a missing value; use nullable`);
        }
      });
    }
    if (col.length !== undefined) {
      if (!isObject(col.length)) bad(`${f}.length`, 'must be an object with min and/or max');
      const l = col.length as Record<string, unknown>;
      checkKeys(l, `${f}.length`, ['min', 'max']);
      if (l.min !== undefined) count(l.min, `${f}.length.min`);
      if (l.max !== undefined) count(l.max, `${f}.length.max`);
      if (l.min !== undefined && l.max !== undefined && (l.min as number) > (l.max as number)) {
        bad(`${f}.length`, 'has min above max');
      }
    }
    if (col.pattern !== undefined) {
      if (typeof col.pattern !== 'string') bad(`${f}.pattern`, 'must be a regular expression string');
      try {
        patterns.set(name, new RegExp(`^(?:${col.pattern as string})$`, 'u'));
      } catch (err) {
        bad(`${f}.pattern`, `is not a valid regular expression: ${(err as Error).message}`);
      }
    }
    if (col.environments !== undefined) {
      if (!Array.isArray(col.environments) || col.environments.length === 0) {
        bad(`${f}.environments`, `must be a non-empty array of ${ENVIRONMENTS.join(', ')}`);
      }
      (col.environments as unknown[]).forEach((e, k) => {
        if (!ENVIRONMENTS.includes(e as Environment))
          bad(`${f}.environments[${k}]`, `must be one of ${ENVIRONMENTS.join(', ')}`);
      });
    }
    if (col.mostly !== undefined) {
      if (!isObject(col.mostly)) bad(`${f}.mostly`, 'must be an object of rule → fraction');
      for (const [rule, v] of Object.entries(col.mostly as Record<string, unknown>)) {
        if (!RELAXABLE.includes(rule as ColumnRule))
          bad(`${f}.mostly.${rule}`, `is not a rule (${RELAXABLE.join(', ')})`);
        fraction(v, `${f}.mostly.${rule}`);
      }
    }
    byName.set(name, col as unknown as ColumnSchema);
  });

  if (json.table !== undefined) {
    if (!isObject(json.table)) bad('table', 'must be an object');
    const t = json.table as Record<string, unknown>;
    checkKeys(t, 'table', ['rows', 'extra_columns']);
    if (t.rows !== undefined) {
      if (!isObject(t.rows)) bad('table.rows', 'must be an object with min and/or max');
      const r = t.rows as Record<string, unknown>;
      checkKeys(r, 'table.rows', ['min', 'max']);
      if (r.min !== undefined) count(r.min, 'table.rows.min');
      if (r.max !== undefined && r.max !== null) count(r.max, 'table.rows.max');
    }
    if (t.extra_columns !== undefined && typeof t.extra_columns !== 'boolean') {
      bad('table.extra_columns', 'must be true or false');
    }
  }

  const rules: ParsedSchema['rules'] = [];
  if (json.rules !== undefined) {
    if (!Array.isArray(json.rules)) bad('rules', 'must be an array');
    (json.rules as unknown[]).forEach((r, i) => {
      const f = `rules[${i}]`;
      if (!isObject(r)) bad(f, 'must be an object with expr');
      const rule = r as Record<string, unknown>;
      checkKeys(rule, f, ['name', 'expr', 'mostly', 'description']);
      if (typeof rule.expr !== 'string' || rule.expr.trim() === '')
        bad(`${f}.expr`, 'must be an expression string');
      if (rule.name !== undefined && typeof rule.name !== 'string') bad(`${f}.name`, 'must be a string');
      if (rule.mostly !== undefined) fraction(rule.mostly, `${f}.mostly`);
      let expression: Expression | undefined;
      try {
        expression = compileExpression(rule.expr as string, (name) => byName.get(name)?.type);
      } catch (err) {
        bad(`${f}.expr`, (err as Error).message);
      }
      if (expression) rules.push({ rule: rule as unknown as CrossRule, expression });
    });
  }
  return { schema: json as unknown as Schema, byName, bounds, patterns, rules };
}
