import { isUtf8 } from 'node:buffer';
import { open, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SlipwayError } from '../../errors/index.js';
import { type CsvOptions, columnNames, sniffCsv } from '../formats/csv-reader.js';
import { completeEnd, firstInvalid, InvalidUtf8Error, utf8Error } from '../formats/utf8-chunks.js';
import type { ColumnProfile, ProfileOptions } from './column-profile.js';
import { Moments } from './moments.js';
import { Kind, type Parsed, parseCell } from './parse-cell.js';
import { TableProfile, type TableTransfer } from './table-profile.js';
import { entryBytes, type Key, ValueCounts } from './value-counts.js';

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** Buffer's own decoder, without `toString`'s argument handling. */
interface Utf8Slicer {
  utf8Slice(start: number, end: number): string;
}
const decode = (buf: Uint8Array, start: number, end: number): string =>
  (buf as unknown as Utf8Slicer).utf8Slice(start, end);

/** A table position from a key's two words: multiplicative (Fibonacci) hashing into the top bits. */
function slotIndex(k0: number, k1: number, shift: number, mask: number): number {
  return (Math.imul(k0 ^ Math.imul(k1, 0x85ebca6b), 0x9e3779b1) >>> shift) & mask;
}

/** The value of bytes that are all ASCII digits (at most 15, so exact), else -1. */
function unsignedInteger(buf: Uint8Array, start: number, end: number): number {
  let x = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    x = x * 10 + d;
  }
  return x;
}

function integerCell(out: Parsed, value: number): Parsed {
  out.kind = Kind.Integer;
  out.value = value;
  return out;
}

/** Masks keeping the first `len` bytes of a value's first and second 4-byte word. */
const LOW = Int32Array.from({ length: 9 }, (_, len) => (len >= 4 ? -1 : (1 << (8 * len)) - 1));
const HIGH = Int32Array.from({ length: 9 }, (_, len) =>
  len <= 4 ? 0 : len === 8 ? -1 : (1 << (8 * (len - 4))) - 1,
);

/**
 * A value longer than 8 bytes as little-endian 4-byte words into `out` (the last one zero-padded)
 * and their hash, FNV-1a's step per word; on a hash match the words are compared, not the bytes.
 */
function hashWords(buf: Uint8Array, start: number, end: number, out: Int32Array): number {
  let h = FNV_OFFSET;
  let i = start;
  let w = 0;
  for (; i + 4 <= end; i += 4) {
    const word = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    out[w++] = word;
    h = Math.imul(h ^ word, FNV_PRIME);
  }
  if (i < end) {
    let word = 0;
    for (let shift = 0; i < end; i++, shift += 8) word |= buf[i]! << shift;
    out[w] = word;
    h = Math.imul(h ^ word, FNV_PRIME);
  }
  return h;
}

// Kinds on the per-cell path, as plain numbers.
const INTEGER = Kind.Integer;
const BIG_INTEGER = Kind.BigInteger;
const FLOAT = Kind.Float;
const DATETIME = Kind.Datetime;

/**
 * Slot record in `meta`: offset of its words in `arena` (values over 8 bytes), byte length, kind,
 * key index (-1 for none), and its entry's position in the table (so a flush walks the slots).
 */
const META = 5;
/**
 * Hash-table entry, 32 bytes: two key words, slot + 1 (0 when empty), the byte length with the
 * kind in its top bits, then as doubles the number (or epoch ms) the value adds to the moments and
 * its cells since the last flush — all a repeated cell touches is one entry (one cache line to
 * miss for a column of many values).
 */
const ENTRY = 8;
const KIND_SHIFT = 27;
const LEN_MASK = (1 << KIND_SHIFT) - 1;

/** Slot kinds that are plain numbers: a column of only these takes `flush`'s short walks. */
const NUMBER_KINDS = (1 << Kind.Integer) | (1 << Kind.Float);
/** What `countNumbers` returns, by position. */
const N = 0;
const SUM = 1;
const INTEGERS = 2;
const COUNTED = 3;
const numberSums = new Float64Array(4);
const numberSpread = new Float64Array(3);

/**
 * The cells counted in slots of plain numbers: their number, sum and how many are integers, and
 * their counts by key into `keyCounts` (with how many keys got one). Small and alone, so a cold
 * process compiles it quickly.
 */
function countNumbers(
  meta: Int32Array,
  tnum: Float64Array,
  slots: number,
  keyCounts: Float64Array,
): Float64Array {
  let n = 0;
  let sum = 0;
  let integers = 0;
  let counted = 0;
  for (let m = 0; m < META * slots; m += META) {
    const at = meta[m + 4]!;
    const count = tnum[4 * at + 3]!;
    if (count === 0) continue;
    n += count;
    sum += count * tnum[4 * at + 2]!;
    if (meta[m + 2] === INTEGER) integers += count;
    const key = meta[m + 3]!;
    if (keyCounts[key] === 0) counted++;
    keyCounts[key]! += count;
  }
  const out = numberSums;
  out[N] = n;
  out[SUM] = sum;
  out[INTEGERS] = integers;
  out[COUNTED] = counted;
  return out;
}

