import { readTable } from '../formats/index.js';
import { Kind, type Parsed, parseCell } from '../profile/parse-cell.js';
import type { Cell, ReadOptions, RowBatch } from '../table.js';
import type { Value } from './expression.js';
import type { ColumnRule, ColumnSchema, Environment, ParsedSchema, RuleName } from './schema.js';

/** One value (or column, or table) that broke a rule. `row` is the 1-based data row; null for table-level rules. */
export interface Failure {
  row: number | null;
  column: string | null;
  rule: RuleName;
  value: unknown;
  expected: string;
}

/** One rule's outcome over everything checked. */
export interface RuleResult {
  column: string | null;
  rule: RuleName;
  expected: string;
  /** The share of checked values that had to pass. */
  mostly: number;
  /** Values (or rows, or columns) the rule looked at. */
  checked: number;
  failed: number;
  success: boolean;
}

export interface ValidationReport {
  success: boolean;
  rows_checked: number;
  environment: Environment;
  rules: RuleResult[];
  /** Every value that broke a failed rule, by row (table-level first), up to `maxFailures`. */
  failures: Failure[];
  failures_truncated: boolean;
}

export interface ValidateOptions {
  /** Default `training`: columns limited to other environments must be absent. */
  environment?: Environment;
  /** Failures kept in the report (counts stay exact). Default 1000; 0 keeps all. */
  maxFailures?: number;
}

interface RuleState extends RuleResult {
  failures: Failure[];
}

function formatBound(v: number | string | undefined): string {
  return v === undefined || v === null ? '' : String(v);
}

/** How a rule's expectation reads in a report. */
export function expectedText(col: ColumnSchema, rule: ColumnRule, env: Environment): string {
  switch (rule) {
    case 'required':
      return 'the column present';
    case 'absent':
      return `the column absent in ${env} (it belongs to ${col.environments!.join(', ')})`;
    case 'type':
      return col.type;
    case 'nullable':
      return 'a value (not missing)';
    case 'range':
      return `${formatBound(col.range!.min)}..${formatBound(col.range!.max)}`;
    case 'categories': {
      const c = col.categories!;
      return c.length <= 20
        ? `one of ${c.map((v) => JSON.stringify(v)).join(', ')}`
        : `one of ${c.length} allowed values`;
    }
    case 'length':
      return `${col.length!.min ?? 0}..${col.length!.max ?? ''} characters`;
    case 'pattern':
      return `matches ${col.pattern}`;
    default:
      return 'unique';
  }
}

/** The key a value is compared by in categories and uniqueness: `"1"` and `1` are the same value. */
export function keyOf(p: Parsed): number | bigint | boolean | string {
  return p.value;
}

interface BoundColumn {
  col: ColumnSchema;
  /** Position in the batch's columns. */
  index: number;
  /** Position among the values cross-column rules read, or -1. */
  slot: number;
  type: RuleState | null;
  nullable: RuleState | null;
  range: RuleState | null;
  bounds: { min: number; max: number; bigMin?: bigint; bigMax?: bigint } | null;
  categories: RuleState | null;
  allowed: Set<unknown> | null;
  length: RuleState | null;
  pattern: RuleState | null;
  regex: RegExp | null;
  unique: RuleState | null;
  seen: Map<unknown, number> | null;
}

/**
 * Checks rows against a schema as they stream by: `begin` with the header, `add` each batch,
 * `finish` for the report. The same checks serve files (`validateTable`) and serving requests
 * (`checkRecords`).
 *
 * @example
 *   const v = new Validator(parseSchema(json), { environment: 'training' });
 *   for await (const batch of readTable('adult.csv')) v.add(batch);
 *   const report = v.finish();
 */
