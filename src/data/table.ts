/**
 * The shape tables travel in between readers (CSV, JSON Lines, Parquet), profiles, validation
 * and cleaning: batches of rows under one header, streamed so a file of any size stays within a
 * bounded amount of memory.
 */

/**
 * One cell as a reader gives it. CSV gives strings (type inference decides later; an empty field
 * is `null`); JSON Lines and Parquet give their own types. Dates arrive as `Date` only from
 * formats that type them (Parquet); a CSV date is a string until inferred.
 */
export type Cell = string | number | boolean | bigint | Date | null;

export interface RowBatch {
  /** Column names, the same for every batch of one table. */
  columns: readonly string[];
  /** Rows, each with one cell per column (missing trailing cells are `null`). */
  rows: Cell[][];
  /** 1-based data row number of `rows[0]` in the file (the header is not a row). */
  firstRow: number;
}

export type TableFormat = 'csv' | 'jsonl' | 'parquet';

export interface ReadOptions {
  /** Rows per batch (default 8192). */
  batchRows?: number;
  /** Called with bytes read so far and the total, for a progress bar on a terminal. */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Overrides format detection (by extension, then content). */
  format?: TableFormat;
}

/**
 * Reads a table file as a stream of batches.
 *
 * @example
 *   for await (const batch of readTable('adult.csv')) profile.add(batch);
 */
export type TableReader = (path: string, options?: ReadOptions) => AsyncIterable<RowBatch>;
