import type { Cell } from '../table.js';

/** What one cell turned out to be. */
export enum Kind {
  Missing = 0,
  Integer = 1,
  BigInteger = 2,
  Float = 3,
  Infinite = 4,
  Boolean = 5,
  Datetime = 6,
  String = 7,
}

/** A parsed cell: its kind and the value the profile keeps (`ms` for datetimes). */
export interface Parsed {
  kind: Kind;
  value: number | bigint | boolean | string;
  ms: number;
}

/**
 * Strings read as missing: the empty field and pandas' default `na_values`, so a CSV profiles the
 * way `pandas.read_csv` reads it. Matched exactly (no trimming, case as listed).
 */
export const MISSING_TOKENS: ReadonlySet<string> = new Set([
  '',
  '#N/A',
  '#N/A N/A',
  '#NA',
  '-1.#IND',
  '-1.#QNAN',
  '-NaN',
  '-nan',
  '1.#IND',
  '1.#QNAN',
  '<NA>',
  'N/A',
  'NA',
  'NULL',
  'NaN',
  'None',
  'n/a',
  'nan',
  'null',
]);

const INTEGER = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/**
 * A number written in plain decimal ("41", " -0.5 ", "1e3"), else NaN: not hex, not "Infinity",
 * not "" — the strings a client may send for a number, where `Number()` accepts far more.
 */
export function parseDecimal(text: string): number {
  const t = text.trim();
  return FLOAT.test(t) ? Number(t) : Number.NaN;
}

const INFINITY = /^[+-]?(?:inf|infinity)$/i;
const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Parses an ISO 8601 date or date-time (`2011-01-31`, `2011-01-31T08:00`, `2011-01-31 08:00:00.5Z`,
 * `…+02:00`) to epoch milliseconds; a time without a zone is read as UTC. Returns NaN otherwise,
 * including for impossible dates such as `2011-02-30`.
 */
export function parseDatetime(text: string): number {
  const m = DATETIME.exec(text);
  if (!m) return Number.NaN;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const check = new Date(0);
  // setUTCFullYear, unlike Date.UTC, keeps years 0–99 as written.
  check.setUTCFullYear(+y, +mo - 1, +d);
  check.setUTCHours(+h, +mi, +s, Math.floor(Number(`0${frac || '.0'}`) * 1000));
  const ms = check.getTime();
  if (check.getUTCFullYear() !== +y || check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d)
    return Number.NaN;
  if (+h > 23 || +mi > 59 || +s > 59) return Number.NaN;
  if (zone === 'Z') return ms;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  return ms - sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
}

/**
 * Classifies a cell into `out` (reused, so the per-cell path allocates nothing).
 * Strings are parsed conservatively: integers (beyond 2^53 kept exact as bigint), decimals and
 * exponents (padded with blanks or not, as pandas reads them), `inf`/`Infinity` as infinite, only `true`/`false` (any case) as booleans (`yes`/`no`
 * and `0`/`1` stay categorical and integer), ISO dates and date-times; anything else is a string.
 */
export function parseCell(cell: Cell, out: Parsed): Parsed {
  switch (typeof cell) {
    case 'string':
      return parseString(cell, out);
    case 'number':
      if (Number.isNaN(cell)) return set(out, Kind.Missing, 0);
      if (!Number.isFinite(cell)) return set(out, Kind.Infinite, cell);
      return set(out, Number.isSafeInteger(cell) ? Kind.Integer : Kind.Float, cell);
    case 'bigint':
      if (cell >= BigInt(Number.MIN_SAFE_INTEGER) && cell <= BigInt(Number.MAX_SAFE_INTEGER)) {
        return set(out, Kind.Integer, Number(cell));
      }
      return set(out, Kind.BigInteger, cell);
    case 'boolean':
      return set(out, Kind.Boolean, cell);
    default:
      if (cell instanceof Date) {
        const ms = cell.getTime();
        if (Number.isNaN(ms)) return set(out, Kind.Missing, 0);
        out.ms = ms;
        return set(out, Kind.Datetime, cell.toISOString());
      }
      return set(out, Kind.Missing, 0);
  }
}

/** Whether a string could be a missing token, from its first characters: most cells skip the set lookup. */
function maybeMissing(text: string, c: number): boolean {
  switch (c) {
    case 35: // #
    case 60: // <
    case 78: // N
    case 110: // n
      return true;
    case 49: // 1.#IND, 1.#QNAN
      return text.charCodeAt(1) === 46 && text.charCodeAt(2) === 35;
    case 45: {
      // -NaN, -nan, -1.#IND
      const d = text.charCodeAt(1);
      return d === 78 || d === 110 || d === 49;
    }
    default:
      return false;
  }
}

function parseString(text: string, out: Parsed): Parsed {
  const len = text.length;
  if (len === 0) return set(out, Kind.Missing, 0);
  const c = text.charCodeAt(0);
  if (len <= 8 && maybeMissing(text, c) && MISSING_TOKENS.has(text)) return set(out, Kind.Missing, 0);
  // Digits, sign or dot: a number or a date; everything else skips the regular expressions.
  if (startsNumber(c)) {
    if (parseNumber(text, out)) return out;
    const ms = parseDatetime(text);
    if (!Number.isNaN(ms)) {
      out.ms = ms;
      return set(out, Kind.Datetime, text);
    }
  }
  if (isBlank(c) || isBlank(text.charCodeAt(len - 1))) {
    // Numbers may be padded with spaces or tabs, as pandas.read_csv accepts; other values keep theirs.
    const trimmed = text.trim();
    if (trimmed !== '' && startsNumber(trimmed.charCodeAt(0)) && parseNumber(trimmed, out)) return out;
  }
  // Most strings skip both checks by their first character and length.
  if ((c === 105 || c === 73 || c === 43 || c === 45) && INFINITY.test(text)) {
    return set(out, Kind.Infinite, c === 45 ? -Infinity : Infinity);
  }
  if ((len === 4 && (c === 116 || c === 84)) || (len === 5 && (c === 102 || c === 70))) {
    const lower = text.toLowerCase();
    if (lower === 'true') return set(out, Kind.Boolean, true);
    if (lower === 'false') return set(out, Kind.Boolean, false);
  }
  return set(out, Kind.String, text);
}

function startsNumber(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46;
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/** Integers (exact beyond 2^53 as bigint), decimals and exponents; false when `text` is none. */
function parseNumber(text: string, out: Parsed): boolean {
  const small = smallInteger(text);
  if (!Number.isNaN(small)) {
    set(out, Kind.Integer, small);
    return true;
  }
  if (INTEGER.test(text)) {
    if (text.length <= 15) {
      set(out, Kind.Integer, Number(text));
      return true;
    }
    const big = BigInt(text);
    const safe = big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER);
    set(out, safe ? Kind.Integer : Kind.BigInteger, safe ? Number(big) : big);
    return true;
  }
  if (FLOAT.test(text)) {
    const x = Number(text);
    set(out, Number.isFinite(x) ? Kind.Float : Kind.Infinite, x);
    return true;
  }
  return false;
}

/** An unsigned integer of at most 15 digits, else NaN (the common case, without a regex). */
function smallInteger(text: string): number {
  const len = text.length;
  if (len > 15) return Number.NaN;
  let x = 0;
  for (let i = 0; i < len; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number.NaN;
    x = x * 10 + d;
  }
  return x;
}

function set(out: Parsed, kind: Kind, value: Parsed['value']): Parsed {
  out.kind = kind;
  out.value = value;
  return out;
}
