import { SlipwayError } from '../../errors/index.js';
import type { Cell, ReadOptions, RowBatch } from '../table.js';

/** The slice of hyparquet (pure JavaScript, no native code) this reader uses. */
interface AsyncBuffer {
  byteLength: number;
}
interface ParquetMetadata {
  row_groups: { num_rows: bigint | number }[];
}
interface Hyparquet {
  asyncBufferFromFile(path: string): Promise<AsyncBuffer>;
  parquetMetadataAsync(file: AsyncBuffer): Promise<ParquetMetadata>;
  parquetSchema(metadata: ParquetMetadata): { children: { element: { name: string } }[] };
  parquetRead(options: {
    file: AsyncBuffer;
    metadata: ParquetMetadata;
    rowStart: number;
    rowEnd: number;
    onComplete: (rows: unknown[][]) => void;
  }): Promise<void>;
}

// A variable specifier: the package is optional, so the build does not depend on it being installed.
const HYPARQUET = 'hyparquet';

async function loadHyparquet(): Promise<Hyparquet> {
  try {
    return (await import(HYPARQUET)) as Hyparquet;
  } catch {
    throw new SlipwayError(
      'SLIPWAY_ERR_NOT_IMPLEMENTED',
      'reading Parquet needs the hyparquet package (npm install hyparquet)',
    );
  }
}

/** True when Parquet files can be read here. */
export async function parquetAvailable(): Promise<boolean> {
  try {
    await import(HYPARQUET);
    return true;
  } catch {
    return false;
  }
}

function cell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
      return v;
    case 'bigint':
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    default:
      if (v instanceof Date) return v;
      if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
      return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}

/**
 * Reads a Parquet file one row group at a time (memory is bounded by the largest row group), as
 * files written by pandas and pyarrow lay them out; snappy-compressed and uncompressed pages are
 * read. Integers come as numbers (as bigint beyond 2^53), timestamps as `Date`, binary as base64,
 * nested values as JSON text.
 *
 * @example
 *   for await (const b of readParquet('adult.parquet')) console.log(b.columns, b.rows.length);
 */
export async function* readParquet(path: string, options: ReadOptions = {}): AsyncGenerator<RowBatch> {
  const hp = await loadHyparquet();
  const batchRows = options.batchRows ?? 8192;
  let file: AsyncBuffer;
  let metadata: ParquetMetadata;
  try {
    file = await hp.asyncBufferFromFile(path);
    metadata = await hp.parquetMetadataAsync(file);
  } catch (err) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${path}: not a readable Parquet file (${(err as Error).message})`,
    );
  }
  const columns = hp.parquetSchema(metadata).children.map((c) => c.element.name);
  const total = metadata.row_groups.reduce((n, g) => n + Number(g.num_rows), 0);
  let rowStart = 0;
  let firstRow = 1;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: unknown[][] = [];
    try {
      await hp.parquetRead({
        file,
        metadata,
        rowStart,
        rowEnd,
        onComplete: (r) => {
          rows = r;
        },
      });
    } catch (err) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `${path}: rows ${rowStart + 1}..${rowEnd}: ${(err as Error).message}`,
      );
    }
    for (let i = 0; i < rows.length; i += batchRows) {
      const slice = rows.slice(i, i + batchRows).map((r) => r.map(cell));
      yield { columns, rows: slice, firstRow };
      firstRow += slice.length;
    }
    rowStart = rowEnd;
    // Progress in rows scaled to bytes: a row group's bytes are not read in file order.
    options.onProgress?.(Math.round((rowStart / Math.max(total, 1)) * file.byteLength), file.byteLength);
  }
  if (firstRow === 1) yield { columns, rows: [], firstRow };
}
