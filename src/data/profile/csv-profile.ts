import { SlipwayError } from '../../errors/index.js';
import { type CsvOptions, columnNames, sniffCsv } from '../formats/csv-reader.js';
import { InvalidUtf8Error, utf8Chunks, utf8Error } from '../formats/utf8-chunks.js';
import type { ColumnProfile, ProfileOptions } from './column-profile.js';
import { Kind, type Parsed, parseCell } from './parse-cell.js';
import { TableProfile } from './table-profile.js';
import type { Key } from './value-counts.js';

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

function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h;
}

/**
 * One column of a CSV profiled straight from its bytes. Each distinct byte sequence (a *slot*) is
 * decoded and classified by `parseCell` once; a repeated cell costs a hash-table probe on its
 * bytes, a count and, for numbers and dates, the Welford update `Moments.add` would make. The
 * counts go into the column's `ColumnProfile` in the order their values first appeared
 * (`flush`), so the profile is the one `ColumnProfile.add` gives cell by cell, to the bit.
 *
 * A column leaves this path for `ColumnProfile.add` on decoded strings (`slow`) when its exact
 * counts turn into sketches (more than `exactLimit` values, or the table's memory budget), or
 * when its distinct byte sequences outgrow their bound.
 */
class CsvColumn {
  slow = false;
  /** Open addressing over slots (slot index + 1; 0 is empty), linear probing. */
  private table = new Int32Array(1024);
  private mask = 1023;
  private slots = 0;
  private slotHash = new Int32Array(512);
  private slotStart = new Int32Array(512);
  private slotLen = new Int32Array(512);
  private slotKind = new Uint8Array(512);
  private slotKey = new Int32Array(512);
  /** The number (or epoch ms of a date) the slot's cells add to the moments. */
  private slotNum = new Float64Array(512);
  /** Cells since the last flush. */
  private slotCount = new Float64Array(512);
  /** Slot values (strings, big integers, booleans) that are not numbers. */
  private slotValue: (Key | undefined)[] = [];
  private arena = new Uint8Array(1 << 14);
  private arenaUsed = 0;
  /** Distinct values (keys) in first-seen order, and the key index of each. */
  private readonly keys: Key[] = [];
  private readonly keyIndex = new Map<Key, number>();
  /** What `ValueCounts.bytes` holds once the keys are flushed. */
  bytes = 0;
  private padded = 0;
  // The moments, updated as `Moments.add` does and copied to the profile on flush.
  private n = 0;
  private mean = 0;
  private m2 = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;
  private dn = 0;
  private dmean = 0;
  private dm2 = 0;
  private dmin = Number.POSITIVE_INFINITY;
  private dmax = Number.NEGATIVE_INFINITY;
  private readonly parsed: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };
  private readonly slotLimit: number;

  constructor(
    readonly profile: ColumnProfile,
    private readonly exactLimit: number,
  ) {
    this.slotLimit = 2 * exactLimit + 1024;
  }

  /** One cell: bytes `[start, end)` of `buf` (empty is missing) whose FNV-1a hash is `h`. */
  add(buf: Uint8Array, start: number, end: number, h: number): void {
    if (this.slow) {
      this.profile.add(end === start ? null : decode(buf, start, end));
      return;
    }
    if (end === start) {
      this.padded++;
      return;
    }
    const len = end - start;
    const table = this.table;
    const mask = this.mask;
    let at = (h ^ (h >>> 15)) & mask;
    let slot: number;
    for (;;) {
      slot = table[at]! - 1;
      if (slot < 0) {
        slot = this.create(buf, start, end, h, at);
        if (slot < 0) return; // the column went slow with this cell
        break;
      }
      if (this.slotHash[slot] === h && this.slotLen[slot] === len) {
        const arena = this.arena;
        let p = this.slotStart[slot]!;
        let i = start;
        while (i < end && arena[p] === buf[i]) {
          p++;
          i++;
        }
        if (i === end) break;
      }
      at = (at + 1) & mask;
    }
    this.slotCount[slot]!++;
    const kind = this.slotKind[slot]!;
    if (kind === Kind.Integer || kind === Kind.Float || kind === Kind.BigInteger) {
      const x = this.slotNum[slot]!;
      const n = ++this.n;
      const d = x - this.mean;
      this.mean += d / n;
      this.m2 += d * (x - this.mean);
      if (x < this.min) this.min = x;
      if (x > this.max) this.max = x;
    } else if (kind === Kind.Datetime) {
      const x = this.slotNum[slot]!;
      const n = ++this.dn;
      const d = x - this.dmean;
      this.dmean += d / n;
      this.dm2 += d * (x - this.dmean);
      if (x < this.dmin) this.dmin = x;
      if (x > this.dmax) this.dmax = x;
    }
  }

  /** A row shorter than the header: its remaining cells are missing. */
  addMissing(): void {
    if (this.slow) this.profile.add(null);
    else this.padded++;
  }

  /** A new slot for this cell, counted by the caller; -1 when the column went slow on it. */
  private create(buf: Uint8Array, start: number, end: number, h: number, at: number): number {
    const len = end - start;
    if (this.slots >= this.slotLimit || this.arenaUsed + len > 1 << 26) {
      this.goSlow(false);
      this.profile.add(decode(buf, start, end));
      return -1;
    }
    const text = decode(buf, start, end);
    const p = parseCell(text, this.parsed);
    const s = this.slots++;
    if (s === this.slotHash.length) this.growSlots();
    if (this.arenaUsed + len > this.arena.length) {
      const arena = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + len));
      arena.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = arena;
    }
    this.arena.set(buf.subarray(start, end), this.arenaUsed);
    this.slotStart[s] = this.arenaUsed;
    this.arenaUsed += len;
    this.slotHash[s] = h;
    this.slotLen[s] = len;
    this.slotKind[s] = p.kind;
    this.slotCount[s] = 0;
    let keyed = true;
    switch (p.kind) {
      case Kind.Integer:
      case Kind.Float:
        this.slotNum[s] = p.value as number;
        break;
      case Kind.BigInteger:
        this.slotNum[s] = Number(p.value as bigint);
        this.slotValue[s] = p.value;
        break;
      case Kind.Datetime:
        this.slotNum[s] = p.ms;
        this.slotValue[s] = p.value;
        break;
      case Kind.Missing:
      case Kind.Infinite:
        keyed = false;
        break;
      default:
        this.slotValue[s] = p.value;
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
        this.bytes += typeof value === 'string' ? 120 + value.length : 120;
        overLimit = this.keys.length > this.exactLimit;
      } else key = known;
    }
    this.slotKey[s] = key;
    this.table[at] = s + 1;
    if (this.slots * 2 > this.table.length) this.rehash();
    if (overLimit) {
      // As ColumnProfile.add: this value is counted, then the counts become sketches.
      this.slotCount[s] = 1;
      this.countMoments(p);
      this.goSlow(true);
      return -1;
    }
    return s;
  }

  private countMoments(p: Parsed): void {
    if (p.kind === Kind.Integer || p.kind === Kind.Float || p.kind === Kind.BigInteger) {
      const x = p.kind === Kind.BigInteger ? Number(p.value as bigint) : (p.value as number);
      const n = ++this.n;
      const d = x - this.mean;
      this.mean += d / n;
      this.m2 += d * (x - this.mean);
      if (x < this.min) this.min = x;
      if (x > this.max) this.max = x;
    } else if (p.kind === Kind.Datetime) {
      const x = p.ms;
      const n = ++this.dn;
      const d = x - this.dmean;
      this.dmean += d / n;
      this.dm2 += d * (x - this.dmean);
      if (x < this.dmin) this.dmin = x;
      if (x > this.dmax) this.dmax = x;
    }
  }

  /** Moves what the slots counted into the profile; afterwards the profile takes every cell. */
  goSlow(sketch: boolean): void {
    if (this.slow) return;
    this.flush();
    if (sketch) this.profile.sketch();
    this.slow = true;
    // Drop the slots: the profile holds everything now.
    this.table = new Int32Array(0);
    this.slotHash = this.slotStart = this.slotLen = this.slotKey = new Int32Array(0);
    this.slotKind = new Uint8Array(0);
    this.slotNum = this.slotCount = new Float64Array(0);
    this.slotValue = [];
    this.arena = new Uint8Array(0);
    this.keys.length = 0;
    this.keyIndex.clear();
  }

  /** Adds the cells counted since the last flush to the profile. */
  flush(): void {
    if (this.slow) return;
    const c = this.profile;
    const t = c.types;
    c.missing += this.padded;
    this.padded = 0;
    const keyCounts = new Float64Array(this.keys.length);
    for (let s = 0; s < this.slots; s++) {
      const count = this.slotCount[s]!;
      if (count === 0) continue;
      this.slotCount[s] = 0;
      switch (this.slotKind[s] as Kind) {
        case Kind.Missing:
          c.missing += count;
          continue;
        case Kind.Integer:
          t.integer += count;
          break;
        case Kind.BigInteger: {
          t.integer += count;
          const big = this.slotValue[s] as bigint;
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
          const len = (this.slotValue[s] as string).length;
          c.lengthSum += len * count;
          if (len < c.lengthMin) c.lengthMin = len;
          if (len > c.lengthMax) c.lengthMax = len;
          break;
        }
      }
      keyCounts[this.slotKey[s]!]! += count;
    }
    const exact = c.exact;
    if (exact) {
      // Key order is first-seen order, as ColumnProfile.add inserts them.
      for (let k = 0; k < keyCounts.length; k++)
        if (keyCounts[k]! > 0) exact.add(this.keys[k]!, keyCounts[k]!);
    }
    const m = c.numeric;
    m.n = this.n;
    m.mean = this.mean;
    m.m2 = this.m2;
    m.min = this.min;
    m.max = this.max;
    const dt = c.datetime;
    dt.n = this.dn;
    dt.mean = this.dmean;
    dt.m2 = this.dm2;
    dt.min = this.dmin;
    dt.max = this.dmax;
  }

  private growSlots(): void {
    const size = this.slotHash.length * 2;
    const grow = <T extends Int32Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.slotHash = grow(this.slotHash, (n) => new Int32Array(n));
    this.slotStart = grow(this.slotStart, (n) => new Int32Array(n));
    this.slotLen = grow(this.slotLen, (n) => new Int32Array(n));
    this.slotKey = grow(this.slotKey, (n) => new Int32Array(n));
    this.slotKind = grow(this.slotKind, (n) => new Uint8Array(n));
    this.slotNum = grow(this.slotNum, (n) => new Float64Array(n));
    this.slotCount = grow(this.slotCount, (n) => new Float64Array(n));
  }

  private rehash(): void {
    const size = this.table.length * 2;
    const table = new Int32Array(size);
    const mask = size - 1;
    for (let s = 0; s < this.slots; s++) {
      const h = this.slotHash[s]!;
      let at = (h ^ (h >>> 15)) & mask;
      while (table[at] !== 0) at = (at + 1) & mask;
      table[at] = s + 1;
    }
    this.table = table;
    this.mask = mask;
  }
}

