/**
 * MLflow's model-registry routes over the Slipway registry, inside the real MLflow plugin on a
 * real server: response shapes as model_registry.proto has them, MLflow's errors, and versions
 * registered from logged models and runs that are Slipway versions like any other.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ArtifactRepository, artifactMigrations, FolderBlobStore } from '../src/artifacts/index.js';
import { Registry, registryMigrations } from '../src/registry/index.js';
import { Database } from '../src/store/index.js';
import { Tracking, trackingMigrations } from '../src/tracking/index.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';
import { type MlflowTestServer, startRegistryMlflowServer } from './support/mlflow-server.js';

const ADULT = readFileSync(join(REPO_ROOT, 'examples/models/adult-income/1/model.onnx'));
const ADD_SUB = readFileSync(join(FIXTURES, 'add_sub/1/model.onnx'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MLMODEL = 'artifact_path: model\nflavors:\n  onnx:\n    data: model.onnx\n';

describe('MLflow registry routes', () => {
  let dir: string;
  let db: Database;
  let blobs: FolderBlobStore;
  let artifacts: ArtifactRepository;
  let tracking: Tracking;
  let registry: Registry;
  let server: MlflowTestServer;
  let base: string;
  let call: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
  let runId: string;
  let modelId: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-mlflow-registry-'));
    db = await Database.open({ url: join(dir, 'slipway.db') });
    await db.migrate([...artifactMigrations, ...registryMigrations, ...trackingMigrations]);
    blobs = new FolderBlobStore(join(dir, 'artifacts'));
    artifacts = new ArtifactRepository(db, blobs);
    tracking = new Tracking(db, artifacts);
    registry = new Registry(db, artifacts);
    server = await startRegistryMlflowServer({ tracking, artifacts, registry }, 'ds-ana');
    base = server.base;
    // Status and body only: the assertions compare whole answers.
    call = async (method, path, body) => {
      const r = await server.mlflow(method, path, body);
      return { status: r.status, body: r.body };
    };

    // What `mlflow.onnx.log_model` leaves behind: a run, a logged model and its files.
    const expId = await tracking.createExperiment('income');
    const run = await tracking.createRun({ experimentId: expId, userId: 'ana', runName: 'baseline' });
    runId = run.info.runId;
    const lm = await tracking.createLoggedModel({ experimentId: expId, name: 'model', sourceRunId: runId });
    modelId = lm.info.modelId;
    const root = lm.info.artifactUri.replace(/^mlflow-artifacts:\//, '');
    await artifacts.put(`${root}/MLmodel`, Buffer.from(MLMODEL));
    await artifacts.put(`${root}/model.onnx`, ADULT);
    await artifacts.put(`${root}/requirements.txt`, Buffer.from('onnx\n'));
    await tracking.finalizeLoggedModel(modelId, 'LOGGED_MODEL_READY');
    // An older style: the model under a run's artifacts.
    const runRoot = run.info.artifactUri.replace(/^mlflow-artifacts:\//, '');
    await artifacts.put(`${runRoot}/model/MLmodel`, Buffer.from(MLMODEL));
    await artifacts.put(`${runRoot}/model/model.onnx`, ADD_SUB);
  });

  after(async () => {
    await server.close();
    await blobs.close();
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the data scientist flow: register two versions, alias, read back, download', async () => {
    let r = await call('POST', '/registered-models/create', {
      name: 'income',
      tags: [{ key: 'team', value: 'risk' }],
      description: 'Income above 50K',
    });
    assert.equal(r.status, 200);
    const rm = r.body.registered_model;
    assert.equal(rm.name, 'income');
    assert.equal(rm.description, 'Income above 50K');
    assert.deepEqual(rm.tags, [{ key: 'team', value: 'risk' }]);
    assert.deepEqual(rm.aliases, []);
    assert.deepEqual(rm.latest_versions, []);
    assert.equal(typeof rm.creation_timestamp, 'number');
    assert.equal(rm.last_updated_timestamp, rm.creation_timestamp);

    // register_model swallows this exact answer when the model exists.
    r = await call('POST', '/registered-models/create', { name: 'income' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, {
      error_code: 'RESOURCE_ALREADY_EXISTS',
      message: "registered model 'income' already exists",
    });

    // 3.x: source models:/<model_id> with model_id; READY at once, so the client does not poll.
    r = await call('POST', '/model-versions/create', {
      name: 'income',
      source: `models:/${modelId}`,
      run_id: runId,
      model_id: modelId,
      tags: [{ key: 'stage', value: 'candidate' }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const v1 = r.body.model_version;
    assert.equal(v1.name, 'income');
    assert.equal(v1.version, '1');
    assert.equal(v1.status, 'READY');
    assert.equal(v1.current_stage, 'None');
    assert.equal(v1.source, `models:/${modelId}`);
    assert.equal(v1.run_id, runId);
    assert.equal(v1.model_id, modelId);
    assert.equal(v1.user_id, 'ds-ana');
    assert.deepEqual(v1.tags, [{ key: 'stage', value: 'candidate' }]);
    assert.deepEqual(v1.aliases, []);
    assert.equal(typeof v1.creation_timestamp, 'number');

    // The same version in Slipway's terms: its own immutable copy, the graph's signature.
    const sv1 = await registry.getVersion('income', 1);
    assert.equal(sv1.loggedModelId, modelId);
    assert.equal(sv1.modelFile?.sha256, sha(ADULT));
    assert.equal(sv1.signature?.inputs.length, 14);
    assert.deepEqual(
      (await artifacts.filesUnder('registry/income/1')).map((f) => f.path),
      ['registry/income/1/MLmodel', 'registry/income/1/model.onnx', 'registry/income/1/requirements.txt'],
    );

    // 2.x style: a runs:/ source.
    r = await call('POST', '/model-versions/create', {
      name: 'income',
      source: `runs:/${runId}/model`,
      run_id: runId,
    });
    assert.equal(r.body.model_version.version, '2');
    assert.equal(r.body.model_version.model_id, undefined);
    assert.equal((await registry.getVersion('income', 2)).modelFile?.sha256, sha(ADD_SUB));

    r = await call('POST', '/registered-models/alias', { name: 'income', alias: 'champion', version: '1' });
    assert.deepEqual(r, { status: 200, body: {} });
    r = await call('GET', '/registered-models/alias?name=income&alias=champion');
    assert.equal(r.body.model_version.version, '1');
    assert.deepEqual(r.body.model_version.aliases, ['champion']);

    r = await call('GET', '/registered-models/get?name=income');
    assert.deepEqual(r.body.registered_model.aliases, [{ alias: 'champion', version: '1' }]);
    assert.deepEqual(
      r.body.registered_model.latest_versions.map((v: any) => [v.version, v.current_stage]),
      [['2', 'None']],
    );

    // models:/income@champion downloads the version's own copy through the artifact proxy.
    r = await call('GET', '/model-versions/get-download-uri?name=income&version=1');
    assert.deepEqual(r.body, { artifact_uri: 'mlflow-artifacts:/registry/income/1' });
    const listing = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts?path=registry/income/1`);
    const files = ((await listing.json()) as any).files;
    assert.deepEqual(
      files.map((f: any) => [f.path, f.is_dir]),
      [
        ['MLmodel', false],
        ['model.onnx', false],
        ['requirements.txt', false],
      ],
    );
    const onnx = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/registry/income/1/model.onnx`);
    assert.equal(sha(Buffer.from(await onnx.arrayBuffer())), sha(ADULT));

    // copy_model_version: a registered version as the source of another model's version.
    await call('POST', '/registered-models/create', { name: 'income-copy' });
    r = await call('POST', '/model-versions/create', {
      name: 'income-copy',
      source: 'models:/income@champion',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.model_version.model_id, modelId);
    const copy = await registry.getVersion('income-copy', 1);
    assert.equal(copy.modelFile?.sha256, sha(ADULT));
    assert.equal(copy.artifactPath, 'registry/income-copy/1');
    r = await call('POST', '/model-versions/create', { name: 'income-copy', source: 'models:/income/2' });
    assert.equal((await registry.getVersion('income-copy', 2)).modelFile?.sha256, sha(ADD_SUB));
    await call('DELETE', '/registered-models/delete', { name: 'income-copy' });

    // Moving the alias is a Slipway alias move, with history and audit.
    await call('POST', '/registered-models/alias', { name: 'income', alias: 'champion', version: '2' });
    const moves = await registry.aliasHistory('income', 'champion');
    assert.deepEqual(
      moves.map((m) => [m.fromVersion, m.toVersion, m.actor]),
      [
        [1, 2, 'ds-ana'],
        [null, 1, 'ds-ana'],
      ],
    );
    r = await call('DELETE', '/registered-models/alias', { name: 'income', alias: 'champion' });
    assert.deepEqual(r, { status: 200, body: {} });
    r = await call('GET', '/registered-models/alias?name=income&alias=champion');
    assert.equal(r.status, 404);
    assert.equal(r.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
  });

  test("a version from a logged model belongs to the logged model's run when the client sends none", async () => {
    // mlflow.onnx.log_model(..., registered_model_name=...) sends source and model_id, no run_id.
    await call('POST', '/registered-models/create', { name: 'lineage' });
    let r = await call('POST', '/model-versions/create', {
      name: 'lineage',
      source: `models:/${modelId}`,
      model_id: modelId,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.model_version.run_id, runId);
    assert.equal(r.body.model_version.model_id, modelId);
    assert.equal((await registry.getVersion('lineage', 1)).runId, runId);
    r = await call('GET', '/model-versions/get?name=lineage&version=1');
    assert.equal(r.body.model_version.run_id, runId);
    r = await call('GET', `/model-versions/search?filter=${encodeURIComponent(`run_id = '${runId}'`)}`);
    assert.ok(
      r.body.model_versions.some((v: any) => v.name === 'lineage' && v.version === '1'),
      JSON.stringify(r.body),
    );

    // Only the source naming the logged model.
    r = await call('POST', '/model-versions/create', { name: 'lineage', source: `models:/${modelId}` });
    assert.equal(r.body.model_version.run_id, runId);

    // A run id the client gives wins.
    const expId = await tracking.createExperiment('lineage');
    const other = (await tracking.createRun({ experimentId: expId, userId: 'ana', runName: 'other' })).info
      .runId;
    r = await call('POST', '/model-versions/create', {
      name: 'lineage',
      source: `models:/${modelId}`,
      model_id: modelId,
      run_id: other,
    });
    assert.equal(r.body.model_version.run_id, other);

    // A logged model outside any run: a version without a run.
    const orphan = await tracking.createLoggedModel({ experimentId: expId, name: 'model' });
    const root = orphan.info.artifactUri.replace(/^mlflow-artifacts:\//, '');
    await artifacts.put(`${root}/MLmodel`, Buffer.from(MLMODEL));
    await artifacts.put(`${root}/model.onnx`, ADD_SUB);
    await tracking.finalizeLoggedModel(orphan.info.modelId, 'LOGGED_MODEL_READY');
    r = await call('POST', '/model-versions/create', {
      name: 'lineage',
      source: `models:/${orphan.info.modelId}`,
      model_id: orphan.info.modelId,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.model_version.version, '4');
    assert.equal(r.body.model_version.run_id, undefined);
    assert.equal(r.body.model_version.model_id, orphan.info.modelId);

    // An unknown logged model is still MLflow's 404, not a version without lineage.
    r = await call('POST', '/model-versions/create', {
      name: 'lineage',
      source: `models:/m-${'0'.repeat(32)}`,
      model_id: `m-${'0'.repeat(32)}`,
    });
    assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.equal(r.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
    await call('DELETE', '/registered-models/delete', { name: 'lineage' });
  });

  test('search, latest versions, stages, tags, updates, rename and delete', async () => {
    await call('POST', '/registered-models/create', { name: 'churn' });
    await call('POST', '/model-versions/create', {
      name: 'churn',
      source: `models:/${modelId}`,
      model_id: modelId,
    });

    // The 3.x client adds the prompt filter to every registered-model search.
    const promptFilter = encodeURIComponent("tag.`mlflow.prompt.is_prompt` != 'true'");
    let r = await call('GET', `/registered-models/search?filter=${promptFilter}&max_results=1`);
    assert.deepEqual(
      r.body.registered_models.map((m: any) => m.name),
      ['churn'],
    );
    assert.ok(r.body.next_page_token);
    r = await call(
      'GET',
      `/registered-models/search?filter=${promptFilter}&max_results=1&page_token=${r.body.next_page_token}`,
    );
    assert.deepEqual(
      r.body.registered_models.map((m: any) => m.name),
      ['income'],
    );
    assert.equal(r.body.next_page_token, undefined);
    assert.deepEqual(
      r.body.registered_models[0].latest_versions.map((v: any) => v.version),
      ['2'],
    );
    r = await call(
      'GET',
      `/registered-models/search?filter=${encodeURIComponent("name LIKE 'inc%'")}&order_by=name%20DESC`,
    );
    assert.deepEqual(
      r.body.registered_models.map((m: any) => m.name),
      ['income'],
    );

    r = await call('GET', `/model-versions/search?filter=${encodeURIComponent("name='income'")}`);
    assert.deepEqual(
      r.body.model_versions.map((v: any) => v.version),
      ['2', '1'],
    );
    // churn/1 came from the logged model without a run id, so it belongs to the model's run.
    r = await call('GET', `/model-versions/search?filter=${encodeURIComponent(`run_id='${runId}'`)}`);
    assert.deepEqual(
      r.body.model_versions.map((v: any) => `${v.name}/${v.version}`),
      ['churn/1', 'income/2', 'income/1'],
    );
    r = await call(
      'GET',
      `/model-versions/search?filter=${encodeURIComponent("name='income'")}&order_by=version_number%20ASC&max_results=1`,
    );
    assert.deepEqual(
      r.body.model_versions.map((v: any) => v.version),
      ['1'],
    );
    assert.ok(r.body.next_page_token);

    // Stages (deprecated in MLflow, kept for its clients).
    r = await call('POST', '/model-versions/transition-stage', {
      name: 'income',
      version: '1',
      stage: 'production',
      archive_existing_versions: false,
    });
    assert.equal(r.body.model_version.current_stage, 'Production');
    r = await call('POST', '/registered-models/get-latest-versions', { name: 'income' });
    assert.deepEqual(
      r.body.model_versions.map((v: any) => [v.version, v.current_stage]),
      [
        ['2', 'None'],
        ['1', 'Production'],
      ],
    );
    r = await call('GET', '/registered-models/get-latest-versions?name=income&stages=Production');
    assert.deepEqual(
      r.body.model_versions.map((v: any) => v.version),
      ['1'],
    );
    r = await call('POST', '/model-versions/transition-stage', {
      name: 'income',
      version: '2',
      stage: 'Production',
      archive_existing_versions: true,
    });
    assert.equal((await registry.getVersion('income', 1)).stage, 'Archived');

    // Tags and descriptions.
    assert.deepEqual(
      await call('POST', '/registered-models/set-tag', { name: 'income', key: 'k', value: 'v' }),
      {
        status: 200,
        body: {},
      },
    );
    await call('POST', '/model-versions/set-tag', { name: 'income', version: '1', key: 'vk', value: 'vv' });
    r = await call('GET', '/model-versions/get?name=income&version=1');
    assert.deepEqual(r.body.model_version.tags, [
      { key: 'stage', value: 'candidate' },
      { key: 'vk', value: 'vv' },
    ]);
    await call('DELETE', '/model-versions/delete-tag', { name: 'income', version: '1', key: 'vk' });
    await call('DELETE', '/registered-models/delete-tag', { name: 'income', key: 'team' });
    r = await call('GET', '/registered-models/get?name=income');
    assert.deepEqual(r.body.registered_model.tags, [{ key: 'k', value: 'v' }]);
    r = await call('PATCH', '/registered-models/update', { name: 'income', description: 'new words' });
    assert.equal(r.body.registered_model.description, 'new words');
    r = await call('PATCH', '/model-versions/update', {
      name: 'income',
      version: '1',
      description: 'v1 words',
    });
    assert.equal(r.body.model_version.description, 'v1 words');
    assert.deepEqual(r.body.model_version.tags, [{ key: 'stage', value: 'candidate' }]);

    // Rename: versions move along, the old name is gone.
    r = await call('POST', '/registered-models/rename', { name: 'churn', new_name: 'churn2' });
    assert.equal(r.body.registered_model.name, 'churn2');
    r = await call('GET', '/model-versions/get-download-uri?name=churn2&version=1');
    assert.equal(r.body.artifact_uri, 'mlflow-artifacts:/registry/churn2/1');
    r = await call('GET', '/registered-models/get?name=churn');
    assert.equal(r.status, 404);
    assert.equal(r.body.error_code, 'RESOURCE_DOES_NOT_EXIST');

    r = await call('DELETE', '/model-versions/delete', { name: 'churn2', version: '1' });
    assert.deepEqual(r, { status: 200, body: {} });
    r = await call('GET', '/model-versions/get?name=churn2&version=1');
    assert.equal(r.status, 404);
    r = await call('DELETE', '/registered-models/delete', { name: 'churn2' });
    assert.deepEqual(r, { status: 200, body: {} });

    // Every change is in the registry's audit log under the caller's name.
    const { entries } = await registry.auditLog({ actor: 'ds-ana', limit: 1000 });
    assert.ok(entries.some((e) => e.action === 'model.rename' && e.details.from === 'churn'));
    assert.ok(entries.some((e) => e.action === 'version.stage' && e.model === 'income'));
  });

  test("client mistakes are MLflow's 400s, unknown things 404s — never 5xx", async () => {
    const cases: [string, string, unknown, number, string, RegExp][] = [
      ['POST', '/registered-models/create', {}, 400, 'INVALID_PARAMETER_VALUE', /'name'/],
      ['POST', '/registered-models/create', { name: 'a/b' }, 400, 'INVALID_PARAMETER_VALUE', /^name:/],
      [
        'POST',
        '/model-versions/create',
        { name: 'income', source: 's3://bucket/model' },
        400,
        'INVALID_PARAMETER_VALUE',
        /source 's3:\/\/bucket\/model'/,
      ],
      [
        'POST',
        '/model-versions/create',
        { name: 'nope', source: `models:/${'m-'.padEnd(34, '0')}` },
        404,
        'RESOURCE_DOES_NOT_EXIST',
        /./,
      ],
      [
        'GET',
        '/model-versions/get?name=income&version=abc',
        undefined,
        400,
        'INVALID_PARAMETER_VALUE',
        /version/,
      ],
      ['GET', '/model-versions/get?name=income&version=99', undefined, 404, 'RESOURCE_DOES_NOT_EXIST', /99/],
      ['GET', '/registered-models/get?name=ghost', undefined, 404, 'RESOURCE_DOES_NOT_EXIST', /ghost/],
      [
        'POST',
        '/registered-models/alias',
        { name: 'income', alias: 'latest', version: '1' },
        400,
        'INVALID_PARAMETER_VALUE',
        /alias/,
      ],
      [
        'POST',
        '/model-versions/transition-stage',
        { name: 'income', version: '1', stage: 'Prod', archive_existing_versions: false },
        400,
        'INVALID_PARAMETER_VALUE',
        /stage/,
      ],
      [
        'GET',
        `/registered-models/search?filter=${encodeURIComponent("name = 'a' OR name = 'b'")}`,
        undefined,
        400,
        'INVALID_PARAMETER_VALUE',
        /AND/,
      ],
      [
        'GET',
        `/model-versions/search?order_by=${encodeURIComponent('size DESC')}`,
        undefined,
        400,
        'INVALID_PARAMETER_VALUE',
        /order_by/,
      ],
    ];
    for (const [method, path, body, status, errorCode, message] of cases) {
      const r = await call(method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error_code, errorCode, `${method} ${path}`);
      assert.match(r.body.message, message, `${method} ${path}`);
    }
  });

  test('the registry routes stay out of /openapi.json', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as any;
    assert.ok(
      !Object.keys(doc.paths).some((p) => p.includes('registered-models') || p.includes('model-versions')),
    );
  });
});
