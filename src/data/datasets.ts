import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Kysely } from 'kysely';
import { type ArtifactRepository, confinePath } from '../artifacts/index.js';
import { SlipwayError } from '../errors/index.js';
import { type Database, fromJson, now, toJson } from '../store/index.js';
import type { DatasetTables } from './dataset-migrations.js';
import { detectFormat, formatByExtension, readTable } from './formats/index.js';
import type { TableFormat } from './table.js';

/** One file of a version, as its manifest records it. */
export interface ManifestFile {
  /** Relative to the dataset's root, `/`-separated. */
  path: string;
  size: number;
  sha256: string;
  /** Null for a file that is not a table (a README, a schema). */
  format: TableFormat | null;
  rows: number | null;
  columns: string[] | null;
}

/** What a version holds. Its digest is the SHA-256 of `canonicalManifest(files)` (paths and bytes). */
export interface Manifest {
  files: ManifestFile[];
}

export interface DatasetVersion {
  name: string;
  number: number;
  /** SHA-256 of the manifest: identical content has the same digest. */
  digest: string;
  /** `name@number`. */
  ref: string;
  createdMs: number;
  creator: string;
  tags: Record<string, string>;
  manifest: Manifest;
  /** The tables' profile (JSON), null until profiled. */
  profile: unknown;
  size: number;
  rows: number;
}

export interface DatasetSummary {
  name: string;
  createdMs: number;
  versions: number;
  latest: DatasetVersion | null;
}

export interface AddOptions {
  name: string;
  tags?: Record<string, string>;
  /** Bytes processed and the total (each table is read twice: rows, then bytes). */
  onProgress?: (done: number, total: number) => void;
}

export interface ChangedFile {
  path: string;
  from: ManifestFile;
  to: ManifestFile;
  /** Columns only in `to` and only in `from`, when both are tables. */
  columnsAdded: string[];
  columnsRemoved: string[];
}

export interface DatasetDiff {
  from: DatasetVersion;
  to: DatasetVersion;
  added: ManifestFile[];
  removed: ManifestFile[];
  changed: ChangedFile[];
  unchanged: number;
  /** Both profiles, for a profile comparison; null where a version has none. */
  profiles: { from: unknown; to: unknown };
}

export interface DatasetsOptions {
  /** Profiles a version's tables when it is added; the result is stored as its `profile`. */
  profiler?: (files: { path: string; local: string; format: TableFormat }[]) => Promise<unknown>;
}

type K = Kysely<DatasetTables>;
type VersionRow = DatasetTables['dataset_versions'];

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
const SHORT = 12;

const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};

function checkName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    bad(
      `name: ${JSON.stringify(name)} must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (at most 256)`,
    );
  }
  return name;
}

function checkTags(tags: Record<string, string> | undefined): Record<string, string> {
  for (const [k, v] of Object.entries(tags ?? {})) {
    if (!k || k.length > 250 || k.includes('\0')) bad(`tag: ${JSON.stringify(k)} is not a valid key`);
    if (typeof v !== 'string' || v.length > 5000 || v.includes('\0'))
      bad(`tag '${k}': value must be text of at most 5000 characters`);
  }
  return { ...tags };
}

/**
 * The bytes a version's digest is taken over: each file's path, size and SHA-256, sorted by path.
 * Only content: what readers derive (format, rows, columns) may change with Slipway's version,
 * and the same bytes must stay the same version.
 */
export function canonicalManifest(files: readonly ManifestFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return JSON.stringify(sorted.map((f) => [f.path, f.size, f.sha256]));
}

/** Every regular file under `dir`, sorted, as `/`-separated relative paths. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    // `parentPath` from Node 20.12; `path` before it.
    const parent = (e as { parentPath?: string }).parentPath ?? (e as unknown as { path: string }).path;
    out.push(relative(dir, join(parent, e.name)).split(sep).join('/'));
  }
  return out.sort();
}

/** Counts bytes going through, for progress. */
function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

/**
 * Dataset versions: immutable, content-addressed snapshots of a file or folder of tables. Each
 * file's bytes go to the blob store once (by SHA-256); a version's manifest lists its files with
 * sizes, digests, formats, row counts and columns, and the SHA-256 of its paths and file digests is
 * the version's identity, so adding identical content again returns the existing version. Versions are also
 * numbered per dataset: `adult@2` and `adult@3f9a0c1b2d4e` (a digest prefix of at least 7) name the
 * same version; a bare `adult` is the latest.
 *
 * @example
 *   const datasets = new Datasets(db, artifacts);
 *   const v = await datasets.add('datasets/adult', { name: 'adult' }, 'cli:ana');
 *   await datasets.get(`adult@${v.number}`, '/tmp/adult');
 */
export class Datasets {
  private readonly db: K;

