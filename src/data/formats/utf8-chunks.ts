import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { SlipwayError } from '../../errors/index.js';

/** Thrown by `utf8Chunks` at the first byte that is not UTF-8; readers add the row or line. */
export class InvalidUtf8Error extends Error {
  constructor(
    readonly path: string,
    readonly offset: number,
  ) {
    super(`${path}: invalid UTF-8 at byte offset ${offset}`);
  }
}

export interface ChunkOptions {
  onProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Read size; 1 MiB keeps the syscall count low and memory bounded. */
  chunkBytes?: number;
}

/**
 * A file's bytes as validated UTF-8 chunks, without a leading BOM. A character split across two
 * reads is carried to the next chunk, so every chunk holds whole characters. At the first invalid
 * byte the valid part before it is still yielded, then `InvalidUtf8Error` is thrown: a reader has
 * counted its rows up to there and can name the row.
 */
export async function* utf8Chunks(path: string, options: ChunkOptions = {}): AsyncGenerator<Buffer> {
  const total = (await stat(path)).size;
  const stream = createReadStream(path, { highWaterMark: options.chunkBytes ?? 1 << 20 });
  let offset = 0; // file offset of the first byte of `carry` (or of the next chunk)
  let carry: Buffer | undefined;
  let first = true;
  let read = 0;
  try {
    for await (const raw of stream as AsyncIterable<Buffer>) {
      read += raw.length;
      let chunk = carry ? Buffer.concat([carry, raw]) : raw;
      carry = undefined;
      // A file read's first chunk is the whole file or a full read, so it holds any BOM whole.
      if (first) {
        first = false;
        if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
          chunk = chunk.subarray(3);
          offset = 3;
        }
      }
      const end = completeEnd(chunk);
      const whole = end === chunk.length ? chunk : chunk.subarray(0, end);
      if (!isUtf8(whole)) {
        const bad = firstInvalid(whole);
        if (bad > 0) yield whole.subarray(0, bad);
        throw new InvalidUtf8Error(path, offset + bad);
      }
      if (end < chunk.length) carry = Buffer.from(chunk.subarray(end));
      offset += end;
      if (whole.length > 0) yield whole;
      options.onProgress?.(read, total);
    }
    if (carry && carry.length > 0) throw new InvalidUtf8Error(path, offset);
    options.onProgress?.(read, total);
  } finally {
    stream.destroy();
  }
}

/** Where the last complete character ends: a multi-byte character cut by the read waits for the next. */
export function completeEnd(b: Buffer): number {
  const n = b.length;
  for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
    const c = b[i]!;
    if ((c & 0xc0) === 0x80) continue;
    if (c < 0xc0) return n;
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    return n - i < need ? i : n;
  }
  return n;
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
export function firstInvalid(b: Buffer): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    const need = c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (need === 0 || i + need > n) return i;
    for (let k = 1; k < need; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    if (!isUtf8(b.subarray(i, i + need))) return i; // overlong, surrogate or beyond U+10FFFF
    i += need;
  }
  return n;
}

/** The error a reader raises for invalid UTF-8, naming the offset and where in the table it is. */
export function utf8Error(err: InvalidUtf8Error, where: string): SlipwayError {
  return new SlipwayError(
    'SLIPWAY_ERR_BAD_REQUEST',
    `${err.path}: invalid UTF-8 at byte offset ${err.offset} (${where}); the file must be UTF-8`,
  );
}