/** The counted slots' squared deviations from `mean`, min and max; their counts are reset. */
function spreadNumbers(meta: Int32Array, tnum: Float64Array, slots: number, mean: number): Float64Array {
  let m2 = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let m = 0; m < META * slots; m += META) {
    const at = meta[m + 4]!;
    const count = tnum[4 * at + 3]!;
    if (count === 0) continue;
    tnum[4 * at + 3] = 0;
    const x = tnum[4 * at + 2]!;
    m2 += count * (x - mean) * (x - mean);
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const out = numberSpread;
  out[0] = m2;
  out[1] = min;
  out[2] = max;
  return out;
}

/**
 * One column of a CSV profiled straight from its bytes. Each distinct byte sequence (a *slot*) is
 * decoded and classified by `parseCell` once; a repeated cell costs a hash-table probe on its
 * bytes and a count. The counts go into the column's `ColumnProfile` in the order their values
 * first appeared (`flush`), so its value counts are the ones `ColumnProfile.add` builds cell by
 * cell; the moments are made from the counts (`flush`), equal to its Welford updates to rounding.
 *
 * A column leaves this path for `ColumnProfile.add` on decoded strings (`slow`) when its exact
 * counts turn into sketches (more than `exactLimit` values, or the table's memory budget), or
 * when its distinct byte sequences outgrow their bound.
 */
