/** The registry service on SQLite and PostgreSQL: versions, signatures, aliases, cards, audit, changes. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ArtifactRepository, artifactMigrations, FolderBlobStore } from '../src/artifacts/index.js';
import { SlipwayError } from '../src/errors/index.js';
import {
  type AuditEntry,
  parseFilter,
  parseOrderBy,
  Registry,
  registryMigrations,
} from '../src/registry/index.js';
import { Database } from '../src/store/index.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';

const ADULT = readFileSync(join(REPO_ROOT, 'examples/models/adult-income/1/model.onnx'));
const ADD_SUB = readFileSync(join(FIXTURES, 'add_sub/1/model.onnx'));
const ADD_SUB_2 = readFileSync(join(FIXTURES, 'add_sub/2/model.onnx'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Opened {
  db: Database;
  artifacts: ArtifactRepository;
  registry: Registry;
  close(): Promise<void>;
}

async function open(url: string, blobDir: string, migrate = true): Promise<Opened> {
  const db = await Database.open({ url });
  if (migrate) await db.migrate([...artifactMigrations, ...registryMigrations]);
  const blobs = new FolderBlobStore(blobDir);
  const artifacts = new ArtifactRepository(db, blobs);
  return {
    db,
    artifacts,
    registry: new Registry(db, artifacts),
    close: async () => {
      await blobs.close();
      await db.close();
    },
  };
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SlipwayError, `expected a SlipwayError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

for (const make of [sqliteDatabase, postgresDatabase]) {
  const dialect = make === sqliteDatabase ? 'sqlite' : 'postgres';
  describe(`registry on ${dialect}`, () => {
    let server: TestDatabase | { skip: string };
    let blobDir: string;
    before(async () => {
      server = await make();
      blobDir = await mkdtemp(join(tmpdir(), 'slipway-registry-blobs-'));
    });
    after(async () => {
      if ('stop' in server) await server.stop();
      await rm(blobDir, { recursive: true, force: true });
    });

    async function fresh(): Promise<Opened> {
      if ('skip' in server) throw new Error('unreachable');
      return open(await server.fresh(), blobDir);
    }

    test('versions are numbered 1..n, each with its own copy of model.onnx and the graph signature', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const { registry, artifacts } = o;
        await registry.createModel({ name: 'adult', description: 'income', tags: { team: 'risk' } }, 'ana');
        const v1 = await registry.createVersion(
          {
            name: 'adult',
            content: { file: ADULT },
            metrics: { auc: 0.91, accuracy: 0.85 },
            tags: { framework: 'sklearn' },
            trainingData: ['adult@3'],
            evaluationData: ['adult-test@3', 's3://bucket/adult/test.parquet'],
            runId: 'abc123',
            source: 'file:///tmp/model.onnx',
          },
          'ana',
        );
        assert.equal(v1.version, 1);
        assert.equal(v1.status, 'READY');
        assert.equal(v1.stage, 'None');
        assert.equal(v1.creator, 'ana');
        assert.equal(v1.artifactPath, 'registry/adult/1');
        assert.deepEqual(v1.modelFile, {
          path: 'registry/adult/1/model.onnx',
          sha256: sha(ADULT),
          size: ADULT.length,
        });
        assert.deepEqual(v1.metrics, { auc: 0.91, accuracy: 0.85 });
        assert.deepEqual(v1.tags, { framework: 'sklearn' });
        assert.equal(v1.runId, 'abc123');
        assert.equal(v1.source, 'file:///tmp/model.onnx');
        assert.deepEqual(v1.trainingData, [{ ref: 'adult@3', name: 'adult', version: '3', uri: null }]);
        assert.deepEqual(v1.evaluationData, [
          { ref: 'adult-test@3', name: 'adult-test', version: '3', uri: null },
          {
            ref: 's3://bucket/adult/test.parquet',
            name: null,
            version: null,
            uri: 's3://bucket/adult/test.parquet',
          },
        ]);
        // The signature as Open Inference Protocol metadata, read from the ONNX graph.
        const sig = v1.signature!;
        assert.equal(sig.inputs.length, 14);
        assert.deepEqual(sig.inputs[0], { name: 'age', datatype: 'FP32', shape: [-1, 1] });
        assert.deepEqual(
          sig.inputs.find((i) => i.name === 'workclass'),
          { name: 'workclass', datatype: 'BYTES', shape: [-1, 1] },
        );
        assert.deepEqual(sig.outputs, [
          { name: 'label', datatype: 'INT64', shape: [-1] },
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
        ]);
        const stored = await artifacts.stat('registry/adult/1/model.onnx');
        assert.equal(stored?.sha256, sha(ADULT));

        const v2 = await registry.createVersion({ name: 'adult', content: { file: ADD_SUB } }, 'bo');
        assert.equal(v2.version, 2);
        assert.equal(v2.source, 'upload:model.onnx');
        assert.deepEqual(v2.signature, {
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] },
            { name: 'INPUT1', datatype: 'FP32', shape: [-1, 4] },
          ],
          outputs: [
            { name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 4] },
            { name: 'OUTPUT1', datatype: 'FP32', shape: [-1, 4] },
          ],
        });
        const model = await registry.getModel('adult');
        assert.equal(model.latestVersion, 2);
        assert.equal(model.versionCount, 2);
        assert.deepEqual(model.tags, { team: 'risk' });
        // Numbers are never reused: after deleting v2 the next is 3.
        await registry.deleteVersion('adult', 2, 'bo');
        assert.equal(await artifacts.stat('registry/adult/2/model.onnx'), undefined);
        const v3 = await registry.createVersion({ name: 'adult', content: { file: ADD_SUB_2 } }, 'bo');
        assert.equal(v3.version, 3);
        const listed = await registry.listVersions('adult');
        assert.deepEqual(
          listed.versions.map((v) => v.version),
          [3, 1],
        );
        // Immutable: the version keeps its bytes whatever happens to the source.
        const local = await artifacts.localPath('registry/adult/1/model.onnx');
        assert.equal(sha(await readFile(local)), sha(ADULT));
      } finally {
        await o.close();
      }
    });

    test('a file that is not an ONNX model is a 400 naming the file, and takes no version number', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        await o.registry.createModel({ name: 'm' }, 'ana');
        await rejectsWith(
          o.registry.createVersion(
            { name: 'm', content: { file: Buffer.from('not a model at all'), fileName: 'broken.onnx' } },
            'ana',
          ),
          'SLIPWAY_ERR_BAD_REQUEST',
          /file 'broken\.onnx' is not a valid ONNX model/,
        );
        await rejectsWith(
          o.registry.createVersion({ name: 'nope', content: { file: ADD_SUB } }, 'ana'),
          'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
          /registered model 'nope' does not exist/,
        );
        await rejectsWith(
          o.registry.createVersion(
            { name: 'm', content: { file: ADD_SUB }, metrics: { auc: Number.NaN } },
            'ana',
          ),
          'SLIPWAY_ERR_BAD_REQUEST',
          /metrics\.auc/,
        );
        await rejectsWith(
          o.registry.createVersion(
            { name: 'm', content: { file: ADD_SUB }, trainingData: ['bad ref!'] },
            'ana',
          ),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^training_data: /,
        );
        const v = await o.registry.createVersion({ name: 'm', content: { file: ADD_SUB } }, 'ana');
        assert.equal(v.version, 1);
        await rejectsWith(
          o.registry.createModel({ name: 'm' }, 'ana'),
          'SLIPWAY_ERR_ALREADY_EXISTS',
          /registered model 'm' already exists/,
        );
        await rejectsWith(
          o.registry.createModel({ name: '../x' }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^name:/,
        );
      } finally {
        await o.close();
      }
    });

    test('NUL characters, which PostgreSQL text cannot hold, are 400s naming the field', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const r = o.registry;
        await r.createModel({ name: 'm' }, 'ana');
        await r.createVersion({ name: 'm', content: { file: ADD_SUB } }, 'ana');
        const nul = 'a\0b';
        await rejectsWith(
          r.createModel({ name: 'n', description: nul }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^description:/,
        );
        await rejectsWith(
          r.createModel({ name: 'n', tags: { k: nul } }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^tags\.k:/,
        );
        await rejectsWith(
          r.updateModel('m', { tags: { [nul]: 'v' } }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^tags:/,
        );
        await rejectsWith(
          r.createVersion({ name: 'm', content: { file: ADD_SUB }, source: nul }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^source:/,
        );
        await rejectsWith(
          r.createVersion(
            { name: 'm', content: { file: ADD_SUB }, evaluationData: [`s3://x/${nul}`] },
            'ana',
          ),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^evaluation_data:/,
        );
        await rejectsWith(
          r.updateVersion('m', 1, { description: nul }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^description:/,
        );
        await rejectsWith(
          r.updateCard('m', { factors: nul }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /^sections\.factors:/,
        );
        await rejectsWith(r.auditLog({ model: nul }), 'SLIPWAY_ERR_BAD_REQUEST', /^model:/);
        await rejectsWith(r.getVersionByAlias('m', nul), 'SLIPWAY_ERR_BAD_REQUEST', /^alias:/);
        assert.throws(() => parseFilter(`name = '${nul}'`, 'models'), /filter: must not contain NUL/);
        // A name with NUL names no model.
        await rejectsWith(r.getModel(nul), 'SLIPWAY_ERR_RESOURCE_NOT_FOUND', /does not exist/);
        await rejectsWith(
          r.setAlias(nul, 'champion', 1, 'ana'),
          'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
          /does not exist/,
        );
        // The actor is recorded without it.
        await r.updateModel('m', { description: 'ok' }, `x${nul}`);
        assert.equal((await r.auditLog({ limit: 1 })).entries[0]!.actor, 'xab');
      } finally {
        await o.close();
      }
    });

    test('concurrent creates from several connections get distinct consecutive numbers', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const url = await (server as TestDatabase).fresh();
      const first = await open(url, blobDir);
      // On PostgreSQL separate pools behave as separate processes would. better-sqlite3 is
      // synchronous, so a second SQLite connection in this process would wait for the lock on
      // the event loop the first needs to finish; test/cli-models.test.ts races processes instead.
      const others =
        dialect === 'postgres'
          ? await Promise.all([open(url, blobDir, false), open(url, blobDir, false)])
          : [];
      const all = [first, ...others];
      try {
        const perInstance = 6;
        // The model does not exist yet: every create races to register it too.
        const created = await Promise.all(
          all.flatMap((o, i) =>
            Array.from({ length: perInstance }, (_, j) =>
              o.registry.createVersion(
                {
                  name: 'race',
                  content: { file: j % 2 ? ADD_SUB : ADD_SUB_2 },
                  createModel: true,
                  tags: { who: `${i}-${j}` },
                },
                `writer-${i}`,
              ),
            ),
          ),
        );
        const numbers = created.map((v) => v.version).sort((a, b) => a - b);
        assert.deepEqual(
          numbers,
          Array.from({ length: all.length * perInstance }, (_, i) => i + 1),
        );
        assert.ok(created.every((v) => v.status === 'READY'));
        const model = await first.registry.getModel('race');
        assert.equal(model.versionCount, all.length * perInstance);
        // Exactly one create registered the model; every change has its own sequence number.
        const { entries } = await first.registry.auditLog({ model: 'race', limit: 1000 });
        assert.equal(entries.filter((e) => e.action === 'model.create').length, 1);
        assert.equal(entries.filter((e) => e.action === 'version.create').length, all.length * perInstance);
        const seqs = entries.map((e) => e.seq).sort((a, b) => a - b);
        assert.deepEqual(
          seqs,
          Array.from({ length: seqs.length }, (_, i) => i + 1),
        );
        // Concurrent alias moves serialize: the history is a chain with no lost move.
        await Promise.all(
          all.flatMap((o, i) =>
            [1, 2, 3].map((k) => o.registry.setAlias('race', 'champion', i * 3 + k, `mover-${i}`)),
          ),
        );
        const history = (await first.registry.aliasHistory('race', 'champion')).reverse();
        assert.equal(history.length, all.length * 3);
        assert.equal(history[0]!.fromVersion, null);
        for (let i = 1; i < history.length; i++)
          assert.equal(history[i]!.fromVersion, history[i - 1]!.toVersion);
        const current = await first.registry.getVersionByAlias('race', 'champion');
        assert.equal(current.version, history[history.length - 1]!.toVersion);
      } finally {
        for (const o of all) await o.close();
      }
    });

    test('aliases move atomically, every move is in the history, and versions resolve by alias', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const r = o.registry;
        await r.createModel({ name: 'adult' }, 'ana');
        for (const f of [ADULT, ADD_SUB, ADD_SUB_2])
          await r.createVersion({ name: 'adult', content: { file: f } }, 'ana');
        const m1 = await r.setAlias('adult', 'champion', 1, 'ana');
        assert.deepEqual(
          { from: m1.fromVersion, to: m1.toVersion, actor: m1.actor },
          { from: null, to: 1, actor: 'ana' },
        );
        assert.ok(m1.seq > 0);
        const m2 = await r.setAlias('adult', 'champion', 2, 'bo');
        assert.deepEqual([m2.fromVersion, m2.toVersion], [1, 2]);
        // Setting it where it already points changes nothing and records nothing.
        const same = await r.setAlias('adult', 'champion', 2, 'bo');
        assert.equal(same.seq, 0);
        await r.setAlias('adult', 'challenger', 3, 'cy');
        assert.equal((await r.getVersionByAlias('adult', 'champion')).version, 2);
        assert.deepEqual((await r.getVersion('adult', 3)).aliases, ['challenger']);
        assert.deepEqual((await r.getModel('adult')).aliases, { challenger: 3, champion: 2 });
        const del = await r.deleteAlias('adult', 'challenger', 'cy');
        assert.deepEqual([del.fromVersion, del.toVersion], [3, null]);
        await rejectsWith(
          r.getVersionByAlias('adult', 'challenger'),
          'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
          /no alias 'challenger'/,
        );
        await rejectsWith(
          r.deleteAlias('adult', 'challenger', 'cy'),
          'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
          /challenger/,
        );
        await rejectsWith(
          r.setAlias('adult', 'champion', 9, 'ana'),
          'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
          /version 9/,
        );
        // Versions are 32-bit in the database: larger numbers are refused before any query.
        await rejectsWith(r.getVersion('adult', 2 ** 31), 'SLIPWAY_ERR_BAD_REQUEST', /^version:/);
        for (const badAlias of ['latest', 'LATEST', '12', 'v3', 'a b', '', 'x'.repeat(65)]) {
          await rejectsWith(r.setAlias('adult', badAlias, 1, 'ana'), 'SLIPWAY_ERR_BAD_REQUEST', /^alias:/);
        }
        // Deleting the version an alias names deletes the alias, recorded as a move to nothing.
        await r.deleteVersion('adult', 2, 'ana');
        await rejectsWith(
          r.getVersionByAlias('adult', 'champion'),
          'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
          /champion/,
        );
        const history = await r.aliasHistory('adult');
        assert.deepEqual(
          history.map((h) => [h.alias, h.fromVersion, h.toVersion, h.actor]),
          [
            ['champion', 2, null, 'ana'],
            ['challenger', 3, null, 'cy'],
            ['challenger', null, 3, 'cy'],
            ['champion', 1, 2, 'bo'],
            ['champion', null, 1, 'ana'],
          ],
        );
        assert.deepEqual(
          (await r.aliasHistory('adult', 'challenger')).map((h) => h.toVersion),
          [null, 3],
        );
        assert.ok(history.every((h, i) => i === 0 || h.seq < history[i - 1]!.seq));
      } finally {
        await o.close();
      }
    });

    test('the model card is edited section by section and rendered with registry facts; HTML is escaped', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const r = o.registry;
        await r.createModel({ name: 'adult', description: 'Predicts <income> & more' }, 'ana');
        await r.createVersion(
          {
            name: 'adult',
            content: { file: ADULT },
            metrics: { auc: 0.91 },
            trainingData: ['adult@3'],
            evaluationData: ['adult-test@3'],
          },
          'ana',
        );
        await r.createVersion(
          { name: 'adult', content: { file: ADULT }, metrics: { auc: 0.93, f1: 0.7 } },
          'ana',
        );
        await r.setAlias('adult', 'champion', 1, 'ana');
        const card = await r.updateCard(
          'adult',
          {
            intended_use: 'Screening <script>alert("x")</script> only.',
            'ethical-considerations': 'Uses race & sex.\n\nSecond paragraph.',
          },
          'ana',
        );
        assert.equal(card.sections.intendedUse, 'Screening <script>alert("x")</script> only.');
        assert.equal(card.sections.factors, '');
        assert.equal(card.updatedBy, 'ana');
        assert.deepEqual(card.facts.aliases, { champion: 1 });
        assert.equal(card.facts.signature?.version, 1);
        assert.equal(card.facts.versions.length, 2);
        // A later edit of one section keeps the others.
        const again = await r.updateCard('adult', { factors: 'Age groups.' }, 'bo');
        assert.equal(again.sections.intendedUse, card.sections.intendedUse);
        assert.equal(again.sections.factors, 'Age groups.');
        await rejectsWith(
          r.updateCard('adult', { nonsense: 'x' }, 'bo'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /nonsense/,
        );

        const md = await r.renderCard('adult', 'markdown');
        assert.match(md, /^# Model card: adult$/m);
        for (const title of [
          'Model details',
          'Intended use',
          'Factors',
          'Metrics',
          'Evaluation data',
          'Training data',
          'Quantitative analyses',
          'Ethical considerations',
          'Caveats and recommendations',
        ]) {
          assert.match(md, new RegExp(`^## ${title}$`, 'm'));
        }
        assert.match(md, /Aliases: champion → v1\./);
        assert.match(md, /\| version \| auc \| f1 \|/);
        assert.match(md, /\| v1 \(champion\) \| 0\.91 \| {2}\|/);
        assert.match(md, /\| v2 \| 0\.93 \| 0\.7 \|/);
        assert.match(md, /\| input \| age \| FP32 \| \[-1, 1\] \|/);
        assert.match(md, /\| v1 \| adult@3 \|/);
        assert.match(md, /_Not written yet\._/);

        const html = await r.renderCard('adult', 'html');
        assert.ok(!html.includes('<script>'), 'user text must not become markup');
        assert.match(html, /Screening &lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt; only\./);
        assert.match(html, /<p>Uses race &amp; sex\.<\/p>\n<p>Second paragraph\.<\/p>/);
        assert.match(html, /Predicts &lt;income&gt; &amp; more/);
        assert.match(html, /<td>v2<\/td><td>0\.93<\/td><td>0\.7<\/td>/);
      } finally {
        await o.close();
      }
    });

    test('every change is in the audit log with who, when, what; replicas read changes since a cursor', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const r = o.registry;
        const heard: AuditEntry[] = [];
        const stop = r.onChange((c) => heard.push(c));
        const start = await r.latestChangeSeq();
        const t0 = Date.now();
        await r.createModel({ name: 'a' }, 'ana');
        await r.updateModel('a', { description: 'd', tags: { team: 'x' } }, 'ana');
        await r.updateModel('a', { tags: { team: null } }, 'ana');
        await r.createVersion({ name: 'a', content: { file: ADD_SUB }, aliases: ['champion'] }, 'bo');
        await r.updateVersion('a', 1, { description: 'first', tags: { k: 'v' } }, 'bo');
        await r.updateVersion('a', 1, { tags: { k: null } }, 'bo');
        await r.transitionStage('a', 1, 'production', true, 'bo');
        await r.updateCard('a', { factors: 'f' }, 'cy');
        await r.deleteAlias('a', 'champion', 'cy');
        await r.renameModel('a', 'b', 'cy');
        await r.deleteVersion('b', 1, 'cy');
        await r.deleteModel('b', 'cy');
        stop();
        const { entries } = await r.auditLog({ limit: 1000 });
        const oldestFirst = [...entries].reverse();
        assert.deepEqual(
          oldestFirst.map((e) => [e.action, e.actor, e.target]),
          [
            ['model.create', 'ana', 'model:a'],
            ['model.update', 'ana', 'model:a'],
            ['model.tag.set', 'ana', 'model:a'],
            ['model.tag.delete', 'ana', 'model:a'],
            ['version.create', 'bo', 'version:a/1'],
            ['alias.set', 'bo', 'alias:a@champion'],
            ['version.update', 'bo', 'version:a/1'],
            ['version.tag.set', 'bo', 'version:a/1'],
            ['version.tag.delete', 'bo', 'version:a/1'],
            ['version.stage', 'bo', 'version:a/1'],
            ['card.update', 'cy', 'card:a'],
            ['alias.delete', 'cy', 'alias:a@champion'],
            ['model.rename', 'cy', 'model:b'],
            ['version.delete', 'cy', 'version:b/1'],
            ['model.delete', 'cy', 'model:b'],
          ],
        );
        const created = oldestFirst[4]!;
        assert.equal(created.details.sha256, sha(ADD_SUB));
        assert.deepEqual(oldestFirst[5]!.details, { from: null, to: 1 });
        assert.deepEqual(oldestFirst[9]!.details, { from: 'None', to: 'Production' });
        assert.deepEqual(oldestFirst[12]!.details, { from: 'a', to: 'b' });
        assert.ok(oldestFirst.every((e) => e.atMs >= t0 && e.atMs <= Date.now()));
        // In-process listeners heard the same changes, in order.
        assert.deepEqual(
          heard.map((h) => h.seq),
          oldestFirst.map((e) => e.seq),
        );
        // Queries: by model, by actor, by action family, paged.
        assert.equal((await r.auditLog({ actor: 'cy' })).entries.length, 5);
        assert.deepEqual(
          (await r.auditLog({ action: 'alias.*' })).entries.map((e) => e.action),
          ['alias.delete', 'alias.set'],
        );
        const page1 = await r.auditLog({ limit: 10 });
        assert.equal(page1.entries.length, 10);
        const page2 = await r.auditLog({ limit: 10, beforeSeq: page1.next! });
        assert.equal(page2.entries.length, 5);
        assert.equal(page2.next, null);
        // A replica polling from a cursor sees every change once, oldest first.
        const a = await r.changesSince(start, 4);
        assert.deepEqual(
          a.changes.map((c) => c.action),
          ['model.create', 'model.update', 'model.tag.set', 'model.tag.delete'],
        );
        const b = await r.changesSince(a.cursor);
        assert.equal(a.changes.length + b.changes.length, 15);
        assert.equal(b.cursor, await r.latestChangeSeq());
        assert.deepEqual((await r.changesSince(b.cursor)).changes, []);
      } finally {
        await o.close();
      }
    });

    test('a folder (an MLflow logged model) becomes a version by links, renames move folders', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const { registry: r, artifacts } = o;
        const src = '1/models/m-0123/artifacts';
        await artifacts.put(`${src}/MLmodel`, Buffer.from('flavors:\n  onnx:\n    data: model.onnx\n'));
        await artifacts.put(`${src}/model.onnx`, ADULT);
        await artifacts.put(`${src}/extra/requirements.txt`, Buffer.from('onnx\n'));
        await r.createModel({ name: 'income' }, 'ana');
        const v = await r.createVersion(
          { name: 'income', content: { folder: src }, source: 'models:/m-0123', loggedModelId: 'm-0123' },
          'ana',
        );
        assert.equal(v.loggedModelId, 'm-0123');
        assert.equal(v.modelFile?.sha256, sha(ADULT));
        assert.equal(v.signature?.inputs.length, 14);
        const files = await artifacts.filesUnder('registry/income/1');
        assert.deepEqual(
          files.map((f) => f.path),
          [
            'registry/income/1/MLmodel',
            'registry/income/1/extra/requirements.txt',
            'registry/income/1/model.onnx',
          ],
        );
        // Linked: the same blobs as the source.
        const srcFiles = await artifacts.filesUnder(src);
        assert.deepEqual(
          files.map((f) => f.sha256),
          srcFiles.map((f) => f.sha256),
        );
        // A folder without ONNX is kept (MLflow registers any flavor) but has nothing to serve.
        await artifacts.put('1/models/m-4567/artifacts/model.pkl', Buffer.from('pickle'));
        const other = await r.createVersion(
          { name: 'income', content: { folder: '1/models/m-4567/artifacts' } },
          'ana',
        );
        assert.equal(other.modelFile, null);
        assert.equal(other.signature, null);
        await rejectsWith(
          r.createVersion({ name: 'income', content: { folder: '1/models/none' } }, 'ana'),
          'SLIPWAY_ERR_BAD_REQUEST',
          /holds no files/,
        );

        await r.setAlias('income', 'champion', 1, 'ana');
        const renamed = await r.renameModel('income', 'income2', 'ana');
        assert.equal(renamed.name, 'income2');
        assert.deepEqual(renamed.aliases, { champion: 1 });
        assert.equal((await r.getVersion('income2', 1)).artifactPath, 'registry/income2/1');
        assert.deepEqual(await artifacts.filesUnder('registry/income'), []);
        assert.equal((await artifacts.filesUnder('registry/income2/1')).length, 3);
        // The old name is free again and starts over at 1 without touching the renamed model.
        await r.createVersion({ name: 'income', content: { file: ADD_SUB }, createModel: true }, 'bo');
        assert.equal((await r.getVersion('income', 1)).modelFile?.sha256, sha(ADD_SUB));
        assert.equal((await r.getVersion('income2', 1)).modelFile?.sha256, sha(ADULT));
        // The alias history follows the model through the rename.
        assert.equal((await r.aliasHistory('income2')).length, 1);
        await rejectsWith(r.renameModel('income', 'income2', 'bo'), 'SLIPWAY_ERR_ALREADY_EXISTS', /income2/);

        const view = await r.servingView('income2');
        assert.deepEqual(view.aliases, { champion: 1 });
        assert.deepEqual(
          view.versions.map((x) => x.version),
          [1],
        );
        assert.equal(sha(await readFile(await view.versions[0]!.file())), sha(ADULT));
        assert.deepEqual(await r.servableModels(), ['income', 'income2']);

        await r.deleteModel('income2', 'ana');
        assert.deepEqual(await artifacts.filesUnder('registry/income2'), []);
        await rejectsWith(r.getModel('income2'), 'SLIPWAY_ERR_RESOURCE_NOT_FOUND', /income2/);
        assert.equal((await r.auditLog({ model: 'income2' })).entries[0]?.action, 'model.delete');
      } finally {
        await o.close();
      }
    });

    test('the serving catalog: servable names, views with config, changed names since a cursor', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const r = o.registry;
        const catalog = r.servingCatalog();
        const start = (await catalog.changesSince(Number.MAX_SAFE_INTEGER)).cursor;
        assert.equal(start, await r.latestChangeSeq());
        const heard: string[] = [];
        const stop = catalog.onChange((n) => heard.push(n));
        await r.createModel({ name: 'empty' }, 'ana');
        await r.createVersion(
          { name: 'adult', content: { file: ADULT }, createModel: true, config: { max_batch_size: 8 } },
          'ana',
        );
        await r.createVersion({ name: 'adult', content: { file: ADULT } }, 'ana');
        await rejectsWith(
          r.createVersion(
            { name: 'adult', content: { file: ADULT }, config: { max_batch_size: 'x' } },
            'ana',
          ),
          'SLIPWAY_ERR_MODEL_LOAD',
          /max_batch_size/,
        );
        assert.deepEqual(await catalog.modelNames(), ['adult']);
        assert.equal(await catalog.view('nope'), undefined);
        // Without the serving alias the latest version's config applies (v2 has none).
        let view = (await catalog.view('adult'))!;
        assert.deepEqual(
          view.versions.map((v) => v.version),
          [1, 2],
        );
        assert.equal(view.config, undefined);
        await r.setAlias('adult', 'champion', 1, 'ana');
        view = (await catalog.view('adult'))!;
        assert.deepEqual(view.aliases, { champion: 1 });
        assert.deepEqual(view.config, { max_batch_size: 8 });
        assert.equal(sha(await readFile(await view.versions[0]!.file())), sha(ADULT));
        await r.renameModel('adult', 'adult2', 'ana');
        stop();
        const changed = await catalog.changesSince(start);
        assert.deepEqual(changed.names.sort(), ['adult', 'adult2', 'empty']);
        assert.equal(changed.cursor, await r.latestChangeSeq());
        assert.deepEqual(await catalog.changesSince(changed.cursor), { names: [], cursor: changed.cursor });
        assert.deepEqual([...new Set(heard)].sort(), ['adult', 'adult2', 'empty']);
      } finally {
        await o.close();
      }
    });

    test('search by MLflow filters (LIKE is case-sensitive, ILIKE not), order and pages; dataset lineage', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const o = await fresh();
      try {
        const r = o.registry;
        for (const [name, team] of [
          ['Income-A', 'risk'],
          ['income-b', 'risk'],
          ['churn', 'growth'],
        ] as const) {
          await r.createModel({ name, tags: { team } }, 'ana');
        }
        await r.createVersion(
          { name: 'churn', content: { file: ADD_SUB }, runId: 'run1', trainingData: ['events@7'] },
          'ana',
        );
        await r.createVersion(
          { name: 'churn', content: { file: ADD_SUB_2 }, runId: 'run2', trainingData: ['events@8'] },
          'ana',
        );
        await r.createVersion(
          { name: 'income-b', content: { file: ADD_SUB }, runId: 'run1', evaluationData: ['events@7'] },
          'ana',
        );
        const names = async (filter: string, order?: string[]) =>
          (
            await r.searchModels({
              conditions: parseFilter(filter, 'models'),
              orderBy: parseOrderBy(order, 'models'),
            })
          ).models.map((m) => m.name);
        assert.deepEqual(await names("name LIKE '%ncome%'"), ['Income-A', 'income-b']);
        assert.deepEqual(await names("name LIKE 'income%'"), ['income-b']);
        assert.deepEqual(await names("name ILIKE 'INCOME%'"), ['Income-A', 'income-b']);
        assert.deepEqual(await names("tags.team = 'risk' AND name != 'Income-A'"), ['income-b']);
        assert.deepEqual(await names("tags.`mlflow.prompt.is_prompt` != 'true'"), [
          'Income-A',
          'churn',
          'income-b',
        ]);
        assert.deepEqual(await names("name = 'churn'"), ['churn']);
        assert.deepEqual(await names('', ['name DESC']), ['income-b', 'churn', 'Income-A']);
        const p1 = await r.searchModels({ maxResults: 2 });
        assert.equal(p1.models.length, 2);
        const p2 = await r.searchModels({ maxResults: 2, pageToken: p1.nextPageToken! });
        assert.deepEqual(
          p2.models.map((m) => m.name),
          ['income-b'],
        );
        assert.equal(p2.nextPageToken, null);
        await rejectsWith(r.searchModels({ pageToken: 'garbage' }), 'SLIPWAY_ERR_BAD_REQUEST', /page_token/);
        assert.throws(() => parseFilter("nam = 'x'", 'models'), /unknown attribute 'nam'/);
        assert.throws(() => parseFilter("name = 'x' OR name = 'y'", 'models'), /AND/);

        const versions = async (filter: string) =>
          (await r.searchVersions({ conditions: parseFilter(filter, 'versions') })).versions.map(
            (v) => `${v.name}/${v.version}`,
          );
        assert.deepEqual(await versions("run_id = 'run1'"), ['churn/1', 'income-b/1']);
        assert.deepEqual(await versions("run_id IN ('run2', 'x')"), ['churn/2']);
        assert.deepEqual(await versions("name = 'churn' AND version_number > 1"), ['churn/2']);

        const usage = await r.datasetUsage({ name: 'events', version: '7' });
        assert.deepEqual(
          usage.map((u) => [u.model, u.version, u.role]),
          [
            ['churn', 1, 'training'],
            ['income-b', 1, 'evaluation'],
          ],
        );
      } finally {
        await o.close();
      }
    });
  });
}
