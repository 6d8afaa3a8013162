import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SlipwayError } from '../errors/index.js';
import { type BlobInfo, type BlobStore, SHA256_HEX } from './blob-store.js';

/** Blobs as files: `<root>/blobs/sha256/<2 hex>/<64 hex>`, written in `<root>/tmp` then renamed. */
export class FolderBlobStore implements BlobStore {
  readonly kind = 'folder' as const;
  private readonly tmp: string;
  private readonly blobs: string;

  constructor(readonly root: string) {
    this.tmp = join(root, 'tmp');
    this.blobs = join(root, 'blobs', 'sha256');
  }

  async put(body: Readable | Uint8Array): Promise<BlobInfo> {
    await mkdir(this.tmp, { recursive: true });
    const tmpPath = join(this.tmp, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmpPath, 'wx');
    try {
      if (body instanceof Uint8Array) {
        hash.update(body);
        size = body.byteLength;
        await writeAll(fh, body);
      } else {
        for await (const chunk of body) {
          const c = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
          hash.update(c);
          size += c.byteLength;
          await writeAll(fh, c);
        }
      }
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmpPath).catch(() => undefined);
      throw err;
    }
    await fh.close();
    const sha256 = hash.digest('hex');
    const dir = join(this.blobs, sha256.slice(0, 2));
    await mkdir(dir, { recursive: true });
    // rename is atomic: readers see no blob or the whole blob. The same content twice renames
    // over an identical file.
    await rename(tmpPath, join(dir, sha256));
    await syncDir(dir);
    return { sha256, size };
  }

  async get(sha256: string): Promise<Readable | undefined> {
    const info = await this.stat(sha256);
    if (!info) return undefined;
    return createReadStream(this.pathOf(sha256));
  }

  async stat(sha256: string): Promise<BlobInfo | undefined> {
    const file = this.pathOf(sha256);
    try {
      const s = await stat(file);
      return { sha256, size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async delete(sha256: string): Promise<void> {
    await rm(this.pathOf(sha256), { force: true });
  }

  async localPath(sha256: string): Promise<string> {
    if (!(await this.stat(sha256))) {
      throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_NOT_FOUND', `no blob sha256:${sha256} in ${this.root}`);
    }
    return this.pathOf(sha256);
  }

  async close(): Promise<void> {}

  private pathOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `'${sha256}' is not a SHA-256 hex digest`);
    }
    return join(this.blobs, sha256.slice(0, 2), sha256);
  }
}

/** Writes the whole chunk: one write(2) may take less (a single call stops short of 2 GiB). */
export async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}

/** Makes a rename durable: the directory entry itself is flushed. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
