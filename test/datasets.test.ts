/** Dataset versions on every dialect: content addressing, numbering, refs, get and diff. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ArtifactRepository, artifactMigrations, FolderBlobStore } from '../src/artifacts/index.js';
import { Datasets, type DatasetsOptions, datasetMigrations, parquetAvailable } from '../src/data/index.js';
import { Database } from '../src/store/index.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';

const ADULT = join(import.meta.dirname, '..', '..', 'datasets', 'adult', 'adult.csv');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

for (const make of [sqliteDatabase, postgresDatabase]) {
  describe(`datasets on ${make === sqliteDatabase ? 'sqlite' : 'postgres'}`, () => {
    let server: TestDatabase | { skip: string };
    let dir: string;
    before(async () => {
      server = await make();
      dir = await mkdtemp(join(tmpdir(), 'slipway-datasets-'));
    });
    after(async () => {
      if ('stop' in server) await server.stop();
      await rm(dir, { recursive: true, force: true });
    });

    async function open(options: DatasetsOptions = {}) {
      if ('skip' in server) throw new Error(server.skip);
      const db = await Database.open({ url: await server.fresh() });
      await db.migrate([...artifactMigrations, ...datasetMigrations]);
      const blobs = new FolderBlobStore(await mkdtemp(join(dir, 'blobs-')));
      const artifacts = new ArtifactRepository(db, blobs);
      return {
        db,
        artifacts,
        datasets: new Datasets(db, artifacts, options),
        close: async () => {
          await blobs.close();
          await db.close();
        },
      };
    }

    async function folder(files: Record<string, string | Buffer>): Promise<string> {
      const root = await mkdtemp(join(dir, 'src-'));
      for (const [rel, body] of Object.entries(files)) {
        await mkdir(join(root, rel, '..'), { recursive: true });
        await writeFile(join(root, rel), body);
      }
      return root;
    }

    test('a file becomes version 1 with its manifest; the same content again is the same version', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const seen: number[] = [];
        const v = await s.datasets.add(
          ADULT,
          { name: 'adult', tags: { source: 'uci' }, onProgress: (d, total) => seen.push(d / total) },
          'cli:ana',
        );
        const bytes = await readFile(ADULT);
        assert.equal(v.created, true);
        assert.equal(v.ref, 'adult@1');
        assert.equal(v.creator, 'cli:ana');
        assert.deepEqual(v.tags, { source: 'uci' });
        assert.equal(v.manifest.files.length, 1);
        const f = v.manifest.files[0]!;
        assert.deepEqual(
          { path: f.path, size: f.size, sha256: f.sha256, format: f.format, rows: f.rows },
          { path: 'adult.csv', size: bytes.length, sha256: sha256(bytes), format: 'csv', rows: 48_842 },
        );
        assert.equal(f.columns?.length, 16);
        assert.equal(v.rows, 48_842);
        assert.match(v.digest, /^[0-9a-f]{64}$/);
        assert.equal(v.profile, null);
        assert.equal(seen.at(-1), 1);
        assert.ok(seen.every((x, i) => i === 0 || x >= seen[i - 1]!));
        // The bytes are in the artifact store under the version's folder.
        const stored = await s.artifacts.stat('datasets/adult/1/adult.csv');
        assert.equal(stored?.sha256, sha256(bytes));

        const again = await s.datasets.add(ADULT, { name: 'adult' }, 'cli:bo');
        assert.equal(again.created, false);
        assert.equal(again.number, 1);
        assert.equal(again.digest, v.digest);
        assert.equal(again.creator, 'cli:ana');
        // The digest is of paths and bytes only.
        assert.equal(
          v.digest,
          createHash('sha256')
            .update(JSON.stringify([['adult.csv', bytes.length, sha256(bytes)]]))
            .digest('hex'),
        );
        assert.equal((await s.datasets.versions('adult')).length, 1);
      } finally {
        await s.close();
      }
    });

    test('versions number per dataset; name@number, name@digest prefix and name resolve', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const a = await folder({ 'train.csv': 'x,y\n1,2\n3,4\n', 'README.md': '# data\n' });
        const v1 = await s.datasets.add(a, { name: 'toy' }, 'me');
        await writeFile(join(a, 'train.csv'), 'x,y\n1,2\n3,4\n5,6\n');
        const v2 = await s.datasets.add(a, { name: 'toy' }, 'me');
        const other = await s.datasets.add(a, { name: 'other' }, 'me');
        assert.deepEqual([v1.number, v2.number, other.number], [1, 2, 1]);
        assert.equal(other.digest, v2.digest, 'the digest is of the content, not the name');
        assert.deepEqual(
          v1.manifest.files.map((f) => [f.path, f.format, f.rows]),
          [
            ['README.md', null, null],
            ['train.csv', 'csv', 2],
          ],
        );
        assert.equal((await s.datasets.show('toy@1')).digest, v1.digest);
        assert.equal((await s.datasets.show(`toy@${v1.digest.slice(0, 12)}`)).number, 1);
        assert.equal((await s.datasets.show(`toy@${v2.digest.toUpperCase().slice(0, 7)}`)).number, 2);
        assert.equal((await s.datasets.show('toy')).number, 2);
        assert.equal((await s.datasets.show('toy@latest')).number, 2);
        await assert.rejects(s.datasets.show('toy@3'), { code: 'SLIPWAY_ERR_RESOURCE_NOT_FOUND' });
        await assert.rejects(s.datasets.show('nope@1'), /dataset 'nope' does not exist/);
        await assert.rejects(s.datasets.show('bad name'), { code: 'SLIPWAY_ERR_BAD_REQUEST' });
        const list = await s.datasets.list();
        assert.deepEqual(
          list.map((d) => [d.name, d.versions, d.latest?.number]),
          [
            ['other', 1, 1],
            ['toy', 2, 2],
          ],
        );
        // Adding version 1's content again returns version 1, with the new tag set.
        await writeFile(join(a, 'train.csv'), 'x,y\n1,2\n3,4\n');
        const back = await s.datasets.add(a, { name: 'toy', tags: { stage: 'gold' } }, 'me');
        assert.deepEqual([back.created, back.number, back.tags], [false, 1, { stage: 'gold' }]);
        assert.deepEqual((await s.datasets.show('toy@1')).tags, { stage: 'gold' });
      } finally {
        await s.close();
      }
    });

    test('the same content added twice at once is one version; different content numbers in turn', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const a = await folder({ 't.csv': 'x\n1\n' });
        const same = await Promise.all([1, 2, 3].map(() => s.datasets.add(a, { name: 'toy' }, 'me')));
        assert.deepEqual(
          same.map((v) => v.number),
          [1, 1, 1],
        );
        assert.equal(same.filter((v) => v.created).length, 1);
        const others = await Promise.all(
          [2, 3, 4].map(async (n) =>
            s.datasets.add(await folder({ 't.csv': `x\n${n}\n` }), { name: 'toy' }, 'me'),
          ),
        );
        assert.deepEqual(others.map((v) => v.number).sort(), [2, 3, 4]);
        assert.equal((await s.datasets.versions('toy')).length, 4);
      } finally {
        await s.close();
      }
    });

    test('a Parquet file in a folder is a table of the manifest', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      if (!(await parquetAvailable())) return t.skip('the hyparquet package is not installed');
      const s = await open();
      try {
        const a = await folder({});
        await copyFile(
          join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'data', 'small.parquet'),
          join(a, 'small.parquet'),
        );
        const v = await s.datasets.add(a, { name: 'pq' }, 'me');
        const f = v.manifest.files[0]!;
        assert.deepEqual(
          [f.format, f.rows, f.columns],
          ['parquet', 5, ['age', 'score', 'workclass', 'ok', 'when']],
        );
      } finally {
        await s.close();
      }
    });

    test('get writes every file back, verified; diff lists added, removed and changed files', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const a = await folder({
          'data/train.csv': 'x,y\n1,2\n',
          'data/test.jsonl': '{"x":1}\n',
          'notes.txt': 'a,b\n',
        });
        const v1 = await s.datasets.add(a, { name: 'toy' }, 'me');
        await writeFile(join(a, 'data/train.csv'), 'x,y,z\n1,2,3\n');
        await rm(join(a, 'notes.txt'));
        await copyFile(ADULT, join(a, 'adult.csv'));
        const v2 = await s.datasets.add(a, { name: 'toy' }, 'me');

        const out = join(dir, 'out');
        const written = await s.datasets.get('toy@1', out);
        assert.equal(written.length, 3);
        assert.equal(await readFile(join(out, 'data', 'train.csv'), 'utf8'), 'x,y\n1,2\n');
        assert.equal(await readFile(join(out, 'data', 'test.jsonl'), 'utf8'), '{"x":1}\n');
        assert.equal(await readFile(join(out, 'notes.txt'), 'utf8'), 'a,b\n');
        // A file where the folder should be, or a folder that cannot be made (under /proc,
        // where Node's recursive mkdir never returns), fails at once.
        await assert.rejects(
          s.datasets.get('toy@1', join(out, 'notes.txt')),
          /notes\.txt is a file, not a folder to write into/,
        );
        if (process.platform === 'linux')
          await assert.rejects(s.datasets.get('toy@1', '/proc/slipway-no-such/x'), /ENOENT|EACCES|EPERM/);

        const d = await s.datasets.diff('toy@1', `toy@${v2.digest.slice(0, 8)}`);
        assert.equal(d.from.number, v1.number);
        assert.equal(d.to.number, 2);
        assert.deepEqual(
          d.added.map((f) => f.path),
          ['adult.csv'],
        );
        assert.deepEqual(
          d.removed.map((f) => f.path),
          ['notes.txt'],
        );
        assert.deepEqual(
          d.changed.map((c) => [c.path, c.from.rows, c.to.rows, c.columnsAdded, c.columnsRemoved]),
          [['data/train.csv', 1, 1, ['z'], []]],
        );
        assert.equal(d.unchanged, 1);
        assert.deepEqual(d.profiles, { from: null, to: null });
      } finally {
        await s.close();
      }
    });

    test('a corrupted blob fails get instead of writing wrong bytes', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const a = await folder({ 't.csv': 'x\n1\n' });
        const v = await s.datasets.add(a, { name: 'toy' }, 'me');
        const blob = await s.artifacts.blobs.localPath(v.manifest.files[0]!.sha256);
        await writeFile(blob, 'x\n2\n');
        const out = join(dir, 'corrupt');
        await assert.rejects(s.datasets.get('toy@1', out), /read back as 4 bytes with sha256:/);
        await assert.rejects(readFile(join(out, 't.csv')), { code: 'ENOENT' });
      } finally {
        await s.close();
      }
    });

    test('a profiler hook stores its result with the version; bad input names the field', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open({
        profiler: async (files) => ({ tables: files.map((f) => [f.path, f.format]) }),
      });
      try {
        const a = await folder({ 'a.csv': 'x\n1\n', 'b.txt': 'hello' });
        const v = await s.datasets.add(a, { name: 'toy' }, 'me');
        assert.deepEqual(v.profile, { tables: [['a.csv', 'csv']] });
        await assert.rejects(s.datasets.add(a, { name: '-x' }, 'me'), /name: "-x"/);
        await assert.rejects(
          s.datasets.add(join(dir, 'missing'), { name: 'x' }, 'me'),
          /no such file or folder/,
        );
        const empty = await folder({});
        await assert.rejects(s.datasets.add(empty, { name: 'x' }, 'me'), /holds no files/);
        const broken = await folder({ 'bad.jsonl': '{"a":1}\nnot json\n' });
        await assert.rejects(s.datasets.add(broken, { name: 'x' }, 'me'), /line 2: not JSON/);
        await assert.rejects(s.datasets.show('x'), /does not exist/);
      } finally {
        await s.close();
      }
    });
  });
}

describe('slipway data (the binary, on SQLite)', () => {
  const BIN = join(import.meta.dirname, '..', '..', 'bin', 'slipway.js');
  let dir: string;
  let flags: string[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-data-'));
    flags = ['--data-dir', join(dir, 'data')];
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function slipway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLIPWAY_')));
    return new Promise((resolve) => {
      execFile(process.execPath, [BIN, ...args, ...flags], { env }, (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  test('add, add again, list, show, diff, get and a missing version', async () => {
    let r = await slipway(['data', 'add', ADULT, '--name', 'adult', '--tag', 'source=uci']);
    assert.equal(r.code, 0, r.stderr);
    const v1 = /^added adult@1 \(([0-9a-f]{12})\): 1 file, 48,842 rows, 5\.3 MB\n$/.exec(r.stdout);
    assert.ok(v1, r.stdout);
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');

    r = await slipway(['data', 'add', ADULT, '--name', 'adult']);
    assert.equal(r.stdout, `unchanged: adult@1 (${v1[1]}) already holds this content\n`);

    const src = join(dir, 'src');
    await mkdir(src);
    await copyFile(ADULT, join(src, 'adult.csv'));
    await writeFile(join(src, 'README.md'), '# Adult\n');
    r = await slipway(['data', 'add', src, '--name', 'adult', '--json']);
    const v2 = JSON.parse(r.stdout) as { ref: string; digest: string; created: boolean };
    assert.deepEqual([v2.ref, v2.created], ['adult@2', true]);

    r = await slipway(['data', 'list']);
    assert.deepEqual(r.stdout.split('\n')[0]!.split(/\s+/), [
      'NAME',
      'VERSIONS',
      'LATEST',
      'DIGEST',
      'FILES',
      'ROWS',
      'SIZE',
      'CREATED',
    ]);
    assert.deepEqual(r.stdout.split('\n')[1]!.split(/\s+/).slice(0, 6), [
      'adult',
      '2',
      '2',
      v2.digest.slice(0, 12),
      '2',
      '48,842',
    ]);

    r = await slipway(['data', 'list', 'adult']);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /^adult@1 .* source=uci$/);

    r = await slipway(['data', 'show', `adult@${v1[1]}`]);
    assert.match(r.stdout, /^adult@1\n {2}digest {3}[0-9a-f]{64}\n/);
    assert.match(r.stdout, /\nadult\.csv +csv +48,842 +5\.3 MB +[0-9a-f]{12}\n$/);

    r = await slipway(['data', 'diff', 'adult@1', 'adult@2']);
    assert.equal(
      r.stdout,
      'adult@1 → adult@2\n+ README.md  (- rows, 8 B)\n1 added, 0 removed, 0 changed, 1 unchanged\n',
    );

    const out = join(dir, 'out');
    r = await slipway(['data', 'get', 'adult@2', '-o', out]);
    assert.equal(r.stdout, `wrote 2 files of adult@2 to ${out}\n`);
    assert.equal(sha256(await readFile(join(out, 'adult.csv'))), sha256(await readFile(ADULT)));
    assert.equal(await readFile(join(out, 'README.md'), 'utf8'), '# Adult\n');

    r = await slipway(['data', 'show', 'adult@7']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: dataset 'adult' has no version '7'\n");
  });
});