  constructor(
    private readonly database: Database,
    private readonly artifacts: ArtifactRepository,
    private readonly options: DatasetsOptions = {},
  ) {
    this.db = database.as<DatasetTables>();
  }

  /** Adds a version of `name` from a file or a folder; `created` is false when it already existed. */
  async add(
    source: string,
    options: AddOptions,
    actor: string,
  ): Promise<DatasetVersion & { created: boolean }> {
    const name = checkName(options.name);
    const tags = checkTags(options.tags);
    const info = await stat(source).catch(() => bad(`${source}: no such file or folder`));
    const single = !info.isDirectory();
    const rels = single ? [basename(source)] : await walk(source);
    if (rels.length === 0) bad(`${source}: the folder holds no files`);
    const local = (rel: string) => (single ? source : join(source, ...rel.split('/')));

    const entries: { rel: string; local: string; size: number; format: TableFormat | null }[] = [];
    for (const rel of rels) {
      const path = local(rel);
      const format = single ? await detectFormat(path) : formatByExtension(path);
      entries.push({ rel, local: path, size: (await stat(path)).size, format });
    }
    const total = entries.reduce((n, e) => n + e.size * (e.format ? 2 : 1), 0);
    let done = 0;
    const progress = (n: number) => {
      done += n;
      options.onProgress?.(done, total);
    };

    const files: ManifestFile[] = [];
    for (const e of entries) {
      let rows: number | null = null;
      let columns: string[] | null = null;
      if (e.format) {
        rows = 0;
        let last = 0;
        for await (const b of readTable(e.local, {
          format: e.format,
          onProgress: (read) => {
            progress(read - last);
            last = read;
          },
        })) {
          columns ??= [...b.columns];
          rows += b.rows.length;
        }
        progress(e.size - last);
      }
      const blob = await this.artifacts.blobs.put(createReadStream(e.local).pipe(counter(progress)));
      if (blob.size !== e.size) bad(`${e.local} changed while it was being added`);
      files.push({ path: e.rel, size: blob.size, sha256: blob.sha256, format: e.format, rows, columns });
    }
    const manifest: Manifest = { files };
    const digest = createHash('sha256').update(canonicalManifest(files)).digest('hex');

    const existing = await this.findByDigest(name, digest);
    if (existing) return { ...(await this.retag(existing, tags)), created: false };

    const tables = entries.flatMap((e) =>
      e.format ? [{ path: e.rel, local: e.local, format: e.format }] : [],
    );
    const profile = this.options.profiler && tables.length > 0 ? await this.options.profiler(tables) : null;
    await this.artifacts.checkBlobs(files);
    const creator = String(actor || 'anonymous').slice(0, 256);
    const createdMs = now();
    try {
      const number = await this.database.transaction(async (trx) => {
        const k = trx as K;
        await k
          .insertInto('datasets')
          .values({ id: randomUUID(), name, created_ms: createdMs, last_number: 0 })
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
        // The update takes the dataset row's lock on PostgreSQL: concurrent adds number in turn.
        const ds = await k
          .updateTable('datasets')
          .set((eb) => ({ last_number: eb('last_number', '+', 1) }))
          .where('name', '=', name)
          .returning(['id', 'last_number'])
          .executeTakeFirstOrThrow();
        await k
          .insertInto('dataset_versions')
          .values({
            dataset_id: ds.id,
            number: ds.last_number,
            digest,
            created_ms: createdMs,
            creator,
            manifest: toJson(manifest),
            tags: toJson(tags),
            profile: profile === null ? null : toJson(profile),
          })
          .execute();
        await this.artifacts.replaceFolder(
          k,
          this.folder(name, ds.last_number),
          files.map((f) => ({ rel: f.path, sha256: f.sha256, size: f.size })),
        );
        return ds.last_number;
      });
      return { ...(await this.show(`${name}@${number}`)), created: true };
    } catch (err) {
      // The same content added at the same time by another process: theirs is the version.
      const raced = await this.findByDigest(name, digest);
      if (raced) return { ...(await this.retag(raced, tags)), created: false };
      throw err;
    }
  }

