/**
 * Hostile input on the MLflow routes, as a fuzzer sends it: deep nesting, prototype names in the
 * search grammars, forged page tokens, lists past every limit, sources that would copy the
 * registry into itself. Each is a 4xx in MLflow's shape naming the field, never a 500.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ArtifactRepository, artifactMigrations, FolderBlobStore } from '../src/artifacts/index.js';
import { Registry, registryMigrations } from '../src/registry/index.js';
import { Database } from '../src/store/index.js';
import { Tracking, trackingMigrations } from '../src/tracking/index.js';
import { type MlflowTestServer, startRegistryMlflowServer } from './support/mlflow-server.js';

const MLMODEL = 'artifact_path: model\nflavors:\n  onnx:\n    data: model.onnx\n';

describe('MLflow routes under hostile input', () => {
  let dir: string;
  let db: Database;
  let blobs: FolderBlobStore;
  let artifacts: ArtifactRepository;
  let tracking: Tracking;
  let server: MlflowTestServer;
  let call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
  let runId: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-mlflow-input-'));
    db = await Database.open({ url: join(dir, 'slipway.db') });
    await db.migrate([...artifactMigrations, ...registryMigrations, ...trackingMigrations]);
    blobs = new FolderBlobStore(join(dir, 'artifacts'));
    artifacts = new ArtifactRepository(db, blobs);
    tracking = new Tracking(db, artifacts);
    const registry = new Registry(db, artifacts);
    server = await startRegistryMlflowServer({ tracking, artifacts, registry }, 'fuzzer');
    call = async (method, path, body) => {
      const r = await server.mlflow(method, path, body);
      return { status: r.status, body: r.body };
    };
    const run = await tracking.createRun({ experimentId: '0', userId: 'ana' });
    runId = run.info.runId;
    const runRoot = run.info.artifactUri.replace(/^mlflow-artifacts:\//, '');
    await artifacts.put(`${runRoot}/model/MLmodel`, Buffer.from(MLMODEL));
  });

  after(async () => {
    await server.close();
    await blobs.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A 400 INVALID_PARAMETER_VALUE whose message matches. */
  function refused(r: { status: number; body: any }, message: RegExp): void {
    assert.equal(r.status, 400, JSON.stringify(r.body)?.slice(0, 500));
    assert.equal(r.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(r.body.message, message);
    assert.doesNotMatch(r.body.message, /native code|function /);
  }

  const deep = (n: number, inner = '') => `${'['.repeat(n)}${inner}${']'.repeat(n)}`;

  test('JSON nested 20000 levels deep in any body is read without overflowing the stack', async () => {
    const ok = await call('POST', '/experiments/create', `{"name":"deep","x":${deep(20000)}}`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    // A NUL at the bottom is still found, and named by a path cut to a readable length.
    const nul = await call(
      'POST',
      '/experiments/create',
      `{"name":"deep2","x":${deep(20000, '"a\\u0000"')}}`,
    );
    refused(nul, /^x(\[0\])+…(\[0\])+ must not contain NUL characters$/);
    assert.ok(nul.body.message.length < 200);
    // The path of a shallow NUL is whole.
    const tag = await call('POST', '/experiments/create', {
      name: 'nul',
      tags: [
        { key: 'a', value: 'b' },
        { key: 'c', value: 'd\0' },
      ],
    });
    refused(tag, /^tags\[1\]\.value must not contain NUL characters$/);
  });

  test('runs/log-model refuses a model_json nested deeper than 100 levels, naming model_json', async () => {
    const nested = `{"a":${deep(3000)}}`;
    refused(
      await call('POST', '/runs/log-model', { run_id: runId, model_json: nested }),
      /model_json nests deeper than 100/,
    );
    const shallow = `{"artifact_path":"model","flavors":{"onnx":{"data":"model.onnx"}},"x":"${'['.repeat(200)}"}`;
    const r = await call('POST', '/runs/log-model', { run_id: runId, model_json: shallow });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
  test('runs/log-model after a history tag that is not a JSON list: 400 naming the tag, never a 500', async () => {
    const run = (await tracking.createRun({ experimentId: '0', userId: 'ana' })).info.runId;
    const model = JSON.stringify({ artifact_path: 'model', flavors: {} });
    for (const value of ['x', '{"a":1}', '5']) {
      await call('POST', '/runs/set-tag', { run_id: run, key: 'mlflow.log-model.history', value });
      refused(
        await call('POST', '/runs/log-model', { run_id: run, model_json: model }),
        /tag mlflow\.log-model\.history of run \w+ is not a JSON list/,
      );
    }
    // Reset to an empty list, it is appended to; the earlier entries are kept as they were.
    await call('POST', '/runs/set-tag', { run_id: run, key: 'mlflow.log-model.history', value: '[ ]' });
    assert.equal((await call('POST', '/runs/log-model', { run_id: run, model_json: model })).status, 200);
    assert.equal((await call('POST', '/runs/log-model', { run_id: run, model_json: '{"n":2}' })).status, 200);
    const tags = (await tracking.getRun(run)).data.tags;
    const history = tags.find((t) => t.key === 'mlflow.log-model.history')?.value;
    assert.deepEqual(JSON.parse(history ?? ''), [{ artifact_path: 'model', flavors: {} }, { n: 2 }]);
    refused(
      await call('POST', '/runs/log-model', { run_id: run, model_json: '[1]' }),
      /model_json must be a JSON object/,
    );
  });

  test('runs/log-model keeps the history within the 8000-character tag limit, as MLflow', async () => {
    const run = (await tracking.createRun({ experimentId: '0', userId: 'ana' })).info.runId;
    const big = JSON.stringify({ artifact_path: 'model', x: 'a'.repeat(3000) });
    refused(
      await call('POST', '/runs/log-model', { run_id: run, model_json: 'a'.repeat(8001) }),
      /^model_json exceeds the maximum length of 8000 characters$/,
    );
    assert.equal((await call('POST', '/runs/log-model', { run_id: run, model_json: big })).status, 200);
    assert.equal((await call('POST', '/runs/log-model', { run_id: run, model_json: big })).status, 200);
    refused(
      await call('POST', '/runs/log-model', { run_id: run, model_json: big }),
      /model_json cannot be recorded: .* over the tag value limit of 8000/,
    );
    const history = (await tracking.getRun(run)).data.tags.find((t) => t.key === 'mlflow.log-model.history');
    assert.equal(JSON.parse(history?.value ?? '').length, 2);
  });
  test('prototype names in the search grammars are unknown names, refused naming the field', async () => {
    for (const field_name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      refused(
        await call('POST', '/logged-models/search', { experiment_ids: ['0'], order_by: [{ field_name }] }),
        new RegExp(`^order_by field_name '${field_name}' is invalid; valid ones are model_id, `),
      );
    }
    refused(
      await call('POST', '/experiments/search', { filter: "toString.x = 'a'" }),
      /invalid entity type 'toString'; valid ones are attribute, attributes, tag, tags/,
    );
    refused(
      await call('POST', '/experiments/search', { filter: "toString = 'a'" }),
      /invalid attribute key 'toString'; valid keys are name, /,
    );
    refused(
      await call('POST', '/runs/search', { experiment_ids: ['0'], filter: "constructor.x = 'a'" }),
      /invalid entity type 'constructor'/,
    );
    refused(
      await call('POST', '/runs/search', { experiment_ids: ['0'], order_by: ['constructor.x'] }),
      /^order_by 'constructor\.x' is invalid: invalid entity type 'constructor'/,
    );
    refused(
      await call('POST', '/runs/search', { experiment_ids: ['0'], filter: "__proto__ = 'a'" }),
      /invalid attribute key '__proto__'/,
    );
    refused(
      await call('POST', '/logged-models/search', { experiment_ids: ['0'], filter: "valueOf.x = 'a'" }),
      /invalid entity type 'valueOf'/,
    );
    // Own names still work.
    const ok = await call('POST', '/runs/search', {
      experiment_ids: ['0'],
      order_by: ['attributes.created DESC'],
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
  test('page tokens: only a non-negative integer offset is taken, anything else is a 400 naming page_token', async () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const forged = [
      '{"offset": 1e20}',
      '{"offset": 1e300}',
      '{"offset": null}',
      '{"offset": []}',
      '{"offset": "5"}',
      '{"offset": -1}',
      '{"offset": 1.5}',
      '{}',
      '5',
      'null',
      '[1]',
    ].map(b64);
    const routes: [string, string, Record<string, unknown>][] = [
      ['POST', '/runs/search', { experiment_ids: ['0'] }],
      ['POST', '/experiments/search', {}],
      ['POST', '/logged-models/search', { experiment_ids: ['0'] }],
    ];
    for (const page_token of forged) {
      for (const [method, path, body] of routes) {
        refused(await call(method, path, { ...body, page_token }), /^page_token '.*' is invalid/);
      }
      const q = new URLSearchParams({ run_id: runId, metric_key: 'loss', page_token });
      refused(
        await call('GET', `/metrics/get-history?${q}`),
        /^page_token '.*' is invalid: its offset must be a non-negative integer|could not be decoded/,
      );
    }
    const ok = await call('POST', '/experiments/search', { page_token: b64('{"offset": 1}') });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
  test('lists past their documented limits are a 400 naming the field and the limit, never a SQL error', async () => {
    const kvs = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    const ids = (n: number) => Array.from({ length: n }, (_, i) => String(i));
    const tooMany = (field: string, n: number, limit: number) =>
      new RegExp(`^${field} lists ${n} items; at most ${limit} are allowed in one request$`);
    const model = (await call('POST', '/logged-models', { experiment_id: '0' })).body.model.info.model_id;
    const many = kvs(12000);
    const tooManyKeyValues: [string, string, Record<string, unknown>, string][] = [
      ['POST', '/experiments/create', { name: 'many', tags: many }, 'tags'],
      ['POST', '/runs/create', { experiment_id: '0', tags: many }, 'tags'],
      ['POST', '/logged-models', { experiment_id: '0', tags: many }, 'tags'],
      ['POST', '/logged-models', { experiment_id: '0', params: many }, 'params'],
      ['PATCH', `/logged-models/${model}/tags`, { tags: many }, 'tags'],
      ['POST', `/logged-models/${model}/params`, { params: many }, 'params'],
      ['POST', '/registered-models/create', { name: 'many', tags: many }, 'tags'],
      [
        'POST',
        '/model-versions/create',
        { name: 'many', source: `runs:/${runId}/model`, tags: many },
        'tags',
      ],
    ];
    for (const [method, path, body, field] of tooManyKeyValues) {
      refused(await call(method, path, body), tooMany(field, 12000, 1000));
    }
    const datasets = Array.from({ length: 5000 }, (_, i) => ({
      dataset: { name: `d${i}`, digest: 'x', source_type: 's', source: 's' },
    }));
    refused(
      await call('POST', '/runs/log-inputs', { run_id: runId, datasets }),
      tooMany('datasets', 5000, 1000),
    );
    const models = Array.from({ length: 20000 }, (_, i) => ({ model_id: `m${i}` }));
    refused(
      await call('POST', '/runs/log-inputs', { run_id: runId, models }),
      tooMany('models', 20000, 1000),
    );
    refused(await call('POST', '/runs/outputs', { run_id: runId, models }), tooMany('models', 20000, 1000));
    refused(
      await call('POST', '/runs/search', { experiment_ids: ids(40000) }),
      tooMany('experiment_ids', 40000, 1000),
    );
    refused(
      await call('POST', '/logged-models/search', { experiment_ids: ids(40000) }),
      tooMany('experiment_ids', 40000, 1000),
    );
    refused(
      await call('POST', '/logged-models/search', {
        experiment_ids: ['0'],
        datasets: Array.from({ length: 40000 }, (_, i) => ({ dataset_name: `d${i}` })),
      }),
      tooMany('datasets', 40000, 100),
    );
    const inList = (n: number) => `(${Array.from({ length: n }, (_, i) => `'r${i}'`).join(', ')})`;
    refused(
      await call('POST', '/runs/search', { experiment_ids: ['0'], filter: `run_id IN ${inList(40000)}` }),
      /^filter lists more than 1000 values in IN lists; at most 1000 are allowed in one filter$/,
    );
    refused(
      await call('POST', '/experiments/search', {
        filter: `experiment_id IN ${inList(40000).replaceAll('r', '')}`,
      }),
      /^filter lists more than 1000 values in IN lists/,
    );
    const ands = (n: number) => Array.from({ length: n }, (_, i) => `metrics.m${i} > 0`).join(' AND ');
    refused(
      await call('POST', '/runs/search', { experiment_ids: ['0'], filter: ands(3000) }),
      /^filter has more than 100 clauses; at most 100 are allowed$/,
    );
    const orders = (n: number) => Array.from({ length: n }, (_, i) => `metrics.m${i}`);
    refused(
      await call('POST', '/runs/search', { experiment_ids: ['0'], order_by: orders(3000) }),
      tooMany('order_by', 3000, 100),
    );
    refused(
      await call('POST', '/logged-models/search', {
        experiment_ids: ['0'],
        order_by: orders(3000).map((field_name) => ({ field_name })),
      }),
      tooMany('order_by', 3000, 100),
    );

    // Everything at its limit at once still fits the database's bound-parameter and expression limits.
    const full = await call('POST', '/runs/search', {
      experiment_ids: ids(1000),
      filter: `run_id IN ${inList(1000)} AND ${ands(99)}`,
      order_by: orders(100),
    });
    assert.equal(full.status, 200, JSON.stringify(full.body)?.slice(0, 300));
    const fullModels = await call('POST', '/logged-models/search', {
      experiment_ids: ids(1000),
      filter: `name IN ${inList(1000)} AND ${ands(99)}`,
      datasets: Array.from({ length: 100 }, (_, i) => ({ dataset_name: `d${i}`, dataset_digest: 'x' })),
      order_by: orders(100).map((field_name) => ({ field_name, dataset_name: 'd', dataset_digest: 'x' })),
    });
    assert.equal(fullModels.status, 200, JSON.stringify(fullModels.body)?.slice(0, 300));
    const fullExperiments = await call('POST', '/experiments/search', {
      filter: `experiment_id IN ${inList(1000).replaceAll('r', '')}`,
    });
    assert.equal(fullExperiments.status, 200, JSON.stringify(fullExperiments.body)?.slice(0, 300));
    const created = await call('POST', '/experiments/create', { name: 'at-limit', tags: kvs(1000) });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const run = await call('POST', '/runs/create', { experiment_id: '0', tags: kvs(1000) });
    assert.equal(run.status, 200, JSON.stringify(run.body)?.slice(0, 300));
    const inputs = await call('POST', '/runs/log-inputs', {
      run_id: runId,
      datasets: datasets.slice(0, 1000),
      models: models.slice(0, 1000),
    });
    assert.equal(inputs.status, 200, JSON.stringify(inputs.body));
    const lm = await call('POST', '/logged-models', {
      experiment_id: '0',
      tags: kvs(1000),
      params: kvs(1000),
    });
    assert.equal(lm.status, 200, JSON.stringify(lm.body)?.slice(0, 300));
    const rm = await call('POST', '/registered-models/create', { name: 'at-limit', tags: kvs(1000) });
    assert.equal(rm.status, 200, JSON.stringify(rm.body)?.slice(0, 300));
  });
  test('a version cannot be made from a folder holding other versions: no copying the registry into itself', async () => {
    const first = await call('POST', '/model-versions/create', {
      name: 'amp',
      source: `runs:/${runId}/model`,
    });
    assert.equal(first.status, 404, 'the registered model does not exist yet');
    assert.equal((await call('POST', '/registered-models/create', { name: 'amp' })).status, 200);
    const v1 = await call('POST', '/model-versions/create', { name: 'amp', source: `runs:/${runId}/model` });
    assert.equal(v1.status, 200, JSON.stringify(v1.body));
    for (const source of [
      'mlflow-artifacts:/registry',
      'mlflow-artifacts:/registry/',
      'mlflow-artifacts:/registry/amp',
      'mlflow-artifacts://host/registry',
      'mlflow-artifacts:/',
    ]) {
      refused(
        await call('POST', '/model-versions/create', { name: 'amp', source }),
        new RegExp(`^source '${source}' names a folder that holds other model versions' files`),
      );
    }
    // One version's own folder is one model: registering it again is a copy, as models:/amp/1 is.
    const copy = await call('POST', '/model-versions/create', {
      name: 'amp',
      source: 'mlflow-artifacts:/registry/amp/1',
    });
    assert.equal(copy.status, 200, JSON.stringify(copy.body));
    const versions = await call('GET', `/model-versions/search?filter=${encodeURIComponent("name = 'amp'")}`);
    assert.deepEqual(versions.body.model_versions.map((v: { version: string }) => v.version).sort(), [
      '1',
      '2',
    ]);
    const files = await artifacts.filesUnder('registry/amp/2');
    assert.deepEqual(
      files.map((f) => f.path),
      ['registry/amp/2/MLmodel'],
    );
    // Nor may runs write their artifacts into the registry's folder.
    refused(
      await call('POST', '/experiments/create', {
        name: 'in-registry',
        artifact_location: 'mlflow-artifacts:/registry/amp',
      }),
      /^artifact_location 'mlflow-artifacts:\/registry\/amp' is inside the model registry's folder/,
    );
  });
  test('null where a number or list is expected is refused as null, not coerced to 0 or [""] first', async () => {
    refused(
      await call('POST', '/runs/search', { experiment_ids: ['0'], max_results: null }),
      /^max_results must not be null$/,
    );
    refused(
      await call('POST', '/runs/search', { experiment_ids: null }),
      /^experiment_ids must not be null$/,
    );
    refused(
      await call('POST', '/experiments/search', { max_results: null }),
      /^max_results must not be null$/,
    );
    refused(
      await call('POST', '/runs/create', { experiment_id: '0', tags: null }),
      /^tags must not be null$/,
    );
    refused(
      await call('POST', '/runs/log-batch', {
        run_id: runId,
        metrics: [{ key: 'm', value: 1, timestamp: null }],
      }),
      /^metrics\[0\]\.timestamp must not be null$/,
    );
    // A null string field is still an absent one.
    const ok = await call('POST', '/runs/search', { experiment_ids: ['0'], page_token: null, filter: null });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });
});