class CsvColumn {
  slow = false;
  /** Open addressing, linear probing, `ENTRY` integers per entry. */
  private table = new Int32Array(ENTRY * 1024);
  /** The same entries as doubles: `4 * at + 2` is the number, `4 * at + 3` the count. */
  private tnum = new Float64Array(this.table.buffer);
  private mask = 1023;
  private shift = 22;
  private slots = 0;
  /** The kinds of the slots, a bit each (`1 << kind`). */
  private kinds = 0;
  /** Per slot, `META` integers: arena offset, byte length, kind, key index, table position. */
  private meta = new Int32Array(META * 512);
  /** Slot values (strings, big integers, booleans, date text) that are not plain numbers. */
  private values: (Key | undefined)[] = [];
  /** The 4-byte words of values longer than 8 bytes (the last one zero-padded), compared on a hash match. */
  private arena = new Int32Array(1 << 12);
  private arenaUsed = 0;
  /** The words of the cell being added (when longer than 8 bytes). */
  private words = new Int32Array(64);
  /** Distinct values (keys) in first-seen order, and the key index of each. */
  private keys: Key[] = [];
  private keyIndex = new Map<Key, number>();
  /** What `ValueCounts.bytes` holds once the keys are flushed. */
  bytes = 0;
  private padded = 0;
  private readonly parsed: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };
  private readonly slotLimit: number;

  constructor(
    readonly profile: ColumnProfile,
    private readonly exactLimit: number,
  ) {
    this.slotLimit = 2 * exactLimit + 1024;
  }

  /** One cell: bytes `[start, end)` of `buf` (empty is missing). */
  add(buf: Uint8Array, start: number, end: number): void {
    if (this.slow) {
      this.profile.add(end === start ? null : decode(buf, start, end));
      return;
    }
    if (end === start) {
      this.padded++;
      return;
    }
    const len = end - start;
    // Up to 8 bytes are their own key, packed into two words (the length tells "a" from "a\0"):
    // no hash, and a matching entry needs no byte comparison. Longer values key on their hash.
    let k0: number;
    let k1: number;
    if (len <= 8) {
      if (start + 8 <= buf.length) {
        // Eight loads and two masks (the bytes past the value are cut off), no branch per byte.
        k0 =
          (buf[start]! | (buf[start + 1]! << 8) | (buf[start + 2]! << 16) | (buf[start + 3]! << 24)) &
          LOW[len]!;
        k1 =
          (buf[start + 4]! | (buf[start + 5]! << 8) | (buf[start + 6]! << 16) | (buf[start + 7]! << 24)) &
          HIGH[len]!;
      } else {
        k0 = k1 = 0;
        for (let i = 0; i < len; i++)
          if (i < 4) k0 |= buf[start + i]! << (i << 3);
          else k1 |= buf[start + i]! << ((i - 4) << 3);
      }
    } else {
      if (len > 4 * this.words.length) this.words = new Int32Array(2 * ((len + 3) >> 2));
      k0 = hashWords(buf, start, end, this.words);
      k1 = len;
    }
    const table = this.table;
    const mask = this.mask;
    let at = slotIndex(k0, k1, this.shift, mask);
    for (;;) {
      const e = ENTRY * at;
      const s = table[e + 2]! - 1;
      if (s < 0) {
        at = this.create(buf, start, end, k0, k1, at);
        if (at < 0) return; // the column went slow with this cell
        break;
      }
      if (table[e] === k0 && table[e + 1] === k1 && (table[e + 3]! & LEN_MASK) === len) {
        if (len <= 8) break;
        const arena = this.arena;
        const words = this.words;
        const p = this.meta[META * s]!;
        const n = (len + 3) >> 2;
        let w = 0;
        while (w < n && arena[p + w] === words[w]) w++;
        if (w === n) break;
      }
      at = (at + 1) & mask;
    }
    // create() may have grown the table; the moments are made from the counts on flush.
    this.tnum[4 * at + 3]!++;
  }

  /** A row shorter than the header: its remaining cells are missing. */
  addMissing(): void {
    if (this.slow) this.profile.add(null);
    else this.padded++;
  }

  /** A new slot for this cell, counted by the caller: its entry's position, or -1 when the column went slow on it. */
  private create(buf: Uint8Array, start: number, end: number, k0: number, k1: number, at: number): number {
    const len = end - start;
    if (this.slots >= this.slotLimit || this.arenaUsed + (len >> 2) > 1 << 24) {
      this.goSlow(false);
      this.profile.add(decode(buf, start, end));
      return -1;
    }
    // Plain digits (most numeric columns) are read from the bytes, as parseCell reads them.
    const digits = len <= 15 ? unsignedInteger(buf, start, end) : -1;
    const p =
      digits >= 0 ? integerCell(this.parsed, digits) : parseCell(decode(buf, start, end), this.parsed);
    const s = this.slots++;
    if (META * (s + 1) > this.meta.length) this.growSlots();
    const meta = this.meta;
    meta[META * s] = -1;
    if (len > 8) {
      // add() left the value's words in `words`.
      const n = (len + 3) >> 2;
      if (this.arenaUsed + n > this.arena.length) {
        const arena = new Int32Array(Math.max(this.arena.length * 2, this.arenaUsed + n));
        arena.set(this.arena.subarray(0, this.arenaUsed));
        this.arena = arena;
      }
      this.arena.set(this.words.subarray(0, n), this.arenaUsed);
      meta[META * s] = this.arenaUsed;
      this.arenaUsed += n;
    }
    meta[META * s + 1] = len;
    meta[META * s + 2] = p.kind;
    this.kinds |= 1 << p.kind;
    let num = 0;
    let keyed = true;
    switch (p.kind) {
      case Kind.Integer:
      case Kind.Float:
        num = p.value as number;
        break;
      case Kind.BigInteger:
        num = Number(p.value as bigint);
        this.values[s] = p.value;
        break;
      case Kind.Datetime:
        num = p.ms;
        this.values[s] = p.value;
        break;
      case Kind.Missing:
      case Kind.Infinite:
        keyed = false;
        break;
      default:
        this.values[s] = p.value;
    }
    let key = -1;
    let overLimit = false;
    if (keyed) {
      const value = p.value as Key;
      const known = this.keyIndex.get(value);
      if (known === undefined) {
        key = this.keys.length;
        this.keys.push(value);
        this.keyIndex.set(value, key);
        this.bytes += entryBytes(value);
        overLimit = this.keys.length > this.exactLimit;
      } else key = known;
    }
    meta[META * s + 3] = key;
    const e = ENTRY * at;
    this.table[e] = k0;
    this.table[e + 1] = k1;
    this.table[e + 2] = s + 1;
    this.table[e + 3] = len | (p.kind << KIND_SHIFT);
    this.tnum[4 * at + 2] = num;
    this.tnum[4 * at + 3] = 0;
    meta[META * s + 4] = at;
    if (this.slots * 2 > this.mask + 1) {
      this.rehash();
      at = this.meta[META * s + 4]!;
    }
    if (overLimit) {
      // As ColumnProfile.add: this value is counted, then the counts become sketches.
      this.tnum[4 * at + 3] = 1;
      this.goSlow(true);
      return -1;
    }
    return at;
  }

  /** Moves what the slots counted into the profile; afterwards the profile takes every cell. */
  goSlow(sketch: boolean): void {
    if (this.slow) return;
    this.flush(false);
    if (sketch) this.profile.sketch();
    this.drop();
  }

  /** Drops the slots (the profile holds everything counted): later cells go to the profile. */
  private drop(): void {
    this.slow = true;
    this.table = new Int32Array(ENTRY);
    this.tnum = new Float64Array(this.table.buffer);
    this.mask = 0;
    this.slots = 0;
    this.kinds = 0;
    this.meta = new Int32Array(0);
    this.values = [];
    this.arena = new Int32Array(0);
    this.keys = [];
    this.keyIndex = new Map();
  }

  /**
   * Adds the cells counted since the last flush to the profile. The `last` flush (the range is
   * read) hands the column's keys to a profile that has none yet without a copy.
   */
  flush(last: boolean): void {
    if (this.slow) return;
    const c = this.profile;
    const t = c.types;
    c.missing += this.padded;
    this.padded = 0;
    const keyCounts = new Float64Array(this.keys.length);
    const meta = this.meta;
    const tnum = this.tnum;
    // The moments of the numbers and dates counted since the last flush come from each distinct
    // value once with its count, in first-seen (slot) order: the mean first, then the squared
    // deviations from it. Merged into the profile's (Chan et al.), they equal Welford's update per
    // cell to rounding. The walks go over the slots, not the table: each value once, no empty entries.
    const slots = this.slots;
    const num = new Moments();
    const date = new Moments();
    let counted: number; // keys with a count
    if ((this.kinds & ~NUMBER_KINDS) === 0) {
      // Only plain numbers (most numeric columns): two small loops over typed arrays.
      const sums = countNumbers(meta, tnum, slots, keyCounts);
      counted = sums[COUNTED]!;
      t.integer += sums[INTEGERS]!;
      t.float += sums[N]! - sums[INTEGERS]!;
      num.n = sums[N]!;
      if (num.n > 0) {
        num.mean = sums[SUM]! / num.n;
        const spread = spreadNumbers(meta, tnum, slots, num.mean);
        num.m2 = spread[0]!;
        num.min = spread[1]!;
        num.max = spread[2]!;
      }
    } else counted = this.countAny(keyCounts, num, date);
    c.numeric.merge(num);
    c.datetime.merge(date);
    const exact = c.exact;
    if (exact) {
      // Key order is first-seen order, as ColumnProfile.add inserts them. On the last flush into
      // empty counts, with every key counted, the key map is the profile's as it stands
      // (positions and all), so it is handed over rather than copied.
      if (last && exact.size === 0 && counted > 0 && counted === keyCounts.length) {
        c.exact = ValueCounts.adopt(this.keyIndex, keyCounts, this.bytes);
      } else {
        for (let k = 0; k < keyCounts.length; k++)
          if (keyCounts[k]! > 0) exact.add(this.keys[k]!, keyCounts[k]!);
      }
    }
    // After the last flush the column is done and not touched again; its slots go with it. (Not
    // emptied here: replacing its fields would deoptimize the code that a next file runs.)
  }

  /**
   * `flush`'s walk over slots of any kind: types, string lengths and big-integer bounds into the
   * profile, the numbers' and dates' moments into `num` and `date`, counts by key into `keyCounts`;
   * resets the slots' counts and returns how many keys got a count.
   */
  private countAny(keyCounts: Float64Array, num: Moments, date: Moments): number {
    const c = this.profile;
    const t = c.types;
    const meta = this.meta;
    const tnum = this.tnum;
    const slots = this.slots;
    /** The moments a slot of this kind adds to: the numbers', the dates', or none. */
    const momentsOf = (kind: number): Moments | null =>
      kind === INTEGER || kind === FLOAT || kind === BIG_INTEGER ? num : kind === DATETIME ? date : null;
    let counted = 0;
    for (let s = 0; s < slots; s++) {
      const at = meta[META * s + 4]!;
      const count = tnum[4 * at + 3]!;
      if (count === 0) continue;
      const kind = meta[META * s + 2]! as Kind;
      switch (kind) {
        case Kind.Missing:
          c.missing += count;
          continue;
        case Kind.Integer:
          t.integer += count;
          break;
        case Kind.BigInteger: {
          t.integer += count;
          const big = this.values[s] as bigint;
          if (c.bigMin === null || big < c.bigMin) c.bigMin = big;
          if (c.bigMax === null || big > c.bigMax) c.bigMax = big;
          break;
        }
        case Kind.Float:
          t.float += count;
          break;
        case Kind.Infinite:
          t.infinite += count;
          continue;
        case Kind.Boolean:
          t.boolean += count;
          break;
        case Kind.Datetime:
          t.datetime += count;
          break;
        case Kind.String: {
          t.string += count;
          const len = (this.values[s] as string).length;
          c.lengthSum += len * count;
          if (len < c.lengthMin) c.lengthMin = len;
          if (len > c.lengthMax) c.lengthMax = len;
          break;
        }
      }
      const m = momentsOf(kind);
      if (m) {
        m.n += count;
        m.mean += count * tnum[4 * at + 2]!; // the sum until the walk ends
      }
      const key = meta[META * s + 3]!;
      if (keyCounts[key] === 0) counted++;
      keyCounts[key]! += count;
    }
    for (const m of [num, date]) if (m.n > 0) m.mean /= m.n;
    for (let s = 0; s < slots; s++) {
      const at = meta[META * s + 4]!;
      const count = tnum[4 * at + 3]!;
      if (count === 0) continue;
      tnum[4 * at + 3] = 0;
      const m = momentsOf(meta[META * s + 2]!);
      if (m === null) continue;
      const x = tnum[4 * at + 2]!;
      m.m2 += count * (x - m.mean) * (x - m.mean);
      if (x < m.min) m.min = x;
      if (x > m.max) m.max = x;
    }
    return counted;
  }

  private growSlots(): void {
    const meta = new Int32Array(this.meta.length * 2);
    meta.set(this.meta);
    this.meta = meta;
  }

  /** A table twice the size. */
  private rehash(): void {
    const size = (this.mask + 1) * 2;
    const table = new Int32Array(ENTRY * size);
    const mask = size - 1;
    const shift = this.shift - 1;
    const old = this.table;
    const meta = this.meta;
    // Slot by slot (each slot records its entry): only occupied entries are visited, and each is
    // copied word by word, unrolled (a subarray per entry would allocate, a loop per entry costs
    // more than the copy in a cold process).
    for (let m = 0; m < META * this.slots; m += META) {
      const e = ENTRY * meta[m + 4]!;
      let at = slotIndex(old[e]!, old[e + 1]!, shift, mask);
      while (table[ENTRY * at + 2] !== 0) at = (at + 1) & mask;
      meta[m + 4] = at;
      const to = ENTRY * at;
      table[to] = old[e]!;
      table[to + 1] = old[e + 1]!;
      table[to + 2] = old[e + 2]!;
      table[to + 3] = old[e + 3]!;
      table[to + 4] = old[e + 4]!;
      table[to + 5] = old[e + 5]!;
      table[to + 6] = old[e + 6]!;
      table[to + 7] = old[e + 7]!;
    }
    this.shift = shift;
    this.table = table;
    this.tnum = new Float64Array(table.buffer);
    this.mask = mask;
  }
}

