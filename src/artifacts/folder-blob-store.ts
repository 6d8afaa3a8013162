import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SlipwayError } from '../errors/index.js';
import { type BlobInfo, type BlobStore, SHA256_HEX } from './blob-store.js';
import { writeHashedTemp } from './temp-file.js';

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
    const { tmpPath, sha256, size } = await writeHashedTemp(this.tmp, body);
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

/** Makes a rename durable: the directory entry itself is flushed. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
