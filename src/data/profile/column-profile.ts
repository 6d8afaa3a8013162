import type { Cell } from '../table.js';
import { type Distribution, ExactDistribution, histogram, sketchDistribution } from './distribution.js';
import { FrequentItems } from './frequent-items.js';
import { HyperLogLog } from './hyperloglog.js';
import { KllSketch } from './kll.js';
import { Moments } from './moments.js';
import { Kind, type Parsed, parseCell, parseDatetime } from './parse-cell.js';
import { type Key, ValueCounts } from './value-counts.js';

/** A key in JSON: big integers travel as `{"int": "<decimal>"}`. */
export type KeyJson = number | boolean | string | { int: string };

export type ColumnType = 'integer' | 'float' | 'boolean' | 'categorical' | 'datetime' | 'text' | 'empty';

export interface ProfileOptions {
  /** Distinct values kept exactly (counts per value) before switching to sketches. Default 50 000. */
  exactLimit: number;
  /** KLL accuracy parameter. Default 200 (≈1.65% rank error). */
  kllK: number;
  /** Misra–Gries counters. Default 1024. */
  frequentCapacity: number;
  /** Equal-width histogram bins over [min, max]. Default 20. */
  histogramBins: number;
  /** Top values reported. Default 10. */
  topValues: number;
  /**
   * Estimated bytes all of a table's exact value counts may hold (default 128 MiB); beyond it the
   * column with the most distinct values switches to sketches, so wide tables of unique values
   * stay within memory.
   */
  exactBytes: number;
}

export const DEFAULT_OPTIONS: Readonly<ProfileOptions> = Object.freeze({
  exactLimit: 50_000,
  kllK: 200,
  frequentCapacity: 1024,
  histogramBins: 20,
  topValues: 10,
  exactBytes: 128 * 1024 * 1024,
});

/** Quantiles every numeric and datetime summary reports. */
export const QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99] as const;

/** Categorical/text rule: see `inferType`. */
const CATEGORICAL_MAX_DISTINCT = 1000;
const CATEGORICAL_MAX_MEAN_LENGTH = 50;
const CATEGORICAL_MAX_RATIO = 0.5;
const CATEGORICAL_RATIO_MIN_VALUES = 20;

export interface TypeCounts {
  integer: number;
  float: number;
  infinite: number;
  boolean: number;
  datetime: number;
  string: number;
}

export interface ColumnSummary {
  name: string;
  type: ColumnType;
  /** Non-missing cells (pandas' `count`). */
  count: number;
  missing: number;
  distinct: number;
  distinctExact: boolean;
  typeCounts: TypeCounts;
  /** Numbers, or decimal strings for integers beyond 2^53, or ISO strings for datetimes. */
  min?: number | string;
  max?: number | string;
  mean?: number;
  /** Sample standard deviation (ddof = 1), as pandas' `describe()`. */
  std?: number;
  /** Population standard deviation (ddof = 0), as numpy's default. */
  stdPopulation?: number;
  quantiles?: Record<string, number | string>;
  quantilesExact?: boolean;
  histogram?: { edges: (number | string)[]; counts: number[]; exact: boolean };
  top: { value: KeyJson; count: number }[];
  /** True when the counts are exact; otherwise each is a lower bound, at most `topMaxError` low. */
  topExact: boolean;
  topMaxError?: number;
  length?: { min: number; max: number; mean: number };
}

/**
 * A column's state for another thread: exact counts travel as two flat
 * arrays (distinct values in insertion order, and their counts, whose buffer can be transferred)
 * rather than an array of pairs.
 */
export interface ColumnTransfer {
  state: ColumnStateJson;
  keys: KeyJson[] | null;
  counts: Float64Array | null;
}

export interface ColumnStateJson {
  missing: number;
  types: TypeCounts;
  numeric: number[] | null;
  datetime: number[] | null;
  bigRange: [string, string] | null;
  length: [number, number, number] | null;
  exact: [KeyJson, number][] | null;
  hll?: string;
  kll?: ReturnType<KllSketch['toJSON']>;
  datetimeKll?: ReturnType<KllSketch['toJSON']>;
  frequent?: { maxError: number; items: [KeyJson, number][] };
}

interface Sketches {
  hll: HyperLogLog;
  frequent: FrequentItems<Key>;
  kll: KllSketch;
  datetimeKll: KllSketch;
}

