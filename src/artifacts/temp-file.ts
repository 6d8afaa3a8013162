import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** A fresh file name in `dir` for a write that is renamed into place once whole. */
export function tempPath(dir: string): string {
  return join(dir, `${Date.now()}-${randomBytes(8).toString('hex')}`);
}

/**
 * Writes the body to a new temp file in `dir` while hashing it, flushed to disk (it is renamed
 * into a blob folder or cache next); on failure the file is removed. Shared by the blob stores.
 */
export async function writeHashedTemp(
  dir: string,
  body: Readable | Uint8Array,
): Promise<{ tmpPath: string; sha256: string; size: number }> {
  await mkdir(dir, { recursive: true });
  const tmpPath = tempPath(dir);
  const hash = createHash('sha256');
  let size = 0;
  const fh = await open(tmpPath, 'wx');
  try {
    const chunks = body instanceof Uint8Array ? [body] : body;
    for await (const chunk of chunks) {
      const c: Uint8Array = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      hash.update(c);
      size += c.byteLength;
      await writeAll(fh, c);
    }
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmpPath).catch(() => undefined);
    throw err;
  }
  return { tmpPath, sha256: hash.digest('hex'), size };
}

/** Writes the whole chunk: one write(2) may take less (a single call stops short of 2 GiB). */
export async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}
