/**
 * Loading a model from files sent with the load request (Triton's `file:<version>/<name>`
 * parameters with `config`), over REST and gRPC, on the real server: the uploaded folder stands
 * in for the model's until the next load or unload, is removed then, and bad requests are 400s
 * naming the parameter that write nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { App } from '../src/app.js';
import { FIXTURES, grpcClient, postJson, startTestApp, tempRepository } from './helpers.js';

const V1 = await readFile(join(FIXTURES, 'add_sub', '1', 'model.onnx'));
const V2 = await readFile(join(FIXTURES, 'add_sub', '2', 'model.onnx'));
const b64 = (b: Buffer) => b.toString('base64');

const addSub = (a: number[], b: number[]) => ({
  inputs: [
    { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: a },
    { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: b },
  ],
});

/** OUTPUT0 of add_sub for [1,2,3,4] + [1,1,1,1]: a+b in version 1, a+b+1 in version 2. */
async function sumOf(base: string, model: string, version?: string): Promise<number[]> {
  const path = version ? `${model}/versions/${version}` : model;
  const res = await postJson(`${base}/v2/models/${path}/infer`, addSub([1, 2, 3, 4], [1, 1, 1, 1]));
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.outputs.find((o: { name: string }) => o.name === 'OUTPUT0').data;
}

function load(base: string, model: string, parameters?: Record<string, unknown>) {
  return postJson(`${base}/v2/repository/models/${model}/load`, parameters ? { parameters } : {});
}

/** The upload folders under the private temporary directory. */
async function uploads(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('slipway-upload-')).sort();
}