export class Validator {
  private readonly env: Environment;
  private readonly maxFailures: number;
  private readonly states: RuleState[] = [];
  private bound: BoundColumn[] | null = null;
  private header: readonly string[] = [];
  private rows = 0;
  private readonly parsed: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };
  private cross: {
    state: RuleState;
    columns: string[];
    slots: number[];
    buffer: Value[];
    evaluate: (v: readonly Value[]) => Value;
  }[] = [];
  private slotCount = 0;
  private readonly serving: boolean;

  constructor(
    readonly schema: ParsedSchema,
    options: ValidateOptions & { serving?: boolean } = {},
  ) {
    this.env = options.environment ?? 'training';
    this.maxFailures = options.maxFailures ?? 1000;
    this.serving = options.serving ?? false;
  }

  private state(column: string | null, rule: RuleName, expected: string, mostly = 1): RuleState {
    const s: RuleState = {
      column,
      rule,
      expected,
      mostly,
      checked: 0,
      failed: 0,
      success: true,
      failures: [],
    };
    this.states.push(s);
    return s;
  }

  private fail(s: RuleState, row: number | null, value: unknown): void {
    s.failed++;
    const f: Failure = { row, column: s.column, rule: s.rule, value, expected: s.expected };
    const list = s.failures;
    const last = list[list.length - 1];
    // Uncapped, order does not matter here (finish sorts); capped, the scan below is bounded.
    if (this.maxFailures === 0 || !last || (last.row ?? 0) <= (row ?? 0)) {
      if (this.maxFailures === 0 || list.length < this.maxFailures) list.push(f);
      return;
    }
    // Rows arrive in order except a repeated value's first occurrence: keep the list sorted, so
    // a capped list holds the rule's earliest rows.
    let at = list.length - 1;
    while (at > 0 && (list[at - 1]!.row ?? 0) > (row ?? 0)) at--;
    list.splice(at, 0, f);
    if (this.maxFailures !== 0 && list.length > this.maxFailures) list.pop();
  }

  /** Binds the table's columns: column presence, environments and extra columns are checked here. */
  begin(columns: readonly string[]): void {
    if (this.bound) return;
    this.header = columns;
    const { schema, byName, bounds, patterns } = this.schema;
    const position = new Map(columns.map((c, i) => [c, i]));
    const slots = new Map<string, number>();
    for (const r of this.schema.rules)
      for (const c of r.expression.columns) if (!slots.has(c)) slots.set(c, slots.size);
    this.slotCount = slots.size;
    this.bound = [];
    for (const col of schema.columns) {
      const index = position.get(col.name);
      const mostly = (rule: ColumnRule) => col.mostly?.[rule] ?? 1;
      const make = (rule: ColumnRule) =>
        this.state(col.name, rule, expectedText(col, rule, this.env), mostly(rule));
      if (col.environments && !col.environments.includes(this.env)) {
        const s = make('absent');
        s.checked = 1;
        if (index !== undefined) this.fail(s, null, col.name);
        continue;
      }
      if (index === undefined) {
        if (col.required !== false) {
          const s = make('required');
          s.checked = 1;
          this.fail(s, null, null);
        }
        continue;
      }
      // At serving, a rule relaxed with `mostly` is a statement about a dataset, not one request.
      const enforced = (rule: ColumnRule) => !this.serving || mostly(rule) >= 1;
      const b: BoundColumn = {
        col,
        index,
        slot: slots.get(col.name) ?? -1,
        type:
          col.type !== 'any' && col.type !== 'categorical' && col.type !== 'text' && enforced('type')
            ? make('type')
            : null,
        nullable: col.nullable === false && enforced('nullable') ? make('nullable') : null,
        range: col.range && enforced('range') ? make('range') : null,
        bounds: bounds.get(col.name) ?? null,
        categories: col.categories && enforced('categories') ? make('categories') : null,
        allowed: null,
        length: col.length && enforced('length') ? make('length') : null,
        pattern: col.pattern !== undefined && enforced('pattern') ? make('pattern') : null,
        regex: patterns.get(col.name) ?? null,
        unique: col.unique && !this.serving ? make('unique') : null,
        seen: null,
      };
      if (b.categories) b.allowed = allowedValues(col);
      if (b.unique) b.seen = new Map();
      this.bound.push(b);
    }
    if (schema.table?.extra_columns !== true && !this.serving) {
      for (const c of columns) {
        if (byName.has(c)) continue;
        const s = this.state(c, 'columns', "only the schema's columns");
        s.checked = 1;
        this.fail(s, null, c);
      }
    }
    for (const r of this.schema.rules) {
      if (this.serving && (r.rule.mostly ?? 1) < 1) continue;
      const state = this.state(r.rule.name ?? r.rule.expr, 'expression', r.rule.expr, r.rule.mostly ?? 1);
      const columns = r.expression.columns;
      this.cross.push({
        state,
        columns,
        slots: columns.map((c) => slots.get(c)!),
        buffer: new Array(columns.length).fill(null),
        evaluate: r.expression.evaluate,
      });
    }
  }

  /** Checks a batch's rows; returns the 0-based indexes (within the batch) of rows that broke a rule. */
  add(batch: RowBatch): Set<number> {
    this.begin(batch.columns);
    const bad = new Set<number>();
    const bound = this.bound!;
    const p = this.parsed;
    const values: Value[] = new Array(this.slotCount).fill(null);
    for (let i = 0; i < batch.rows.length; i++) {
      const cells = batch.rows[i]!;
      const row = batch.firstRow + i;
      let broke = false;
      for (const b of bound) {
        const cell: Cell = cells[b.index] ?? null;
        parseCell(cell, p);
        if (b.slot >= 0) values[b.slot] = null;
        if (p.kind === Kind.Missing) {
          if (b.nullable) {
            b.nullable.checked++;
            this.fail(b.nullable, row, null);
            broke = true;
          }
          continue;
        }
        if (b.nullable) b.nullable.checked++;
        const shown = displayed(cell, p);
        const type = b.col.type;
        let typed = true;
        if (b.type) {
          b.type.checked++;
          typed = hasType(type, p);
          if (!typed) {
            this.fail(b.type, row, shown);
            broke = true;
          }
        }
        if (b.slot >= 0 && typed) values[b.slot] = slotValue(type, cell, p);
        if (b.range && typed) {
          const x =
            p.kind === Kind.Datetime
              ? p.ms
              : p.kind === Kind.BigInteger
                ? Number(p.value)
                : (p.value as number);
          if (typeof x === 'number') {
            b.range.checked++;
            if (
              !(x >= b.bounds!.min && x <= b.bounds!.max) ||
              (p.kind === Kind.BigInteger && !inBig(p.value as bigint, b.bounds!))
            ) {
              this.fail(b.range, row, shown);
              broke = true;
            }
          }
        }
        if (b.categories) {
          b.categories.checked++;
          if (!b.allowed!.has(keyOf(p))) {
            this.fail(b.categories, row, shown);
            broke = true;
          }
        }
        if (b.length || b.pattern) {
          const text =
            typeof cell === 'string' ? cell : cell instanceof Date ? cell.toISOString() : String(cell);
          if (b.length) {
            b.length.checked++;
            const n = text.length;
            const l = b.col.length!;
            if ((l.min !== undefined && n < l.min) || (l.max !== undefined && n > l.max)) {
              this.fail(b.length, row, shown);
              broke = true;
            }
          }
          if (b.pattern) {
            b.pattern.checked++;
            if (!b.regex!.test(text)) {
              this.fail(b.pattern, row, shown);
              broke = true;
            }
          }
        }
        if (b.unique) {
          b.unique.checked++;
          const key = keyOf(p);
          const first = b.seen!.get(key);
          if (first === undefined) b.seen!.set(key, row);
          else {
            // Every occurrence of a repeated value is flagged, the first one too (as pandas' duplicated(keep=False)).
            if (first > 0) {
              this.fail(b.unique, first, shown);
              b.seen!.set(key, -first);
            }
            this.fail(b.unique, row, shown);
            broke = true;
          }
        }
      }
      for (const c of this.cross) {
        for (let k = 0; k < c.slots.length; k++) c.buffer[k] = values[c.slots[k]!]!;
        const result = c.evaluate(c.buffer);
        if (result === null) continue;
        c.state.checked++;
        if (result === false || result === 0 || result === '') {
          const shown: Record<string, unknown> = {};
          c.columns.forEach((name, k) => {
            const v = c.buffer[k];
            const type = this.schema.byName.get(name)?.type;
            shown[name] = type === 'datetime' && typeof v === 'number' ? new Date(v).toISOString() : v;
          });
          this.fail(c.state, row, shown);
          broke = true;
        }
      }
      if (broke) bad.add(i);
    }
    this.rows += batch.rows.length;
    return bad;
  }

  finish(): ValidationReport {
    this.begin(this.header);
    const rows = this.schema.schema.table?.rows;
    if (rows && !this.serving) {
      const s = this.state(null, 'row_count', `${rows.min ?? 0}..${rows.max ?? ''}`);
      s.checked = 1;
      if ((rows.min !== undefined && this.rows < rows.min) || (rows.max != null && this.rows > rows.max)) {
        this.fail(s, null, this.rows);
      }
    }
    const failed: { f: Failure; rule: number }[] = [];
    this.states.forEach((s, rule) => {
      s.success = s.checked === 0 || s.checked - s.failed >= s.mostly * s.checked - 1e-9;
      if (!s.success) for (const f of s.failures) failed.push({ f, rule });
    });
    // Table-level failures first, then by row, then in the schema's order of rules.
    failed.sort((a, b) => (a.f.row ?? 0) - (b.f.row ?? 0) || a.rule - b.rule);
    const failures = failed.map((x) => x.f);
    const limit = this.maxFailures === 0 ? failures.length : this.maxFailures;
    const total = this.states.reduce((n, s) => n + (s.success ? 0 : s.failed), 0);
    return {
      success: this.states.every((s) => s.success),
      rows_checked: this.rows,
      environment: this.env,
      rules: this.states.map(({ failures: _, ...r }) => r),
      failures: failures.slice(0, limit),
      failures_truncated: total > limit,
    };
  }
}

