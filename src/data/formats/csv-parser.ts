import { isAscii } from 'node:buffer';

/** A line of only these is blank, as pandas' parser skips it. */
const SPACES = /^[ \t]+$/;

/** Buffer's own decoders, without `toString`'s argument handling. Latin-1 is exact for ASCII. */
interface Slicers {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;

const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
const QUOTE_IN_QUOTED = 3;

/**
 * An RFC 4180 parser over byte chunks: a state machine on bytes that slices each field out of
 * its chunk once (no per-character string building). Quoted fields may hold the delimiter,
 * doubled quotes and newlines; rows end at LF, CRLF or CR; blank lines are skipped; an empty
 * field (quoted or not) is `null`, as pandas reads it. Text after a closing quote is kept as part
 * of the field, as most readers do, rather than failing the file.
 *
 * @example
 *   const p = new CsvParser(0x2c);
 *   p.push(Buffer.from('a,"b ""c"""\n1,\n'));
 *   p.end();
 *   p.rows; // [['a', 'b "c"'], ['1', null]]
 */
export class CsvParser {
  /** Completed rows; the caller takes them (`splice`) between pushes. */
  rows: (string | null)[][] = [];
  private row: (string | null)[] = [];
  private state = FIELD_START;
  /** Bytes of the current field kept from earlier chunks, or split around a doubled quote. */
  private parts: Buffer[] = [];
  private skipLf = false;
  /** The chunk as text when it is ASCII (byte offsets are then character offsets), else null. */
  private text: string | null = null;

  constructor(private readonly delimiter: number) {}

  push(chunk: Buffer): void {
    const d = this.delimiter;
    const n = chunk.length;
    // Slicing one string in JavaScript is cheaper than a native decode per field.
    this.text = isAscii(chunk) ? (chunk as unknown as Slicers).latin1Slice(0, n) : null;
    let state = this.state;
    let i = 0;
    if (this.skipLf) {
      this.skipLf = false;
      if (n > 0 && chunk[0] === LF) i = 1;
    }
    let start = i;
    for (; i < n; i++) {
      const c = chunk[i]!;
      if (state === UNQUOTED) {
        if (c === d) {
          this.field(chunk, start, i);
          state = FIELD_START;
          start = i + 1;
        } else if (c === LF || c === CR) {
          this.field(chunk, start, i);
          this.endUnquotedRow();
          state = FIELD_START;
          i = this.afterNewline(chunk, i);
          start = i + 1;
        }
      } else if (state === QUOTED) {
        if (c === QUOTE) {
          if (i > start) this.parts.push(chunk.subarray(start, i));
          state = QUOTE_IN_QUOTED;
          start = i + 1;
        }
      } else if (state === FIELD_START) {
        if (c === QUOTE) {
          state = QUOTED;
          start = i + 1;
        } else if (c === d) {
          this.row.push(null);
          start = i + 1;
        } else if (c === LF || c === CR) {
          if (this.row.length > 0) {
            this.row.push(null);
            this.endRow();
          }
          i = this.afterNewline(chunk, i);
          start = i + 1;
        } else {
          state = UNQUOTED;
          start = i;
        }
      } else {
        // QUOTE_IN_QUOTED: a doubled quote is a literal one; a delimiter or newline ends the field.
        if (c === QUOTE) {
          state = QUOTED;
          start = i;
        } else if (c === d) {
          this.field(chunk, start, i);
          state = FIELD_START;
          start = i + 1;
        } else if (c === LF || c === CR) {
          this.field(chunk, start, i);
          this.endRow();
          state = FIELD_START;
          i = this.afterNewline(chunk, i);
          start = i + 1;
        } else {
          state = UNQUOTED;
          start = i;
        }
      }
    }
    if ((state === UNQUOTED || state === QUOTED) && start < n) this.parts.push(chunk.subarray(start, n));
    this.state = state;
  }

  /** Ends the input. Throws when a quoted field is still open. */
  end(): void {
    const empty = Buffer.alloc(0);
    if (this.state === QUOTED) throw new Error('a quoted field is not closed before the end of the file');
    if (this.state === UNQUOTED) {
      this.field(empty, 0, 0);
      this.endUnquotedRow();
    } else if (this.state === QUOTE_IN_QUOTED) this.field(empty, 0, 0);
    else if (this.row.length > 0) this.row.push(null);
    if (this.row.length > 0) this.endRow();
    this.state = FIELD_START;
  }

  /** True while a quoted field is open (its newlines are inside the field). */
  get inQuotes(): boolean {
    return this.state === QUOTED || this.state === QUOTE_IN_QUOTED;
  }

  private field(chunk: Buffer, start: number, end: number): void {
    let value: string;
    if (this.parts.length === 0) {
      if (end === start) {
        this.row.push(null);
        return;
      }
      // V8 copies a slice shorter than 13 characters; a longer one would keep the whole chunk's
      // text alive for as long as a consumer keeps the value, so it is decoded on its own.
      value =
        this.text !== null && end - start < 13
          ? this.text.slice(start, end)
          : this.text !== null
            ? (chunk as unknown as Slicers).latin1Slice(start, end)
            : (chunk as unknown as Slicers).utf8Slice(start, end);
    } else {
      if (end > start) this.parts.push(chunk.subarray(start, end));
      value = Buffer.concat(this.parts).toString('utf8');
      this.parts = [];
    }
    this.row.push(value === '' ? null : value);
  }

  private endRow(): void {
    this.rows.push(this.row);
    this.row = [];
  }

  /** Ends a row whose last field was unquoted: a line of nothing but spaces and tabs is blank. */
  private endUnquotedRow(): void {
    const row = this.row;
    if (row.length === 1 && typeof row[0] === 'string' && SPACES.test(row[0])) this.row = [];
    else this.endRow();
  }

  /** Index of the newline's last byte: a CR followed by LF is one newline, even across chunks. */
  private afterNewline(chunk: Buffer, i: number): number {
    if (chunk[i] !== CR) return i;
    if (i + 1 < chunk.length) return chunk[i + 1] === LF ? i + 1 : i;
    this.skipLf = true;
    return i;
  }
}
