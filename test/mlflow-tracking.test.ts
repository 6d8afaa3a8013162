/**
 * MLflow-compatible tracking: the `Tracking` service contract on SQLite and PostgreSQL, then the
 * MLflow routes end to end on a real server (error format and statuses, query-string messages,
 * the artifact proxy, path confinement, the registry routes' seam).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ArtifactRepository, artifactMigrations, FolderBlobStore } from '../src/artifacts/index.js';
import { SlipwayError } from '../src/errors/index.js';
import { MLFLOW_COMPAT_VERSION } from '../src/server/mlflow/index.js';
import { Database } from '../src/store/index.js';
import { type Metric, Tracking, trackingMigrations } from '../src/tracking/index.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';
import { type MlflowTestServer, startMlflowServer } from './support/mlflow-server.js';

interface Fixture {
  db: Database;
  tracking: Tracking;
  artifacts: ArtifactRepository;
  close(): Promise<void>;
}

async function fixture(url: string): Promise<Fixture> {
  const db = await Database.open({ url });
  await db.migrate([...artifactMigrations, ...trackingMigrations]);
  const dir = await mkdtemp(join(tmpdir(), 'slipway-tracking-'));
  const blobs = new FolderBlobStore(dir);
  const artifacts = new ArtifactRepository(db, blobs);
  return {
    db,
    artifacts,
    tracking: new Tracking(db, artifacts),
    async close() {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function code(expected: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SlipwayError, `expected a SlipwayError, got ${String(err)}`);
    assert.equal(err.code, expected, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

const T0 = 1_700_000_000_000;

function metric(key: string, value: number, step: number, timestamp = T0 + step): Metric {
  return { key, value, step, timestamp };
}

for (const make of [sqliteDatabase, postgresDatabase]) {
  const dialect = make === sqliteDatabase ? 'sqlite' : 'postgres';
  describe(`tracking on ${dialect}`, () => {
    let server: TestDatabase | { skip: string };
    let f: Fixture;
    before(async () => {
      server = await make();
      if ('fresh' in server) f = await fixture(await server.fresh());
    });
    after(async () => {
      await f?.close();
      if ('stop' in server) await server.stop();
    });

    test('experiments: Default exists, names are unique, rename, tags, delete takes the runs along', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { tracking } = f;
      const def = await tracking.getExperiment('0');
      assert.equal(def.name, 'Default');
      assert.equal(def.artifactLocation, 'mlflow-artifacts:/0');
      assert.equal(def.lifecycleStage, 'active');

      const id = await tracking.createExperiment('exp-a', { tags: [{ key: 'team', value: 'vision' }] });
      assert.match(id, /^[1-9]\d*$/);
      await assert.rejects(tracking.createExperiment('exp-a'), code('SLIPWAY_ERR_ALREADY_EXISTS', /exp-a/));
      await assert.rejects(tracking.createExperiment(''), code('SLIPWAY_ERR_BAD_REQUEST', /name/));
      await assert.rejects(
        tracking.createExperiment('exp-s3', { artifactLocation: 's3://bucket/x' }),
        code('SLIPWAY_ERR_BAD_REQUEST', /artifact_location/),
      );
      const byName = await tracking.getExperimentByName('exp-a');
      assert.equal(byName.experimentId, id);
      assert.equal(byName.artifactLocation, `mlflow-artifacts:/${id}`);
      assert.deepEqual(byName.tags, [{ key: 'team', value: 'vision' }]);
      await assert.rejects(
        tracking.getExperimentByName('nope'),
        code('SLIPWAY_ERR_RESOURCE_NOT_FOUND', /nope/),
      );
      await assert.rejects(tracking.getExperiment('999999'), code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'));
      await assert.rejects(tracking.getExperiment('abc'), code('SLIPWAY_ERR_BAD_REQUEST', /experiment_id/));

      await tracking.setExperimentTag(id, 'team', 'nlp');
      await tracking.setExperimentTag(id, 'owner', 'ana');
      await tracking.deleteExperimentTag(id, 'owner');
      await assert.rejects(tracking.deleteExperimentTag(id, 'owner'), code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'));
      assert.deepEqual((await tracking.getExperiment(id)).tags, [{ key: 'team', value: 'nlp' }]);

      const other = await tracking.createExperiment('exp-b');
      await assert.rejects(tracking.renameExperiment(id, 'exp-b'), code('SLIPWAY_ERR_ALREADY_EXISTS'));
      await tracking.renameExperiment(id, 'exp-renamed');
      assert.equal((await tracking.getExperiment(id)).name, 'exp-renamed');

      const run = await tracking.createRun({ experimentId: other, userId: 'ana' });
      await tracking.deleteExperiment(other);
      assert.equal((await tracking.getExperiment(other)).lifecycleStage, 'deleted');
      assert.equal((await tracking.getRun(run.info.runId)).info.lifecycleStage, 'deleted');
      await assert.rejects(
        tracking.createRun({ experimentId: other, userId: 'ana' }),
        code('SLIPWAY_ERR_INVALID_STATE', /active/),
      );
      await assert.rejects(tracking.renameExperiment(other, 'x'), code('SLIPWAY_ERR_INVALID_STATE'));
      await assert.rejects(tracking.deleteExperiment('0'), code('SLIPWAY_ERR_BAD_REQUEST', /default/));
      await tracking.restoreExperiment(other);
      assert.equal((await tracking.getRun(run.info.runId)).info.lifecycleStage, 'active');
    });

    test('experiments: search filters, orders, pages and view types', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { tracking } = f;
      const ids: string[] = [];
      for (const name of ['srch-Alpha', 'srch-beta', 'srch-gamma', 'srch-delta']) {
        ids.push(await tracking.createExperiment(name, { tags: [{ key: 'k', value: name.slice(5) }] }));
      }
      await tracking.deleteExperiment(ids[3]!);
      const names = async (req: Parameters<Tracking['searchExperiments']>[0]) =>
        (await tracking.searchExperiments(req)).items.map((e) => e.name);

      assert.deepEqual(await names({ filter: "name LIKE 'srch-%'", orderBy: ['name ASC'] }), [
        'srch-Alpha',
        'srch-beta',
        'srch-gamma',
      ]);
      // LIKE is case-sensitive, ILIKE is not, on both dialects.
      assert.deepEqual(await names({ filter: "name LIKE 'srch-a%'" }), []);
      assert.deepEqual(await names({ filter: "name ILIKE 'SRCH-A%'" }), ['srch-Alpha']);
      assert.deepEqual(await names({ filter: "tags.k = 'beta'" }), ['srch-beta']);
      assert.deepEqual(
        await names({ filter: "name LIKE 'srch-%' AND tags.k != 'beta'", orderBy: ['name DESC'] }),
        ['srch-gamma', 'srch-Alpha'],
      );
      assert.deepEqual(
        await names({ filter: `experiment_id IN ('${ids[0]}', '${ids[2]}')`, orderBy: ['name'] }),
        ['srch-Alpha', 'srch-gamma'],
      );
      assert.deepEqual(await names({ filter: "name LIKE 'srch-%'", viewType: 'DELETED_ONLY' }), [
        'srch-delta',
      ]);
      assert.equal((await names({ filter: "name LIKE 'srch-%'", viewType: 'ALL' })).length, 4);
      // Default order: newest first, then by id (experiments made in the same millisecond tie).
      const active = await Promise.all(ids.slice(0, 3).map((id) => tracking.getExperiment(id)));
      const newestFirst = active
        .sort((a, b) => b.creationTime - a.creationTime || Number(a.experimentId) - Number(b.experimentId))
        .map((e) => e.name);
      assert.deepEqual(await names({ filter: "name LIKE 'srch-%'" }), newestFirst);

      const first = await tracking.searchExperiments({
        filter: "name LIKE 'srch-%'",
        maxResults: 2,
        orderBy: ['name'],
      });
      assert.deepEqual(
        first.items.map((e) => e.name),
        ['srch-Alpha', 'srch-beta'],
      );
      assert.ok(first.nextPageToken);
      const second = await tracking.searchExperiments({
        filter: "name LIKE 'srch-%'",
        maxResults: 2,
        orderBy: ['name'],
        pageToken: first.nextPageToken,
      });
      assert.deepEqual(
        second.items.map((e) => e.name),
        ['srch-gamma'],
      );
      assert.equal(second.nextPageToken, undefined);

      await assert.rejects(
        tracking.searchExperiments({ filter: 'bogus = 1' }),
        code('SLIPWAY_ERR_BAD_REQUEST', /bogus/),
      );
      await assert.rejects(
        tracking.searchExperiments({ filter: "name = 'a' OR name = 'b'" }),
        code('SLIPWAY_ERR_BAD_REQUEST', /AND/),
      );
      await assert.rejects(
        tracking.searchExperiments({ maxResults: 0 }),
        code('SLIPWAY_ERR_BAD_REQUEST', /max_results/),
      );
      await assert.rejects(
        tracking.searchExperiments({ pageToken: '!!' }),
        code('SLIPWAY_ERR_BAD_REQUEST', /page_token/),
      );
    });

    test('runs: create, name tag, params immutable, metrics history and latest values, tags', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { tracking } = f;
      const exp = await tracking.createExperiment('runs-basic');
      const run = await tracking.createRun({
        experimentId: exp,
        userId: 'ana',
        startTime: T0,
        runName: 'baseline',
        tags: [{ key: 'mlflow.source.type', value: 'LOCAL' }],
      });
      const id = run.info.runId;
      assert.match(id, /^[0-9a-f]{32}$/);
      assert.equal(run.info.artifactUri, `mlflow-artifacts:/${exp}/${id}/artifacts`);
      assert.equal(run.info.status, 'RUNNING');
      assert.deepEqual(
        run.data.tags.map((x) => x.key),
        ['mlflow.source.type', 'mlflow.runName'],
      );
      const unnamed = await tracking.createRun({ experimentId: exp, userId: 'ana' });
      assert.match(unnamed.info.runName, /^[a-z]+-[a-z]+-\d+$/);
      await assert.rejects(
        tracking.createRun({
          experimentId: exp,
          userId: 'a',
          runName: 'x',
          tags: [{ key: 'mlflow.runName', value: 'y' }],
        }),
        code('SLIPWAY_ERR_BAD_REQUEST', /run_name/),
      );
      const inDefault = await tracking.createRun({ userId: 'ana' });
      assert.equal(inDefault.info.experimentId, '0');

      await tracking.logParam(id, 'lr', '0.1');
      await tracking.logParam(id, 'lr', '0.1');
      await assert.rejects(
        tracking.logParam(id, 'lr', '0.2'),
        code('SLIPWAY_ERR_BAD_REQUEST', /lr.*0\.1.*0\.2/),
      );
      // A batch with one changed param writes nothing at all.
      await assert.rejects(
        tracking.logBatch(id, {
          params: [
            { key: 'epochs', value: '3' },
            { key: 'lr', value: '0.3' },
          ],
          metrics: [metric('m', 1, 0)],
        }),
        code('SLIPWAY_ERR_BAD_REQUEST', /Changing param values/),
      );
      assert.deepEqual((await tracking.getRun(id)).data.params, [{ key: 'lr', value: '0.1' }]);
      assert.deepEqual((await tracking.getMetricHistory(id, 'm')).items, []);
      // Values past MLflow's limit are cut to it, as the MLflow server does.
      await tracking.logParam(id, 'long', 'x'.repeat(7000));
      assert.equal((await tracking.getRun(id)).data.params.find((p) => p.key === 'long')?.value.length, 6000);

      await tracking.logBatch(id, {
        metrics: [
          metric('loss', 0.9, 0),
          metric('loss', 0.5, 1),
          metric('loss', 0.3, 2),
          metric('acc', Number.NaN, 0),
        ],
        tags: [
          { key: 'team', value: 'a' },
          { key: 'team', value: 'b' },
        ],
      });
      // An older step logged later does not replace the latest value; the same point twice is stored once.
      await tracking.logMetric(id, metric('loss', 0.7, 1, T0 + 50));
      await tracking.logMetric(id, metric('loss', 0.3, 2));
      await tracking.logMetric(id, metric('big', Number.POSITIVE_INFINITY, 0));
      const history = await tracking.getMetricHistory(id, 'loss');
      assert.deepEqual(
        history.items.map((m) => [m.step, m.value, m.timestamp]),
        [
          [0, 0.9, T0],
          [1, 0.5, T0 + 1],
          [2, 0.3, T0 + 2],
          [1, 0.7, T0 + 50],
        ],
      );
      const paged = await tracking.getMetricHistory(id, 'loss', { maxResults: 3 });
      assert.equal(paged.items.length, 3);
      const rest = await tracking.getMetricHistory(id, 'loss', {
        maxResults: 3,
        pageToken: paged.nextPageToken,
      });
      assert.deepEqual(
        rest.items.map((m) => m.value),
        [0.7],
      );
      assert.equal(rest.nextPageToken, undefined);

      const got = await tracking.getRun(id);
      const latest = Object.fromEntries(got.data.metrics.map((m) => [m.key, m]));
      assert.equal(latest.loss?.value, 0.3);
      assert.equal(latest.loss?.step, 2);
      assert.ok(Number.isNaN(latest.acc?.value));
      assert.equal(latest.big?.value, Number.MAX_VALUE);
      assert.equal(got.data.tags.find((x) => x.key === 'team')?.value, 'b');

      await tracking.setTag(id, 'mlflow.runName', 'renamed');
      assert.equal((await tracking.getRun(id)).info.runName, 'renamed');
      await tracking.deleteTag(id, 'team');
      await assert.rejects(tracking.deleteTag(id, 'team'), code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'));

      const info = await tracking.updateRun(id, { status: 'FINISHED', endTime: T0 + 1000, runName: 'final' });
      assert.equal(info.status, 'FINISHED');
      assert.equal(info.endTime, T0 + 1000);
      const after = await tracking.getRun(id);
      assert.equal(after.info.runName, 'final');
      assert.equal(after.data.tags.find((x) => x.key === 'mlflow.runName')?.value, 'final');

      await tracking.deleteRun(id);
      await assert.rejects(
        tracking.logMetric(id, metric('loss', 1, 9)),
        code('SLIPWAY_ERR_INVALID_STATE', /active/),
      );
      await tracking.restoreRun(id);
      await tracking.logMetric(id, metric('loss', 1, 9));
      await assert.rejects(tracking.getRun('f'.repeat(32)), code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'));
    });

    test('runs: log-batch limits and validation name the field', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { tracking } = f;
      const { info } = await tracking.createRun({ userId: 'ana' });
      const many = (n: number) => Array.from({ length: n }, (_, i) => metric(`k${i}`, i, 0));
      await tracking.logBatch(info.runId, { metrics: many(1000) });
      assert.equal((await tracking.getRun(info.runId)).data.metrics.length, 1000);
      await assert.rejects(
        tracking.logBatch(info.runId, { metrics: many(1001) }),
        code('SLIPWAY_ERR_BAD_REQUEST', /1000 metrics/),
      );
      const kvs = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `p${i}`, value: 'v' }));
      await assert.rejects(
        tracking.logBatch(info.runId, { params: kvs(101) }),
        code('SLIPWAY_ERR_BAD_REQUEST', /100 params/),
      );
      await assert.rejects(
        tracking.logBatch(info.runId, { tags: kvs(101) }),
        code('SLIPWAY_ERR_BAD_REQUEST', /100 tags/),
      );
      await assert.rejects(
        tracking.logBatch(info.runId, { params: [kvs(1)[0]!, kvs(1)[0]!] }),
        code('SLIPWAY_ERR_BAD_REQUEST', /Duplicate parameter keys/),
      );
      await assert.rejects(
        tracking.logBatch(info.runId, { metrics: [metric('ok', 1, 0), metric('../escape', 1, 0)] }),
        code('SLIPWAY_ERR_BAD_REQUEST', /metrics\[1\]\.key/),
      );
      await assert.rejects(
        tracking.logBatch(info.runId, {
          metrics: [{ key: 'x', value: 'abc' as unknown as number, timestamp: 1, step: 0 }],
        }),
        code('SLIPWAY_ERR_BAD_REQUEST', /value/),
      );
      await assert.rejects(
        tracking.logBatch(info.runId, { metrics: [metric('x', 1, 0, -5)] }),
        code('SLIPWAY_ERR_BAD_REQUEST', /timestamp/),
      );
      await assert.rejects(
        tracking.logParam(info.runId, 'k'.repeat(251), 'v'),
        code('SLIPWAY_ERR_BAD_REQUEST', /250/),
      );
      await assert.rejects(tracking.logBatch('not a run!', {}), code('SLIPWAY_ERR_BAD_REQUEST', /run_id/));
      // Over-long values for bounded columns are the caller's mistake (400), not a database error.
      const long = 'x'.repeat(600);
      await assert.rejects(
        tracking.createRun({ userId: 'a', runName: long }),
        code('SLIPWAY_ERR_BAD_REQUEST', /run_name/),
      );
      await assert.rejects(
        tracking.setTag(info.runId, 'mlflow.runName', long),
        code('SLIPWAY_ERR_BAD_REQUEST', /mlflow\.runName/),
      );
      await assert.rejects(
        tracking.logOutputs(info.runId, [{ modelId: long }]),
        code('SLIPWAY_ERR_BAD_REQUEST', /model_id/),
      );
      await assert.rejects(
        tracking.createLoggedModel({ experimentId: '0', tags: [{ key: long, value: 'v' }] }),
        code('SLIPWAY_ERR_BAD_REQUEST', /tags\[0\]\.key/),
      );
      await assert.rejects(
        tracking.logInputs(info.runId, {
          datasets: [{ dataset: { name: 'd', digest: long, sourceType: 'code', source: '{}' }, tags: [] }],
        }),
        code('SLIPWAY_ERR_BAD_REQUEST', /digest/),
      );
    });

    test('runs: search with MLflow filters, order_by (nulls last) and pages', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { tracking } = f;
      const exp = await tracking.createExperiment('runs-search');
      const spec = [
        { name: 'r-a', loss: 0.5, lr: '0.1', team: 'Vision', start: T0 + 1 },
        { name: 'r-b', loss: 0.2, lr: '0.01', team: 'vision', start: T0 + 2 },
        { name: 'r-c', loss: 0.9, lr: '0.1', team: undefined, start: T0 + 3 },
        { name: 'r-d', loss: undefined, lr: '0.3', team: 'nlp', start: T0 + 4 },
        { name: 'r-e', loss: Number.NaN, lr: '0.3', team: 'nlp', start: T0 + 5 },
      ];
      const ids: Record<string, string> = {};
      for (const s of spec) {
        const run = await tracking.createRun({
          experimentId: exp,
          userId: 'ana',
          runName: s.name,
          startTime: s.start,
        });
        ids[s.name] = run.info.runId;
        await tracking.logBatch(run.info.runId, {
          metrics: s.loss === undefined ? [] : [metric('loss', s.loss, 1)],
          params: [{ key: 'lr', value: s.lr }],
          tags: s.team ? [{ key: 'team', value: s.team }] : [],
        });
      }
      await tracking.updateRun(ids['r-b']!, { status: 'FINISHED' });
      const names = async (filter?: string, orderBy?: string[]) =>
        (await tracking.searchRuns({ experimentIds: [exp], filter, orderBy })).items.map(
          (r) => r.info.runName,
        );

      assert.deepEqual(await names(), ['r-e', 'r-d', 'r-c', 'r-b', 'r-a']);
      assert.deepEqual(await names('metrics.loss < 0.6', ['metrics.loss ASC']), ['r-b', 'r-a']);
      assert.deepEqual(await names('metrics.loss != 0.5', ['attributes.run_name']), ['r-b', 'r-c', 'r-e']);
      assert.deepEqual(await names("params.lr = '0.1'", ['run_name DESC']), ['r-c', 'r-a']);
      assert.deepEqual(await names("tags.team LIKE 'vis%'"), ['r-b']);
      assert.deepEqual(await names("tags.team ILIKE 'VIS%'", ['start_time']), ['r-a', 'r-b']);
      assert.deepEqual(await names('tags.team IS NULL'), ['r-c']);
      assert.deepEqual(await names('tags.team IS NOT NULL AND params.lr = "0.3"'), ['r-e', 'r-d']);
      assert.deepEqual(await names("attributes.status = 'FINISHED'"), ['r-b']);
      assert.deepEqual(await names(`attributes.run_id IN ('${ids['r-a']}', '${ids['r-d']}')`), [
        'r-d',
        'r-a',
      ]);
      assert.deepEqual(await names(`run_name = 'r-c'`), ['r-c']);
      assert.deepEqual(await names(`attributes.start_time >= ${T0 + 4}`), ['r-e', 'r-d']);
      assert.deepEqual(
        await names(`attributes.artifact_uri LIKE 'mlflow-artifacts:/${exp}/${ids['r-a']}%'`),
        ['r-a'],
      );
      assert.deepEqual(await names("metrics.`loss` > 0.1 AND params.`lr` LIKE '0.0%'"), ['r-b']);
      // Real values first (ascending or descending), then NaN, then runs without the metric.
      assert.deepEqual(await names(undefined, ['metrics.loss DESC']), ['r-c', 'r-a', 'r-b', 'r-e', 'r-d']);
      assert.deepEqual(await names(undefined, ['metrics.loss ASC']), ['r-b', 'r-a', 'r-c', 'r-e', 'r-d']);
      // Strings order by code point ('Vision' < 'nlp' < 'vision'), ties by the next clause.
      assert.deepEqual(await names(undefined, ['tags.team ASC', 'start_time DESC']), [
        'r-a',
        'r-e',
        'r-d',
        'r-b',
        'r-c',
      ]);

      const p1 = await tracking.searchRuns({ experimentIds: [exp], maxResults: 2, orderBy: ['run_name'] });
      const p2 = await tracking.searchRuns({
        experimentIds: [exp],
        maxResults: 2,
        orderBy: ['run_name'],
        pageToken: p1.nextPageToken,
      });
      const p3 = await tracking.searchRuns({
        experimentIds: [exp],
        maxResults: 2,
        orderBy: ['run_name'],
        pageToken: p2.nextPageToken,
      });
      assert.deepEqual(
        [...p1.items, ...p2.items, ...p3.items].map((r) => r.info.runName),
        ['r-a', 'r-b', 'r-c', 'r-d', 'r-e'],
      );
      assert.equal(p3.nextPageToken, undefined);
      // Search results carry the run's data.
      const b = (await tracking.searchRuns({ experimentIds: [exp], filter: "run_name = 'r-b'" })).items[0]!;
      assert.deepEqual(b.data.params, [{ key: 'lr', value: '0.01' }]);
      assert.equal(b.data.metrics[0]?.value, 0.2);

      await tracking.deleteRun(ids['r-a']!);
      assert.deepEqual(await names("params.lr = '0.1'"), ['r-c']);
      const deleted = await tracking.searchRuns({ experimentIds: [exp], runViewType: 'DELETED_ONLY' });
      assert.deepEqual(
        deleted.items.map((r) => r.info.runName),
        ['r-a'],
      );

      for (const bad of [
        'metrics.loss = "x"',
        "params.lr > '1'",
        'foo.bar = 1',
        'attributes.nope = 1',
        "tags.team = 'a' OR tags.team = 'b'",
        "attributes.status IN ('FINISHED')",
        'metrics.loss IS NULL',
      ]) {
        await assert.rejects(names(bad), code('SLIPWAY_ERR_BAD_REQUEST', /filter/), bad);
      }
      await assert.rejects(
        names(undefined, ['metrics.loss', 'metrics.loss DESC']),
        code('SLIPWAY_ERR_BAD_REQUEST', /duplicate/),
      );
      await assert.rejects(
        names(undefined, ['metrics.loss SIDEWAYS']),
        code('SLIPWAY_ERR_BAD_REQUEST', /order_by/),
      );
    });

    test('logged models: create, finalize, tags, params, metrics from runs, search, delete', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { tracking } = f;
      const exp = await tracking.createExperiment('logged-models');
      const run = await tracking.createRun({ experimentId: exp, userId: 'ana' });
      const model = await tracking.createLoggedModel({
        experimentId: exp,
        name: 'clf',
        sourceRunId: run.info.runId,
        params: [{ key: 'lr', value: '0.1' }],
        tags: [{ key: 'mlflow.user', value: 'ana' }],
      });
      const id = model.info.modelId;
      assert.match(id, /^m-[0-9a-f]{32}$/);
      assert.equal(model.info.artifactUri, `mlflow-artifacts:/${exp}/models/${id}/artifacts`);
      assert.equal(model.info.status, 'LOGGED_MODEL_PENDING');
      assert.deepEqual(model.data.params, [{ key: 'lr', value: '0.1' }]);
      await tracking.logOutputs(run.info.runId, [{ modelId: id, step: 0 }]);
      assert.deepEqual((await tracking.getRun(run.info.runId)).outputs.modelOutputs, [
        { modelId: id, step: 0 },
      ]);

      await tracking.logBatch(run.info.runId, {
        metrics: [
          { ...metric('acc', 0.8, 0), modelId: id },
          { ...metric('acc', 0.9, 1), modelId: id, datasetName: 'val', datasetDigest: 'abc' },
        ],
      });
      const ready = await tracking.finalizeLoggedModel(id, 'LOGGED_MODEL_READY');
      assert.equal(ready.info.status, 'LOGGED_MODEL_READY');
      assert.deepEqual(
        ready.data.metrics.map((m) => [m.key, m.value, m.step, m.runId, m.datasetName]),
        [
          ['acc', 0.8, 0, run.info.runId, undefined],
          ['acc', 0.9, 1, run.info.runId, 'val'],
        ],
      );
      const tagged = await tracking.setLoggedModelTags(id, [{ key: 'stage', value: 'candidate' }]);
      assert.deepEqual(
        tagged.info.tags.map((x) => x.key),
        ['mlflow.user', 'stage'],
      );
      await tracking.deleteLoggedModelTag(id, 'stage');
      await assert.rejects(
        tracking.deleteLoggedModelTag(id, 'stage'),
        code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'),
      );
      await tracking.logLoggedModelParams(id, [{ key: 'depth', value: '3' }]);
      await assert.rejects(
        tracking.logLoggedModelParams(id, [{ key: 'lr', value: '0.5' }]),
        code('SLIPWAY_ERR_BAD_REQUEST', /lr/),
      );

      const other = await tracking.createLoggedModel({ experimentId: exp, name: 'reg', modelType: 'onnx' });
      await tracking.logBatch(run.info.runId, {
        metrics: [{ ...metric('acc', 0.95, 2), modelId: other.info.modelId }],
      });
      const search = async (req: Partial<Parameters<Tracking['searchLoggedModels']>[0]>) =>
        (await tracking.searchLoggedModels({ experimentIds: [exp], ...req })).items.map((m) => m.info.name);
      // Default order: newest first, then by model id (both may come from the same millisecond).
      const byDefault = [model.info, other.info]
        .sort((a, b) => b.creationTimestampMs - a.creationTimestampMs || (a.modelId < b.modelId ? -1 : 1))
        .map((i) => i.name);
      assert.deepEqual(await search({}), byDefault);
      assert.deepEqual(await search({ filter: "name = 'clf'" }), ['clf']);
      assert.deepEqual(await search({ filter: "status = 'READY'" }), ['clf']);
      assert.deepEqual(await search({ filter: 'metrics.acc > 0.92' }), ['reg']);
      assert.deepEqual(await search({ filter: "params.depth = '3'" }), ['clf']);
      assert.deepEqual(await search({ filter: "model_type = 'onnx'" }), ['reg']);
      assert.deepEqual(await search({ orderBy: [{ fieldName: 'metrics.acc', ascending: true }] }), [
        'clf',
        'reg',
      ]);
      assert.deepEqual(await search({ orderBy: [{ fieldName: 'name', ascending: true }] }), ['clf', 'reg']);
      assert.deepEqual(await search({ datasets: [{ datasetName: 'val' }] }), ['clf']);
      const p1 = await tracking.searchLoggedModels({ experimentIds: [exp], maxResults: 1 });
      const p2 = await tracking.searchLoggedModels({
        experimentIds: [exp],
        maxResults: 1,
        pageToken: p1.nextPageToken,
      });
      assert.deepEqual(
        [p1.items[0]?.info.name, p2.items[0]?.info.name, p2.nextPageToken],
        [...byDefault, undefined],
      );

      await tracking.deleteLoggedModel(other.info.modelId);
      await assert.rejects(
        tracking.getLoggedModel(other.info.modelId),
        code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'),
      );
      assert.equal(
        (await tracking.getLoggedModel(other.info.modelId, { allowDeleted: true })).info.lifecycleStage,
        'deleted',
      );
      assert.deepEqual(await search({}), ['clf']);
    });

    test('resolveModelSource maps logged models, runs and mlflow-artifacts URIs to artifact folders', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { tracking } = f;
      const exp = await tracking.createExperiment('sources');
      const run = await tracking.createRun({ experimentId: exp, userId: 'ana' });
      const model = await tracking.createLoggedModel({ experimentId: exp, name: 'm' });
      const mid = model.info.modelId;
      const rid = run.info.runId;
      assert.equal(await tracking.resolveModelSource(`models:/${mid}`), `${exp}/models/${mid}/artifacts`);
      assert.equal(
        await tracking.resolveModelSource(`models:/${mid}`, mid),
        `${exp}/models/${mid}/artifacts`,
      );
      assert.equal(await tracking.resolveModelSource('', mid), `${exp}/models/${mid}/artifacts`);
      assert.equal(await tracking.resolveModelSource(`runs:/${rid}/model`), `${exp}/${rid}/artifacts/model`);
      assert.equal(await tracking.resolveModelSource(`runs:/${rid}`), `${exp}/${rid}/artifacts`);
      assert.equal(await tracking.resolveModelSource(`mlflow-artifacts:/${exp}/x/model`), `${exp}/x/model`);
      assert.equal(await tracking.resolveModelSource(`mlflow-artifacts://host:5000/${exp}/y`), `${exp}/y`);
      await assert.rejects(
        tracking.resolveModelSource('s3://bucket/model'),
        code('SLIPWAY_ERR_BAD_REQUEST', /source/),
      );
      await assert.rejects(
        tracking.resolveModelSource('models:/name/3'),
        code('SLIPWAY_ERR_BAD_REQUEST', /source/),
      );
      await assert.rejects(
        tracking.resolveModelSource(`runs:/${rid}/../../etc`),
        code('SLIPWAY_ERR_ARTIFACT_PATH', /source/),
      );
      await assert.rejects(
        tracking.resolveModelSource('mlflow-artifacts:/a/%2e%2e/b'),
        code('SLIPWAY_ERR_ARTIFACT_PATH', /source/),
      );
      await assert.rejects(
        tracking.resolveModelSource(`runs:/${'0'.repeat(32)}/m`),
        code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'),
      );
      await assert.rejects(
        tracking.resolveModelSource(`models:/m-${'0'.repeat(32)}`),
        code('SLIPWAY_ERR_RESOURCE_NOT_FOUND'),
      );
    });
  });
}

// -------------------------------------------------------------------------------------------------
// The MLflow routes, end to end

describe('MLflow REST routes', () => {
  let sqlite: TestDatabase;
  let f: Fixture;
  let server: MlflowTestServer;
  let base: string;
  let call: MlflowTestServer['call'];
  let mlflow: MlflowTestServer['mlflow'];
  before(async () => {
    sqlite = await sqliteDatabase();
    f = await fixture(await sqlite.fresh());
    server = await startMlflowServer({
      tracking: f.tracking,
      artifacts: f.artifacts,
      // Stands where the registry's routes go: inside the MLflow prefixes, sharing their errors.
      registryRoutes: (app) => {
        app.get('/registered-models/get', { config: { scope: 'read' } }, async () => {
          throw new SlipwayError('SLIPWAY_ERR_RESOURCE_NOT_FOUND', 'Registered Model with name=x not found');
        });
      },
    });
    ({ base, call, mlflow } = server);
  });
  after(async () => {
    await server.close();
    await f.close();
    await sqlite.stop();
  });

  function rawRequest(method: string, path: string, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, method, path }, (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(method === 'PUT' ? body : undefined);
    });
  }

  test('health, version, server-info', async () => {
    const health = await call('GET', '/health');
    assert.deepEqual([health.status, health.body], [200, 'OK']);
    const version = await call('GET', '/version');
    assert.equal(version.status, 200);
    assert.equal(version.body, MLFLOW_COMPAT_VERSION);
    const [major, minor] = String(version.body).split('.').map(Number);
    assert.ok(major! > 3 || (major === 3 && minor! >= 4), 'the client needs ≥ 3.4');
    const info = await call('GET', '/api/3.0/mlflow/server-info');
    assert.equal(info.body.multipart_uploads_enabled, false);
  });

  test('experiments and runs round trip in MLflow JSON; GET messages come from the query string', async () => {
    const created = await mlflow('POST', '/experiments/create', {
      name: 'http-exp',
      tags: [{ key: 'team', value: 'x' }],
    });
    assert.equal(created.status, 200);
    const expId = created.body.experiment_id;
    const byName = await mlflow('GET', '/experiments/get-by-name?experiment_name=http-exp');
    assert.equal(byName.body.experiment.experiment_id, expId);
    assert.equal(byName.body.experiment.artifact_location, `mlflow-artifacts:/${expId}`);
    assert.deepEqual(byName.body.experiment.tags, [{ key: 'team', value: 'x' }]);

    const run = await mlflow('POST', '/runs/create', {
      experiment_id: expId,
      start_time: T0,
      tags: [{ key: 'mlflow.runName', value: 'r1' }],
    });
    assert.equal(run.status, 200);
    const info = run.body.run.info;
    assert.equal(info.run_uuid, info.run_id);
    assert.equal(info.user_id, 'anonymous', 'the caller is the user when the client names none');
    assert.equal(info.status, 'RUNNING');
    assert.equal(info.start_time, T0);
    const runId = info.run_id;

    const batch = await mlflow('POST', '/runs/log-batch', {
      run_id: runId,
      metrics: [
        { key: 'loss', value: 0.5, timestamp: T0, step: 0 },
        { key: 'loss', value: '0.25', timestamp: String(T0 + 1), step: 1 },
        { key: 'f1', value: 'NaN', timestamp: T0, step: 0 },
      ],
      params: [{ key: 'lr', value: '0.1' }],
      tags: [{ key: 'team', value: 'a' }],
    });
    assert.deepEqual([batch.status, batch.body], [200, {}]);
    const conflict = await mlflow('POST', '/runs/log-parameter', { run_id: runId, key: 'lr', value: '0.2' });
    assert.equal(conflict.status, 400);
    assert.equal(conflict.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(conflict.body.message, /lr/);

    const got = await mlflow('GET', `/runs/get?run_uuid=${runId}&run_id=${runId}`);
    const metrics = Object.fromEntries(got.body.run.data.metrics.map((m: any) => [m.key, m]));
    assert.deepEqual(metrics.loss, { key: 'loss', value: 0.25, timestamp: T0 + 1, step: 1 });
    assert.equal(metrics.f1.value, 'NaN');
    const history = await mlflow('GET', `/metrics/get-history?run_id=${runId}&metric_key=loss&max_results=1`);
    assert.deepEqual(
      history.body.metrics.map((m: any) => m.value),
      [0.5],
    );
    assert.ok(history.body.next_page_token);

    const finished = await mlflow('POST', '/runs/update', {
      run_id: runId,
      status: 'FINISHED',
      end_time: T0 + 9,
    });
    assert.equal(finished.body.run_info.status, 'FINISHED');
    assert.equal(finished.body.run_info.end_time, T0 + 9);

    const search = await mlflow('POST', '/runs/search', {
      experiment_ids: [expId],
      filter: 'metrics.loss < 0.3',
      order_by: ['metrics.loss DESC'],
      max_results: 10,
    });
    assert.deepEqual(
      search.body.runs.map((r: any) => r.info.run_id),
      [runId],
    );
    const other = await mlflow('POST', '/experiments/create', { name: 'http-exp-2' });
    const viaGet = await mlflow(
      'GET',
      `/runs/search?experiment_ids=${expId}&experiment_ids=${other.body.experiment_id}&filter=${encodeURIComponent("params.lr = '0.1'")}`,
    );
    assert.equal(viaGet.status, 200);
    assert.equal(viaGet.body.runs.length, 1);
    const experiments = await mlflow('POST', '/experiments/search', {
      filter: "name LIKE 'http-exp%'",
      order_by: ['name ASC'],
      view_type: 'ACTIVE_ONLY',
    });
    assert.deepEqual(
      experiments.body.experiments.map((e: any) => e.name),
      ['http-exp', 'http-exp-2'],
    );
    // The UI's prefix serves the same routes.
    const ajax = await call('GET', `/ajax-api/2.0/mlflow/runs/get?run_id=${runId}`);
    assert.equal(ajax.body.run.info.run_id, runId);
  });

  test('errors are MLflow errors with MLflow statuses, on every kind of failure', async () => {
    const dup = await mlflow('POST', '/experiments/create', { name: 'dup' });
    assert.equal(dup.status, 200);
    const again = await mlflow('POST', '/experiments/create', { name: 'dup' });
    assert.deepEqual([again.status, again.body.error_code], [400, 'RESOURCE_ALREADY_EXISTS']);
    const missing = await mlflow('GET', '/experiments/get-by-name?experiment_name=nope');
    assert.deepEqual([missing.status, missing.body.error_code], [404, 'RESOURCE_DOES_NOT_EXIST']);
    assert.match(missing.body.message, /nope/);
    const required = await mlflow('GET', '/experiments/get');
    assert.deepEqual([required.status, required.body.error_code], [400, 'INVALID_PARAMETER_VALUE']);
    assert.match(required.body.message, /experiment_id/);
    const wrongType = await mlflow('POST', '/runs/log-batch', { run_id: 'abc', metrics: 'many' });
    assert.deepEqual([wrongType.status, wrongType.body.error_code], [400, 'INVALID_PARAMETER_VALUE']);
    assert.match(wrongType.body.message, /metrics/);
    const badJson = await mlflow('POST', '/experiments/create', '{"name": ');
    assert.deepEqual([badJson.status, badJson.body.error_code], [400, 'INVALID_PARAMETER_VALUE']);
    const unknown = await mlflow('GET', '/no/such/route');
    assert.deepEqual([unknown.status, unknown.body.error_code], [404, 'ENDPOINT_NOT_FOUND']);
    const wrongMethod = await mlflow('GET', '/runs/create');
    assert.deepEqual([wrongMethod.status, wrongMethod.body.error_code], [404, 'ENDPOINT_NOT_FOUND']);
    const registry = await mlflow('GET', '/registered-models/get?name=x');
    assert.deepEqual(registry.body, {
      error_code: 'RESOURCE_DOES_NOT_EXIST',
      message: 'Registered Model with name=x not found',
    });
    assert.equal(registry.status, 404);
    const run = await mlflow('POST', '/runs/create', { experiment_id: '0' });
    const runId = run.body.run.info.run_id;
    await mlflow('POST', '/runs/delete', { run_id: runId });
    const onDeleted = await mlflow('POST', '/runs/set-tag', { run_id: runId, key: 'k', value: 'v' });
    assert.deepEqual([onDeleted.status, onDeleted.body.error_code], [400, 'INVALID_STATE']);
    const nul = await mlflow('GET', '/experiments/get-by-name?experiment_name=a%00b');
    assert.deepEqual([nul.status, nul.body.error_code], [400, 'INVALID_PARAMETER_VALUE']);
    assert.match(nul.body.message, /experiment_name/);
    const tooMany = await mlflow('POST', '/runs/log-batch', {
      run_id: runId,
      params: Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: 'v' })),
    });
    assert.deepEqual([tooMany.status, tooMany.body.error_code], [400, 'INVALID_PARAMETER_VALUE']);
    assert.match(tooMany.body.message, /at most 100 params/);
  });

  test('logged models over REST: create, get, finalize, tags, search', async () => {
    const exp = (await mlflow('POST', '/experiments/create', { name: 'lm-http' })).body.experiment_id;
    const run = (await mlflow('POST', '/runs/create', { experiment_id: exp })).body.run.info.run_id;
    const created = await mlflow('POST', '/logged-models', {
      experiment_id: exp,
      name: 'model',
      source_run_id: run,
      params: [{ key: 'lr', value: '0.1' }],
    });
    assert.equal(created.status, 200);
    const id = created.body.model.info.model_id;
    assert.match(id, /^m-[0-9a-f]{32}$/);
    assert.equal(created.body.model.info.status, 'LOGGED_MODEL_PENDING');
    assert.equal(created.body.model.info.artifact_uri, `mlflow-artifacts:/${exp}/models/${id}/artifacts`);
    assert.equal(
      (await mlflow('POST', '/runs/outputs', { run_id: run, models: [{ model_id: id, step: 0 }] })).status,
      200,
    );
    const finalized = await mlflow('PATCH', `/logged-models/${id}`, {
      model_id: id,
      status: 'LOGGED_MODEL_READY',
    });
    assert.equal(finalized.body.model.info.status, 'LOGGED_MODEL_READY');
    const tagged = await mlflow('PATCH', `/logged-models/${id}/tags`, { tags: [{ key: 'a', value: 'b' }] });
    assert.deepEqual(tagged.body.model.info.tags, [{ key: 'a', value: 'b' }]);
    assert.equal((await mlflow('DELETE', `/logged-models/${id}/tags/a`)).status, 200);
    const got = await mlflow('GET', `/logged-models/${id}`);
    assert.deepEqual(got.body.model.info.tags, []);
    assert.deepEqual(got.body.model.data.params, [{ key: 'lr', value: '0.1' }]);
    const search = await mlflow('POST', '/logged-models/search', {
      experiment_ids: [exp],
      filter: "name = 'model'",
      order_by: [{ field_name: 'creation_timestamp', ascending: false }],
    });
    assert.deepEqual(
      search.body.models.map((m: any) => m.info.model_id),
      [id],
    );
    const runGot = await mlflow('GET', `/runs/get?run_id=${run}`);
    assert.deepEqual(runGot.body.run.outputs.model_outputs, [{ model_id: id, step: 0 }]);
    const missing = await mlflow('GET', `/logged-models/m-${'0'.repeat(32)}`);
    assert.deepEqual([missing.status, missing.body.error_code], [404, 'RESOURCE_DOES_NOT_EXIST']);
  });

  test('artifact proxy: streamed PUT of any content type, GET, MLflow listings, DELETE, confinement', async () => {
    const art = `${base}/api/2.0/mlflow-artifacts/artifacts`;
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const uploads: [string, string, Buffer | string][] = [
      ['1/r/artifacts/model.onnx', 'application/octet-stream', bytes],
      ['1/r/artifacts/notes.txt', 'text/plain', 'hello'],
      ['1/r/artifacts/data/conf.json', 'application/json', '{not json, just bytes'],
      ['1/r/artifacts/data/deep/a b.txt', '', 'spaced'],
    ];
    for (const [path, type, body] of uploads) {
      const res = await fetch(`${art}/${path.split('/').map(encodeURIComponent).join('/')}`, {
        method: 'PUT',
        headers: type ? { 'content-type': type } : {},
        body,
      });
      assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
      assert.deepEqual(await res.json(), {});
    }
    const got = await fetch(`${art}/1/r/artifacts/model.onnx`);
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), bytes);
    const spaced = await fetch(`${art}/1/r/artifacts/data/deep/a%20b.txt`);
    assert.equal(await spaced.text(), 'spaced');

    const list = async (path?: string) =>
      (
        await call(
          'GET',
          `/api/2.0/mlflow-artifacts/artifacts${path === undefined ? '' : `?path=${encodeURIComponent(path)}`}`,
        )
      ).body;
    assert.deepEqual(await list('1/r/artifacts'), {
      files: [
        { path: 'data', is_dir: true },
        { path: 'model.onnx', is_dir: false, file_size: 5 },
        { path: 'notes.txt', is_dir: false, file_size: 5 },
      ],
    });
    assert.deepEqual(await list('1/r/artifacts/data'), {
      files: [
        { path: 'conf.json', is_dir: false, file_size: 21 },
        { path: 'deep', is_dir: true },
      ],
    });
    assert.deepEqual(await list('1/r/artifacts/notes.txt'), { files: [] }, 'a file lists nothing');
    assert.deepEqual(await list('1/nothing-here'), { files: [] });
    assert.deepEqual(await list(), { files: [{ path: '1', is_dir: true }] });

    const missing = await call('GET', '/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/nope.bin');
    assert.deepEqual([missing.status, missing.body.error_code], [404, 'RESOURCE_DOES_NOT_EXIST']);

    // Sent byte for byte (fetch would resolve dot segments before sending).
    for (const path of [
      '../../etc/passwd',
      '1/r/%2e%2e/%2e%2e/etc/passwd',
      '1/..%2f..%2fsecret',
      '1/%252e%252e/x',
    ]) {
      for (const method of ['PUT', 'GET', 'DELETE']) {
        const res = await rawRequest(method, `/api/2.0/mlflow-artifacts/artifacts/${path}`, 'x');
        assert.equal(res.status, 400, `${method} ${path}`);
        assert.equal(JSON.parse(res.body).error_code, 'INVALID_PARAMETER_VALUE');
      }
    }
    const listEscape = await call(
      'GET',
      `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent('../x')}`,
    );
    assert.deepEqual([listEscape.status, listEscape.body.error_code], [400, 'INVALID_PARAMETER_VALUE']);

    assert.equal((await fetch(`${art}/1/r/artifacts/data`, { method: 'DELETE' })).status, 200);
    assert.deepEqual(await list('1/r/artifacts'), {
      files: [
        { path: 'model.onnx', is_dir: false, file_size: 5 },
        { path: 'notes.txt', is_dir: false, file_size: 5 },
      ],
    });

    const mpu = await call('POST', '/api/2.0/mlflow-artifacts/mpu/create/1/r/artifacts/big.bin', {
      path: 'big.bin',
      num_parts: 3,
    });
    assert.equal(mpu.status, 501);
    assert.equal(mpu.body.error_code, 'NOT_IMPLEMENTED');
    assert.ok(mpu.body.message.startsWith('Multipart upload is not supported'));
    const unknown = await call('GET', '/api/2.0/mlflow-artifacts/nothing');
    assert.deepEqual([unknown.status, unknown.body.error_code], [404, 'ENDPOINT_NOT_FOUND']);
  });

  test('artifacts/list lists a run artifact folder relative to the run root', async () => {
    const run = (await mlflow('POST', '/runs/create', { experiment_id: '0' })).body.run.info;
    const root = run.artifact_uri.slice('mlflow-artifacts:/'.length);
    await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/plots/roc.png`, {
      method: 'PUT',
      body: 'png',
    });
    const listed = await mlflow('GET', `/artifacts/list?run_id=${run.run_id}&path=plots`);
    assert.deepEqual(listed.body, {
      root_uri: run.artifact_uri,
      files: [{ path: 'plots/roc.png', is_dir: false, file_size: 3 }],
    });
  });
});