/**
 * Where parsed rows go: each cell to its column (`CsvColumn.add`), then `endRow` pads a short row
 * and, every `batchRows` rows, holds the table to its memory budget as `TableProfile.add` does
 * after each batch. Each thread profiling a range of the file has its own.
 */
class CsvSink {
  readonly columns: CsvColumn[];
  rows = 0;
  private inBatch = 0;

  constructor(
    readonly profile: TableProfile,
    names: readonly string[],
    private readonly batchRows: number,
  ) {
    this.columns = profile.addColumns(names).map((c) => new CsvColumn(c, profile.options.exactLimit));
  }

  /** After a row's first `fields` cells were added to their columns. */
  endRow(fields: number): void {
    const cols = this.columns;
    for (let j = fields; j < cols.length; j++) cols[j]!.addMissing();
    this.rows++;
    if (++this.inBatch === this.batchRows) {
      this.inBatch = 0;
      this.budget();
    }
  }

  /** The last batch's budget check; the profile is complete afterwards. */
  finish(): TableProfile {
    for (const c of this.columns) c.flush(true);
    this.profile.rows = this.rows;
    if (this.inBatch > 0 || this.rows === 0) this.profile.keepWithinBudget();
    return this.profile;
  }

  private budget(): void {
    let total = 0;
    for (const c of this.columns) total += c.slow ? c.profile.exactBytes : c.bytes;
    if (total <= this.profile.options.exactBytes) return;
    for (const c of this.columns) c.flush(false);
    this.profile.keepWithinBudget();
    for (const c of this.columns) if (!c.profile.exact) c.goSlow(false);
  }
}

