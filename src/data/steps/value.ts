import { SlipwayError } from '../../errors/index.js';
import { Kind, type Parsed, parseCell } from '../profile/parse-cell.js';

/**
 * A cell as the steps see it: every input cell is read once, by the profile's `parseCell` rules
 * (pandas' `read_csv` reading): missing tokens are `null`, numeric text is a number, `true`/`false`
 * are booleans, other text (dates included) stays text. A CSV's `"39"` and a JSON record's `39`
 * are thus the same value, which is what lets the batch and serving paths agree.
 */
export type Value = number | string | boolean | null;

const parsed: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };

export const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};

/**
 * One input cell (from a reader, or a field of a JSON record) as a Value. Big integers beyond
 * 2^53 keep their decimal digits as text (no silent rounding); dates become ISO text; objects and
 * arrays are refused.
 */
export function normalizeCell(cell: unknown, row: number, column: string): Value {
  switch (typeof cell) {
    case 'number':
      return Number.isNaN(cell) ? null : cell;
    case 'boolean':
      return cell;
    case 'undefined':
      return null;
    case 'string': {
      const p = parseCell(cell, parsed);
      switch (p.kind) {
        case Kind.Missing:
          return null;
        case Kind.Integer:
        case Kind.Float:
        case Kind.Infinite:
          return p.value as number;
        case Kind.BigInteger:
          return String(p.value);
        case Kind.Boolean:
          return p.value as boolean;
        default:
          return cell;
      }
    }
    case 'bigint':
      return Number.isSafeInteger(Number(cell)) ? Number(cell) : String(cell);
    default:
      if (cell === null) return null;
      if (cell instanceof Date) return Number.isNaN(cell.getTime()) ? null : cell.toISOString();
      return bad(
        `row ${row}, column '${column}': ${Array.isArray(cell) ? 'an array' : 'an object'} is not a cell value`,
      );
  }
}

/** A value quoted for a message. */
export function show(v: Value): string {
  return typeof v === 'string' ? JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v) : String(v);
}

const RANK = { boolean: 0, number: 1, string: 2 } as Record<string, number>;

/** Booleans, then numbers (numerically), then strings (by code unit): the order categories are sorted in. */
export function compareValues(a: Value, b: Value): number {
  const ra = RANK[typeof a];
  const rb = RANK[typeof b];
  if (ra !== rb) return ra - rb;
  if (ra === 1) return (a as number) - (b as number);
  return a === b ? 0 : (a as string | boolean) < (b as string | boolean) ? -1 : 1;
}

/** True for the values a category or fill value may be: finite numbers, strings, booleans. */
export function isCategory(v: unknown): v is number | string | boolean {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}
