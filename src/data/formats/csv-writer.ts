import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { SlipwayError } from '../../errors/index.js';
import type { Cell, RowBatch } from '../table.js';

export interface CsvWriteOptions {
  /** Field separator (default `,`). */
  delimiter?: ',' | ';' | '\t' | '|';
  /** Line ending (default `\n`; RFC 4180 says `\r\n`, which every reader here also takes). */
  lineEnding?: '\n' | '\r\n';
  /** The header when no batch arrives (a table without rows still gets its header). */
  columns?: readonly string[];
}

/**
 * One cell as CSV text: numbers in their shortest round-trip form (`String(n)`, so the file
 * reads back to the same doubles), missing as an empty field, dates in ISO 8601, and a field
 * quoted (quotes doubled) when it holds the delimiter, a quote, a line break, or leading or
 * trailing blanks (RFC 4180).
 */
export function csvField(cell: Cell, delimiter = ','): string {
  switch (typeof cell) {
    case 'number':
      return Number.isNaN(cell) ? '' : String(cell);
    case 'string':
      return quoteIfNeeded(cell, delimiter);
    case 'boolean':
      return cell ? 'true' : 'false';
    case 'bigint':
      return String(cell);
    default:
      if (cell instanceof Date) return Number.isNaN(cell.getTime()) ? '' : cell.toISOString();
      return '';
  }
}

function quoteIfNeeded(text: string, delimiter: string): string {
  if (text === '') return '';
  let quote = text.charCodeAt(0) === 32 || text.charCodeAt(text.length - 1) === 32;
  if (!quote) {
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '"' || c === '\n' || c === '\r' || c === delimiter) {
        quote = true;
        break;
      }
    }
  }
  return quote ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Streams row batches to a CSV file: a header of the first batch's columns, then each batch as
 * one write (waiting when the disk falls behind). The file appears under its name only when
 * complete: it is written beside it and renamed, and removed on failure.
 *
 * @example
 *   const { rows } = await writeCsv('out.csv', fitted.transformTable(readTable('adult.csv')));
 */
export async function writeCsv(
  path: string,
  batches: AsyncIterable<RowBatch>,
  options: CsvWriteOptions = {},
): Promise<{ rows: number; columns: readonly string[] }> {
  const delimiter = options.delimiter ?? ',';
  const eol = options.lineEnding ?? '\n';
  const temp = `${path}.${process.pid}.partial`;
  const out = createWriteStream(temp);
  const failed = once(out, 'error').then(([err]) => {
    throw err;
  });
  failed.catch(() => undefined);
  const write = async (text: string) => {
    if (!out.write(text)) await Promise.race([once(out, 'drain'), failed]);
  };
  let columns: readonly string[] | null = null;
  let rows = 0;
  try {
    for await (const batch of batches) {
      if (columns === null) {
        columns = batch.columns;
        await write(columns.map((c) => quoteIfNeeded(c, delimiter)).join(delimiter) + eol);
      } else if (batch.columns.length !== columns.length) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `batch at row ${batch.firstRow} has ${batch.columns.length} columns, the file ${columns.length}`,
        );
      }
      // Fields joined per row and rows per batch: cheaper than growing one string cell by cell.
      const width = columns.length;
      const lines = new Array<string>(batch.rows.length);
      const fields = new Array<string>(width);
      for (let r = 0; r < batch.rows.length; r++) {
        const row = batch.rows[r];
        for (let c = 0; c < width; c++) fields[c] = csvField(row[c] ?? null, delimiter);
        lines[r] = fields.join(delimiter);
      }
      rows += batch.rows.length;
      if (lines.length > 0) await write(lines.join(eol) + eol);
    }
    if (columns === null && options.columns) {
      columns = options.columns;
      await write(columns.map((c) => quoteIfNeeded(c, delimiter)).join(delimiter) + eol);
    }
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
    await rename(temp, path);
  } catch (err) {
    out.destroy();
    await rm(temp, { force: true });
    throw err;
  }
  return { rows, columns: columns ?? [] };
}