/** Whether bytes start..end (at least one) are all spaces and tabs. */
function spacesOnly(bytes: Buffer, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x09) return false;
  }
  return true;
}

/** `cells` with room for one more field after `used` integers (a copy twice the size when full). */
function withRoom(cells: Int32Array<ArrayBuffer>, used: number): Int32Array<ArrayBuffer> {
  if (used + 2 <= cells.length) return cells;
  const next = new Int32Array(cells.length * 2);
  next.set(cells.subarray(0, used));
  return next;
}

/**
 * A complete row to its columns: `cells` holds each field's start and end in `bytes`, or, for a
 * quoted field (start < 0), in `extra` at ~start..~end.
 */
function addRow(sink: CsvSink, bytes: Buffer, extra: Buffer, cells: Int32Array, fields: number): void {
  const cols = sink.columns;
  for (let j = 0; j < fields; j++) {
    const start = cells[2 * j]!;
    if (start >= 0) cols[j]!.add(bytes, start, cells[2 * j + 1]!);
    else cols[j]!.add(extra, ~start, ~cells[2 * j + 1]!);
  }
  sink.endRow(fields);
}

/** Bytes kept past a parsed chunk's end: a cell of up to 8 bytes is keyed by loading 8. */
const KEY_SLACK = 8;
/** Bytes per read (as utf8Chunks). */
const READ_BYTES = 1 << 20;
/** Files smaller than this are profiled on one thread: a worker's start costs more than it saves. */
const SPLIT_MIN_BYTES = 32 << 20;
/** How far past a cut point to look for the line end that starts the next range. */
const LINE_SEARCH_BYTES = 1 << 20;

export interface ProfileCsvOptions {
  read?: CsvOptions;
  profile?: Partial<ProfileOptions>;
  /**
   * Threads to count on (default: two when the machine has two CPUs or more). A file of at least
   * `splitMinBytes` is cut at line ends into this many byte ranges: this thread profiles the first
   * (with the header), a worker thread each other one, and the range profiles are merged in file
   * order. Each range holds its own exact counts, so the memory bound is per thread.
   */
  threads?: number;
  /** The smallest file that is split across threads (default 32 MiB). */
  splitMinBytes?: number;
}

/**
 * Profiles a CSV file over its bytes, without building rows of strings: the profile equals
 * `new TableProfile(options).add(batch)` over `readCsv(path, read)`'s batches (same dialect
 * detection, same cells, same errors, the memory budget checked after every `batchRows` rows as
 * `add` checks it per batch), with moments equal to rounding (made from the value counts). Split
 * across threads (`threads`), the counts, distinct values and their first-seen order are the same
 * (budgets and sketches are per range, then merged).
 *
 * A cut is placed after a line feed, which is a row end unless it falls inside a quoted field.
 * Each range but the last must end on a complete row; when one does not (the cut was inside a
 * quoted field), or a worker fails (its rows cannot name their row numbers), the file is profiled
 * again on this thread, which gives the one-pass result and the error with its row number.
 */
export async function profileCsv(path: string, options: ProfileCsvOptions = {}): Promise<TableProfile> {
  const read = options.read ?? {};
  const threads = Math.max(1, Math.floor(options.threads ?? Math.min(availableParallelism(), 2)));
  const cuts = threads > 1 ? await cutPoints(path, threads, options.splitMinBytes ?? SPLIT_MIN_BYTES) : [];
  // The workers load their code while this thread detects the dialect and reads the header.
  const workers = cuts.map(() => new RangeWorker());
  try {
    const sniffed =
      read.delimiter !== undefined && read.header !== undefined ? undefined : await sniffCsv(path);
    const plan: RangePlan = {
      read,
      profile: options.profile ?? {},
      delimiter: read.delimiter ?? sniffed!.delimiter,
      header: read.header ?? sniffed!.header,
      start: 0,
      end: Number.POSITIVE_INFINITY,
    };
    if (cuts.length > 0) {
      try {
        return await profileSplit(path, plan, cuts, workers);
      } catch (err) {
        if (!(err instanceof SplitFailed)) throw err;
      }
    }
    return await profileRange(path, plan);
  } finally {
    for (const w of workers) w.stop();
  }
}

