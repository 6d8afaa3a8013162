/**
 * gRPC transport (package `inference`, service `GRPCInferenceService`): a real grpc-js server
 * on 127.0.0.1 port 0 and a real grpc-js client built from the same .proto.
 *
 * The first suite runs the real server (startApp: data plane, ONNX Runtime, batching) on the
 * fixture models in test/fixtures/models and asserts computed values. The second runs the
 * transport against an echo data plane, for what a real model cannot show on demand: a data
 * plane that overruns its deadline, a plain Error (INTERNAL), exact echo of every datatype's
 * extremes, and drain timing measured against a delay that is known exactly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { App } from '../src/app.js';
import { SlipwayError } from '../src/errors/index.js';
import { encodeBytesElements } from '../src/inference/datatypes.js';
import { Cancellation } from '../src/inference/index.js';
import { encodeInferResponse } from '../src/server/grpc/grpc-codec.js';
import { type GrpcServer, grpcProtoPath, LOADER_OPTIONS, startGrpcServer } from '../src/server/grpc/index.js';
import { startTestApp } from './helpers.js';
import { EchoPlane } from './support/echo-plane.js';

// --- Client ----------------------------------------------------------------------------------

type Msg = Record<string, any>;
type UnaryMethod = (
  request: Msg,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, res: Msg) => void,
) => grpc.ClientUnaryCall;

interface Client {
  call(method: string, request: Msg, options?: { deadlineMs?: number; signal?: AbortSignal }): Promise<Msg>;
  close(): void;
}

function connect(port: number): Client {
  const definition = loadSync(grpcProtoPath(), LOADER_OPTIONS);
  const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
  const Service = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    call(method, request, options = {}) {
      return new Promise((resolve, reject) => {
        const callOptions: grpc.CallOptions = {};
        if (options.deadlineMs !== undefined) callOptions.deadline = Date.now() + options.deadlineMs;
        const unary = (client[method] as UnaryMethod).bind(client);
        const call = unary(request, new grpc.Metadata(), callOptions, (err, res) =>
          err ? reject(err) : resolve(res),
        );
        options.signal?.addEventListener('abort', () => call.cancel());
      });
    },
    close: () => client.close(),
  };
}

/** Asserts the call fails with `code` and a message matching `message`; returns the error. */
async function rejectsWith(promise: Promise<unknown>, code: grpc.status, message?: RegExp) {
  const err = await promise.then(
    () => assert.fail(`expected ${grpc.status[code]}, the call succeeded`),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(err.code, code, `expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
  if (message) assert.match(err.details, message);
  return err;
}

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);

// --- The real server on the fixture models ----------------------------------------------------

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/models', import.meta.url));

function startReal(): Promise<App> {
  return startTestApp({ models: FIXTURES, grpcPort: 0 });
}

/** One value per datatype, as typed contents and as raw little-endian bytes. */
const IDENTITY: { datatype: string; field?: string; values: unknown[]; raw: Buffer }[] = [
  {
    datatype: 'BOOL',
    field: 'bool_contents',
    values: [true, false, false, true],
    raw: Buffer.from([1, 0, 0, 1]),
  },
  { datatype: 'UINT8', field: 'uint_contents', values: [0, 1, 200, 255], raw: Buffer.from([0, 1, 200, 255]) },
  {
    datatype: 'UINT16',
    field: 'uint_contents',
    values: [0, 1, 40000, 65535],
    raw: Buffer.from(new Uint16Array([0, 1, 40000, 65535]).buffer),
  },
  {
    datatype: 'UINT32',
    field: 'uint_contents',
    values: [0, 1, 3e9, 4294967295],
    raw: Buffer.from(new Uint32Array([0, 1, 3e9, 4294967295]).buffer),
  },
  {
    datatype: 'UINT64',
    field: 'uint64_contents',
    values: ['0', '1', '9007199254740993', '18446744073709551615'],
    raw: Buffer.from(new BigUint64Array([0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]).buffer),
  },
  {
    datatype: 'INT8',
    field: 'int_contents',
    values: [-128, -1, 0, 127],
    raw: Buffer.from(new Int8Array([-128, -1, 0, 127]).buffer),
  },
  {
    datatype: 'INT16',
    field: 'int_contents',
    values: [-32768, -1, 0, 32767],
    raw: Buffer.from(new Int16Array([-32768, -1, 0, 32767]).buffer),
  },
  {
    datatype: 'INT32',
    field: 'int_contents',
    values: [-2147483648, -1, 0, 2147483647],
    raw: Buffer.from(new Int32Array([-2147483648, -1, 0, 2147483647]).buffer),
  },
  {
    datatype: 'INT64',
    field: 'int64_contents',
    values: ['-9223372036854775808', '-1', '9007199254740993', '9223372036854775807'],
    raw: Buffer.from(new BigInt64Array([-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n]).buffer),
  },
  // FP16 has no typed field: raw only.
  {
    datatype: 'FP16',
    values: [],
    raw: Buffer.from(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]).buffer),
  },
  {
    datatype: 'FP32',
    field: 'fp32_contents',
    values: [0, -1.5, 2 ** -20, 2 ** 100],
    raw: f32([0, -1.5, 2 ** -20, 2 ** 100]),
  },
  {
    datatype: 'FP64',
    field: 'fp64_contents',
    values: [0, -1.5, Math.PI, 1e300],
    raw: Buffer.from(new Float64Array([0, -1.5, Math.PI, 1e300]).buffer),
  },
  {
    datatype: 'BYTES',
    field: 'bytes_contents',
    values: [Buffer.from('a'), Buffer.from(''), Buffer.from('héllo'), Buffer.from('z')],
    raw: Buffer.from(encodeBytesElements(['a', '', 'héllo', 'z'])),
  },
];

describe('gRPC on the real server (fixture models)', () => {
  let app: App;
  let client: Client;
  const addSub = (a: number[], b: number[]) => ({
    model_name: 'add_sub',
    inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: a } },
      { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: b } },
    ],
  });

  before(async () => {
    app = await startReal();
    assert.ok(app.grpc, 'gRPC is on by default');
    client = connect(app.grpc.port);
  });
  after(async () => {
    client.close();
    await app.close();
  });

  test('health, server metadata and model readiness', async () => {
    assert.deepEqual(await client.call('ServerLive', {}), { live: true });
    assert.deepEqual(await client.call('ServerReady', {}), { ready: true });
    const meta = await client.call('ServerMetadata', {});
    assert.equal(meta.name, 'slipway');
    assert.match(meta.version, /^\d+\.\d+\.\d+/);
    for (const ext of ['model_repository', 'statistics', 'model_configuration'])
      assert.ok(meta.extensions.includes(ext));
    assert.deepEqual(await client.call('ModelReady', { name: 'add_sub' }), { ready: true });
    assert.deepEqual(await client.call('ModelReady', { name: 'add_sub', version: '1' }), { ready: true });
    // As in Triton: an unknown model or version is not ready, rather than an error.
    assert.deepEqual(await client.call('ModelReady', { name: 'nope' }), { ready: false });
    assert.deepEqual(await client.call('ModelReady', { name: 'add_sub', version: '9' }), { ready: false });
  });

  test('model metadata', async () => {
    assert.deepEqual(await client.call('ModelMetadata', { name: 'add_sub' }), {
      name: 'add_sub',
      versions: ['1', '2'],
      platform: 'onnx_onnxv1',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: ['-1', '4'] },
        { name: 'INPUT1', datatype: 'FP32', shape: ['-1', '4'] },
      ],
      outputs: [
        { name: 'OUTPUT0', datatype: 'FP32', shape: ['-1', '4'] },
        { name: 'OUTPUT1', datatype: 'FP32', shape: ['-1', '4'] },
      ],
    });
    await rejectsWith(client.call('ModelMetadata', { name: 'nope' }), grpc.status.NOT_FOUND, /model 'nope'/);
    await rejectsWith(
      client.call('ModelMetadata', { name: 'add_sub', version: '9' }),
      grpc.status.NOT_FOUND,
      /no version '9'/,
    );
  });

  test('model config', async () => {
    const { config } = await client.call('ModelConfig', { name: 'add_sub' });
    assert.equal(config.name, 'add_sub');
    assert.equal(config.platform, 'onnxruntime_onnx');
    assert.equal(config.backend, 'onnxruntime');
    assert.equal(config.max_batch_size, 64);
    assert.deepEqual(config.version_policy, { all: {}, policy_choice: 'all' });
    assert.deepEqual(config.input, [
      { name: 'INPUT0', data_type: 'TYPE_FP32', dims: ['4'] },
      { name: 'INPUT1', data_type: 'TYPE_FP32', dims: ['4'] },
    ]);
    assert.deepEqual(
      config.output.map((o: Msg) => o.data_type),
      ['TYPE_FP32', 'TYPE_FP32'],
    );
    assert.equal(config.instance_group[0].kind, 'KIND_CPU');
    assert.equal(config.scheduling_choice, 'dynamic_batching');
    const bytes = (await client.call('ModelConfig', { name: 'identity_bytes' })).config;
    assert.equal(bytes.input[0].data_type, 'TYPE_STRING');
    const fixed = (await client.call('ModelConfig', { name: 'fixed_shape' })).config;
    assert.equal(Number(fixed.max_batch_size), 0);
    assert.deepEqual(fixed.input[0].dims, ['2', '4']);
    const tabular = (await client.call('ModelConfig', { name: 'tabular' })).config;
    assert.deepEqual(
      tabular.output.map((o: Msg) => [o.name, o.data_type]),
      [
        ['label', 'TYPE_INT64'],
        ['probabilities', 'TYPE_FP32'],
      ],
    );
  });

  test('ModelInfer add_sub with typed contents computes a+b and a-b', async () => {
    const res = await client.call('ModelInfer', { ...addSub([1, 2, 3, 4], [10, 20, 30, 40]), id: 'r1' });
    assert.equal(res.model_name, 'add_sub');
    assert.equal(res.model_version, '2');
    assert.equal(res.id, 'r1');
    assert.equal(res.raw_output_contents, undefined);
    assert.deepEqual(res.outputs, [
      { name: 'OUTPUT0', datatype: 'FP32', shape: ['1', '4'], contents: { fp32_contents: [12, 23, 34, 45] } },
      {
        name: 'OUTPUT1',
        datatype: 'FP32',
        shape: ['1', '4'],
        contents: { fp32_contents: [-9, -18, -27, -36] },
      },
    ]);
    const v1 = await client.call('ModelInfer', {
      ...addSub([1, 2, 3, 4], [10, 20, 30, 40]),
      model_version: '1',
    });
    assert.equal(v1.model_version, '1');
    assert.deepEqual(v1.outputs[0].contents, { fp32_contents: [11, 22, 33, 44] });
  });

  test('ModelInfer add_sub with raw contents answers raw, batch of 2, one requested output', async () => {
    const res = await client.call('ModelInfer', {
      model_name: 'add_sub',
      model_version: '1',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [2, 4] },
        { name: 'INPUT1', datatype: 'FP32', shape: [2, 4] },
      ],
      outputs: [{ name: 'OUTPUT1' }],
      raw_input_contents: [f32([1, 2, 3, 4, 5, 6, 7, 8]), f32([1, 1, 1, 1, 2, 2, 2, 2])],
    });
    assert.deepEqual(res.outputs, [{ name: 'OUTPUT1', datatype: 'FP32', shape: ['2', '4'] }]);
    assert.deepEqual(res.raw_output_contents, [f32([0, 1, 2, 3, 3, 4, 5, 6])]);
  });

  for (const { datatype, field, values, raw } of IDENTITY) {
    const model = `identity_${datatype.toLowerCase()}`;
    if (field) {
      test(`ModelInfer ${model} typed contents`, async () => {
        const res = await client.call('ModelInfer', {
          model_name: model,
          inputs: [{ name: 'INPUT0', datatype, shape: [2, 2], contents: { [field]: values } }],
        });
        assert.deepEqual(res.outputs, [
          { name: 'OUTPUT0', datatype, shape: ['2', '2'], contents: { [field]: values } },
        ]);
      });
    }
    test(`ModelInfer ${model} raw contents`, async () => {
      const res = await client.call('ModelInfer', {
        model_name: model,
        inputs: [{ name: 'INPUT0', datatype, shape: [2, 2] }],
        raw_input_contents: [raw],
      });
      assert.deepEqual(res.outputs, [{ name: 'OUTPUT0', datatype, shape: ['2', '2'] }]);
      assert.deepEqual(res.raw_output_contents, [raw]);
    });
  }

  test('tabular: one input per column, BYTES column, INT64 label', async () => {
    const res = await client.call('ModelInfer', {
      model_name: 'tabular',
      inputs: [
        { name: 'age', datatype: 'FP32', shape: [2, 1], contents: { fp32_contents: [60, 20] } },
        { name: 'hours_per_week', datatype: 'FP32', shape: [2, 1], contents: { fp32_contents: [40, 10] } },
        {
          name: 'workclass',
          datatype: 'BYTES',
          shape: [2, 1],
          contents: { bytes_contents: [Buffer.from('Private'), Buffer.from('State-gov')] },
        },
      ],
    });
    const byName = Object.fromEntries(res.outputs.map((o: Msg) => [o.name, o]));
    // p(>50K) = σ(0.05·age + 0.02·hours + [Private] − 3): row 1 → σ(1.8), row 2 → σ(-1.8).
    assert.deepEqual(byName.label.contents, { int64_contents: ['1', '0'] });
    const p = byName.probabilities.contents.fp32_contents as number[];
    const s = 1 / (1 + Math.exp(-1.8));
    assert.ok(Math.abs(p[1] - s) < 1e-5 && Math.abs(p[3] - (1 - s)) < 1e-5, `probabilities ${p}`);
  });

  test('all five InferParameter kinds are echoed; timeout is consumed', async () => {
    const res = await client.call('ModelInfer', {
      ...addSub([0, 0, 0, 0], [0, 0, 0, 0]),
      parameters: {
        b: { bool_param: true },
        i: { int64_param: -42 },
        s: { string_param: 'hello' },
        d: { double_param: 0.25 },
        u: { uint64_param: 7 },
        timeout: { int64_param: 5_000_000 },
      },
    });
    assert.deepEqual(res.parameters, {
      b: { bool_param: true, parameter_choice: 'bool_param' },
      i: { int64_param: '-42', parameter_choice: 'int64_param' },
      s: { string_param: 'hello', parameter_choice: 'string_param' },
      d: { double_param: 0.25, parameter_choice: 'double_param' },
      u: { int64_param: '7', parameter_choice: 'int64_param' },
    });
  });

  test('client errors answer INVALID_ARGUMENT naming the input or output', async () => {
    const cases: [Msg, RegExp][] = [
      [
        {
          model_name: 'add_sub',
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } },
            { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
          ],
        },
        /input 'INPUT0': expected shape \[-1,4\], got \[1,3\]/,
      ],
      [
        {
          model_name: 'add_sub',
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
            { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2] } },
          ],
        },
        /input 'INPUT1': shape \[1,4\] needs 4 elements, got 2/,
      ],
      [
        {
          model_name: 'add_sub',
          inputs: [
            { name: 'INPUT0', datatype: 'INT32', shape: [1, 4], contents: { int_contents: [1, 2, 3, 4] } },
            { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
          ],
        },
        /input 'INPUT0': expected datatype FP32, got INT32/,
      ],
      [
        {
          model_name: 'add_sub',
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } },
          ],
        },
        /input 'INPUT1' is missing/,
      ],
      [{ ...addSub([1, 2, 3, 4], [1, 2, 3, 4]), outputs: [{ name: 'OUTPUT9' }] }, /unknown output 'OUTPUT9'/],
      [
        {
          model_name: 'add_sub',
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [0, 4], contents: { fp32_contents: [] } },
            { name: 'INPUT1', datatype: 'FP32', shape: [0, 4], contents: { fp32_contents: [] } },
          ],
        },
        /input 'INPUT0': the first \(batch\) dimension is 0/,
      ],
      [
        {
          model_name: 'identity_fp16',
          inputs: [{ name: 'INPUT0', datatype: 'FP16', shape: [1, 1], contents: { fp32_contents: [1] } }],
        },
        /input 'INPUT0': FP16 has no typed contents field/,
      ],
    ];
    for (const [request, message] of cases) {
      await rejectsWith(client.call('ModelInfer', request), grpc.status.INVALID_ARGUMENT, message);
    }
    // None of them took the server down.
    const ok = await client.call('ModelInfer', addSub([1, 2, 3, 4], [10, 20, 30, 40]));
    assert.equal(ok.model_name, 'add_sub');
  });

  test('a message that is not valid protobuf answers INVALID_ARGUMENT, not INTERNAL', async () => {
    const raw = new grpc.Client(`127.0.0.1:${app.grpc!.port}`, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
        raw.makeUnaryRequest(
          '/inference.GRPCInferenceService/ModelInfer',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0xff, 0xff, 0xff]), // a tag and varint cut short
          (e) => (e ? resolve(e) : reject(new Error('answered'))),
        ),
      );
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /the request message cannot be decoded/);
    } finally {
      raw.close();
    }
    const ok = await client.call('ModelInfer', addSub([1, 2, 3, 4], [10, 20, 30, 40]));
    assert.equal(ok.model_name, 'add_sub');
  });

  test('unknown model or version answers NOT_FOUND', async () => {
    await rejectsWith(
      client.call('ModelInfer', { ...addSub([1, 2, 3, 4], [1, 2, 3, 4]), model_name: 'nope' }),
      grpc.status.NOT_FOUND,
      /model 'nope' is not in the repository/,
    );
    await rejectsWith(
      client.call('ModelInfer', { ...addSub([1, 2, 3, 4], [1, 2, 3, 4]), model_version: '3' }),
      grpc.status.NOT_FOUND,
      /model 'add_sub' has no version '3'/,
    );
  });

  test('the timeout parameter (µs) and the gRPC deadline answer DEADLINE_EXCEEDED', async () => {
    // `slow` takes about 30 ms per row: 8 rows take far longer than 20 ms.
    const rows = new Array(8 * 256).fill(0.5);
    const slow = {
      model_name: 'slow',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [8, 256] }],
      raw_input_contents: [f32(rows)],
    };
    await rejectsWith(
      client.call('ModelInfer', { ...slow, parameters: { timeout: { int64_param: 20_000 } } }),
      grpc.status.DEADLINE_EXCEEDED,
      /timeout of 20 ms/,
    );
    await rejectsWith(client.call('ModelInfer', slow, { deadlineMs: 20 }), grpc.status.DEADLINE_EXCEEDED);
    const ok = await client.call('ModelInfer', slow, { deadlineMs: 30_000 });
    assert.equal(ok.raw_output_contents[0].length, 8 * 256 * 4);
  });

  test('statistics count inferences per model version', async () => {
    const before = (await client.call('ModelStatistics', { name: 'identity_int32' })).model_stats[0];
    for (let i = 0; i < 3; i++) {
      await client.call('ModelInfer', {
        model_name: 'identity_int32',
        inputs: [{ name: 'INPUT0', datatype: 'INT32', shape: [2, 1], contents: { int_contents: [i, i] } }],
      });
    }
    const { model_stats } = await client.call('ModelStatistics', { name: 'identity_int32' });
    assert.equal(model_stats.length, 1);
    const s = model_stats[0];
    assert.equal(s.name, 'identity_int32');
    assert.equal(s.version, '1');
    const count = (d: Msg | undefined) => Number(d?.count ?? 0);
    assert.equal(count(s.inference_stats.success) - count(before?.inference_stats?.success), 3);
    assert.equal(Number(s.inference_count) - Number(before?.inference_count ?? 0), 6);
    assert.ok(Number(s.inference_stats.compute_infer.ns) > 0);
    assert.ok(Number(s.last_inference) > 1.7e12);
    assert.ok(s.batch_stats.some((b: Msg) => b.batch_size === '2'));
    const versions = await client.call('ModelStatistics', { name: 'add_sub' });
    assert.deepEqual(
      versions.model_stats.map((m: Msg) => m.version),
      ['1', '2'],
    );
    const all = await client.call('ModelStatistics', {});
    assert.ok(all.model_stats.length >= 17);
    await rejectsWith(client.call('ModelStatistics', { name: 'nope' }), grpc.status.NOT_FOUND);
  });

  test('repository index, unload (UNAVAILABLE) and load', async () => {
    const index = await client.call('RepositoryIndex', {});
    const addSubRows = index.models.filter((m: Msg) => m.name === 'add_sub');
    assert.deepEqual(
      addSubRows.map((m: Msg) => [m.version, m.state]),
      [
        ['1', 'READY'],
        ['2', 'READY'],
      ],
    );
    assert.ok(index.models.some((m: Msg) => m.name === 'identity_bytes' && m.state === 'READY'));

    await client.call('RepositoryModelUnload', { model_name: 'add_sub' });
    assert.deepEqual(await client.call('ModelReady', { name: 'add_sub' }), { ready: false });
    // An explicitly unloaded model does not hold the server's readiness back.
    assert.deepEqual(await client.call('ServerReady', {}), { ready: true });
    await rejectsWith(
      client.call('ModelInfer', addSub([1, 2, 3, 4], [1, 2, 3, 4])),
      grpc.status.UNAVAILABLE,
      /model 'add_sub' is unavailable: unloaded/,
    );
    const readyOnly = await client.call('RepositoryIndex', { ready: true });
    assert.ok(!readyOnly.models.some((m: Msg) => m.name === 'add_sub'));

    await client.call('RepositoryModelLoad', {
      model_name: 'add_sub',
      parameters: { config: { string_param: '{"max_batch_size": 8, "version_policy": {"latest": {}}}' } },
    });
    assert.equal((await client.call('ModelConfig', { name: 'add_sub' })).config.max_batch_size, 8);
    const res = await client.call('ModelInfer', addSub([1, 2, 3, 4], [1, 1, 1, 1]));
    assert.equal(res.model_version, '2');
    assert.deepEqual(res.outputs[0].contents, { fp32_contents: [3, 4, 5, 6] });
    await rejectsWith(
      client.call('RepositoryModelLoad', {
        model_name: 'add_sub',
        parameters: { config: { string_param: '{' } },
      }),
      grpc.status.INVALID_ARGUMENT,
      /parameter 'config' is not valid JSON/,
    );
    // Model files need the configuration beside them (test/model-upload.test.ts loads some).
    await rejectsWith(
      client.call('RepositoryModelLoad', {
        model_name: 'add_sub',
        parameters: { 'file:1/model.onnx': { bytes_param: Buffer.from('onnx') } },
      }),
      grpc.status.INVALID_ARGUMENT,
      /parameter 'config' is required with 'file:' parameters/,
    );
  });
});

describe('gRPC drain on the real server', () => {
  test('app.close() finishes in-flight calls, then refuses new ones', async () => {
    const app = await startReal();
    const client = connect(app.grpc!.port);
    try {
      const inflight = client.call('ModelInfer', {
        model_name: 'slow',
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [4, 256] }],
        raw_input_contents: [f32(new Array(4 * 256).fill(0.1))],
      });
      await new Promise((r) => setTimeout(r, 30));
      const closed = app.close();
      const res = await inflight;
      assert.equal(res.raw_output_contents[0].length, 4 * 256 * 4);
      await closed;
      await rejectsWith(client.call('ServerLive', {}, { deadlineMs: 2000 }), grpc.status.UNAVAILABLE);
    } finally {
      client.close();
      await app.close();
    }
  });
});

// --- Transport suite -------------------------------------------------------------------------

describe('gRPC transport (echo data plane)', () => {
  const plane = new EchoPlane();
  let server: GrpcServer;
  let client: Client;

  before(async () => {
    server = await startGrpcServer(plane, { host: '127.0.0.1', port: 0 });
    client = connect(server.port);
  });
  after(async () => {
    client.close();
    await server.close(1000);
  });

  test('port 0 picks a free port', () => {
    assert.ok(server.port > 0);
  });

  test('health and server metadata', async () => {
    assert.deepEqual(await client.call('ServerLive', {}), { live: true });
    assert.deepEqual(await client.call('ServerReady', {}), { ready: true });
    assert.deepEqual(await client.call('ServerMetadata', {}), {
      name: 'slipway',
      version: '0.1.0',
      extensions: ['model_repository', 'statistics'],
    });
    assert.deepEqual(await client.call('ModelReady', { name: 'echo' }), { ready: true });
    assert.deepEqual(await client.call('ModelReady', { name: 'echo', version: '1' }), { ready: true });
    assert.deepEqual(await client.call('ModelReady', { name: 'loading' }), { ready: false });
    assert.deepEqual(await client.call('ModelReady', { name: 'nope' }), { ready: false });
  });

  test('model metadata carries datatypes and int64 shapes', async () => {
    assert.deepEqual(await client.call('ModelMetadata', { name: 'echo' }), {
      name: 'echo',
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: ['-1', '4'] }],
      outputs: [{ name: 'OUTPUT0', datatype: 'BYTES', shape: ['-1'] }],
    });
    await rejectsWith(client.call('ModelMetadata', { name: 'nope' }), grpc.status.NOT_FOUND, /model 'nope'/);
    await rejectsWith(
      client.call('ModelMetadata', { name: 'echo', version: '7' }),
      grpc.status.NOT_FOUND,
      /version '7'/,
    );
  });

  test('model config: Triton JSON becomes the ModelConfig message with enums', async () => {
    const { config } = await client.call('ModelConfig', { name: 'echo' });
    assert.equal(config.name, 'echo');
    assert.equal(config.platform, 'onnxruntime_onnx');
    assert.equal(config.backend, 'onnxruntime');
    assert.equal(config.max_batch_size, 64);
    assert.deepEqual(config.version_policy, { latest: { num_versions: 1 }, policy_choice: 'latest' });
    assert.deepEqual(config.input, [{ name: 'INPUT0', data_type: 'TYPE_FP32', dims: ['4'] }]);
    // An empty repeated field is not on the wire, so `dims` of a batch-only shape is absent.
    assert.deepEqual(config.output, [{ name: 'OUTPUT0', data_type: 'TYPE_STRING' }]);
    assert.deepEqual(config.instance_group, [{ name: 'echo_0', kind: 'KIND_CPU', count: 1 }]);
    assert.equal(config.scheduling_choice, 'dynamic_batching');
    assert.deepEqual(config.dynamic_batching, {
      preferred_batch_size: [4, 8],
      max_queue_delay_microseconds: '0',
      default_queue_policy: { max_queue_size: 1024 },
    });
    assert.deepEqual(config.parameters.intra_op_thread_count, { string_value: '1' });
  });

  test('repository index, load and unload', async () => {
    assert.deepEqual(await client.call('RepositoryIndex', {}), {
      models: [
        { name: 'echo', version: '1', state: 'READY', reason: '' },
        { name: 'loading', version: '', state: 'LOADING', reason: 'warming up' },
      ],
    });
    assert.deepEqual(await client.call('RepositoryIndex', { ready: true }), {
      models: [{ name: 'echo', version: '1', state: 'READY', reason: '' }],
    });
    await client.call('RepositoryModelLoad', {
      model_name: 'echo',
      parameters: {
        config: { string_param: '{"max_batch_size":8}' },
        'file:1/model.onnx': { bytes_param: Buffer.from([0, 1, 2, 255]) },
        flag: { bool_param: true },
        n: { int64_param: 3 },
      },
    });
    assert.deepEqual(plane.lastLoad, {
      model: 'echo',
      parameters: { config: '{"max_batch_size":8}', 'file:1/model.onnx': 'AAEC/w==', flag: true, n: 3 },
    });
    await client.call('RepositoryModelUnload', { model_name: 'echo' });
    assert.deepEqual(plane.unloaded, ['echo']);
    await rejectsWith(client.call('RepositoryModelUnload', { model_name: 'gone' }), grpc.status.NOT_FOUND);
  });

  test('statistics in Triton shape', async () => {
    await client.call('ModelInfer', {
      model_name: 'echo',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }],
    });
    const { model_stats } = await client.call('ModelStatistics', { name: 'echo' });
    assert.equal(model_stats.length, 1);
    const s = model_stats[0];
    assert.equal(s.name, 'echo');
    assert.equal(s.version, '1');
    assert.ok(Number(s.last_inference) > 1.7e12);
    assert.ok(Number(s.inference_count) >= 2);
    assert.equal(Number(s.inference_count), 2 * Number(s.execution_count));
    assert.equal(Number(s.inference_stats.success.count), Number(s.execution_count));
    assert.equal(Number(s.inference_stats.success.ns), 1000 * Number(s.execution_count));
    assert.deepEqual(s.batch_stats[0].batch_size, '2');
    assert.equal(Number(s.batch_stats[0].compute_infer.ns), 200 * Number(s.execution_count));
    const all = await client.call('ModelStatistics', {});
    assert.equal(all.model_stats.length, 1);
    await rejectsWith(client.call('ModelStatistics', { name: 'nope' }), grpc.status.NOT_FOUND);
  });

  // Typed contents per datatype: the echo returns what was decoded, re-encoded as typed contents.
  const typed: [string, string, unknown[]][] = [
    ['BOOL', 'bool_contents', [true, false, true, true]],
    ['UINT8', 'uint_contents', [0, 1, 254, 255]],
    ['UINT16', 'uint_contents', [0, 1, 65534, 65535]],
    ['UINT32', 'uint_contents', [0, 1, 4294967294, 4294967295]],
    ['UINT64', 'uint64_contents', ['0', '1', '9007199254740993', '18446744073709551615']],
    ['INT8', 'int_contents', [-128, -1, 0, 127]],
    ['INT16', 'int_contents', [-32768, -1, 0, 32767]],
    ['INT32', 'int_contents', [-2147483648, -1, 0, 2147483647]],
    ['INT64', 'int64_contents', ['-9223372036854775808', '-1', '9007199254740993', '9223372036854775807']],
    ['FP32', 'fp32_contents', [0, -1.5, 2 ** -20, 2 ** 100]],
    ['FP64', 'fp64_contents', [0, -1.5, Math.PI, 1e300]],
    ['BYTES', 'bytes_contents', [Buffer.from('a'), Buffer.from(''), Buffer.from('héllo'), Buffer.from('z')]],
  ];
  for (const [datatype, field, values] of typed) {
    test(`ModelInfer ${datatype} typed contents round trip exactly`, async () => {
      const res = await client.call('ModelInfer', {
        model_name: 'echo',
        id: `typed-${datatype}`,
        inputs: [{ name: 'x', datatype, shape: [2, 2], contents: { [field]: values } }],
      });
      assert.equal(res.model_name, 'echo');
      assert.equal(res.model_version, '1');
      assert.equal(res.id, `typed-${datatype}`);
      assert.equal(res.raw_output_contents, undefined);
      assert.deepEqual(res.outputs, [
        { name: 'x', datatype, shape: ['2', '2'], contents: { [field]: values } },
      ]);
    });
  }

  // Raw contents: little-endian bytes in, the same bytes out, as tritonclient sends them.
  const raw: [string, Buffer][] = [
    ['BOOL', Buffer.from([1, 0, 1, 1])],
    ['INT64', Buffer.from(new BigInt64Array([-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n]).buffer)],
    ['UINT64', Buffer.from(new BigUint64Array([0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]).buffer)],
    ['FP32', f32([0, -1.5, 3.25, 1e30])],
    ['FP16', Buffer.from(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]).buffer)],
    ['FP64', Buffer.from(new Float64Array([0, -1.5, Math.PI, 1e300]).buffer)],
    ['INT8', Buffer.from(new Int8Array([-128, -1, 0, 127]).buffer)],
    ['UINT16', Buffer.from(new Uint16Array([0, 1, 65534, 65535]).buffer)],
    ['BYTES', Buffer.from(encodeBytesElements(['a', '', 'héllo', '日本']))],
  ];
  for (const [datatype, bytes] of raw) {
    test(`ModelInfer ${datatype} raw contents round trip byte for byte`, async () => {
      const res = await client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'x', datatype, shape: [1, 4] }],
        raw_input_contents: [bytes],
      });
      assert.deepEqual(res.outputs, [{ name: 'x', datatype, shape: ['1', '4'] }]);
      assert.equal(res.raw_output_contents.length, 1);
      assert.deepEqual(res.raw_output_contents[0], bytes);
    });
  }

  test('ModelInfer raw contents for several inputs, answering only the requested output', async () => {
    const res = await client.call('ModelInfer', {
      model_name: 'echo',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [2] },
        { name: 'b', datatype: 'INT32', shape: [1] },
      ],
      outputs: [{ name: 'b' }],
      raw_input_contents: [f32([1, 2]), Buffer.from(new Int32Array([-7]).buffer)],
    });
    assert.deepEqual(res.outputs, [{ name: 'b', datatype: 'INT32', shape: ['1'] }]);
    assert.deepEqual(res.raw_output_contents, [Buffer.from(new Int32Array([-7]).buffer)]);
  });

  test('typed requests get raw outputs when an output is FP16 (no typed field, no mixing)', () => {
    const msg = encodeInferResponse(
      {
        modelName: 'm',
        modelVersion: '1',
        outputs: [
          { name: 'a', datatype: 'FP32', shape: [1], data: new Float32Array([5]) },
          { name: 'h', datatype: 'FP16', shape: [2], data: new Uint16Array([0x3c00, 0x4000]) },
        ],
      },
      'req-1',
      false,
    );
    assert.equal(msg.id, 'req-1');
    assert.deepEqual(msg.outputs, [
      { name: 'a', datatype: 'FP32', shape: [1] },
      { name: 'h', datatype: 'FP16', shape: [2] },
    ]);
    assert.deepEqual(msg.raw_output_contents, [
      f32([5]),
      Buffer.from(new Uint16Array([0x3c00, 0x4000]).buffer),
    ]);
  });

  test('all five InferParameter kinds reach the data plane and come back', async () => {
    const res = await client.call('ModelInfer', {
      model_name: 'echo',
      parameters: {
        b: { bool_param: false },
        i: { int64_param: -42 },
        s: { string_param: 'hello' },
        d: { double_param: 0.25 },
        u: { uint64_param: 7 },
      },
      inputs: [
        {
          name: 'x',
          datatype: 'INT32',
          shape: [1],
          parameters: { note: { string_param: 'per-input' } },
          contents: { int_contents: [1] },
        },
      ],
    });
    // Numbers come back as int64 when integral: the protocol types keep no int/uint distinction.
    assert.deepEqual(res.parameters, {
      b: { bool_param: false, parameter_choice: 'bool_param' },
      i: { int64_param: '-42', parameter_choice: 'int64_param' },
      s: { string_param: 'hello', parameter_choice: 'string_param' },
      d: { double_param: 0.25, parameter_choice: 'double_param' },
      u: { int64_param: '7', parameter_choice: 'int64_param' },
    });
    assert.deepEqual(res.outputs[0].parameters, {
      note: { string_param: 'per-input', parameter_choice: 'string_param' },
    });
  });

  test('ModelInfer passes protocol, timeout (µs) and deadline to the data plane', async () => {
    const req = {
      model_name: 'echo',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }],
    };
    await client.call('ModelInfer', req);
    assert.equal(plane.lastOptions?.protocol, 'grpc');
    assert.equal(plane.lastOptions?.timeoutMs, undefined);
    assert.ok(plane.lastOptions?.cancel instanceof Cancellation);

    await client.call('ModelInfer', { ...req, parameters: { timeout: { int64_param: 250_000 } } });
    assert.equal(plane.lastOptions?.timeoutMs, 250);

    await client.call('ModelInfer', req, { deadlineMs: 5000 });
    const t = plane.lastOptions?.timeoutMs ?? 0;
    assert.ok(t > 4000 && t <= 5000, `deadline gave timeoutMs ${t}`);

    await client.call(
      'ModelInfer',
      { ...req, parameters: { timeout: { int64_param: 2_000_000 } } },
      { deadlineMs: 9000 },
    );
    assert.equal(plane.lastOptions?.timeoutMs, 2000);
  });

  test('a request timeout answers DEADLINE_EXCEEDED with the data plane message', async () => {
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        parameters: { delay_ms: { int64_param: 2000 }, timeout: { int64_param: 30_000 } },
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }],
      }),
      grpc.status.DEADLINE_EXCEEDED,
      /timed out after 30 ms/,
    );
  });

  test('a gRPC deadline answers DEADLINE_EXCEEDED and aborts a data plane that overruns it', async () => {
    const call = (parameters: Msg) =>
      client.call(
        'ModelInfer',
        {
          model_name: 'echo',
          parameters,
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }],
        },
        { deadlineMs: 50 },
      );
    // The data plane sees the deadline as its timeout and gives up by itself...
    await rejectsWith(call({ delay_ms: { int64_param: 2000 } }), grpc.status.DEADLINE_EXCEEDED);
    assert.ok((plane.lastOptions?.timeoutMs ?? Infinity) <= 50);
    // ...and one that ignores it is aborted when grpc-js ends the call at the deadline.
    await rejectsWith(
      call({ delay_ms: { int64_param: 2000 }, ignore_timeout: { bool_param: true } }),
      grpc.status.DEADLINE_EXCEEDED,
    );
    const cancel = plane.lastOptions?.cancel;
    await waitFor(() => cancel?.cancelled === true);
  });

  test('cancelling the call fires the data plane cancellation', async () => {
    const controller = new AbortController();
    const pending = client.call(
      'ModelInfer',
      {
        model_name: 'echo',
        parameters: { delay_ms: { int64_param: 5000 } },
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }],
      },
      { signal: controller.signal },
    );
    await waitFor(
      () => plane.lastOptions?.timeoutMs === undefined && plane.lastOptions?.cancel !== undefined,
    );
    const cancel = plane.lastOptions?.cancel;
    setTimeout(() => controller.abort(), 20);
    await rejectsWith(pending, grpc.status.CANCELLED);
    await waitFor(() => cancel?.cancelled === true);
  });

  test('invalid inputs answer INVALID_ARGUMENT naming the input, with the error code in metadata', async () => {
    const err = await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: [1, 2, 3] } }],
      }),
      grpc.status.INVALID_ARGUMENT,
      /input 'INPUT0': shape \[2,4\] needs 8 elements, got 3 in fp32_contents/,
    );
    assert.deepEqual(err.metadata.get('slipway-error-code'), ['SLIPWAY_ERR_INPUT_SHAPE']);

    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4] }],
        raw_input_contents: [f32([1, 2])],
      }),
      grpc.status.INVALID_ARGUMENT,
      /input 'INPUT0': shape \[1,4\] needs 4 elements, got 2 in raw_input_contents/,
    );
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1] }],
        raw_input_contents: [Buffer.from([1, 2, 3])],
      }),
      grpc.status.INVALID_ARGUMENT,
      /input 'INPUT0': 3 bytes is not a whole number of FP32 elements/,
    );
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'INPUT0', datatype: 'FLOAT', shape: [1], contents: { fp32_contents: [1] } }],
      }),
      grpc.status.INVALID_ARGUMENT,
      /input 'INPUT0': unknown datatype 'FLOAT'/,
    );
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'half', datatype: 'FP16', shape: [1], contents: { fp32_contents: [1] } }],
      }),
      grpc.status.INVALID_ARGUMENT,
      /input 'half': FP16 has no typed contents field; send it in raw_input_contents/,
    );
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'small', datatype: 'INT8', shape: [1], contents: { int_contents: [300] } }],
      }),
      grpc.status.INVALID_ARGUMENT,
      /input 'small': element 0 \(300\) is out of range for INT8/,
    );
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [
          { name: 'a', datatype: 'FP32', shape: [1] },
          { name: 'b', datatype: 'FP32', shape: [1] },
        ],
        raw_input_contents: [f32([1])],
      }),
      grpc.status.INVALID_ARGUMENT,
      /raw_input_contents has 1 entries but the request has 2 inputs/,
    );
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        inputs: [{ name: 'mixed', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }],
        raw_input_contents: [f32([1])],
      }),
      grpc.status.INVALID_ARGUMENT,
      /input 'mixed': sets contents while the request uses raw_input_contents/,
    );
    await rejectsWith(
      client.call('ModelInfer', {
        model_name: 'echo',
        parameters: { timeout: { string_param: 'soon' } },
        inputs: [],
      }),
      grpc.status.INVALID_ARGUMENT,
      /parameter 'timeout'/,
    );
  });

  test('data plane errors map to NOT_FOUND, UNAVAILABLE and INTERNAL', async () => {
    const input = [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [1] } }];
    await rejectsWith(
      client.call('ModelInfer', { model_name: 'nope', inputs: input }),
      grpc.status.NOT_FOUND,
      /model 'nope'/,
    );
    await rejectsWith(
      client.call('ModelInfer', { model_name: 'echo', model_version: '9', inputs: input }),
      grpc.status.NOT_FOUND,
      /version '9'/,
    );
    await rejectsWith(
      client.call('ModelInfer', { model_name: 'loading', inputs: input }),
      grpc.status.UNAVAILABLE,
      /'loading' is LOADING/,
    );
    const err = await rejectsWith(
      client.call('ModelInfer', { model_name: 'boom', inputs: input }),
      grpc.status.INTERNAL,
      /kaboom/,
    );
    assert.deepEqual(err.metadata.get('slipway-error-code'), ['SLIPWAY_ERR_INTERNAL']);
  });
});

describe('gRPC server lifecycle', () => {
  const request = (delayMs: number) => ({
    model_name: 'echo',
    parameters: { delay_ms: { int64_param: delayMs } },
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1], contents: { fp32_contents: [42] } }],
  });

  test('close() lets in-flight calls finish and refuses new ones', async () => {
    const server = await startGrpcServer(new EchoPlane(), { host: '127.0.0.1', port: 0 });
    const client = connect(server.port);
    try {
      await client.call('ServerLive', {});
      const inflight = client.call('ModelInfer', request(200));
      await new Promise((r) => setTimeout(r, 50));
      const started = Date.now();
      const closed = server.close(5000);
      const res = await inflight;
      assert.deepEqual(res.outputs[0].contents, { fp32_contents: [42] });
      await closed;
      assert.ok(Date.now() - started < 2000, 'drain waited for the grace period instead of the call');
      await rejectsWith(client.call('ServerLive', {}, { deadlineMs: 2000 }), grpc.status.UNAVAILABLE);
      assert.equal(server.close(), closed, 'close() twice returns the same promise');
    } finally {
      client.close();
    }
  });

  test('close() cancels calls still running after the grace period', async () => {
    const plane = new EchoPlane();
    const server = await startGrpcServer(plane, { host: '127.0.0.1', port: 0 });
    const client = connect(server.port);
    try {
      const inflight = client.call('ModelInfer', request(10_000));
      await waitFor(() => plane.lastOptions !== undefined);
      const started = Date.now();
      await server.close(100);
      assert.ok(Date.now() - started < 2000);
      const err = await inflight.then(
        () => assert.fail('the call should have been cut'),
        (e: grpc.ServiceError) => e,
      );
      assert.ok([grpc.status.UNAVAILABLE, grpc.status.CANCELLED].includes(err.code), grpc.status[err.code]);
      await waitFor(() => plane.lastOptions?.cancel?.cancelled === true);
    } finally {
      client.close();
    }
  });

  test('maxMessageBytes bounds requests with RESOURCE_EXHAUSTED', async () => {
    const server = await startGrpcServer(new EchoPlane(), {
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 1024,
    });
    const client = connect(server.port);
    try {
      await rejectsWith(
        client.call('ModelInfer', {
          model_name: 'echo',
          inputs: [{ name: 'x', datatype: 'FP32', shape: [512] }],
          raw_input_contents: [f32(new Array(512).fill(1))],
        }),
        grpc.status.RESOURCE_EXHAUSTED,
      );
    } finally {
      client.close();
      await server.close(1000);
    }
  });

  test('a port in use is reported naming the address', async () => {
    const first = await startGrpcServer(new EchoPlane(), { host: '127.0.0.1', port: 0 });
    try {
      await assert.rejects(
        startGrpcServer(new EchoPlane(), { host: '127.0.0.1', port: first.port }),
        (err) => {
          assert.ok(err instanceof SlipwayError);
          assert.equal(err.code, 'SLIPWAY_ERR_CONFIG');
          assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${first.port}`));
          return true;
        },
      );
    } finally {
      await first.close(1000);
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
