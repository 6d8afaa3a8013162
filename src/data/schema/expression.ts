/**
 * The small expression language of cross-column rules, e.g. `end_date >= start_date`,
 * `hours_per_week * 52 < 8760`, `status in ("active", "closed") or is_null(closed_at)`.
 *
 * - Values: column names (`age`, or `` `capital-gain` `` in backticks for other characters),
 *   numbers, strings in single or double quotes, `true`, `false`, `null`.
 * - Operators by precedence: `or`; `and`; `not`; comparisons `==` (or `=`), `!=`, `<`, `<=`, `>`,
 *   `>=`, `in (…)`, `not in (…)`; `+`, `-`; `*`, `/`, `%`; unary `-`.
 * - Functions: `abs(x)`, `round(x[, digits])`, `min(a, b, …)`, `max(a, b, …)`, `len(s)`,
 *   `lower(s)`, `upper(s)`, `is_null(x)`, `days(x)` (milliseconds to days, for date differences).
 * - Datetime columns are milliseconds since the epoch; a quoted date compared with one is read as
 *   a date (`start_date >= "2011-01-01"`), and subtracting two gives milliseconds.
 * - Missing values follow SQL: an operation on a missing value is missing, `and`/`or` use
 *   three-valued logic, and a rule whose result is missing is not checked on that row (a CHECK
 *   constraint passes on NULL). Test for missing values explicitly with `is_null`.
 */
import { parseDatetime } from '../profile/index.js';
import type { SchemaType } from './schema.js';

export type Value = number | string | boolean | null;

/** A compiled expression: the columns it reads, in the order `evaluate` expects their values. */
export interface Expression {
  columns: string[];
  evaluate(values: readonly Value[]): Value;
}

type StaticType = 'number' | 'string' | 'boolean' | 'datetime' | 'any';
interface Node {
  type: StaticType;
  /** Set on string literals, so a comparison with a datetime can read them as dates. */
  literal?: Value;
  run: (v: readonly Value[]) => Value;
}

type Token =
  | { kind: 'number'; value: number; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: 'name'; value: string; quoted: boolean; at: number }
  | { kind: 'op'; value: string; at: number }
  | { kind: 'end'; at: number };

const OPS = ['==', '!=', '<=', '>=', '<>', '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ','];

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (/[0-9.]/.test(c) && /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.test(text.slice(i))) {
      const m = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(text.slice(i))!;
      tokens.push({ kind: 'number', value: Number(m[0]), at });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      for (; j < text.length && text[j] !== c; j++) {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        s += text[j];
      }
      if (j >= text.length) throw new Error(`unterminated string at position ${at + 1}`);
      tokens.push({ kind: 'string', value: s, at });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = text.indexOf('`', i + 1);
      if (j < 0) throw new Error(`unterminated \`name\` at position ${at + 1}`);
      tokens.push({ kind: 'name', value: text.slice(i + 1, j), quoted: true, at });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
      tokens.push({ kind: 'name', value: m[0], quoted: false, at });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op) throw new Error(`unexpected '${c}' at position ${at + 1}`);
    tokens.push({ kind: 'op', value: op, at });
    i += op.length;
  }
  tokens.push({ kind: 'end', at: text.length });
  return tokens;
}

const FUNCTIONS: Record<string, { args: [number, number]; type: (a: StaticType[]) => StaticType }> = {
  abs: { args: [1, 1], type: () => 'number' },
  round: { args: [1, 2], type: () => 'number' },
  min: { args: [1, 64], type: (a) => a[0]! },
  max: { args: [1, 64], type: (a) => a[0]! },
  len: { args: [1, 1], type: () => 'number' },
  lower: { args: [1, 1], type: () => 'string' },
  upper: { args: [1, 1], type: () => 'string' },
  is_null: { args: [1, 1], type: () => 'boolean' },
  days: { args: [1, 1], type: () => 'number' },
};

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'true', 'false', 'null']);

function staticType(t: SchemaType): StaticType {
  if (t === 'integer' || t === 'float') return 'number';
  if (t === 'categorical' || t === 'text') return 'string';
  if (t === 'boolean' || t === 'datetime') return t;
  return 'any';
}

/** Three-valued truth of a value: null stays unknown. */
function truth(v: Value): boolean | null {
  if (v === null) return null;
  return v === true || (typeof v === 'number' && v !== 0) || (typeof v === 'string' && v !== '');
}

function compare(op: string, a: Value, b: Value): Value {
  if (a === null || b === null) return null;
  if (typeof a !== typeof b) return op === '!=';
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    default:
      return a >= b;
  }
}

function arithmetic(op: string, a: Value, b: Value): Value {
  if (a === null || b === null) return null;
  if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
  if (typeof a !== 'number' || typeof b !== 'number') return null;
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return b === 0 ? null : a / b;
    default:
      return b === 0 ? null : a % b;
  }
}