/** A big integer against the exact bounds (rounded to doubles, 12345678901234567891 would pass a max of …890). */
export function inBig(x: bigint, bounds: { bigMin?: bigint; bigMax?: bigint }): boolean {
  return (
    (bounds.bigMin === undefined || x >= bounds.bigMin) && (bounds.bigMax === undefined || x <= bounds.bigMax)
  );
}

/** The categories as keys, built once per schema column (serving checks every request against them). */
const allowedCache = new WeakMap<ColumnSchema, Set<unknown>>();
export function allowedValues(col: ColumnSchema): Set<unknown> {
  let set = allowedCache.get(col);
  if (!set) {
    const p: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };
    set = new Set(col.categories!.map((v) => keyOf(parseCell(v, p))));
    allowedCache.set(col, set);
  }
  return set;
}

export function hasType(type: ColumnSchema['type'], p: Parsed): boolean {
  switch (type) {
    case 'integer':
      return (
        p.kind === Kind.Integer ||
        p.kind === Kind.BigInteger ||
        (p.kind === Kind.Float && Number.isInteger(p.value))
      );
    case 'float':
      return (
        p.kind === Kind.Integer ||
        p.kind === Kind.BigInteger ||
        p.kind === Kind.Float ||
        p.kind === Kind.Infinite
      );
    case 'boolean':
      return p.kind === Kind.Boolean;
    case 'datetime':
      return p.kind === Kind.Datetime;
    default:
      return true;
  }
}

