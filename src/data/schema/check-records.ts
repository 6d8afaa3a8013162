import { Kind, type Parsed, parseCell } from '../profile/parse-cell.js';
import type { Cell } from '../table.js';
import type { Value } from './expression.js';
import type { ColumnSchema, ParsedSchema } from './schema.js';
import {
  allowedValues,
  displayed,
  expectedText,
  type Failure,
  hasType,
  inBig,
  keyOf,
  slotValue,
} from './validator.js';

/** One schema column bound to a request's field order, with everything a row check needs precomputed. */
interface PlanColumn {
  col: ColumnSchema;
  name: string;
  index: number;
  slot: number;
  type: string | null;
  nullable: string | null;
  range: string | null;
  bounds: { min: number; max: number; bigMin?: bigint; bigMax?: bigint } | null;
  categories: string | null;
  allowed: Set<unknown> | null;
  length: string | null;
  pattern: string | null;
  regex: RegExp | null;
}

interface Plan {
  columns: PlanColumn[];
  /** Problems of the request as a whole (a required field absent, a training-only one present). */
  whole: Failure[];
  cross: {
    name: string;
    expr: string;
    columns: string[];
    slots: number[];
    evaluate: (v: readonly Value[]) => Value;
  }[];
  slotCount: number;
}

/** Plans per schema and field order; requests of one client share one. */
const plans = new WeakMap<ParsedSchema, Map<string, Plan>>();
const MAX_PLANS = 64;

function planFor(schema: ParsedSchema, fields: readonly string[]): Plan {
  let byFields = plans.get(schema);
  if (!byFields) {
    byFields = new Map();
    plans.set(schema, byFields);
  }
  // Most requests repeat the previous field order: compare it before building a key.
  const last = lastPlan.get(schema);
  if (last && sameFields(last.fields, fields)) return last.plan;
  const key = fields.join('\u0000');
  let plan = byFields.get(key);
  if (!plan) {
    if (byFields.size >= MAX_PLANS) byFields.clear();
    plan = compile(schema, fields);
    byFields.set(key, plan);
  }
  lastPlan.set(schema, { fields: [...fields], plan });
  return plan;
}

const lastPlan = new WeakMap<ParsedSchema, { fields: string[]; plan: Plan }>();

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compile(schema: ParsedSchema, fields: readonly string[]): Plan {
  const position = new Map(fields.map((c, i) => [c, i]));
  const slots = new Map<string, number>();
  const cross: Plan['cross'] = [];
  for (const r of schema.rules) {
    // At serving, a rule relaxed with `mostly` is a statement about a dataset, not one request.
    if ((r.rule.mostly ?? 1) < 1) continue;
    for (const c of r.expression.columns) if (!slots.has(c)) slots.set(c, slots.size);
    cross.push({
      name: r.rule.name ?? r.rule.expr,
      expr: r.rule.expr,
      columns: r.expression.columns,
      slots: r.expression.columns.map((c) => slots.get(c)!),
      evaluate: r.expression.evaluate,
    });
  }
  const whole: Failure[] = [];
  const columns: PlanColumn[] = [];
  for (const col of schema.schema.columns) {
    const index = position.get(col.name);
    const enforced = (rule: keyof NonNullable<ColumnSchema['mostly']>) => (col.mostly?.[rule] ?? 1) >= 1;
    const text = (rule: Parameters<typeof expectedText>[1]) => expectedText(col, rule, 'serving');
    if (col.environments && !col.environments.includes('serving')) {
      if (index !== undefined) {
        whole.push({
          row: null,
          column: col.name,
          rule: 'absent',
          value: col.name,
          expected: text('absent'),
        });
      }
      continue;
    }
    if (index === undefined) {
      if (col.required !== false) {
        whole.push({
          row: null,
          column: col.name,
          rule: 'required',
          value: null,
          expected: text('required'),
        });
      }
      continue;
    }
    const checksType =
      col.type !== 'any' && col.type !== 'categorical' && col.type !== 'text' && enforced('type');
    columns.push({
      col,
      name: col.name,
      index,
      slot: slots.get(col.name) ?? -1,
      type: checksType ? text('type') : null,
      nullable: col.nullable === false && enforced('nullable') ? text('nullable') : null,
      range: col.range && enforced('range') ? text('range') : null,
      bounds: schema.bounds.get(col.name) ?? null,
      categories: col.categories && enforced('categories') ? text('categories') : null,
      allowed: col.categories ? allowedValues(col) : null,
      length: col.length && enforced('length') ? text('length') : null,
      pattern: col.pattern !== undefined && enforced('pattern') ? text('pattern') : null,
      regex: schema.patterns.get(col.name) ?? null,
    });
  }
  return { columns, whole, cross, slotCount: slots.size };
}