/**
 * Profiles a CSV file in one pass over its bytes, without building rows of strings: the profile
 * equals `new TableProfile(options).add(batch)` over `readCsv(path, read)`'s batches, bit for bit
 * (same dialect detection, same cells, same errors, the memory budget checked after every
 * `batchRows` rows as `add` checks it per batch).
 *
 * Fields are found by the RFC 4180 rules of `CsvParser`; a row is taken once it is complete (the
 * bytes of a row cut by the end of a read are carried to the next), quoted fields are unquoted
 * into their own buffer.
 */
export async function profileCsv(
  path: string,
  read: CsvOptions = {},
  profileOptions: Partial<ProfileOptions> = {},
): Promise<TableProfile> {
  const profile = new TableProfile(profileOptions);
  const batchRows = read.batchRows ?? 8192;
  const sniffed =
    read.delimiter !== undefined && read.header !== undefined ? undefined : await sniffCsv(path);
  const d = (read.delimiter ?? sniffed!.delimiter).charCodeAt(0);
  const header = read.header ?? sniffed!.header;

  let columns: CsvColumn[] | null = null;
  let width = 0;
  let rows = 0; // data rows taken
  let inBatch = 0;
  // The fields of the row being read: where their bytes are and their hashes.
  let fields = 0;
  let fieldBuf: (Uint8Array | null)[] = new Array(64).fill(null);
  let fieldStart = new Int32Array(64);
  let fieldEnd = new Int32Array(64);
  let fieldHash = new Int32Array(64);

  const record = (buf: Uint8Array | null, start: number, end: number, h: number) => {
    if (fields === fieldStart.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      fieldStart = grow(fieldStart);
      fieldEnd = grow(fieldEnd);
      fieldHash = grow(fieldHash);
      fieldBuf = fieldBuf.concat(new Array(fieldBuf.length).fill(null));
    }
    fieldBuf[fields] = buf;
    fieldStart[fields] = start;
    fieldEnd[fields] = end;
    fieldHash[fields] = h;
    fields++;
  };

  const budget = () => {
    let total = 0;
    for (const c of columns!) total += c.slow ? c.profile.exactBytes : c.bytes;
    if (total <= profile.options.exactBytes) return;
    for (const c of columns!) c.flush();
    profile.keepWithinBudget();
    for (const c of columns!) if (!c.profile.exact) c.goSlow(false);
  };

  /** Takes the complete row in `fields` (bytes of `chunk` unless a field has its own buffer). */
  const takeRow = (chunk: Uint8Array) => {
    if (columns === null) {
      if (header) {
        const names: (string | null)[] = [];
        for (let j = 0; j < fields; j++) {
          const buf = fieldBuf[j] ?? chunk;
          names.push(fieldEnd[j] === fieldStart[j] ? null : decode(buf, fieldStart[j]!, fieldEnd[j]!));
        }
        columns = makeColumns(profile, columnNames(names));
        width = columns.length;
        return;
      }
      columns = makeColumns(
        profile,
        Array.from({ length: fields }, (_, j) => `column_${j + 1}`),
      );
      width = columns.length;
    }
    rows++;
    if (fields > width) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `${path}: data row ${rows}: ${fields} fields, but the header has ${width}`,
      );
    }
    const cols = columns;
    for (let j = 0; j < fields; j++) {
      const buf = fieldBuf[j];
      cols[j]!.add(buf ?? chunk, fieldStart[j]!, fieldEnd[j]!, fieldHash[j]!);
      if (buf) fieldBuf[j] = null;
    }
    for (let j = fields; j < width; j++) cols[j]!.addMissing();
    if (++inBatch === batchRows) {
      inBatch = 0;
      budget();
    }
  };

  /**
   * Parses the complete rows of `buf` from offset 0 and returns where the first incomplete row
   * starts (`buf.length` when none is).
   */
  const parse = (buf: Buffer): number => {
    const n = buf.length;
    let i = 0;
    let rowStart = 0;
    fields = 0;
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
          if (c !== d && c !== LF && c !== CR) {
            start = i;
            while (i < n) {
              c = buf[i]!;
              if (c === d || c === LF || c === CR) break;
              i++;
            }
            if (i === n) break;
            parts.push(buf.subarray(start, i));
          }
          closed = true;
          break;
        }
        if (!closed) return rowStart;
        if (parts.length === 0) record(null, 0, 0, 0);
        else {
          const value = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
          record(value, 0, value.length, hashBytes(value, 0, value.length));
        }
      } else if (c === d) {
        record(null, i, i, 0);
        i++;
        continue;
      } else if (c === LF || c === CR) {
        if (fields > 0) {
          // A row ending in a delimiter ends with an empty field.
          record(null, i, i, 0);
          takeRow(buf);
          fields = 0;
        }
        i++;
        rowStart = i;
        continue;
      } else {
        const start = i;
        let h = FNV_OFFSET;
        while (i < n) {
          c = buf[i]!;
          if (c === d || c === LF || c === CR) break;
          h = Math.imul(h ^ c, FNV_PRIME);
          i++;
        }
        if (i === n) return rowStart;
        record(null, start, i, h);
      }
      // After a field: the delimiter, or the end of the row.
      c = buf[i]!;
      i++;
      if (c !== d) {
        takeRow(buf);
        fields = 0;
        rowStart = i;
      }
    }
    return fields > 0 ? rowStart : n;
  };

  let carry: Buffer | null = null;
  const current = () => (columns === null && header ? 'the header row' : `data row ${rows + 1}`);
  try {
    for await (const chunk of utf8Chunks(path, { onProgress: read.onProgress })) {
      const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      const rest = parse(buf);
      // Fields of the cut row may point into `buf`; they are parsed again with the next bytes.
      for (let j = 0; j < fields; j++) fieldBuf[j] = null;
      fields = 0;
      carry = rest < buf.length ? Buffer.from(buf.subarray(rest)) : null;
    }
    if (carry) {
      // The last row has no newline: it ends with the file.
      const buf = Buffer.concat([carry, Buffer.from([LF])]);
      if (parse(buf) < buf.length) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `${path}: ${current()}: a quoted field is not closed before the end of the file`,
        );
      }
    }
  } catch (err) {
    if (err instanceof InvalidUtf8Error) throw utf8Error(err, current());
    throw err;
  }
  if (columns !== null) {
    for (const c of columns as CsvColumn[]) c.flush();
    profile.rows = rows;
    if (inBatch > 0 || rows === 0) profile.keepWithinBudget();
  }
  return profile;
}

function makeColumns(profile: TableProfile, names: string[]): CsvColumn[] {
  return profile.addColumns(names).map((c) => new CsvColumn(c, profile.options.exactLimit));
}