/** A string literal beside a datetime operand is read as a date. */
function asDate(node: Node, other: Node): Node {
  if (other.type !== 'datetime' || typeof node.literal !== 'string') return node;
  const ms = parseDatetime(node.literal);
  if (Number.isNaN(ms)) throw new Error(`"${node.literal}" is compared with a date but is not an ISO date`);
  return { type: 'datetime', literal: ms, run: () => ms };
}

/**
 * Compiles an expression; `typeOf` gives a column's schema type (undefined: no such column).
 * Throws an Error whose message says what is wrong and where.
 */
export function compileExpression(
  text: string,
  typeOf: (column: string) => SchemaType | undefined,
): Expression {
  const tokens = tokenize(text);
  const columns: string[] = [];
  let p = 0;
  const peek = () => tokens[p]!;
  const isOp = (v: string) => {
    const t = peek();
    return t.kind === 'op' && t.value === v;
  };
  const isWord = (w: string) => {
    const t = peek();
    return t.kind === 'name' && !t.quoted && t.value.toLowerCase() === w;
  };
  const where = (t: Token) => (t.kind === 'end' ? 'at the end' : `at position ${t.at + 1}`);
  const expect = (v: string) => {
    if (!isOp(v)) throw new Error(`expected '${v}' ${where(peek())}`);
    p++;
  };

  const or = (): Node => {
    let left = and();
    while (isWord('or')) {
      p++;
      const l = left;
      const r = and();
      left = {
        type: 'boolean',
        run: (v) => {
          const a = truth(l.run(v));
          if (a === true) return true;
          const b = truth(r.run(v));
          if (b === true) return true;
          return a === null || b === null ? null : false;
        },
      };
    }
    return left;
  };
  const and = (): Node => {
    let left = not();
    while (isWord('and')) {
      p++;
      const l = left;
      const r = not();
      left = {
        type: 'boolean',
        run: (v) => {
          const a = truth(l.run(v));
          if (a === false) return false;
          const b = truth(r.run(v));
          if (b === false) return false;
          return a === null || b === null ? null : true;
        },
      };
    }
    return left;
  };
  const not = (): Node => {
    if (isWord('not')) {
      p++;
      const inner = not();
      return {
        type: 'boolean',
        run: (v) => {
          const a = truth(inner.run(v));
          return a === null ? null : !a;
        },
      };
    }
    return comparison();
  };
  /** Values of different kinds are never equal nor ordered: such a comparison is a mistake. */
  const mismatch = (op: string, t: Token, left: Node, right: Node) => {
    const known = (x: StaticType) => x !== 'any';
    const comparable = (x: StaticType) => (x === 'datetime' ? 'number' : x);
    if (known(left.type) && known(right.type) && comparable(left.type) !== comparable(right.type)) {
      throw new Error(`'${op}' ${where(t)} compares a ${left.type} with a ${right.type}`);
    }
  };
  const comparison = (): Node => {
    let left = additive();
    const t = peek();
    if (t.kind === 'op' && ['==', '=', '!=', '<>', '<', '<=', '>', '>='].includes(t.value)) {
      p++;
      const op = t.value === '=' ? '==' : t.value === '<>' ? '!=' : t.value;
      let right = additive();
      left = asDate(left, right);
      right = asDate(right, left);
      mismatch(op, t, left, right);
      const l = left;
      const r = right;
      return { type: 'boolean', run: (v) => compare(op, l.run(v), r.run(v)) };
    }
    const negate =
      isWord('not') &&
      tokens[p + 1]?.kind === 'name' &&
      (tokens[p + 1] as { value: string }).value.toLowerCase() === 'in';
    if (negate) p++;
    if (isWord('in')) {
      const at = peek();
      p++;
      expect('(');
      const items: Node[] = [];
      do {
        items.push(asDate(additive(), left));
      } while (isOp(',') && ++p);
      expect(')');
      const l = left;
      if (!items.every((n) => n.literal !== undefined)) {
        throw new Error(`'in' ${where(at)} takes a list of constants`);
      }
      for (const n of items) if (n.literal !== null) mismatch('in', at, left, n);
      const set = new Set(items.map((n) => n.literal));
      return {
        type: 'boolean',
        run: (v) => {
          const a = l.run(v);
          if (a === null) return null;
          return negate ? !set.has(a) : set.has(a);
        },
      };
    }
    if (negate) throw new Error(`expected 'in' after 'not' ${where(peek())}`);
    return left;
  };
  const additive = (): Node => {
    let left = multiplicative();
    for (let t = peek(); t.kind === 'op' && (t.value === '+' || t.value === '-'); t = peek()) {
      p++;
      const op = t.value;
      const l = left;
      const r = multiplicative();
      const bothDates = l.type === 'datetime' && r.type === 'datetime';
      const type: StaticType =
        l.type === 'string' && r.type === 'string'
          ? 'string'
          : (l.type === 'datetime' || r.type === 'datetime') && !bothDates
            ? 'datetime'
            : 'number';
      left = { type, run: (v) => arithmetic(op, l.run(v), r.run(v)) };
    }
    return left;
  };
  const multiplicative = (): Node => {
    let left = unary();
    for (
      let t = peek();
      t.kind === 'op' && (t.value === '*' || t.value === '/' || t.value === '%');
      t = peek()
    ) {
      p++;
      const op = t.value;
      const l = left;
      const r = unary();
      left = { type: 'number', run: (v) => arithmetic(op, l.run(v), r.run(v)) };
    }
    return left;
  };
  const unary = (): Node => {
    if (isOp('-')) {
      p++;
      const inner = unary();
      // A negative number is a constant (for `in` lists).
      if (typeof inner.literal === 'number') {
        const negative = -inner.literal;
        return { type: 'number', literal: negative, run: () => negative };
      }
      return {
        type: 'number',
        run: (v) => {
          const a = inner.run(v);
          return typeof a === 'number' ? -a : null;
        },
      };
    }
    if (isOp('+')) {
      p++;
      return unary();
    }
    return primary();
  };
  const primary = (): Node => {
    const t = peek();
    p++;
    if (t.kind === 'number') return { type: 'number', literal: t.value, run: () => t.value };
    if (t.kind === 'string') return { type: 'string', literal: t.value, run: () => t.value };
    if (t.kind === 'op' && t.value === '(') {
      const inner = or();
      expect(')');
      return inner;
    }
    if (t.kind === 'name') {
      const word = t.value.toLowerCase();
      if (!t.quoted && word === 'true') return { type: 'boolean', literal: true, run: () => true };
      if (!t.quoted && word === 'false') return { type: 'boolean', literal: false, run: () => false };
      if (!t.quoted && word === 'null') return { type: 'any', literal: null, run: () => null };
      if (!t.quoted && isOp('(')) return call(t.value, t);
      if (!t.quoted && KEYWORDS.has(word)) throw new Error(`unexpected '${t.value}' ${where(t)}`);
      const type = typeOf(t.value);
      if (type === undefined) throw new Error(`unknown column '${t.value}' ${where(t)}`);
      let k = columns.indexOf(t.value);
      if (k < 0) k = columns.push(t.value) - 1;
      const index = k;
      return { type: staticType(type), run: (v) => v[index] ?? null };
    }
    throw new Error(
      t.kind === 'end' ? 'unexpected end of expression' : `unexpected '${t.value}' ${where(t)}`,
    );
  };
  const call = (name: string, at: Token): Node => {
    const fn = FUNCTIONS[name.toLowerCase()];
    if (!fn)
      throw new Error(
        `unknown function '${name}' ${where(at)} (known: ${Object.keys(FUNCTIONS).join(', ')})`,
      );
    expect('(');
    const args: Node[] = [];
    if (!isOp(')')) {
      do {
        args.push(or());
      } while (isOp(',') && ++p);
    }
    expect(')');
    const [least, most] = fn.args;
    if (args.length < least || args.length > most) {
      throw new Error(
        `${name}() ${where(at)} takes ${least === most ? least : `${least} to ${most}`} argument${most === 1 ? '' : 's'}`,
      );
    }
    const a = args[0]!;
    const type = fn.type(args.map((x) => x.type));
    const num = (x: Value) => (typeof x === 'number' ? x : null);
    const str = (x: Value) => (typeof x === 'string' ? x : null);
    switch (name.toLowerCase()) {
      case 'abs':
        return { type, run: (v) => (num(a.run(v)) === null ? null : Math.abs(a.run(v) as number)) };
      case 'round': {
        const d = args[1];
        return {
          type,
          run: (v) => {
            const x = num(a.run(v));
            const digits = d ? num(d.run(v)) : 0;
            if (x === null || digits === null) return null;
            const f = 10 ** digits;
            return Math.round(x * f) / f;
          },
        };
      }
      case 'min':
      case 'max': {
        const pick = name.toLowerCase() === 'min' ? -1 : 1;
        return {
          type,
          run: (v) => {
            let best: Value = null;
            for (const arg of args) {
              const x = arg.run(v);
              if (x === null) return null;
              if (best === null || (pick < 0 ? x < best : x > best)) best = x;
            }
            return best;
          },
        };
      }
      case 'len':
        return { type, run: (v) => str(a.run(v))?.length ?? null };
      case 'lower':
        return { type, run: (v) => str(a.run(v))?.toLowerCase() ?? null };
      case 'upper':
        return { type, run: (v) => str(a.run(v))?.toUpperCase() ?? null };
      case 'is_null':
        return { type, run: (v) => a.run(v) === null };
      default:
        return { type, run: (v) => (num(a.run(v)) === null ? null : (a.run(v) as number) / 86_400_000) };
    }
  };

  const root = or();
  if (peek().kind !== 'end')
    throw new Error(`unexpected '${(peek() as { value: unknown }).value}' ${where(peek())}`);
  return { columns, evaluate: (values) => root.run(values) };
}
