import { open } from 'node:fs/promises';
import { SlipwayError } from '../../errors/index.js';
import type { Cell, ReadOptions, RowBatch } from '../table.js';
import { CsvParser } from './csv-parser.js';
import { InvalidUtf8Error, utf8Chunks, utf8Error } from './utf8-chunks.js';

export const CSV_DELIMITERS = [',', ';', '\t', '|'] as const;
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];

export interface CsvOptions extends ReadOptions {
  /** Overrides delimiter detection. */
  delimiter?: CsvDelimiter;
  /** Overrides header detection: false names the columns `column_1`, `column_2`, … */
  header?: boolean;
}

export interface CsvDialect {
  delimiter: CsvDelimiter;
  header: boolean;
}

const SAMPLE_BYTES = 64 * 1024;
const SAMPLE_ROWS = 200;
/** Bytes fed to the sniffing parser at a time; it stops once it has SAMPLE_ROWS rows. */
const SAMPLE_PIECE = 4096;
const NUMBER = /^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;

/**
 * Detects the delimiter and whether the first row is a header, from the first 64 KiB.
 *
 * Delimiter: the candidate (`,` `;` tab `|`) that splits the sampled rows into the same number of
 * fields most consistently, then into the most fields; a file with one column reads as `,`.
 * Header: no cell of the first row is numeric, not all are empty, and the first row differs
 * from the data below it — a named column is numeric in the data, or no first-row value appears
 * again in its column. An empty name counts only where it names a column of numbers or pandas'
 * index column (first, over 0, 1, 2, …); elsewhere it is a missing value of a headerless file.
 */
export async function sniffCsv(path: string): Promise<CsvDialect> {
  const fh = await open(path, 'r');
  let sample: Buffer;
  let whole: boolean;
  try {
    const buf = Buffer.alloc(SAMPLE_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SAMPLE_BYTES, 0);
    sample = buf.subarray(0, bytesRead);
    whole = bytesRead < SAMPLE_BYTES;
  } finally {
    await fh.close();
  }
  if (sample[0] === 0xef && sample[1] === 0xbb && sample[2] === 0xbf) sample = sample.subarray(3);
  if (!whole) {
    // Only whole lines; a row cut at the sample's end would look inconsistent.
    const lastNewline = sample.lastIndexOf(0x0a);
    if (lastNewline > 0) sample = sample.subarray(0, lastNewline + 1);
  }
  // The first SAMPLE_ROWS rows, fed in small pieces so a wide sample is not parsed past them.
  const sampled = (delimiter: string) => {
    const p = new CsvParser(delimiter.charCodeAt(0));
    for (let at = 0; at < sample.length && p.rows.length <= SAMPLE_ROWS; at += SAMPLE_PIECE) {
      p.push(sample.subarray(at, at + SAMPLE_PIECE));
    }
    if (p.rows.length <= SAMPLE_ROWS && (whole || !p.inQuotes)) {
      try {
        p.end();
      } catch {
        // An open quote in a sample: the rows before it still count.
      }
    }
    return p.rows.slice(0, SAMPLE_ROWS);
  };
  let best: {
    delimiter: CsvDelimiter;
    consistency: number;
    fields: number;
    rows: (string | null)[][] | null;
  } = { delimiter: ',', consistency: -1, fields: 0, rows: null };
  for (const delimiter of CSV_DELIMITERS) {
    // A delimiter the sample lacks splits every row into one field: consistency 0, nothing to parse.
    const present = sample.indexOf(delimiter.charCodeAt(0)) >= 0;
    const rows = present ? sampled(delimiter) : null;
    let fields = 1;
    let most = 0;
    if (rows) {
      const counts = new Map<number, number>();
      for (const r of rows) counts.set(r.length, (counts.get(r.length) ?? 0) + 1);
      for (const [f, c] of counts) if (c > most || (c === most && f > fields)) [fields, most] = [f, c];
    }
    const consistency = rows && fields > 1 && rows.length > 0 ? most / rows.length : 0;
    if (consistency > best.consistency || (consistency === best.consistency && fields > best.fields)) {
      best = { delimiter, consistency, fields, rows };
    }
  }
  return { delimiter: best.delimiter, header: looksLikeHeader(best.rows ?? sampled(best.delimiter)) };
}