/** A split could not give the one-pass profile: profile the file on one thread instead. */
export class SplitFailed extends Error {}

/** Where the ranges after the first start: just past a line feed near each `k / threads` of the file. */
async function cutPoints(path: string, threads: number, minBytes: number): Promise<number[]> {
  const size = (await stat(path)).size;
  if (size < Math.max(minBytes, 1)) return [];
  const cuts: number[] = [];
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(LINE_SEARCH_BYTES);
    for (let k = 1; k < threads; k++) {
      const at = Math.floor((size * k) / threads);
      const { bytesRead } = await fh.read(buf, 0, LINE_SEARCH_BYTES, at);
      const lf = buf.subarray(0, bytesRead).indexOf(LF);
      const cut = at + lf + 1;
      if (lf >= 0 && cut < size && cut > (cuts.at(-1) ?? 0)) cuts.push(cut);
    }
  } finally {
    await fh.close();
  }
  return cuts;
}

/** What a worker reports: bytes read so far, then its range's profile or why it failed. */
type WorkerMessage = { read: number } | { profile: TableTransfer } | { error: string };

/**
 * The first range on this thread, each other on a worker started once the header gave the
 * column names; the profiles merged in file order.
 */
export async function profileSplit(
  path: string,
  plan: RangePlan,
  cuts: number[],
  workers: RangeWorker[] = cuts.map(() => new RangeWorker()),
): Promise<TableProfile> {
  const total = (await stat(path)).size;
  const onProgress = plan.read.onProgress;
  const progress = new Array<number>(cuts.length + 1).fill(0);
  const report = () => {
    let done = 0;
    for (const p of progress) done += p;
    onProgress?.(Math.min(done, total), total);
  };
  let begun = false;
  const start = (names: string[]) => {
    begun = true;
    cuts.forEach((cut, k) => {
      workers[k]!.onRead = (bytes) => {
        progress[k + 1] = bytes;
        if (onProgress) report();
      };
      workers[k]!.begin(path, {
        read: { batchRows: plan.read.batchRows },
        profile: plan.profile,
        delimiter: plan.delimiter,
        header: false,
        start: cut,
        end: k + 1 < cuts.length ? cuts[k + 1]! : null,
        names,
      });
    });
  };
  try {
    const first = await profileRange(path, {
      ...plan,
      read: {
        ...plan.read,
        onProgress: onProgress
          ? (bytes) => {
              progress[0] = bytes;
              report();
            }
          : undefined,
      },
      end: cuts[0]!,
      onNames: start,
    });
    if (!begun) throw new SplitFailed('no header before the first cut');
    for (const rest of await Promise.all(workers.map((w) => w.result))) first.merge(rest);
    onProgress?.(total, total);
    return first;
  } finally {
    for (const w of workers) w.stop();
  }
}

/** A range plan as a worker receives it (`end` null for the end of the file). */
type WorkerPlan = Omit<RangePlan, 'end' | 'onNames' | 'read'> & {
  end: number | null;
  read: { batchRows?: number };
};

/**
 * A worker thread that profiles one range once it is sent its plan (`begin`); it starts at once,
 * so it loads its code while the calling thread is still reading the header. A failure rejects
 * `result` with `SplitFailed`.
 */
class RangeWorker {
  private readonly worker = new Worker(new URL('./csv-profile-worker.js', import.meta.url), { execArgv: [] });
  readonly result: Promise<TableProfile>;
  onRead: (bytes: number) => void = () => {};

  constructor() {
    this.result = new Promise<TableProfile>((ok, fail) => {
      this.worker.on('message', (m: WorkerMessage) => {
        if ('read' in m) this.onRead(m.read);
        else if ('profile' in m) ok(TableProfile.fromTransfer(m.profile));
        else fail(new SplitFailed(m.error));
      });
      this.worker.on('error', (err) => fail(new SplitFailed(err.message)));
      this.worker.on('exit', (code) =>
        fail(new SplitFailed(`the CSV profile worker stopped (exit code ${code})`)),
      );
    });
    // Awaited once the first range is done; until then (or if it never is) a failure is only noted.
    this.result.catch(() => {});
  }

  begin(path: string, plan: WorkerPlan): void {
    this.worker.postMessage({ path, plan });
  }

  /** Ends the thread (after its profile arrived, or when it is not needed). */
  stop(): void {
    void this.worker.terminate();
  }
}

/** One range of a file, `[start, end)`; the first has the header, the others are given the names. */
export interface RangePlan {
  read: CsvOptions;
  profile: Partial<ProfileOptions>;
  delimiter: string;
  header: boolean;
  start: number;
  /** Where the range ends (a cut just past a line feed), or infinity for the end of the file. */
  end: number;
  /** The columns of a range that does not start the file. */
  names?: string[];
  /** Called with the column names once the first row was read. */
  onNames?: (names: string[]) => void;
}

/** A range that ends inside a row (its cut fell inside a quoted field). */
export class MisalignedRange extends SplitFailed {}

/**
 * The parse state of one range: its columns once named, and the cells of the row being parsed.
 * A class, not closures made per call of `profileRange`: a second file read by the same process
 * calls the same functions, so the optimized `parse` (and what it inlined) serves it as it is.
 */