/**
 * The mergeable profile of one column. Values are counted exactly (a value → count map) until
 * the column has more than `exactLimit` distinct values; then the counts become a HyperLogLog
 * (distinct), KLL sketches (quantiles, histogram) and Misra–Gries counters (top values). Moments,
 * min, max, lengths and type counts are always exact.
 */
export class ColumnProfile {
  missing = 0;
  readonly types: TypeCounts = { integer: 0, float: 0, infinite: 0, boolean: 0, datetime: 0, string: 0 };
  numeric = new Moments();
  datetime = new Moments();
  bigMin: bigint | null = null;
  bigMax: bigint | null = null;
  lengthSum = 0;
  lengthMin = Number.POSITIVE_INFINITY;
  lengthMax = 0;
  exact: ValueCounts | null = new ValueCounts();
  sketches: Sketches | null = null;
  private readonly parsed: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };

  constructor(
    readonly name: string,
    readonly options: ProfileOptions,
  ) {}

  add(cell: Cell): void {
    const p = parseCell(cell, this.parsed);
    const t = this.types;
    switch (p.kind) {
      case Kind.Missing:
        this.missing++;
        return;
      case Kind.Integer:
        t.integer++;
        this.numeric.add(p.value as number);
        break;
      case Kind.BigInteger: {
        t.integer++;
        const big = p.value as bigint;
        this.numeric.add(Number(big));
        if (this.bigMin === null || big < this.bigMin) this.bigMin = big;
        if (this.bigMax === null || big > this.bigMax) this.bigMax = big;
        break;
      }
      case Kind.Float:
        t.float++;
        this.numeric.add(p.value as number);
        break;
      case Kind.Infinite:
        // Counted, but kept out of moments, quantiles and distinct values (see docs).
        t.infinite++;
        return;
      case Kind.Boolean:
        t.boolean++;
        break;
      case Kind.Datetime:
        t.datetime++;
        this.datetime.add(p.ms);
        break;
      case Kind.String: {
        t.string++;
        const len = (p.value as string).length;
        this.lengthSum += len;
        if (len < this.lengthMin) this.lengthMin = len;
        if (len > this.lengthMax) this.lengthMax = len;
        break;
      }
    }
    const key = p.value as Key;
    const exact = this.exact;
    if (exact) {
      exact.increment(key);
      if (exact.size > this.options.exactLimit) this.toSketches();
      return;
    }
    const s = this.sketches as Sketches;
    s.hll.add(keyString(key));
    s.frequent.add(key);
    if (p.kind === Kind.Datetime) s.datetimeKll.update(p.ms);
    else if (p.kind <= Kind.Float) s.kll.update(Number(key));
  }

  /** Adds `rows` missing cells (a merged profile that lacked this column). */
  addMissing(rows: number): void {
    this.missing += rows;
  }

  merge(other: ColumnProfile): void {
    this.missing += other.missing;
    for (const k of Object.keys(this.types) as (keyof TypeCounts)[]) this.types[k] += other.types[k];
    this.numeric.merge(other.numeric);
    this.datetime.merge(other.datetime);
    if (other.bigMin !== null && (this.bigMin === null || other.bigMin < this.bigMin))
      this.bigMin = other.bigMin;
    if (other.bigMax !== null && (this.bigMax === null || other.bigMax > this.bigMax))
      this.bigMax = other.bigMax;
    this.lengthSum += other.lengthSum;
    this.lengthMin = Math.min(this.lengthMin, other.lengthMin);
    this.lengthMax = Math.max(this.lengthMax, other.lengthMax);
    if (this.exact && other.exact) {
      const exact = this.exact;
      other.exact.forEach((k, c) => {
        exact.add(k, c);
      });
      if (this.exact.size > this.options.exactLimit) this.toSketches();
      return;
    }
    if (this.exact) this.toSketches();
    const mine = this.sketches as Sketches;
    const theirs = other.sketches ?? sketchesOf(other.exact as ValueCounts, this.options);
    mine.hll.merge(theirs.hll);
    mine.frequent.merge(theirs.frequent);
    mine.kll.merge(theirs.kll);
    mine.datetimeKll.merge(theirs.datetimeKll);
  }

  get count(): number {
    const t = this.types;
    return t.integer + t.float + t.infinite + t.boolean + t.datetime + t.string;
  }

  /**
   * The column type:
   * - `empty` when every cell is missing;
   * - `boolean`, `integer`, `datetime` when every present cell is of that kind; `float` when every
   *   present cell is a number (integers, decimals, infinities) and at least one is not an integer;
   * - otherwise (strings, or a mix such as numbers and words) `categorical` when the column has at
   *   most 1000 distinct values, a mean string length of at most 50, and — once it has at least
   *   20 values — at most one distinct value per two values; else `text`. A mixed column is thus a
   *   string column, as pandas reads it (`object`), and `typeCounts` shows the mix.
   */
  inferType(distinct = this.distinct().value): ColumnType {
    const t = this.types;
    const n = this.count;
    if (n === 0) return 'empty';
    if (t.boolean === n) return 'boolean';
    if (t.integer === n) return 'integer';
    if (t.integer + t.float + t.infinite === n) return 'float';
    if (t.datetime === n) return 'datetime';
    const meanLength = t.string > 0 ? this.lengthSum / t.string : 0;
    const categorical =
      distinct <= CATEGORICAL_MAX_DISTINCT &&
      meanLength <= CATEGORICAL_MAX_MEAN_LENGTH &&
      (n < CATEGORICAL_RATIO_MIN_VALUES || distinct <= CATEGORICAL_MAX_RATIO * n);
    return categorical ? 'categorical' : 'text';
  }

  distinct(): { value: number; exact: boolean } {
    if (this.exact) return { value: this.exact.size, exact: true };
    return { value: (this.sketches as Sketches).hll.estimate(), exact: false };
  }

  summary(): ColumnSummary {
    const distinct = this.distinct();
    const type = this.inferType(distinct.value);
    const out: ColumnSummary = {
      name: this.name,
      type,
      count: this.count,
      missing: this.missing,
      distinct: distinct.value,
      distinctExact: distinct.exact,
      typeCounts: { ...this.types },
      top: [],
      topExact: this.exact !== null,
    };
    if (type === 'integer' || type === 'float') this.numericSummary(out, type);
    else if (type === 'datetime') this.datetimeSummary(out);
    if (this.types.string > 0) {
      out.length = { min: this.lengthMin, max: this.lengthMax, mean: this.lengthSum / this.types.string };
    }
    // Ties go by value, so the order does not depend on the order values arrived in.
    const counts = this.exact ?? (this.sketches as Sketches).frequent.counts;
    out.top = topEntries(counts, this.options.topValues).map(([k, c]) => ({ value: encodeKey(k), count: c }));
    if (!this.exact) out.topMaxError = (this.sketches as Sketches).frequent.maxError;
    return out;
  }

  toJSON(): ColumnStateJson {
    return this.state(sortedEntries);
  }

  /**
   * The state to send to another thread (see `ColumnTransfer`), value counts and sketch counts
   * in the order they were inserted: `fromTransfer` rebuilds the column exactly (maps included).
   */
  toTransfer(): ColumnTransfer {
    const exact = this.exact;
    if (!exact) return { state: this.state(entriesInOrder), keys: null, counts: null };
    const keys: KeyJson[] = new Array(exact.size);
    const counts = new Float64Array(exact.size);
    let i = 0;
    exact.forEach((key, count) => {
      keys[i] = encodeKey(key);
      counts[i++] = count;
    });
    return { state: this.state(() => []), keys, counts };
  }

  static fromTransfer(name: string, options: ProfileOptions, transfer: ColumnTransfer): ColumnProfile {
    const c = ColumnProfile.fromJSON(name, options, transfer.state);
    const { keys, counts } = transfer;
    if (keys && counts) {
      if (!c.exact || keys.length !== counts.length) {
        throw new Error(`column ${name}: exact keys and counts must come together, one count per key`);
      }
      c.exact = ValueCounts.fromArrays(keys.map(decodeKey), counts);
    }
    return c;
  }

  private state(entries: (map: Counts) => [KeyJson, number][]): ColumnStateJson {
    const state: ColumnStateJson = {
      missing: this.missing,
      types: { ...this.types },
      numeric: this.numeric.toJSON(),
      datetime: this.datetime.toJSON(),
      bigRange: this.bigMin === null ? null : [String(this.bigMin), String(this.bigMax)],
      length: this.types.string > 0 ? [this.lengthSum, this.lengthMin, this.lengthMax] : null,
      exact: this.exact ? entries(this.exact) : null,
    };
    if (this.sketches) {
      const s = this.sketches;
      state.hll = s.hll.toJSON();
      state.kll = s.kll.toJSON();
      state.datetimeKll = s.datetimeKll.toJSON();
      state.frequent = { maxError: s.frequent.maxError, items: entries(s.frequent.counts) };
    }
    return state;
  }

  static fromJSON(name: string, options: ProfileOptions, json: ColumnStateJson): ColumnProfile {
    if (typeof name !== 'string' || !json || typeof json.missing !== 'number' || !json.types) {
      throw new Error('name, missing and types are required');
    }
    const c = new ColumnProfile(name, options);
    c.missing = json.missing;
    Object.assign(c.types, json.types);
    c.numeric = Moments.fromJSON(json.numeric);
    c.datetime = Moments.fromJSON(json.datetime);
    if (json.bigRange) [c.bigMin, c.bigMax] = json.bigRange.map((s) => BigInt(s));
    if (json.length) [c.lengthSum, c.lengthMin, c.lengthMax] = json.length;
    if (json.exact) {
      const exact = new ValueCounts();
      for (const [k, n] of json.exact) exact.add(decodeKey(k), n);
      c.exact = exact;
    } else {
      if (!json.hll || !json.kll || !json.datetimeKll || !json.frequent) {
        throw new Error(`column ${name}: a sketched column needs hll, kll, datetimeKll and frequent`);
      }
      const frequent = new FrequentItems<Key>(options.frequentCapacity);
      frequent.maxError = json.frequent.maxError;
      for (const [k, n] of json.frequent.items) frequent.counts.set(decodeKey(k), n);
      c.exact = null;
      c.sketches = {
        hll: HyperLogLog.fromJSON(json.hll),
        kll: KllSketch.fromJSON(json.kll),
        datetimeKll: KllSketch.fromJSON(json.datetimeKll),
        frequent,
      };
    }
    return c;
  }

  /** Estimated bytes held by the exact value counts (0 once sketched). */
  get exactBytes(): number {
    return this.exact ? this.exact.bytes : 0;
  }

  /** Switches to sketches now (the table's memory budget is spent). */
  sketch(): void {
    if (this.exact) this.toSketches();
  }

  private toSketches(): void {
    this.sketches = sketchesOf(this.exact as ValueCounts, this.options);
    this.exact = null;
  }

  /**
   * The numeric distribution of an integer or float column, or of a datetime column in epoch ms;
   * null for other types.
   */
  distribution(type = this.inferType()): Distribution | null {
    if (type === 'integer' || type === 'float') {
      if (!this.exact) return sketchDistribution((this.sketches as Sketches).kll);
      const values = new Float64Array(this.exact.size);
      const counts = new Float64Array(this.exact.size);
      let d = 0;
      this.exact.forEach((k, c) => {
        if (typeof k !== 'number' && typeof k !== 'bigint') return;
        values[d] = Number(k);
        counts[d++] = c;
      });
      return new ExactDistribution(values.subarray(0, d), counts.subarray(0, d));
    }
    if (type === 'datetime') {
      if (!this.exact) return sketchDistribution((this.sketches as Sketches).datetimeKll);
      const values = new Float64Array(this.exact.size);
      const counts = new Float64Array(this.exact.size);
      let d = 0;
      this.exact.forEach((k, c) => {
        const ms = typeof k === 'string' ? parseDatetime(k) : Number.NaN;
        if (Number.isNaN(ms)) return;
        values[d] = ms;
        counts[d++] = c;
      });
      return new ExactDistribution(values.subarray(0, d), counts.subarray(0, d));
    }
    return null;
  }

  /** Counts per value: exact, or Misra–Gries lower bounds at most `maxError` below the truth. */
  frequencies(): { exact: boolean; maxError: number; counts: [Key, number][] } {
    if (this.exact) return { exact: true, maxError: 0, counts: [...this.exact] };
    const f = (this.sketches as Sketches).frequent;
    return { exact: false, maxError: f.maxError, counts: [...f.counts] };
  }

  private numericSummary(out: ColumnSummary, type: ColumnType): void {
    const m = this.numeric;
    if (m.n === 0) return;
    out.min = m.min;
    out.max = m.max;
    // Integers beyond 2^53 keep their exact bounds as decimal strings.
    if (this.bigMin !== null && this.bigMin < BigInt(m.min)) out.min = String(this.bigMin);
    if (this.bigMax !== null && this.bigMax > BigInt(m.max)) out.max = String(this.bigMax);
    out.mean = m.mean;
    out.std = Math.sqrt(m.sampleVariance());
    out.stdPopulation = Math.sqrt(m.populationVariance());
    const d = this.distribution(type) as Distribution;
    out.quantiles = Object.fromEntries(QUANTILES.map((q) => [String(q), d.quantile(q)]));
    out.quantilesExact = d.exact;
    out.histogram = { ...histogram(d, m.min, m.max, this.options.histogramBins), exact: d.exact };
  }

  private datetimeSummary(out: ColumnSummary): void {
    const m = this.datetime;
    if (m.n === 0) return;
    const iso = (ms: number) => new Date(ms).toISOString();
    out.min = iso(m.min);
    out.max = iso(m.max);
    const d = this.distribution('datetime') as Distribution;
    out.quantiles = Object.fromEntries(QUANTILES.map((q) => [String(q), iso(Math.round(d.quantile(q)))]));
    out.quantilesExact = d.exact;
    const h = histogram(d, m.min, m.max, this.options.histogramBins);
    out.histogram = { edges: h.edges.map(iso), counts: h.counts, exact: d.exact };
  }
}