function looksLikeHeader(rows: (string | null)[][]): boolean {
  const [first, ...data] = rows;
  if (!first || first.length === 0) return false;
  if (first.every((c) => c === null) || first.some((c) => c !== null && NUMBER.test(c))) return false;
  if (data.length === 0) return !first.includes(null);
  // A name over a column of numbers. An empty cell there proves nothing: it is what a missing
  // number looks like in a file without a header.
  for (let j = 0; j < first.length; j++) {
    if (first[j] === null) continue;
    const values = data.map((r) => r[j] ?? null).filter((v): v is string => v !== null);
    if (values.length > 0 && values.every((v) => NUMBER.test(v))) return true;
  }
  // An empty name is a header only as pandas' `to_csv` writes its index column: first, over 0, 1, 2, …
  if (first.includes(null) && !(first[0] === null && data.every((r, i) => r[0] === String(i)))) return false;
  return first.every((name, j) => name === null || !data.some((r) => r[j] === name));
}

/**
 * Column names as pandas' `read_csv` gives them, trimmed: an empty name is `Unnamed: <index>`
 * (0-based), and a repeated one gets `.1`, `.2`, … skipping names the header already holds —
 * so a drift report names the columns Evidently names on the same file.
 *
 * @example columnNames(['a', 'a', null, 'a.1']) // ['a', 'a.2', 'Unnamed: 2', 'a.1']
 */
export function columnNames(header: readonly (string | null)[]): string[] {
  const names = header.map((raw, j) => (raw?.trim() ? raw.trim() : `Unnamed: ${j}`));
  // How many columns hold each name now (pandas checks the header as renamed so far).
  const held = new Map<string, number>();
  for (const n of names) held.set(n, (held.get(n) ?? 0) + 1);
  const counts = new Map<string, number>();
  // Named columns keep their names before unnamed ones are renamed.
  const order = names.map((_, j) => j);
  order.sort((a, b) => Number(header[a]?.trim() ? 0 : 1) - Number(header[b]?.trim() ? 0 : 1) || a - b);
  for (const j of order) {
    const base = names[j]!;
    let name = base;
    let count = counts.get(base) ?? 0;
    while (count > 0) {
      counts.set(base, count + 1);
      name = `${base}.${count}`;
      count = held.has(name) ? count + 1 : (counts.get(name) ?? 0);
    }
    if (name !== base) {
      const left = held.get(base)! - 1;
      if (left === 0) held.delete(base);
      else held.set(base, left);
      held.set(name, (held.get(name) ?? 0) + 1);
    }
    names[j] = name;
    counts.set(name, count + 1);
  }
  return names;
}

/**
 * Reads a CSV file as batches of string cells (empty → null), streaming 1 MiB at a time.
 * A row shorter than the header is padded with nulls; a longer one is an error naming the row.
 *
 * @example
 *   for await (const b of readCsv('adult.csv')) console.log(b.firstRow, b.rows.length);
 */
export async function* readCsv(path: string, options: CsvOptions = {}): AsyncGenerator<RowBatch> {
  const batchRows = options.batchRows ?? 8192;
  const sniffed =
    options.delimiter !== undefined && options.header !== undefined ? undefined : await sniffCsv(path);
  const delimiter = options.delimiter ?? sniffed!.delimiter;
  const header = options.header ?? sniffed!.header;
  const parser = new CsvParser(delimiter.charCodeAt(0));
  let columns: string[] | undefined;
  let emitted = 0; // data rows already in yielded or pending batches
  let batch: Cell[][] = [];
  let firstRow = 1;
  const bad = (row: number, message: string) =>
    new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${path}: data row ${row}: ${message}`);
  // The row being parsed when the input fails.
  const current = () =>
    !columns && header ? 'the header row' : `data row ${emitted + parser.rows.length + 1}`;

  function* take(): Generator<RowBatch> {
    const rows = parser.rows;
    parser.rows = [];
    for (const r of rows) {
      if (!columns) {
        columns = header ? columnNames(r) : r.map((_, j) => `column_${j + 1}`);
        if (header) continue;
      }
      emitted++;
      if (r.length > columns.length) {
        throw bad(emitted, `${r.length} fields, but the header has ${columns.length}`);
      }
      while (r.length < columns.length) r.push(null);
      batch.push(r);
      if (batch.length >= batchRows) {
        yield { columns, rows: batch, firstRow };
        firstRow += batch.length;
        batch = [];
      }
    }
  }

  try {
    for await (const chunk of utf8Chunks(path, { onProgress: options.onProgress })) {
      parser.push(chunk);
      yield* take();
    }
    try {
      parser.end();
    } catch (err) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${path}: ${current()}: ${(err as Error).message}`);
    }
    yield* take();
  } catch (err) {
    if (err instanceof InvalidUtf8Error) {
      throw utf8Error(err, current());
    }
    throw err;
  }
  if (batch.length > 0 || (firstRow === 1 && columns)) yield { columns: columns!, rows: batch, firstRow };
}
