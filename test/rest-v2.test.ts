import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.js';
import { addSubRequest, getJson, postBinary, postJson, readBinaryResponse, startTestApp } from './helpers.js';

let app: App;
let url: string;
before(async () => {
  app = await startTestApp();
  url = app.http.url;
});
after(() => app.close());

describe('health and metadata', () => {
  test('server metadata lists the extensions', async () => {
    const r = await getJson(`${url}/v2`);
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'slipway');
    assert.match(r.body.version, /^\d+\.\d+\.\d+/);
    for (const ext of ['binary_tensor_data', 'model_repository', 'statistics', 'model_configuration']) {
      assert.ok(r.body.extensions.includes(ext), ext);
    }
  });

  test('live and ready answer 200 with a JSON body', async () => {
    assert.deepEqual((await getJson(`${url}/v2/health/live`)).body, { live: true });
    const ready = await getJson(`${url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { ready: true });
  });

  test('model metadata comes from the ONNX graph, -1 for dynamic dims', async () => {
    const r = await getJson(`${url}/v2/models/add_sub`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      name: 'add_sub',
      versions: ['1', '2'],
      platform: 'onnx_onnxv1',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] },
        { name: 'INPUT1', datatype: 'FP32', shape: [-1, 4] },
      ],
      outputs: [
        { name: 'OUTPUT0', datatype: 'FP32', shape: [-1, 4] },
        { name: 'OUTPUT1', datatype: 'FP32', shape: [-1, 4] },
      ],
    });
    const tab = await getJson(`${url}/v2/models/tabular/versions/1`);
    assert.deepEqual(
      tab.body.inputs.map((i: { datatype: string }) => i.datatype),
      ['FP32', 'FP32', 'BYTES'],
    );
    assert.deepEqual(tab.body.outputs[0], { name: 'label', datatype: 'INT64', shape: [-1] });
  });

  test('model and version readiness', async () => {
    assert.equal((await getJson(`${url}/v2/models/add_sub/ready`)).status, 200);
    const v1 = await getJson(`${url}/v2/models/add_sub/versions/1/ready`);
    assert.deepEqual(v1.body, { name: 'add_sub', version: '1', ready: true });
    assert.equal((await getJson(`${url}/v2/models/add_sub/versions/9/ready`)).status, 404);
    assert.equal((await getJson(`${url}/v2/models/nope/ready`)).status, 404);
  });

  test('model config in Triton form, for perf_analyzer', async () => {
    const r = await getJson(`${url}/v2/models/add_sub/config`);
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'add_sub');
    assert.equal(r.body.max_batch_size, 64);
    assert.equal(r.body.platform, 'onnxruntime_onnx');
    assert.deepEqual(r.body.input[0], { name: 'INPUT0', data_type: 'TYPE_FP32', dims: [4] });
    assert.deepEqual(r.body.version_policy, { all: {} });
    const bytes = await getJson(`${url}/v2/models/identity_bytes/config`);
    assert.equal(bytes.body.input[0].data_type, 'TYPE_STRING');
    // A fixed first dimension cannot batch: max_batch_size 0 and the full shapes, which a client
    // then sends as they are.
    const fixed = await getJson(`${url}/v2/models/fixed_shape/config`);
    assert.equal(fixed.body.max_batch_size, 0);
    assert.deepEqual(fixed.body.input[0].dims, [2, 4]);
    assert.deepEqual(fixed.body.output[0].dims, [2, 4]);
    assert.equal(fixed.body.dynamic_batching, undefined);
    const data = [0, 1, 2, 3, 4, 5, 6, 7];
    const run = await postJson(`${url}/v2/models/fixed_shape/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: fixed.body.input[0].dims, data }],
    });
    assert.equal(run.status, 200, JSON.stringify(run.body));
    assert.deepEqual(run.body.outputs[0].data, data);
  });

  test('unknown routes and models are 404 with an error body', async () => {
    const r = await getJson(`${url}/v2/nothing`);
    assert.equal(r.status, 404);
    assert.match(r.body.error, /no endpoint GET \/v2\/nothing/);
    const m = await getJson(`${url}/v2/models/nope`);
    assert.equal(m.status, 404);
    assert.equal(m.body.code, 'SLIPWAY_ERR_MODEL_NOT_FOUND');
    const v = await getJson(`${url}/v2/models/add_sub/versions/7`);
    assert.equal(v.status, 404);
    assert.match(v.body.error, /no version '7'/);
  });

  test('path segments are percent-decoded the same on every call; bad encoding is a 400 each time', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await getJson(`${url}/v2/models/%61dd_sub/versions/%31`);
      assert.equal(r.status, 200);
      assert.equal(r.body.name, 'add_sub');
      assert.ok(r.body.versions.includes('1'));
      const bad = await getJson(`${url}/v2/models/add%ZZsub`);
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /'add%ZZsub' is not valid percent-encoding/);
    }
    // A query string does not split a path into another one.
    assert.equal((await getJson(`${url}/v2/models/add_sub/ready?x=1`)).status, 200);
    assert.equal((await getJson(`${url}/v2/models/add_sub/ready`)).status, 200);
  });
});