/**
 * Checks the rows of one serving request: `rows[i][k]` is the value of `columns[k]` in row
 * i + 1. Serving differs from a file in three ways: columns the schema does not name are allowed
 * (requests may carry fields for monitoring), uniqueness and row counts are not checked (they
 * describe a dataset, not a request), and rules relaxed with `mostly` are not enforced row by
 * row. Returns every problem (none when the rows pass), request-wide ones first, then by row.
 * What a schema and field order need is compiled once and reused, so a passing row costs a parse
 * and a comparison per rule.
 *
 * @example
 *   checkRows(parsed, ['age', 'workclass'], [[41, 'Private'], [-4, 'Pirate']]);
 *   // → [{ row: 2, column: 'age', rule: 'range', … }, { row: 2, column: 'workclass', rule: 'categories', … }]
 */
export function checkRows(
  schema: ParsedSchema,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
): Failure[] {
  const plan = planFor(schema, columns);
  const failures: Failure[] = plan.whole.length > 0 ? [...plan.whole] : [];
  const p: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };
  const values: Value[] | null = plan.slotCount > 0 ? new Array(plan.slotCount).fill(null) : null;
  const fail = (row: number, column: string, rule: Failure['rule'], value: unknown, expected: string) =>
    failures.push({ row, column, rule, value, expected });
  for (let i = 0; i < rows.length; i++) {
    const cells = rows[i]!;
    const row = i + 1;
    for (const c of plan.columns) {
      const cell = (cells[c.index] ?? null) as Cell;
      parseCell(cell, p);
      if (values && c.slot >= 0) values[c.slot] = null;
      if (p.kind === Kind.Missing) {
        if (c.nullable) fail(row, c.name, 'nullable', null, c.nullable);
        continue;
      }
      const typed = c.type === null || hasType(c.col.type, p);
      if (!typed) fail(row, c.name, 'type', displayed(cell, p), c.type!);
      if (values && c.slot >= 0 && typed) values[c.slot] = slotValue(c.col.type, cell, p);
      if (c.range && typed) {
        const x = p.kind === Kind.Datetime ? p.ms : p.kind === Kind.BigInteger ? Number(p.value) : p.value;
        if (
          typeof x === 'number' &&
          (!(x >= c.bounds!.min && x <= c.bounds!.max) ||
            (p.kind === Kind.BigInteger && !inBig(p.value as bigint, c.bounds!)))
        ) {
          fail(row, c.name, 'range', displayed(cell, p), c.range);
        }
      }
      if (c.categories && !c.allowed!.has(keyOf(p)))
        fail(row, c.name, 'categories', displayed(cell, p), c.categories);
      if (c.length || c.pattern) {
        const text =
          typeof cell === 'string' ? cell : cell instanceof Date ? cell.toISOString() : String(cell);
        const l = c.col.length;
        if (
          c.length &&
          ((l!.min !== undefined && text.length < l!.min) || (l!.max !== undefined && text.length > l!.max))
        ) {
          fail(row, c.name, 'length', displayed(cell, p), c.length);
        }
        if (c.pattern && !c.regex!.test(text)) fail(row, c.name, 'pattern', displayed(cell, p), c.pattern);
      }
    }
    if (!values) continue;
    for (const r of plan.cross) {
      const args = r.slots.map((s) => values[s]!);
      const result = r.evaluate(args);
      if (result === null || (result !== false && result !== 0 && result !== '')) continue;
      const shown: Record<string, unknown> = {};
      r.columns.forEach((name, k) => {
        const v = args[k];
        shown[name] =
          schema.byName.get(name)?.type === 'datetime' && typeof v === 'number'
            ? new Date(v).toISOString()
            : v;
      });
      failures.push({ row, column: r.name, rule: 'expression', value: shown, expected: r.expr });
    }
  }
  return failures;
}
