import { open, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { SlipwayError } from '../../errors/index.js';
import type { ReadOptions, RowBatch, TableFormat } from '../table.js';
import { type CsvOptions, readCsv } from './csv-reader.js';
import { readJsonl } from './jsonl-reader.js';
import { readParquet } from './parquet-reader.js';

const BY_EXTENSION: Record<string, TableFormat> = {
  '.csv': 'csv',
  '.tsv': 'csv',
  '.psv': 'csv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.parquet': 'parquet',
  '.pq': 'parquet',
};

/** The format a file's extension names, or null (a README, an unknown kind). */
export function formatByExtension(path: string): TableFormat | null {
  return BY_EXTENSION[extname(path).toLowerCase()] ?? null;
}

/**
 * A table file's format: by extension, else by content (`PAR1` magic → Parquet, a first
 * non-blank character `{` → JSON Lines, anything else → CSV).
 */
export async function detectFormat(path: string): Promise<TableFormat> {
  const byName = BY_EXTENSION[extname(path).toLowerCase()];
  if (byName) return byName;
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const b = head.subarray(0, bytesRead);
    if (b.subarray(0, 4).toString('latin1') === 'PAR1') return 'parquet';
    const text = b.toString('utf8').replace(/^\uFEFF/, '');
    return text.trimStart().startsWith('{') ? 'jsonl' : 'csv';
  } finally {
    await fh.close();
  }
}

/**
 * Reads any supported table file as a stream of batches.
 *
 * @example
 *   for await (const batch of readTable('adult.csv', { batchRows: 4096 })) profile.add(batch);
 */
export async function* readTable(path: string, options: CsvOptions = {}): AsyncGenerator<RowBatch> {
  await checkTableFile(path);
  const format = options.format ?? (await detectFormat(path));
  if (format === 'csv') yield* readCsv(path, options);
  else if (format === 'jsonl') yield* readJsonl(path, options);
  else yield* readParquet(path, options);
}

/**
 * Refuses a folder by name before any read: opened, it would read as EISDIR with no path. A
 * missing file fails here with the system's error, which carries the path.
 */
export async function checkTableFile(path: string): Promise<void> {
  if ((await stat(path)).isDirectory()) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${path}: a folder, not a table file`);
  }
}

/** The number of data rows in a table file, read in a stream. */
export async function countRows(path: string, options: ReadOptions = {}): Promise<number> {
  let n = 0;
  for await (const b of readTable(path, options)) n += b.rows.length;
  return n;
}