function sketchesOf(exact: ValueCounts, options: ProfileOptions): Sketches {
  const s: Sketches = {
    hll: new HyperLogLog(),
    frequent: new FrequentItems<Key>(options.frequentCapacity),
    kll: new KllSketch(options.kllK),
    datetimeKll: new KllSketch(options.kllK),
  };
  for (const [key, count] of exact) {
    s.hll.add(keyString(key));
    s.frequent.add(key, count);
    if (typeof key === 'number' || typeof key === 'bigint') {
      s.kll.updateWeighted(Number(key), count);
    } else if (typeof key === 'string') {
      const ms = parseDatetime(key);
      if (!Number.isNaN(ms)) s.datetimeKll.updateWeighted(ms, count);
    }
  }
  return s;
}

/** Strings, numbers and booleans never collide: a string that reads as a number is a number. */
function keyString(key: Key): string {
  return typeof key === 'string' ? key : String(key);
}

export function encodeKey(key: Key): KeyJson {
  return typeof key === 'bigint' ? { int: String(key) } : key;
}

function decodeKey(key: KeyJson): Key {
  return typeof key === 'object' ? BigInt(key.int) : key;
}

const KEY_RANK = { boolean: 0, number: 1, bigint: 1, string: 2 } as Record<string, number>;

function compareKeys(a: Key, b: Key): number {
  const ra = KEY_RANK[typeof a];
  const rb = KEY_RANK[typeof b];
  if (ra !== rb) return ra - rb;
  if (ra === 1) return Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0);
  return a < b ? -1 : a > b ? 1 : 0;
}