describe('load with model files (file:<version>/<name>)', () => {
  let app: App;
  let base: string;
  let repo: Awaited<ReturnType<typeof tempRepository>>;
  let tmp: string;
  const savedTmp = process.env.TMPDIR;

  before(async () => {
    repo = await tempRepository(['add_sub', 'identity_fp32']);
    tmp = await mkdtemp(join(tmpdir(), 'slipway-upload-test-'));
    // os.tmpdir() reads TMPDIR on every call: uploads of this server land here.
    process.env.TMPDIR = tmp;
    app = await startTestApp({ models: repo.dir, grpcPort: 0 });
    base = app.http.url;
  });
  after(async () => {
    await app.close();
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    await rm(tmp, { recursive: true, force: true });
    await repo.remove();
  });

  test('a model the repository does not have serves from the uploaded versions', async () => {
    const res = await load(base, 'uploaded', {
      config: JSON.stringify({ max_batch_size: 8, version_policy: { all: {} } }),
      'file:1/model.onnx': b64(V1),
      'file:2/model.onnx': b64(V2),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await sumOf(base, 'uploaded', '1'), [2, 3, 4, 5]);
    assert.deepEqual(await sumOf(base, 'uploaded', '2'), [3, 4, 5, 6]);
    assert.deepEqual(await sumOf(base, 'uploaded'), [3, 4, 5, 6]);

    const meta: any = await (await fetch(`${base}/v2/models/uploaded`)).json();
    assert.deepEqual(meta.versions, ['1', '2']);
    assert.deepEqual(
      meta.inputs.map((i: { name: string; shape: number[] }) => [i.name, i.shape]),
      [
        ['INPUT0', [-1, 4]],
        ['INPUT1', [-1, 4]],
      ],
    );
    const config: any = await (await fetch(`${base}/v2/models/uploaded/config`)).json();
    assert.equal(config.max_batch_size, 8);
    const index = await postJson(`${base}/v2/repository/index`, {});
    assert.deepEqual(
      index.body
        .filter((r: { name: string }) => r.name === 'uploaded')
        .map((r: { version: string }) => r.version),
      ['1', '2'],
    );

    const [folder] = await uploads(tmp);
    assert.ok(folder, 'the upload is on disk while it serves');
    assert.deepEqual((await readFile(join(tmp, folder, 'uploaded', '2', 'model.onnx'))).equals(V2), true);

    const unload = await postJson(`${base}/v2/repository/models/uploaded/unload`, {});
    assert.equal(unload.status, 200);
    assert.deepEqual(await uploads(tmp), [], 'unloading removes the uploaded folder');
    assert.equal((await fetch(`${base}/v2/models/uploaded/ready`)).status, 503);
    // Without files there is nothing to load it from: a 404, as for any model not in the repository.
    const again = await load(base, 'uploaded');
    assert.equal(again.status, 404, JSON.stringify(again.body));
  });

  test('a repository model is replaced by the upload, and a plain load brings the repository back', async () => {
    assert.deepEqual(await sumOf(base, 'add_sub', '1'), [2, 3, 4, 5]);
    // Version 1 of the upload is the repository's version 2.
    const res = await load(base, 'add_sub', { config: '{}', 'file:1/model.onnx': b64(V2) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(await sumOf(base, 'add_sub', '1'), [3, 4, 5, 6]);
    const v2 = await postJson(
      `${base}/v2/models/add_sub/versions/2/infer`,
      addSub([1, 2, 3, 4], [1, 1, 1, 1]),
    );
    assert.equal(v2.status, 404, "the upload has one version; the repository's are no longer served");
    const first = await uploads(tmp);
    assert.equal(first.length, 1);

    // A second upload replaces the first, whose folder goes.
    const second = await load(base, 'add_sub', { config: '{}', 'file:1/model.onnx': b64(V1) });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.deepEqual(await sumOf(base, 'add_sub', '1'), [2, 3, 4, 5]);
    const now = await uploads(tmp);
    assert.equal(now.length, 1);
    assert.notEqual(now[0], first[0], 'the first folder went, the second stays');

    const plain = await load(base, 'add_sub');
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
    assert.deepEqual(await sumOf(base, 'add_sub', '1'), [2, 3, 4, 5]);
    assert.deepEqual(await sumOf(base, 'add_sub', '2'), [3, 4, 5, 6]);
    assert.deepEqual(await uploads(tmp), []);
  });

  test('a corrupt uploaded file is a 400 with the reason; what served before keeps serving', async () => {
    const res = await load(base, 'add_sub', {
      config: '{}',
      'file:1/model.onnx': b64(Buffer.from('not an onnx graph')),
    });
    assert.equal(res.status, 400);
    assert.match(res.body.error, /version 1: cannot load file:1\/model.onnx: .*Protobuf parsing failed/);
    assert.doesNotMatch(
      res.body.error,
      /slipway-upload-/,
      'the file is named as sent, not where it was written',
    );
    assert.deepEqual(await sumOf(base, 'add_sub', '2'), [3, 4, 5, 6]);
    assert.deepEqual(await uploads(tmp), [], 'the failed upload is removed');

    // One version loads, another does not: the one that loaded serves, and its folder stays.
    const partial = await load(base, 'half_upload', {
      config: JSON.stringify({ version_policy: { all: {} } }),
      'file:1/model.onnx': b64(V1),
      'file:2/model.onnx': b64(Buffer.from('broken')),
    });
    assert.equal(partial.status, 400);
    assert.match(partial.body.error, /^version 2: /);
    assert.deepEqual(await sumOf(base, 'half_upload', '1'), [2, 3, 4, 5]);
    const kept = await uploads(tmp);
    assert.equal(kept.length, 1);
    assert.ok((await readFile(join(tmp, kept[0]!, 'half_upload', '1', 'model.onnx'))).equals(V1));
    assert.equal((await postJson(`${base}/v2/repository/models/half_upload/unload`, {})).status, 200);
    assert.deepEqual(await uploads(tmp), []);

    // A new model whose upload fails is UNAVAILABLE with the reason, as a corrupt folder model is.
    const fresh = await load(base, 'broken_upload', {
      config: '{}',
      'file:1/model.onnx': b64(Buffer.from('x')),
    });
    assert.equal(fresh.status, 400);
    const row = (await postJson(`${base}/v2/repository/index`, {})).body.find(
      (r: { name: string }) => r.name === 'broken_upload',
    );
    assert.equal(row.state, 'UNAVAILABLE');
    assert.match(row.reason, /Protobuf parsing failed/);
    assert.deepEqual(await uploads(tmp), []);
  });

  test('bad parameters are 400s naming the parameter, and nothing is written', async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'no config',
        { 'file:1/model.onnx': b64(V1) },
        /parameter 'config' is required with 'file:' parameters/,
      ],
      [
        'not base64',
        { config: '{}', 'file:1/model.onnx': 'not base64!' },
        /parameter 'file:1\/model.onnx' must be the file's contents in base64/,
      ],
      [
        'a number',
        { config: '{}', 'file:1/model.onnx': 7 },
        /parameter 'file:1\/model.onnx' must be the file's contents in base64, got number/,
      ],
      [
        'outside the folder',
        { config: '{}', 'file:../../escaped.txt': b64(V1) },
        /parameter 'file:..\/..\/escaped.txt': the file must be a relative path inside the model's folder/,
      ],
      [
        'absolute',
        { config: '{}', 'file:/etc/x': b64(V1) },
        /parameter 'file:\/etc\/x': the file must be a relative path/,
      ],
      ['empty', { config: '{}', 'file:': b64(V1) }, /parameter 'file:': the file must be a relative path/],
      [
        'both a file and a folder',
        { config: '{}', 'file:1': b64(V1), 'file:1/model.onnx': b64(V1) },
        /'1' cannot be both a file and a folder/,
      ],
      [
        'config.json',
        { config: '{}', 'file:config.json': b64(V1) },
        /give the model's configuration as parameter 'config'/,
      ],
      ['bad config', { config: '{', 'file:1/model.onnx': b64(V1) }, /parameter 'config' is not valid JSON/],
      [
        'config not allowed',
        { config: '{"max_batch_size": -1}', 'file:1/model.onnx': b64(V1) },
        /max_batch_size/,
      ],
      [
        'no version folder',
        { config: '{}', 'file:model.onnx': b64(V1) },
        /has no version folders \(expected file:<n>\/model.onnx\)/,
      ],
      [
        'a name over 255 bytes',
        { config: '{}', [`file:1/${'é'.repeat(200)}`]: b64(V1) },
        /at most 255 bytes of valid UTF-8/,
      ],
      ['a lone surrogate', { config: '{}', 'file:1/\ud800': b64(V1) }, /valid UTF-8/],
      [
        'schema.json as a folder',
        { config: '{}', 'file:1/model.onnx': b64(V1), 'file:1/schema.json/x': b64(V1) },
        /schema.json cannot be read: /,
      ],
    ];
    for (const [what, parameters, message] of cases) {
      const res = await load(base, 'add_sub', parameters);
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error, message, what);
    }
    const badName = await load(base, '.hidden', { config: '{}', 'file:1/model.onnx': b64(V1) });
    assert.equal(badName.status, 400);
    assert.match(badName.body.error, /model name '.hidden' cannot take uploaded files/);
    assert.deepEqual(await uploads(tmp), []);
    assert.deepEqual(
      (await readdir(tmp)).filter((n) => n.includes('escaped')),
      [],
    );
    assert.deepEqual(await sumOf(base, 'add_sub', '2'), [3, 4, 5, 6], 'the repository model still serves');
  });

  test('a plain load and an upload of a model not yet served, asked together: the upload serves', async () => {
    const [plain, upload] = await Promise.all([
      load(base, 'raced'),
      load(base, 'raced', { config: '{}', 'file:1/model.onnx': b64(V1) }),
    ]);
    assert.equal(plain.status, 404, JSON.stringify(plain.body));
    assert.equal(upload.status, 200, JSON.stringify(upload.body));
    assert.deepEqual(await sumOf(base, 'raced', '1'), [2, 3, 4, 5]);
    assert.equal(app.plane.manager.has('raced'), true);
    assert.equal((await postJson(`${base}/v2/repository/models/raced/unload`, {})).status, 200);
    assert.deepEqual(await uploads(tmp), []);
  });

  test('gRPC RepositoryModelLoad takes the files as bytes parameters', async () => {
    const client = grpcClient(app.grpc!.port);
    const call = (method: string, req: unknown) =>
      new Promise<any>((resolve, reject) =>
        (client as any)[method](req, (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        ),
      );
    try {
      await call('RepositoryModelLoad', {
        model_name: 'grpc_upload',
        parameters: {
          config: { string_param: '{"max_batch_size": 4}' },
          'file:3/model.onnx': { bytes_param: V2 },
        },
      });
      const res = await call('ModelInfer', {
        model_name: 'grpc_upload',
        inputs: [
          { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
          { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 1, 1, 1] } },
        ],
      });
      assert.equal(res.model_version, '3');
      const out = res.outputs.find((o: { name: string }) => o.name === 'OUTPUT0');
      const raw: Buffer = res.raw_output_contents?.[res.outputs.indexOf(out)];
      const values = out.contents?.fp32_contents?.length
        ? out.contents.fp32_contents
        : [...new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))];
      assert.deepEqual(values, [3, 4, 5, 6]);

      const err = await call('RepositoryModelLoad', {
        model_name: 'grpc_upload',
        parameters: { 'file:1/model.onnx': { bytes_param: V1 } },
      }).catch((e: grpc.ServiceError) => e);
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /parameter 'config' is required/);
      await call('RepositoryModelUnload', { model_name: 'grpc_upload' });
      assert.deepEqual(await uploads(tmp), []);
    } finally {
      client.close();
    }
  });

  test('closing the server removes the uploads it serves', async () => {
    const other = await startTestApp({ models: repo.dir });
    try {
      const res = await load(other.http.url, 'kept', { config: '{}', 'file:1/model.onnx': b64(V1) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal((await uploads(tmp)).length, 1);
    } finally {
      await other.close();
    }
    assert.deepEqual(await uploads(tmp), []);
  });
});