describe('infer with JSON tensors', () => {
  test('flat and nested data, id echoed, latest version by default', async () => {
    const r = await postJson(`${url}/v2/models/add_sub/infer`, {
      id: 'req-1',
      inputs: [
        {
          name: 'INPUT0',
          datatype: 'FP32',
          shape: [2, 4],
          data: [
            [1, 2, 3, 4],
            [5, 6, 7, 8],
          ],
        },
        { name: 'INPUT1', datatype: 'FP32', shape: [2, 4], data: [1, 1, 1, 1, 2, 2, 2, 2] },
      ],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.model_name, 'add_sub');
    assert.equal(r.body.model_version, '2');
    assert.equal(r.body.id, 'req-1');
    assert.deepEqual(r.body.outputs[0], {
      name: 'OUTPUT0',
      datatype: 'FP32',
      shape: [2, 4],
      data: [3, 4, 5, 6, 8, 9, 10, 11],
    });
    assert.deepEqual(r.body.outputs[1].data, [0, 1, 2, 3, 3, 4, 5, 6]);
  });

  test('a specific version', async () => {
    const r = await postJson(`${url}/v2/models/add_sub/versions/1/infer`, addSubRequest(1));
    assert.equal(r.body.model_version, '1');
    assert.deepEqual(r.body.outputs[0].data, [2, 2.5, 3, 3.5]);
  });

  test('requested outputs only, parameters passed through', async () => {
    const r = await postJson(`${url}/v2/models/add_sub/infer`, {
      ...addSubRequest(1),
      parameters: { tenant: 'acme', priority_hint: 3, trace: true },
      outputs: [{ name: 'OUTPUT1' }],
    });
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.outputs.map((o: { name: string }) => o.name),
      ['OUTPUT1'],
    );
    assert.deepEqual(r.body.parameters, { tenant: 'acme', priority_hint: 3, trace: true });
  });

  const cases: { model: string; datatype: string; data: unknown[]; expect?: unknown[] }[] = [
    { model: 'identity_bool', datatype: 'BOOL', data: [true, false, true, true] },
    { model: 'identity_uint8', datatype: 'UINT8', data: [0, 1, 200, 255] },
    { model: 'identity_uint16', datatype: 'UINT16', data: [0, 1, 40000, 65535] },
    { model: 'identity_uint32', datatype: 'UINT32', data: [0, 1, 3000000000, 4294967295] },
    { model: 'identity_uint64', datatype: 'UINT64', data: [0, 1, 2 ** 40, 2 ** 53 - 1] },
    { model: 'identity_int8', datatype: 'INT8', data: [-128, -1, 0, 127] },
    { model: 'identity_int16', datatype: 'INT16', data: [-32768, -1, 0, 32767] },
    { model: 'identity_int32', datatype: 'INT32', data: [-2147483648, -1, 0, 2147483647] },
    { model: 'identity_int64', datatype: 'INT64', data: [-(2 ** 53) + 1, -1, 0, 2 ** 53 - 1] },
    {
      model: 'identity_fp32',
      datatype: 'FP32',
      data: [0.1, -2.5, 1e30, 3],
      expect: [Math.fround(0.1), -2.5, Math.fround(1e30), 3],
    },
    { model: 'identity_fp64', datatype: 'FP64', data: [0.1, -2.5, 1e300, 3] },
    { model: 'identity_bytes', datatype: 'BYTES', data: ['a', '', 'héllo wörld', '日本'] },
  ];
  for (const c of cases) {
    test(`${c.datatype} round-trips through JSON`, async () => {
      const r = await postJson(`${url}/v2/models/${c.model}/infer`, {
        inputs: [{ name: 'INPUT0', datatype: c.datatype, shape: [2, 2], data: c.data }],
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.outputs[0], {
        name: 'OUTPUT0',
        datatype: c.datatype,
        shape: [2, 2],
        data: c.expect ?? c.data,
      });
    });
  }

  test('FP16 in JSON is a 400 naming the input, as in Triton', async () => {
    const r = await postJson(`${url}/v2/models/identity_fp16/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP16', shape: [1, 1], data: [1] }],
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /input 'INPUT0': FP16 cannot travel as JSON/);
  });
});

describe('infer with binary tensors', () => {
  test('FP32 inputs and outputs in binary, header length honoured', async () => {
    const a = new Float32Array([1, 2, 3, 4]);
    const b = new Float32Array([0.5, 0.5, 0.5, 0.5]);
    const res = await postBinary(
      `${url}/v2/models/add_sub/infer`,
      {
        inputs: [
          { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } },
          { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } },
        ],
        outputs: [{ name: 'OUTPUT0', parameters: { binary_data: true } }, { name: 'OUTPUT1' }],
      },
      [new Uint8Array(a.buffer), new Uint8Array(b.buffer)],
    );
    assert.equal(res.status, 200);
    const { header, raw } = await readBinaryResponse(res);
    assert.deepEqual(header.outputs[0].parameters, { binary_data_size: 16 });
    const out0 = raw.get('OUTPUT0')!;
    assert.deepEqual(
      [...new Float32Array(out0.buffer.slice(out0.byteOffset, out0.byteOffset + 16))],
      [2.5, 3.5, 4.5, 5.5],
    );
    // OUTPUT1 was not asked for in binary, so it comes as JSON.
    assert.deepEqual(header.outputs[1].data, [0.5, 1.5, 2.5, 3.5]);
  });

  test('binary_data_output makes every output binary; BYTES use 4-byte length prefixes', async () => {
    const strings = ['ab', '', 'ünï'];
    const parts = strings.map((s) => {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return Buffer.concat([len, b]);
    });
    const tensor = Buffer.concat(parts);
    const res = await postBinary(
      `${url}/v2/models/identity_bytes/infer`,
      {
        parameters: { binary_data_output: true },
        inputs: [
          {
            name: 'INPUT0',
            datatype: 'BYTES',
            shape: [1, 3],
            parameters: { binary_data_size: tensor.length },
          },
        ],
      },
      [tensor],
    );
    assert.equal(res.status, 200);
    const { header, raw } = await readBinaryResponse(res);
    assert.equal(header.outputs[0].datatype, 'BYTES');
    assert.deepEqual(raw.get('OUTPUT0'), tensor);
  });

  test('FP16, INT64 and BOOL travel as raw bits', async () => {
    const half = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0000]); // 1, -2, 65504, 0
    const longs = new BigInt64Array([-(2n ** 62n), -1n, 0n, 2n ** 62n]);
    const bools = new Uint8Array([1, 0, 0, 1]);
    for (const [model, datatype, arr] of [
      ['identity_fp16', 'FP16', new Uint8Array(half.buffer)],
      ['identity_int64', 'INT64', new Uint8Array(longs.buffer)],
      ['identity_bool', 'BOOL', bools],
    ] as const) {
      const res = await postBinary(
        `${url}/v2/models/${model}/infer`,
        {
          parameters: { binary_data_output: true },
          inputs: [
            { name: 'INPUT0', datatype, shape: [2, 2], parameters: { binary_data_size: arr.byteLength } },
          ],
        },
        [arr],
      );
      assert.equal(res.status, 200, model);
      const { raw } = await readBinaryResponse(res);
      assert.deepEqual(
        new Uint8Array(raw.get('OUTPUT0')!),
        new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength),
        model,
      );
    }
  });

  test('Inference-Header-Content-Length: 0 sends one raw input and gets raw outputs', async () => {
    const x = new Float32Array(256).fill(0);
    const res = await fetch(`${url}/v2/models/slow/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': '0' },
      body: Buffer.from(x.buffer),
    });
    assert.equal(res.status, 200);
    const { header, raw } = await readBinaryResponse(res);
    assert.deepEqual(header.outputs[0].shape, [1, 256]);
    assert.equal(raw.get('OUTPUT0')!.length, 1024);
  });

  test('gzip request bodies are accepted', async () => {
    const { gzipSync } = await import('node:zlib');
    const res = await fetch(`${url}/v2/models/add_sub/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(addSubRequest(1))),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { outputs: { data: number[] }[] };
    assert.deepEqual(body.outputs[1].data, [-2, -1.5, -1, -0.5]);
  });
});

describe('bad requests are 4xx naming the field', () => {
  const infer = (body: unknown, model = 'add_sub') => postJson(`${url}/v2/models/${model}/infer`, body);
  const one = (overrides: Record<string, unknown>) => ({
    inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4], ...overrides },
      { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
    ],
  });
  const cases: [string, unknown, number, RegExp][] = [
    ['invalid JSON', '{"inputs": [', 400, /not valid JSON/],
    ['body not an object', '[1,2]', 400, /must be a JSON object/],
    ['inputs missing', {}, 400, /'inputs' must be an array/],
    ['missing input', { inputs: [one({}).inputs[0]] }, 400, /input 'INPUT1' is missing/],
    [
      'unknown input',
      { inputs: [...one({}).inputs, { name: 'X', datatype: 'FP32', shape: [1], data: [1] }] },
      400,
      /unknown input 'X'/,
    ],
    ['wrong datatype', one({ datatype: 'FP64' }), 400, /input 'INPUT0': expected datatype FP32, got FP64/],
    ['unknown datatype', one({ datatype: 'FLOAT' }), 400, /input 'INPUT0': datatype "FLOAT" is not one of/],
    [
      'wrong shape',
      one({ shape: [1, 3], data: [1, 2, 3] }),
      400,
      /input 'INPUT0': expected shape \[-1,4\], got \[1,3\]/,
    ],
    [
      'data length mismatch',
      one({ shape: [2, 4] }),
      400,
      /input 'INPUT0': shape needs 8 elements, data has 4/,
    ],
    [
      'string in FP32 data',
      one({ data: [1, 2, 'x', 4] }),
      400,
      /input 'INPUT0': element 2 is "x", expected a number for FP32/,
    ],
    [
      'negative shape',
      one({ shape: [-1, 4] }),
      400,
      /input 'INPUT0': shape must be an array of non-negative integers/,
    ],
    ['unknown output', { ...one({}), outputs: [{ name: 'NOPE' }] }, 400, /unknown output 'NOPE'/],
    [
      'batch beyond max_batch_size',
      {
        inputs: ['INPUT0', 'INPUT1'].map((name) => ({
          name,
          datatype: 'FP32',
          shape: [65, 4],
          data: new Array(260).fill(0),
        })),
      },
      400,
      /batch size 65 exceeds the model's max_batch_size 64/,
    ],
    [
      'a batch of no rows',
      {
        inputs: ['INPUT0', 'INPUT1'].map((name) => ({ name, datatype: 'FP32', shape: [0, 4], data: [] })),
      },
      400,
      /input 'INPUT0': the first \(batch\) dimension is 0; a request needs at least one row/,
    ],
    [
      'batch sizes differ',
      one({ shape: [2, 4], data: new Array(8).fill(0) }),
      400,
      /input 'INPUT1': first dimension 1 differs/,
    ],
    ['no data', one({ data: undefined }), 400, /input 'INPUT0' has no 'data'/],
  ];
  for (const [name, body, status, message] of cases) {
    test(name, async () => {
      const r = await infer(body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(r.body.error, message);
      assert.match(r.body.code, /^SLIPWAY_ERR_/);
    });
  }

  test('integer out of range for INT8', async () => {
    const r = await infer(
      { inputs: [{ name: 'INPUT0', datatype: 'INT8', shape: [1, 1], data: [300] }] },
      'identity_int8',
    );
    assert.equal(r.status, 400);
    assert.match(r.body.error, /input 'INPUT0': element 0 is 300, expected an integer between -128 and 127/);
  });

  test('INT64 beyond 2^53 in JSON is refused, not rounded', async () => {
    const r = await postJson(
      `${url}/v2/models/identity_int64/infer`,
      '{"inputs":[{"name":"INPUT0","datatype":"INT64","shape":[1,1],"data":[9007199254740993]}]}',
    );
    assert.equal(r.status, 400);
    assert.match(r.body.error, /input 'INPUT0': element 0 .*JSON numbers are exact only up to 2\^53/);
  });

  test('BYTES an ONNX string cannot hold (NUL, invalid UTF-8) are refused', async () => {
    const nul = await postJson(`${url}/v2/models/identity_bytes/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, 1], data: ['x\u0000y'] }],
    });
    assert.equal(nul.status, 400);
    assert.match(nul.body.error, /input 'INPUT0': BYTES element 0 holds a NUL/);
    const bad = Buffer.from([2, 0, 0, 0, 0xff, 0xfe]);
    const res = await postBinary(
      `${url}/v2/models/identity_bytes/infer`,
      {
        inputs: [
          { name: 'INPUT0', datatype: 'BYTES', shape: [1, 1], parameters: { binary_data_size: bad.length } },
        ],
      },
      [bad],
    );
    assert.equal(res.status, 400);
    assert.match(
      ((await res.json()) as { error: string }).error,
      /input 'INPUT0': BYTES element 0 is not valid UTF-8/,
    );
  });

  test('binary sizes that run past the body', async () => {
    const res = await postBinary(
      `${url}/v2/models/identity_fp32/infer`,
      { inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 32 } }] },
      [new Uint8Array(16)],
    );
    assert.equal(res.status, 400);
    assert.match(
      ((await res.json()) as { error: string }).error,
      /input 'INPUT0': binary_data_size 32 runs past the end/,
    );
  });

  test('header length beyond the body', async () => {
    const res = await fetch(`${url}/v2/models/add_sub/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': '9999' },
      body: '{}',
    });
    assert.equal(res.status, 400);
  });

  test('unknown model is 404', async () => {
    const r = await infer(addSubRequest(1), 'missing_model');
    assert.equal(r.status, 404);
    assert.match(r.body.error, /model 'missing_model' is not in the repository/);
  });
});

describe('records API', () => {
  test('one input per column, labels and probabilities by class name', async () => {
    const r = await postJson(`${url}/v1/models/tabular:predict`, {
      instances: [
        { age: 50, hours_per_week: 40, workclass: 'Private' },
        { age: 20, hours_per_week: 10, workclass: 'State-gov' },
      ],
    });
    assert.equal(r.status, 200);
    const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
    const p0 = sigmoid(0.05 * 50 + 0.02 * 40 + 1 - 3);
    const [first, second] = r.body.predictions;
    assert.equal(first.label, '>50K');
    assert.ok(Math.abs(first.probabilities['>50K'] - p0) < 1e-6);
    assert.ok(Math.abs(first.probabilities['<=50K'] - (1 - p0)) < 1e-6);
    assert.equal(second.label, '<=50K');
  });

  test('one [N, F] matrix with feature names from config', async () => {
    const r = await postJson(`${url}/v1/models/matrix:predict`, {
      instances: [
        { a: 4, b: 0, c: 1 },
        { c: -3, b: 2, a: 0 },
      ],
    });
    assert.equal(r.status, 200);
    const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
    assert.equal(r.body.predictions[0].label, 'yes');
    assert.ok(Math.abs(r.body.predictions[0].probabilities.yes - sigmoid(0.5 * 4 + 1 - 0.1)) < 1e-6);
    assert.equal(r.body.predictions[1].label, 'no');
  });

  test('metadata lists features and labels', async () => {
    const r = await getJson(`${url}/v1/models/matrix`);
    assert.deepEqual(
      r.body.features.map((f: { name: string }) => f.name),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(r.body.labels, ['no', 'yes']);
  });

  test('a missing or mistyped field is a 400 naming the record and field', async () => {
    const missing = await postJson(`${url}/v1/models/tabular:predict`, {
      instances: [{ age: 50, workclass: 'Private' }],
    });
    assert.equal(missing.status, 400);
    assert.match(missing.body.error, /instances\[0\]\.hours_per_week is missing/);
    const typed = await postJson(`${url}/v1/models/tabular:predict`, {
      instances: [
        { age: 50, hours_per_week: 40, workclass: 'Private' },
        { age: 'old', hours_per_week: 1, workclass: 'x' },
      ],
    });
    assert.equal(typed.status, 400);
    assert.match(typed.body.error, /instances\[1\]\.age must be a number/);
    const empty = await postJson(`${url}/v1/models/tabular:predict`, { instances: [] });
    assert.equal(empty.status, 400);
  });
});

describe('statistics, repository and metrics', () => {
  test('stats count successes, failures and batches', async () => {
    const before = (await getJson(`${url}/v2/models/add_sub/versions/1/stats`)).body.model_stats[0];
    await postJson(`${url}/v2/models/add_sub/versions/1/infer`, addSubRequest(3));
    await postJson(`${url}/v2/models/add_sub/versions/1/infer`, { inputs: [] });
    const r = await getJson(`${url}/v2/models/add_sub/versions/1/stats`);
    const s = r.body.model_stats[0];
    assert.equal(s.name, 'add_sub');
    assert.equal(s.version, '1');
    assert.equal(s.inference_stats.success.count, before.inference_stats.success.count + 1);
    assert.equal(s.inference_stats.fail.count, before.inference_stats.fail.count + 1);
    assert.equal(s.inference_count, before.inference_count + 3);
    assert.ok(s.inference_stats.compute_infer.ns > 0);
    assert.ok(s.batch_stats.some((b: { batch_size: number }) => b.batch_size === 3));
    // Every duration is a whole number of nanoseconds, as Triton's uint64 fields are.
    const durations = [
      ...Object.values(s.inference_stats as Record<string, { ns: number }>),
      ...s.batch_stats.flatMap((b: Record<string, { ns: number }>) => [
        b.compute_input!,
        b.compute_infer!,
        b.compute_output!,
      ]),
    ];
    for (const d of durations) assert.ok(Number.isSafeInteger(d.ns), `ns ${d.ns} is not an integer`);
    const all = await getJson(`${url}/v2/models/stats`);
    assert.ok(all.body.model_stats.length >= 18);
  });

  test('repository index lists every version with its state', async () => {
    const r = await postJson(`${url}/v2/repository/index`, {});
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.filter((e: { name: string }) => e.name === 'add_sub'),
      [
        { name: 'add_sub', version: '1', state: 'READY', reason: '' },
        { name: 'add_sub', version: '2', state: 'READY', reason: '' },
      ],
    );
    const bad = await postJson(`${url}/v2/repository/index`, { ready: 'yes' });
    assert.equal(bad.status, 400);
  });

  test('/metrics exposes request counters and histograms in Prometheus format', async () => {
    await postJson(`${url}/v2/models/add_sub/infer`, addSubRequest(2));
    await postJson(`${url}/v2/models/add_sub/infer`, { inputs: [] });
    const res = await fetch(`${url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/plain/);
    const text = await res.text();
    assert.match(
      text,
      /slipway_inference_requests_total\{model="add_sub",version="2",protocol="rest",status="200"\} \d+/,
    );
    assert.match(
      text,
      /slipway_inference_requests_total\{model="add_sub",version="2",protocol="rest",status="400"\} \d+/,
    );
    assert.match(
      text,
      /slipway_inference_request_duration_seconds_bucket\{le="0.005",model="add_sub",version="2",protocol="rest"\}/,
    );
    assert.match(text, /slipway_inference_batch_size_count\{model="add_sub",version="2"\} \d+/);
    assert.match(text, /slipway_inference_queue_depth\{model="add_sub",version="2"\} 0/);
    assert.match(text, /slipway_inference_in_flight_requests\{model="add_sub",version="2"\} 0/);
  });

  test('/metrics counts requests refused before a model version ran them, for models the server has', async () => {
    const count = async (pattern: RegExp) => {
      const m = (await (await fetch(`${url}/metrics`)).text()).match(pattern);
      return m ? Number(m[1]) : 0;
    };
    const decodeFailures =
      /slipway_inference_requests_total\{model="identity_fp32",version="",protocol="rest",status="400"\} (\d+)/;
    const recordFailures =
      /slipway_inference_requests_total\{model="tabular",version="",protocol="records",status="400"\} (\d+)/;
    const before = [await count(decodeFailures), await count(recordFailures)];
    // The body cannot be decoded: no version is resolved, the model is known.
    const bad = await postJson(`${url}/v2/models/identity_fp32/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP99', shape: [1, 1], data: [1] }],
    });
    assert.equal(bad.status, 400);
    const records = await postJson(`${url}/v1/models/tabular:predict`, { instances: 'none' });
    assert.equal(records.status, 400);
    // Unknown models are not counted: their names would be unbounded label values.
    assert.equal((await postJson(`${url}/v2/models/no_such_model/infer`, addSubRequest(1))).status, 404);
    assert.equal(await count(decodeFailures), before[0]! + 1);
    assert.equal(await count(recordFailures), before[1]! + 1);
    assert.doesNotMatch(await (await fetch(`${url}/metrics`)).text(), /no_such_model/);
    // Answered by the model, then refused while encoding (FP16 asked for as JSON): counted once.
    const fp16 = async () =>
      [
        ...(await (await fetch(`${url}/metrics`)).text()).matchAll(
          /^slipway_inference_requests_total\{model="identity_fp16",[^}]*\} (\d+)$/gm,
        ),
      ].reduce((n, m) => n + Number(m[1]), 0);
    const fp16Before = await fp16();
    const half = new Uint8Array(new Uint16Array([0x3c00]).buffer);
    const json = await postBinary(
      `${url}/v2/models/identity_fp16/infer`,
      { inputs: [{ name: 'INPUT0', datatype: 'FP16', shape: [1, 1], parameters: { binary_data_size: 2 } }] },
      [half],
    );
    assert.equal(json.status, 400);
    assert.equal(await fp16(), fp16Before + 1);
  });
});

describe('request size limit', () => {
  test('a body over maxRequestBytes is a 413 naming the limit', async () => {
    const small = await startTestApp({ maxRequestBytes: 2048 });
    try {
      const big = await postJson(`${small.http.url}/v2/models/add_sub/infer`, {
        ...addSubRequest(1),
        parameters: { padding: 'x'.repeat(10_000) },
      });
      assert.equal(big.status, 413);
      assert.match(big.body.error, /exceeds the limit of 2048 bytes/);
      const ok = await postJson(`${small.http.url}/v2/models/add_sub/infer`, addSubRequest(1));
      assert.equal(ok.status, 200);
    } finally {
      await small.close();
    }
  });
});