const byCountThenKey = (a: [Key, number], b: [Key, number]) => b[1] - a[1] || compareKeys(a[0], b[0]);

/** Exact counts, or a sketch's heavy hitters. */
type Counts = ValueCounts | Map<Key, number>;

/** Each value and its count, without an entry array per value. */
function eachCount(counts: Counts, fn: (key: Key, count: number) => void): void {
  if (counts instanceof ValueCounts) counts.forEach(fn);
  else
    counts.forEach((count, key) => {
      fn(key, count);
    });
}

/** The `limit` heaviest entries, ties by key; one pass keeping a small sorted list. */
function topEntries(counts: Counts, limit: number): [Key, number][] {
  const top: [Key, number][] = [];
  if (limit <= 0) return top;
  eachCount(counts, (key, count) => {
    if (top.length === limit) {
      const last = top[limit - 1]!;
      if (count < last[1] || (count === last[1] && compareKeys(key, last[0]) >= 0)) return;
    }
    const entry: [Key, number] = [key, count];
    let i = top.length;
    while (i > 0 && byCountThenKey(entry, top[i - 1]!) < 0) i--;
    top.splice(i, 0, entry);
    if (top.length > limit) top.pop();
  });
  return top;
}

function entriesInOrder(counts: Counts): [KeyJson, number][] {
  const out: [KeyJson, number][] = [];
  eachCount(counts, (k, c) => out.push([encodeKey(k), c]));
  return out;
}

/** Entries in a stable order (booleans, numbers, strings), so equal content gives equal JSON. */
function sortedEntries(counts: Counts): [KeyJson, number][] {
  const all: [Key, number][] = [];
  eachCount(counts, (k, c) => all.push([k, c]));
  return all.sort((a, b) => compareKeys(a[0], b[0])).map(([k, c]) => [encodeKey(k), c]);
}