class RangeParser {
  private names: string[] | null = null;
  private sink: CsvSink | null = null;
  private width = 0;
  /** Data rows parsed. */
  private rows = 0;
  /** Fields of the row being parsed. */
  private fields = 0;
  /** The cells of the row being parsed: per field its start and end. */
  private cells = new Int32Array(256);
  private used = 0;
  private extra = Buffer.allocUnsafe(1 << 12);
  private extraUsed = 0;
  private readonly delimiter: number;

  constructor(
    private readonly path: string,
    private readonly plan: RangePlan,
    private readonly profile: TableProfile,
    private readonly batchRows: number,
  ) {
    this.delimiter = plan.delimiter.charCodeAt(0);
    if (plan.names) this.startColumns(plan.names);
  }

  /** Where an error is: the header or the data row being read. */
  current(): string {
    return this.names === null && this.plan.header ? 'the header row' : `data row ${this.rows + 1}`;
  }

  /** The profile, complete once every row was parsed. */
  finish(): TableProfile {
    return this.sink ? this.sink.finish() : this.profile;
  }

  /** A quoted field's value, kept in `extra`. */
  private recordExtra(value: Uint8Array): void {
    const len = value.length;
    if (this.extraUsed + len + KEY_SLACK > this.extra.length) {
      const next = Buffer.allocUnsafe(Math.max(this.extra.length * 2, this.extraUsed + len + KEY_SLACK));
      this.extra.copy(next, 0, 0, this.extraUsed);
      this.extra = next;
    }
    this.extra.set(value, this.extraUsed);
    const cells = withRoom(this.cells, this.used);
    cells[this.used] = ~this.extraUsed;
    cells[this.used + 1] = ~(this.extraUsed + len);
    this.cells = cells;
    this.used += 2;
    this.extraUsed += len;
    this.fields++;
  }

  private startColumns(names: string[]): void {
    this.names = names;
    this.width = names.length;
    this.sink = new CsvSink(this.profile, names, this.batchRows);
    this.plan.onNames?.(names);
  }

  /**
   * The end of a row off the common path: the header (read and dropped), the first row of a file
   * without one, or a row longer than the header (an error). True for a data row to add.
   */
  private endRow(chunk: Buffer): boolean {
    if (this.names === null) {
      if (this.plan.header) {
        const cells = this.cells;
        const values: (string | null)[] = [];
        for (let k = 0; k < this.used; k += 2) {
          const start = cells[k]!;
          const end = cells[k + 1]!;
          values.push(
            start === end ? null : start >= 0 ? decode(chunk, start, end) : decode(this.extra, ~start, ~end),
          );
        }
        this.startColumns(columnNames(values));
        return false;
      }
      this.startColumns(Array.from({ length: this.fields }, (_, j) => `column_${j + 1}`));
    }
    this.rows++;
    if (this.fields > this.width) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `${this.path}: data row ${this.rows}: ${this.fields} fields, but the header has ${this.width}`,
      );
    }
    return true;
  }

  /**
   * Parses the complete rows of `buf`'s first `n` bytes into cells and returns where the first
   * incomplete row starts (`n` when none is); that row's cells are dropped. `buf` holds at least
   * `KEY_SLACK` bytes past `n` (their values do not matter), so a cell's key loads never run off it.
   */
  parse(buf: Buffer, n: number): number {
    const dl = this.delimiter;
    let i = 0;
    let rowStart = 0;
    // The per-cell state lives in locals; it is written back around the helpers that use it (the
    // cells are the parser's own: grown in place by `grow`).
    let cs = this.cells;
    let u = 0;
    let f = 0;
    let cut = false;
    this.extraUsed = 0;
    while (i < n) {
      let c = buf[i]!;
      if (c === QUOTE) {
        // A quoted field: doubled quotes are literal, text after the closing quote is kept.
        const parts: Uint8Array[] = [];
        let start = ++i;
        let closed = false;
        while (i < n) {
          c = buf[i]!;
          if (c !== QUOTE) {
            i++;
            continue;
          }
          if (i > start) parts.push(buf.subarray(start, i));
          i++;
          if (i === n) break;
          c = buf[i]!;
          if (c === QUOTE) {
            start = i++; // the second quote starts the next part
            continue;
          }
          if (c !== dl && c !== LF && c !== CR) {
            start = i;
            while (i < n) {
              c = buf[i]!;
              if (c === dl || c === LF || c === CR) break;
              i++;
            }
            if (i === n) break;
            parts.push(buf.subarray(start, i));
          }
          closed = true;
          break;
        }
        if (!closed) {
          cut = true; // the row is cut by the end of the bytes
          break;
        }
        if (parts.length === 0) {
          if (u + 2 > cs.length) cs = this.grow(u);
          cs[u] = cs[u + 1] = 0;
          u += 2;
          f++;
        } else {
          this.used = u;
          this.fields = f;
          this.cells = cs;
          this.recordExtra(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
          u = this.used;
          f = this.fields;
          cs = this.cells;
        }
        // After the field: the delimiter, or the end of the row.
        c = buf[i]!;
        i++;
        if (c === dl) continue;
      } else if (c === dl || c === LF || c === CR) {
        if (c !== dl && f === 0) {
          // A blank line.
          i++;
          rowStart = i;
          continue;
        }
        // An empty field; a row ending in a delimiter ends with one.
        if (u + 2 > cs.length) cs = this.grow(u);
        cs[u] = cs[u + 1] = i;
        u += 2;
        f++;
        i++;
        if (c === dl) continue;
      } else {
        const start = i;
        while (i < n) {
          c = buf[i]!;
          if (c === dl || c === LF || c === CR) break;
          i++;
        }
        if (i === n) {
          cut = true; // the row is cut by the end of the bytes
          break;
        }
        if (u + 2 > cs.length) cs = this.grow(u);
        cs[u] = start;
        cs[u + 1] = i;
        u += 2;
        f++;
        // After a field: the delimiter, or the end of the row.
        i++;
        if (c === dl) continue;
      }
      // The end of a row: to the columns. A line of only spaces and tabs is blank, as in pandas.
      if (f === 1 && cs[0]! >= 0 && spacesOnly(buf, cs[0]!, cs[1]!)) {
        u = 0;
        f = 0;
        this.extraUsed = 0;
        rowStart = i;
        continue;
      }
      const sink = this.sink;
      if (sink !== null && f <= this.width) {
        this.rows++;
        addRow(sink, buf, this.extra, cs, f);
      } else {
        this.used = u;
        this.fields = f;
        this.cells = cs;
        if (this.endRow(buf)) addRow(this.sink as CsvSink, buf, this.extra, cs, f);
      }
      u = 0;
      f = 0;
      this.extraUsed = 0;
      rowStart = i;
    }
    // A row cut by the end of the bytes is dropped, to be parsed again with the next read. Nothing
    // is stored after the loop: code compiled while the loop ran has no feedback for it.
    return cut || f > 0 ? rowStart : n;
  }

  /** The cells with room for one more field after `used` integers, kept as the parser's. */
  private grow(used: number): Int32Array<ArrayBuffer> {
    this.cells = withRoom(this.cells, used);
    return this.cells;
  }
}