  /** Every dataset with its latest version. */
  async list(): Promise<DatasetSummary[]> {
    const sets = await this.db.selectFrom('datasets').selectAll().orderBy('name').execute();
    const out: DatasetSummary[] = [];
    for (const s of sets) {
      const row = await this.db
        .selectFrom('dataset_versions')
        .selectAll()
        .where('dataset_id', '=', s.id)
        .orderBy('number', 'desc')
        .limit(1)
        .executeTakeFirst();
      const count = await this.db
        .selectFrom('dataset_versions')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('dataset_id', '=', s.id)
        .executeTakeFirstOrThrow();
      out.push({
        name: s.name,
        createdMs: s.created_ms,
        versions: Number(count.n),
        latest: row ? this.toVersion(s.name, row) : null,
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The versions of one dataset, newest first. */
  async versions(name: string): Promise<DatasetVersion[]> {
    const ds = await this.dataset(name);
    const rows = await this.db
      .selectFrom('dataset_versions')
      .selectAll()
      .where('dataset_id', '=', ds.id)
      .orderBy('number', 'desc')
      .execute();
    return rows.map((r) => this.toVersion(ds.name, r));
  }

  /** Whether `show(ref)` finds a version (false for an unknown dataset or version, not an error). */
  async exists(ref: string): Promise<boolean> {
    try {
      await this.show(ref);
      return true;
    } catch (err) {
      if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_RESOURCE_NOT_FOUND') return false;
      throw err;
    }
  }

  /** A version by `name`, `name@number`, `name@latest` or `name@<digest prefix>`. */
  async show(ref: string): Promise<DatasetVersion> {
    const { name, version } = parseRef(ref);
    const ds = await this.dataset(name);
    const q = this.db.selectFrom('dataset_versions').selectAll().where('dataset_id', '=', ds.id);
    let row: VersionRow | undefined;
    if (version === null || version === 'latest') {
      row = await q.orderBy('number', 'desc').limit(1).executeTakeFirst();
      if (!row) throw notFound(`dataset '${name}' has no versions`);
      return this.toVersion(ds.name, row);
    }
    if (/^\d+$/.test(version)) row = await q.where('number', '=', Number(version)).executeTakeFirst();
    if (!row && /^[0-9a-fA-F]{7,64}$/.test(version)) {
      const prefix = version.toLowerCase();
      const rows = await q.where('digest', 'like', `${prefix}%`).execute();
      const matches = rows.filter((r) => r.digest.startsWith(prefix));
      if (matches.length > 1) {
        bad(`'${ref}' matches versions ${matches.map((r) => r.number).join(', ')}; give more of the digest`);
      }
      row = matches[0];
    }
    if (!row) throw notFound(`dataset '${name}' has no version '${version}'`);
    return this.toVersion(ds.name, row);
  }

  /**
   * Writes a version's files under `destDir` (folders created as needed), each checked against
   * its size and SHA-256 before it takes its name. Returns the files written.
   */
  async get(
    ref: string,
    destDir: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<string[]> {
    const v = await this.show(ref);
    const total = v.size;
    let done = 0;
    const written: string[] = [];
    for (const f of v.manifest.files) {
      const rel = confinePath(f.path);
      const dest = join(destDir, ...rel.split('/'));
      const body = await this.artifacts.blobs.get(f.sha256);
      if (!body) {
        throw new SlipwayError(
          'SLIPWAY_ERR_ARTIFACT_NOT_FOUND',
          `${v.ref}: the artifact store holds no blob sha256:${f.sha256} for '${f.path}'`,
        );
      }
      await makeFolder(dirname(dest));
      const temp = `${dest}.${randomUUID().slice(0, 8)}.partial`;
      const hash = createHash('sha256');
      let size = 0;
      try {
        await pipeline(
          body,
          counter((n) => {
            size += n;
            done += n;
            onProgress?.(done, total);
          }),
          new Transform({
            transform(chunk: Buffer, _e, cb) {
              hash.update(chunk);
              cb(null, chunk);
            },
          }),
          createWriteStream(temp),
        );
        const sha256 = hash.digest('hex');
        if (sha256 !== f.sha256 || size !== f.size) {
          throw new SlipwayError(
            'SLIPWAY_ERR_INVALID_STATE',
            `${v.ref}: '${f.path}' read back as ${size} bytes with sha256:${sha256}, not ${f.size} bytes with sha256:${f.sha256}`,
          );
        }
        await rename(temp, dest);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      written.push(dest);
    }
    return written;
  }

  /** Files added, removed and changed from `fromRef` to `toRef`, with column changes of tables. */
  async diff(fromRef: string, toRef: string): Promise<DatasetDiff> {
    const from = await this.show(fromRef);
    const to = await this.show(toRef);
    const before = new Map(from.manifest.files.map((f) => [f.path, f]));
    const after = new Map(to.manifest.files.map((f) => [f.path, f]));
    const diff: DatasetDiff = {
      from,
      to,
      added: to.manifest.files.filter((f) => !before.has(f.path)),
      removed: from.manifest.files.filter((f) => !after.has(f.path)),
      changed: [],
      unchanged: 0,
      profiles: { from: from.profile, to: to.profile },
    };
    for (const f of from.manifest.files) {
      const t = after.get(f.path);
      if (!t) continue;
      if (t.sha256 === f.sha256) {
        diff.unchanged++;
        continue;
      }
      const a = new Set(f.columns ?? []);
      const b = new Set(t.columns ?? []);
      diff.changed.push({
        path: f.path,
        from: f,
        to: t,
        columnsAdded: [...b].filter((c) => !a.has(c)),
        columnsRemoved: [...a].filter((c) => !b.has(c)),
      });
    }
    return diff;
  }

  /**
   * A version's table files as local paths ONNX-free readers can open (the artifact store's own
   * file for a folder store, a verified cached copy for S3), with their formats.
   *
   * @example
   *   for (const t of await datasets.tables('adult@1')) for await (const b of readTable(t.local, { format: t.format })) …
   */
  async tables(ref: string): Promise<{ path: string; format: TableFormat; local: string }[]> {
    const v = await this.show(ref);
    const out: { path: string; format: TableFormat; local: string }[] = [];
    for (const f of v.manifest.files) {
      if (f.format === null) continue;
      out.push({
        path: f.path,
        format: f.format,
        local: await this.artifacts.localPath(`${this.folder(v.name, v.number)}/${f.path}`),
      });
    }
    return out;
  }

  /** The artifact folder that holds a version's files. */
  folder(name: string, number: number): string {
    return `datasets/${name}/${number}`;
  }

  private async dataset(name: string) {
    const ds = await this.db
      .selectFrom('datasets')
      .selectAll()
      .where('name', '=', checkName(name))
      .executeTakeFirst();
    if (!ds) throw notFound(`dataset '${name}' does not exist`);
    return ds;
  }

  private async findByDigest(name: string, digest: string): Promise<DatasetVersion | undefined> {
    const row = await this.db
      .selectFrom('dataset_versions')
      .innerJoin('datasets', 'datasets.id', 'dataset_versions.dataset_id')
      .selectAll('dataset_versions')
      .where('datasets.name', '=', name)
      .where('dataset_versions.digest', '=', digest)
      .executeTakeFirst();
    return row ? this.toVersion(name, row) : undefined;
  }

  /** Tags are the one mutable part of a version: adding it again with tags sets them. */
  private async retag(v: DatasetVersion, tags: Record<string, string>): Promise<DatasetVersion> {
    if (Object.entries(tags).every(([k, val]) => v.tags[k] === val)) return v;
    const merged = { ...v.tags, ...tags };
    const ds = await this.dataset(v.name);
    await this.db
      .updateTable('dataset_versions')
      .set({ tags: toJson(merged) })
      .where('dataset_id', '=', ds.id)
      .where('number', '=', v.number)
      .execute();
    return { ...v, tags: merged };
  }

  private toVersion(name: string, r: VersionRow): DatasetVersion {
    const manifest = fromJson<Manifest>(r.manifest, { files: [] });
    return {
      name,
      number: r.number,
      digest: r.digest,
      ref: `${name}@${r.number}`,
      createdMs: r.created_ms,
      creator: r.creator,
      tags: fromJson<Record<string, string>>(r.tags, {}),
      manifest,
      profile: fromJson<unknown>(r.profile, null),
      size: manifest.files.reduce((n, f) => n + f.size, 0),
      rows: manifest.files.reduce((n, f) => n + (f.rows ?? 0), 0),
    };
  }
}

const notFound = (message: string) => new SlipwayError('SLIPWAY_ERR_RESOURCE_NOT_FOUND', message);

/** `name`, `name@number`, `name@latest` or `name@<digest prefix>`. */
export function parseRef(ref: string): { name: string; version: string | null } {
  const text = String(ref ?? '').trim();
  const at = text.lastIndexOf('@');
  const name = at < 0 ? text : text.slice(0, at);
  const version = at < 0 ? null : text.slice(at + 1);
  if (!NAME.test(name) || (version !== null && !/^[A-Za-z0-9]{1,64}$/.test(version))) {
    bad(`${JSON.stringify(ref)} is not a dataset reference (name, name@number or name@<digest prefix>)`);
  }
  return { name, version };
}

/** Digest prefix shown next to a version number. */
export const shortDigest = (digest: string): string => digest.slice(0, SHORT);

/**
 * Creates a folder and its missing parents one level at a time. Node's recursive `mkdir` spins
 * without end under some pseudo file systems (a path under /proc); this fails with the error of
 * the first level that cannot be made, and says so when a file stands where a folder should.
 */
async function makeFolder(dir: string): Promise<void> {
  const missing: string[] = [];
  let d = resolve(dir);
  for (;;) {
    const s = await stat(d).catch((err: NodeJS.ErrnoException) => {
      // ENOTDIR: a file stands somewhere above; walking up finds it and says so.
      if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') throw err;
      return undefined;
    });
    if (s) {
      if (!s.isDirectory())
        throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${d} is a file, not a folder to write into`);
      break;
    }
    missing.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const m of missing.reverse()) {
    await mkdir(m).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}
