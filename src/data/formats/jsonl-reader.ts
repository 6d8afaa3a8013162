import { SlipwayError } from '../../errors/index.js';
import type { Cell, ReadOptions, RowBatch } from '../table.js';
import { InvalidUtf8Error, utf8Chunks, utf8Error } from './utf8-chunks.js';

/** Each non-blank line of a file with its 1-based line number. */
async function* lines(path: string, onProgress?: ReadOptions['onProgress']) {
  let carry: Buffer[] = [];
  let line = 0;
  try {
    for await (const chunk of utf8Chunks(path, { onProgress })) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
        line++;
        const text =
          carry.length === 0
            ? chunk.toString('utf8', start, nl)
            : Buffer.concat([...carry, chunk.subarray(start, nl)]).toString('utf8');
        carry = [];
        start = nl + 1;
        if (text.trim() !== '') yield { line, text };
      }
      if (start < chunk.length) carry.push(chunk.subarray(start));
    }
  } catch (err) {
    if (err instanceof InvalidUtf8Error) throw utf8Error(err, `line ${line + 1}`);
    throw err;
  }
  if (carry.length > 0) {
    const text = Buffer.concat(carry).toString('utf8');
    if (text.trim() !== '') yield { line: line + 1, text };
  }
}

function parseObject(path: string, line: number, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${path}: line ${line}: not JSON (${(err as Error).message})`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${path}: line ${line}: a JSON object is expected on each line`,
    );
  }
  return value as Record<string, unknown>;
}

/** A JSON value as a cell: scalars as they are; nested objects and arrays as their JSON text. */
function cell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return JSON.stringify(v);
}

/**
 * Reads JSON Lines: one object per line, blank lines skipped. The columns are the union of every
 * line's keys in order of first appearance. Because every batch of a table has the same columns,
 * the reader makes two passes: the first collects the keys (so a key that first appears on the
 * last line is still a column from row 1, null where a line lacks it), the second yields rows.
 * A line that is not a JSON object fails the read, naming the line.
 *
 * @example
 *   for await (const b of readJsonl('events.jsonl')) console.log(b.columns);
 */
export async function* readJsonl(path: string, options: ReadOptions = {}): AsyncGenerator<RowBatch> {
  const batchRows = options.batchRows ?? 8192;
  const progress = options.onProgress;
  // Progress counts both passes, each over the whole file.
  const half = (pass: 0 | 1) =>
    progress ? (read: number, total: number) => progress(pass * total + read, 2 * total) : undefined;
  const index = new Map<string, number>();
  for await (const { line, text } of lines(path, half(0))) {
    for (const key of Object.keys(parseObject(path, line, text))) {
      if (!index.has(key)) index.set(key, index.size);
    }
  }
  const columns = [...index.keys()];
  let batch: Cell[][] = [];
  let firstRow = 1;
  for await (const { line, text } of lines(path, half(1))) {
    const obj = parseObject(path, line, text);
    const row: Cell[] = new Array(columns.length).fill(null);
    for (const key in obj) {
      try {
        row[index.get(key)!] = cell(obj[key]);
      } catch (err) {
        // Writing a value nested thousands of levels deep back out as text overflows the stack.
        if (!(err instanceof RangeError)) throw err;
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `${path}: line ${line}: the value of '${key}' nests too deeply to keep as a cell`,
        );
      }
    }
    batch.push(row);
    if (batch.length >= batchRows) {
      yield { columns, rows: batch, firstRow };
      firstRow += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0 || firstRow === 1) yield { columns, rows: batch, firstRow };
}
