import type { Readable } from 'node:stream';
import { type Kysely, sql } from 'kysely';
import { SlipwayError } from '../errors/index.js';
import { type Database, type NamedMigration, now } from '../store/index.js';
import { confinePath } from './artifact-paths.js';
import { type BlobStore, SHA256_HEX } from './blob-store.js';

/** The index column is varchar(1024); counted in characters, as both databases count. */
const MAX_PATH_CHARS = 1024;

export interface ArtifactFile {
  path: string;
  sha256: string;
  size: number;
  createdMs: number;
}

/** One entry of a folder listing, as MLflow lists artifacts. */
export interface ArtifactEntry {
  /** Path relative to the store root. */
  path: string;
  isDir: boolean;
  /** Bytes, for files. */
  size?: number;
}

interface ArtifactTables {
  artifact_files: { path: string; sha256: string; size: number; created_ms: number };
}

export const artifactMigrations: NamedMigration[] = [
  {
    name: '0001-artifact-files',
    async up(db) {
      await db.schema
        .createTable('artifact_files')
        .addColumn('path', 'varchar(1024)', (c) => c.primaryKey())
        .addColumn('sha256', 'char(64)', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('artifact_files_sha256').on('artifact_files').column('sha256').execute();
    },
  },
  {
    // Byte order for paths, so a folder's files are one range of the primary key whatever the
    // database's default collation. SQLite compares bytes already.
    name: '0002-artifact-paths-byte-order',
    async up(db, dialect) {
      if (dialect !== 'postgres') return;
      await sql`alter table artifact_files alter column path type varchar(1024) collate "C"`.execute(db);
    },
  },
];

/**
 * Artifacts by path (`<experiment>/<run>/artifacts/model.onnx`, `registry/<model>/<n>/model.onnx`)
 * over content-addressed blobs: the bytes go to the blob store first (durably), then one row maps
 * the path to the digest, so an acknowledged upload is complete and identical files share a blob.
 *
 * @example
 *   const f = await artifacts.put('1/abc/artifacts/model.onnx', req);
 *   for (const e of await artifacts.list('1/abc/artifacts')) console.log(e.path, e.isDir);
 */
export class ArtifactRepository {
  private readonly db: Kysely<ArtifactTables>;

  constructor(
    database: Database,
    readonly blobs: BlobStore,
  ) {
    this.db = database.as<ArtifactTables>();
  }

  /** Stores a file at `path`, replacing what was there. */
  async put(path: string, body: Readable | Uint8Array): Promise<ArtifactFile> {
    const p = await this.filePath(path);
    const { sha256, size } = await this.blobs.put(body);
    return this.index(p, sha256, size);
  }

  /** Maps `path` to a blob already stored (copying an artifact costs no bytes). */
  async link(path: string, sha256: string, size: number): Promise<ArtifactFile> {
    const p = await this.filePath(path);
    if (!SHA256_HEX.test(sha256)) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `'${sha256}' is not a SHA-256 hex digest`);
    }
    const blob = await this.blobs.stat(sha256);
    if (!blob) {
      throw new SlipwayError(
        'SLIPWAY_ERR_ARTIFACT_NOT_FOUND',
        `cannot link '${p}': the artifact store holds no blob sha256:${sha256}`,
      );
    }
    if (blob.size !== size) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `cannot link '${p}': blob sha256:${sha256} has size ${blob.size}, not ${size}`,
      );
    }
    return this.index(p, sha256, size);
  }

  /**
   * Checks that every blob exists with its size, so a later `replaceFolder` in the caller's
   * transaction cannot point at missing bytes. Throws like `link`.
   */
  async checkBlobs(files: readonly { sha256: string; size: number }[]): Promise<void> {
    for (const f of files) {
      if (!SHA256_HEX.test(f.sha256)) {
        throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `'${f.sha256}' is not a SHA-256 hex digest`);
      }
      const blob = await this.blobs.stat(f.sha256);
      if (!blob) {
        throw new SlipwayError(
          'SLIPWAY_ERR_ARTIFACT_NOT_FOUND',
          `the artifact store holds no blob sha256:${f.sha256}`,
        );
      }
      if (blob.size !== f.size) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `blob sha256:${f.sha256} has size ${blob.size}, not ${f.size}`,
        );
      }
    }
  }

  /**
   * Makes `folder` hold exactly `files` (paths relative to it) on blobs already checked with
   * `checkBlobs`, inside the caller's transaction: a registration and its files commit together.
   */
  async replaceFolder(
    executor: Kysely<any>,
    folder: string,
    files: readonly { rel: string; sha256: string; size: number }[],
  ): Promise<void> {
    const dir = confinePath(folder);
    if (dir === '') throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_PATH', 'folder must not be the root');
    const k = executor as Kysely<ArtifactTables>;
    await k
      .deleteFrom('artifact_files')
      .where(startsWith(`${dir}/`))
      .execute();
    if (files.length === 0) return;
    const createdMs = now();
    const rows = files.map((f) => ({
      path: confinePath(`${dir}/${f.rel}`),
      sha256: f.sha256,
      size: f.size,
      created_ms: createdMs,
    }));
    for (const r of rows) {
      const chars = [...r.path].length;
      if (chars > MAX_PATH_CHARS) {
        throw new SlipwayError(
          'SLIPWAY_ERR_ARTIFACT_PATH',
          `path '${r.path}' is ${chars} characters long; the limit is ${MAX_PATH_CHARS}`,
        );
      }
    }
    await k.insertInto('artifact_files').values(rows).execute();
  }

  /** Points `path` (already confined) at the blob, replacing what it pointed at. */
  private async index(path: string, sha256: string, size: number): Promise<ArtifactFile> {
    const createdMs = now();
    await this.db
      .insertInto('artifact_files')
      .values({ path, sha256, size, created_ms: createdMs })
      .onConflict((oc) => oc.column('path').doUpdateSet({ sha256, size, created_ms: createdMs }))
      .execute();
    return { path, sha256, size, createdMs };
  }

  async stat(path: string): Promise<ArtifactFile | undefined> {
    const p = confinePath(path);
    const row = await this.db
      .selectFrom('artifact_files')
      .selectAll()
      .where('path', '=', p)
      .executeTakeFirst();
    return row
      ? { path: row.path, sha256: row.sha256, size: row.size, createdMs: row.created_ms }
      : undefined;
  }

  /** The file's bytes, or undefined when no file has that path. */
  async get(path: string): Promise<{ file: ArtifactFile; body: Readable } | undefined> {
    const file = await this.stat(path);
    if (!file) return undefined;
    const body = await this.blobs.get(file.sha256);
    if (!body) {
      throw new SlipwayError(
        'SLIPWAY_ERR_ARTIFACT_NOT_FOUND',
        `artifact '${file.path}' refers to blob sha256:${file.sha256}, which the artifact store does not hold`,
      );
    }
    return { file, body };
  }

  /** A local file for the artifact (ONNX Runtime reads files). */
  async localPath(path: string): Promise<string> {
    const file = await this.stat(path);
    if (!file)
      throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_NOT_FOUND', `no artifact at '${confinePath(path)}'`);
    return this.blobs.localPath(file.sha256);
  }

  /** Immediate children of a folder: files with sizes, sub-folders once each. A file's path lists nothing. */
  async list(dir: string): Promise<ArtifactEntry[]> {
    const d = confinePath(dir);
    const prefix = d === '' ? '' : `${d}/`;
    const rows = await this.filesUnder(d);
    const entries = new Map<string, ArtifactEntry>();
    for (const r of rows) {
      const rest = r.path.slice(prefix.length);
      const slash = rest.indexOf('/');
      if (slash < 0) entries.set(rest, { path: r.path, isDir: false, size: r.size });
      else {
        const name = rest.slice(0, slash);
        if (!entries.has(name)) entries.set(name, { path: `${prefix}${name}`, isDir: true });
      }
    }
    return [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Every file under a folder, at any depth. */
  async filesUnder(dir: string): Promise<ArtifactFile[]> {
    const d = confinePath(dir);
    let q = this.db.selectFrom('artifact_files').selectAll();
    if (d !== '') q = q.where(startsWith(`${d}/`));
    const rows = await q.execute();
    // Sorted here: the database's collation (PostgreSQL's may be a locale's) would differ by dialect.
    return rows
      .map((r) => ({ path: r.path, sha256: r.sha256, size: r.size, createdMs: r.created_ms }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * Confines a path that is to name a file: not empty, within the index's length, and neither
   * under a file nor a folder itself (a listing could not show both).
   */
  private async filePath(path: string): Promise<string> {
    const p = confinePath(path);
    const bad = (why: string): never => {
      throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_PATH', `path '${p}' ${why}`);
    };
    if (p === '') bad('must name a file');
    const chars = [...p].length;
    if (chars > MAX_PATH_CHARS) bad(`is ${chars} characters long; the limit is ${MAX_PATH_CHARS}`);
    const segs = p.split('/');
    const ancestors = segs.slice(0, -1).map((_, i) => segs.slice(0, i + 1).join('/'));
    if (ancestors.length > 0) {
      const file = await this.db
        .selectFrom('artifact_files')
        .select('path')
        .where('path', 'in', ancestors)
        .executeTakeFirst();
      if (file) bad(`is under '${file.path}', which is a file`);
    }
    const child = await this.db
      .selectFrom('artifact_files')
      .select('path')
      .where(startsWith(`${p}/`))
      .limit(1)
      .executeTakeFirst();
    if (child) bad(`is a folder (it holds '${child.path}')`);
    return p;
  }

  /** Removes the path (the blob stays while other paths share it). */
  async delete(path: string): Promise<void> {
    const p = confinePath(path);
    await this.db.deleteFrom('artifact_files').where('path', '=', p).execute();
  }
}

/**
 * `path` starts with `prefix`: a prefix compare rather than LIKE (no escaping of % and _, and
 * SQLite's LIKE ignores case) or a range (collations differ). substr counts characters on both
 * databases, so the length is counted in code points, not UTF-16 units.
 */
function startsWith(prefix: string) {
  // The range lets the primary key serve the lookup (byte order: SQLite's BINARY and the column's
  // "C" collation on PostgreSQL); prefixes handed in end with '/', whose successor is '0'.
  const upper = `${prefix.slice(0, -1)}${String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)}`;
  return sql<boolean>`(path >= ${prefix} and path < ${upper} and substr(path, 1, ${[...prefix].length}) = ${prefix})`;
}