/**
 * Fields are found by the RFC 4180 rules of `CsvParser` and written as cells (per field its byte
 * range; quoted fields are unquoted into a side buffer). A row goes to the `CsvSink` once it is
 * complete; the bytes of a row cut by the end of a read are carried to the next and parsed again.
 */
export async function profileRange(path: string, plan: RangePlan): Promise<TableProfile> {
  const read = plan.read;
  const last = plan.end === Number.POSITIVE_INFINITY;
  const parser = new RangeParser(path, plan, new TableProfile(plan.profile), read.batchRows ?? 8192);
  const fh = await open(path, 'r');
  try {
    try {
      // One buffer for the whole file: each read lands after the bytes of the row the last read
      // cut (moved to the front), so nothing is concatenated and no memory is fresh per read.
      // As utf8Chunks: a leading BOM is skipped, a character cut by a read waits for the next,
      // and at invalid UTF-8 the rows before it are counted before the error names its offset.
      const total = Math.min((await fh.stat()).size, plan.end) - plan.start;
      let buf = Buffer.allocUnsafe(2 * READ_BYTES + KEY_SLACK);
      let have = 0; // bytes in buf
      let valid = 0; // of which checked as UTF-8
      let base = plan.start; // file offset of buf[0]
      let position = plan.start; // file offset of the next read
      for (;;) {
        if (have + READ_BYTES + KEY_SLACK > buf.length) {
          const grown = Buffer.allocUnsafe(Math.max(2 * buf.length, have + READ_BYTES + KEY_SLACK));
          buf.copy(grown, 0, 0, have);
          buf = grown;
        }
        const want = Math.min(READ_BYTES, plan.end - position);
        const { bytesRead } = want > 0 ? await fh.read(buf, have, want, position) : { bytesRead: 0 };
        if (position === 0 && bytesRead >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
          buf.copyWithin(0, 3, bytesRead);
          have -= 3;
          base = 3;
        }
        position += bytesRead;
        have += bytesRead;
        const eof = bytesRead === 0;
        if (!eof) read.onProgress?.(position - plan.start, total);
        const end = eof ? have : valid + completeEnd(buf.subarray(valid, have));
        if (!isUtf8(buf.subarray(valid, end))) {
          const bad = valid + firstInvalid(buf.subarray(valid, end));
          parser.parse(buf, bad);
          throw new InvalidUtf8Error(path, base + bad);
        }
        valid = end;
        const rest = parser.parse(buf, valid);
        buf.copyWithin(0, rest, have);
        have -= rest;
        valid -= rest;
        base += rest;
        if (eof) break;
      }
      read.onProgress?.(position - plan.start, total);
      if (have > 0 && !last)
        throw new MisalignedRange(`${path}: the range ending at byte ${plan.end} ends inside a row`);
      if (have > 0) {
        // The last row has no newline: it ends with the file.
        const lastRow = Buffer.allocUnsafe(have + 1 + KEY_SLACK);
        buf.copy(lastRow, 0, 0, have);
        lastRow[have] = LF;
        if (parser.parse(lastRow, have + 1) < have + 1) {
          throw new SlipwayError(
            'SLIPWAY_ERR_BAD_REQUEST',
            `${path}: ${parser.current()}: a quoted field is not closed before the end of the file`,
          );
        }
      }
    } catch (err) {
      if (err instanceof InvalidUtf8Error) throw utf8Error(err, parser.current());
      throw err;
    }
  } finally {
    await fh.close();
  }
  return parser.finish();
}