/** A failing value as the report shows it: numbers as numbers, big integers and dates as their text. */
export function displayed(cell: Cell, p: Parsed): unknown {
  if (p.kind === Kind.BigInteger) return String(p.value);
  if (p.kind === Kind.Datetime) return typeof cell === 'string' ? cell : p.value;
  if (p.kind === Kind.Infinite) return String(cell);
  return p.value;
}

/** What a cross-column rule sees: numbers, datetimes in ms, booleans, and text for string columns. */
export function slotValue(type: ColumnSchema['type'], cell: Cell, p: Parsed): Value {
  if (type === 'categorical' || type === 'text') return typeof cell === 'string' ? cell : String(p.value);
  switch (p.kind) {
    case Kind.Datetime:
      return type === 'datetime' || type === 'any' ? p.ms : String(p.value);
    case Kind.BigInteger:
      return Number(p.value);
    case Kind.Missing:
      return null;
    default:
      return p.value as Value;
  }
}

/**
 * Validates a table file against a schema in one streamed pass.
 *
 * @example
 *   const report = await validateTable('adult.csv', parseSchema(json), { environment: 'training' });
 */
export async function validateTable(
  path: string,
  schema: ParsedSchema,
  options: ValidateOptions & { read?: ReadOptions } = {},
): Promise<ValidationReport> {
  const v = new Validator(schema, options);
  for await (const batch of readTable(path, options.read)) v.add(batch);
  return v.finish();
}
