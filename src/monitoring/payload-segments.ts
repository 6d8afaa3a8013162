import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, fstatSync, fsyncSync, mkdirSync, openSync, writevSync } from 'node:fs';
import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Database } from '../store/index.js';
import { HOUR_MS } from './prediction-writer.js';

/** Where a stored batch's binary payload lives when it is not in its row. */
export interface PayloadRef {
  file: string;
  offset: number;
  length: number;
}

const SEGMENT = /^(\d{8}T\d{2})-[0-9a-f]+\.seg$/;

/** The folder of a SQLite database's payload segments (none for PostgreSQL or `:memory:`). */
export function segmentFolder(db: Database): string | undefined {
  return db.file ? `${db.file}-predictions` : undefined;
}

/** `20261201T07`: the UTC hour a segment was opened in. */
function hourName(ms: number): string {
  return new Date(ms).toISOString().slice(0, 13).replace(/-/g, '');
}

function hourOf(name: string): number | undefined {
  const m = SEGMENT.exec(name);
  if (!m) return undefined;
  const h = m[1]!;
  return Date.UTC(+h.slice(0, 4), +h.slice(4, 6) - 1, +h.slice(6, 8), +h.slice(9, 11));
}

/**
 * The prediction log's payloads on a SQLite store, appended to files beside the database instead
 * of stored in it. SQLite keeps a blob as a chain of pages, each written to the WAL and again to
 * the database file at the checkpoint; a flush of 30,000 rows (~6.6 MB) cost the writer thread
 * about 20 ms of CPU that way, and one `writev` and `fdatasync` of the same bytes a few.
 *
 * Each writer appends to its own file per UTC hour (`<hour>-<writer>.seg`); a batch row names
 * its file, offset and length. The bytes are synced before the row is committed, so a row never
 * names bytes that a crash could lose; bytes a crash left without a row are never read, and go
 * with their file. Every row in an hour's file ended before that hour did, so once retention
 * has removed rows up to the end of the hour, the file is removed whole.
 */
export class PayloadSegments {
  private readonly writer = randomBytes(4).toString('hex');
  private fd: number | undefined;
  private name = '';
  private hour = -1;

  constructor(
    readonly folder: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Appends payloads to this hour's file and syncs them; returns where each one is. A payload
   * may come as the sections it is laid out from, written in order without being joined.
   */
  append(payloads: readonly (Uint8Array | readonly Uint8Array[])[]): PayloadRef[] {
    if (payloads.length === 0) return [];
    const fd = this.segment();
    // The file's size, not a running count: bytes a failed append left behind stay before it.
    const refs: PayloadRef[] = [];
    const buffers: Uint8Array[] = [];
    let offset = fstatSync(fd).size;
    let total = 0;
    for (const p of payloads) {
      let length = 0;
      for (const b of p instanceof Uint8Array ? [p] : p) {
        buffers.push(b);
        length += b.byteLength;
      }
      refs.push({ file: this.name, offset, length });
      offset += length;
      total += length;
    }
    let written = 0;
    let pending = buffers;
    while (written < total) {
      const n = writevSync(fd, pending);
      written += n;
      pending = rest(pending, n);
    }
    fdatasyncSync(fd);
    return refs;
  }

  /** The file for the current hour, opened (and made durable in its folder) when the hour turns. */
  private segment(): number {
    const hour = Math.floor(this.now() / HOUR_MS) * HOUR_MS;
    if (this.fd !== undefined && hour === this.hour) return this.fd;
    this.close();
    mkdirSync(this.folder, { recursive: true });
    this.name = `${hourName(hour)}-${this.writer}.seg`;
    this.fd = openSync(join(this.folder, this.name), 'a');
    this.hour = hour;
    syncFolder(this.folder);
    return this.fd;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The buffers after the first `n` bytes. */
function rest(buffers: readonly Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = n;
  for (const b of buffers) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems cannot sync a directory; the file's own sync still holds its bytes.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Reads a payload back; undefined when its file is gone (retention removed it since the row was
 * read). A file shorter than the row says is an error.
 */
export async function readPayload(folder: string, ref: PayloadRef): Promise<Buffer | undefined> {
  if (!SEGMENT.test(ref.file)) throw new Error(`'${ref.file}' is not a payload segment's name`);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(join(folder, ref.file), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const out = Buffer.allocUnsafe(ref.length);
    let at = 0;
    while (at < ref.length) {
      const { bytesRead } = await handle.read(out, at, ref.length - at, ref.offset + at);
      if (bytesRead === 0) {
        throw new Error(
          `payload segment ${ref.file} ends at ${ref.offset + at} bytes, before the ${ref.length} bytes at ${ref.offset}`,
        );
      }
      at += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** Removes the segments of hours that ended at or before `cutoffMs`; returns how many. */
export async function removeSegmentsBefore(folder: string, cutoffMs: number): Promise<number> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const hour = hourOf(name);
    if (hour === undefined || hour + HOUR_MS > cutoffMs) continue;
    try {
      await unlink(join(folder, name));
      removed++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return removed;
}
