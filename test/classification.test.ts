/**
 * Triton's classification extension: the top classes of an output as "<value>:<index>[:<label>]"
 * strings, on the real server over REST (JSON and binary) and gRPC, with the prediction log
 * keeping the model's own outputs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import type { App } from '../src/app.js';
import { classifyOutputs, halfToFloat } from '../src/inference/classification.js';
import { decodeBytesElements } from '../src/inference/index.js';
import { fetchReply, grpcClient, startTestApp } from './helpers.js';

describe('classifyOutputs', () => {
  const fp32 = (shape: number[], values: number[]) => ({
    name: 'y',
    datatype: 'FP32' as const,
    shape,
    data: new Float32Array(values),
  });

  test('top classes per row, highest first, ties by index, with labels when they name every class', () => {
    const [t] = classifyOutputs(
      [fp32([2, 4], [1.1, 3.3, 0.5, 2.4, 7, 7, -1, Number.NaN])],
      new Map([['y', 2]]),
      true,
      ['a', 'b', 'c', 'd'],
    );
    assert.deepEqual(t, {
      name: 'y',
      datatype: 'BYTES',
      shape: [2, 2],
      data: ['3.300000:1:b', '2.400000:3:d', '7.000000:0:a', '7.000000:1:b'],
    });
    // Labels that do not name every class are left out; a count beyond the classes is all of them.
    const [u] = classifyOutputs([fp32([1, 3], [0.25, Number.NaN, 0.5])], new Map([['y', 5]]), true, ['a']);
    assert.deepEqual(u!.shape, [1, 3]);
    assert.deepEqual(u!.data, ['0.500000:2', '0.250000:0', 'nan:1']);
  });

  test('a large output is selected, not sorted: a million classes, top 3, equal values by index', () => {
    const values = new Float32Array(1_000_000).fill(0.5);
    values[777_777] = 2;
    values[5] = 1;
    values[999_999] = 1;
    values[3] = -0;
    const started = performance.now();
    const [t] = classifyOutputs(
      [fp32([1, values.length], Array.from(values))],
      new Map([['y', 4]]),
      true,
      undefined,
    );
    assert.deepEqual(t!.data, ['2.000000:777777', '1.000000:5', '1.000000:999999', '0.500000:0']);
    assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
    const [z] = classifyOutputs([fp32([1, 2], [-0, -1])], new Map([['y', 1]]), true, undefined);
    assert.deepEqual(z!.data, ['-0.000000:0']);
  });

  test('a model that does not batch is classified over the whole output', () => {
    const [t] = classifyOutputs([fp32([2, 2], [1, 4, 3, 2])], new Map([['y', 3]]), false, undefined);
    assert.deepEqual(t!.shape, [3]);
    assert.deepEqual(t!.data, ['4.000000:1', '3.000000:2', '2.000000:3']);
  });

  test('integers print whole (64-bit exactly), FP16 from its bits; other outputs pass through untouched', () => {
    const int64 = {
      name: 'y',
      datatype: 'INT64' as const,
      shape: [1, 3],
      data: new BigInt64Array([5n, 2n ** 62n, -1n]),
    };
    const other = fp32([1, 1], [9]);
    const out = classifyOutputs([int64, { ...other, name: 'z' }], new Map([['y', 2]]), true, undefined);
    assert.deepEqual(out[0]!.data, [`${2n ** 62n}:1`, '5:0']);
    assert.equal(out[1]!.data, other.data);
    const half = {
      name: 'y',
      datatype: 'FP16' as const,
      shape: [1, 3],
      data: new Uint16Array([0x3c00, 0xc000, 0x4200]),
    };
    assert.deepEqual(classifyOutputs([half], new Map([['y', 3]]), true, undefined)[0]!.data, [
      '3.000000:2',
      '1.000000:0',
      '-2.000000:1',
    ]);
    assert.equal(halfToFloat(0x7bff), 65504);
    assert.equal(halfToFloat(0x0001), 2 ** -24);
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  });
});

describe('classification on the real server', () => {
  let app: App;
  let base: string;
  let client: grpc.Client;
  const rows = [
    [1.1, 3.3, 0.5, 2.4],
    [0, -1, 2, 1],
  ];
  const request = (output: object) => ({
    inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [2, 4], data: rows.flat() }],
    outputs: [output],
  });

  before(async () => {
    app = await startTestApp({ grpcPort: 0 });
    base = app.http.url;
    client = grpcClient(app.grpc!.port);
  });
  after(async () => {
    client.close();
    await app.close();
  });

  test('REST JSON and binary: BYTES [batch, n] of "value:index"', async () => {
    const json = await fetchReply(
      `${base}/v2/models/identity_fp32/infer`,
      'POST',
      request({
        name: 'OUTPUT0',
        parameters: { classification: 2 },
      }),
    );
    assert.equal(json.status, 200, json.text);
    assert.deepEqual(json.body.outputs, [
      {
        name: 'OUTPUT0',
        datatype: 'BYTES',
        shape: [2, 2],
        data: ['3.300000:1', '2.400000:3', '2.000000:2', '1.000000:3'],
      },
    ]);
    const res = await fetch(`${base}/v2/models/identity_fp32/infer`, {
      method: 'POST',
      body: JSON.stringify(
        request({ name: 'OUTPUT0', parameters: { classification: 1, binary_data: true } }),
      ),
    });
    const body = Buffer.from(await res.arrayBuffer());
    const headerLength = Number(res.headers.get('inference-header-content-length'));
    const header = JSON.parse(body.subarray(0, headerLength).toString());
    assert.deepEqual(header.outputs[0].shape, [2, 1]);
    assert.deepEqual(decodeBytesElements(body.subarray(headerLength), 'OUTPUT0'), [
      '3.300000:1',
      '2.000000:2',
    ]);
  });

  test('labels from config.json label_names, and the log keeps the probabilities', async () => {
    const r = await fetchReply(`${base}/v2/models/tabular/infer`, 'POST', {
      id: 'classified-1',
      inputs: [
        { name: 'age', datatype: 'FP32', shape: [1, 1], data: [60] },
        { name: 'hours_per_week', datatype: 'FP32', shape: [1, 1], data: [40] },
        { name: 'workclass', datatype: 'BYTES', shape: [1, 1], data: ['Private'] },
      ],
      outputs: [{ name: 'probabilities', parameters: { classification: 2 } }],
    });
    assert.equal(r.status, 200, r.text);
    // p(>50K) = σ(0.05·age + 0.02·hours + [Private] − 3) = σ(1.8).
    const s = 1 / (1 + Math.exp(-1.8));
    assert.deepEqual(r.body.outputs[0].data, [`${s.toFixed(6)}:1:>50K`, `${(1 - s).toFixed(6)}:0:<=50K`]);
    await app.predictions!.flush();
    const logged = await fetchReply(
      `${base}/api/v1/monitoring/predictions?model=tabular&request_id=classified-1`,
      'GET',
    );
    assert.equal(logged.status, 200, logged.text);
    const probabilities = logged.body.predictions[0].outputs.probabilities as number[];
    assert.ok(Math.abs(probabilities[1]! - s) < 1e-6, JSON.stringify(logged.body.predictions[0]));
  });

  test('gRPC: the same strings in bytes_contents', async () => {
    const res = await new Promise<any>((resolve, reject) =>
      (client as any).ModelInfer(
        {
          model_name: 'identity_fp32',
          inputs: [
            { name: 'INPUT0', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: rows.flat() } },
          ],
          outputs: [{ name: 'OUTPUT0', parameters: { classification: { int64_param: 2 } } }],
        },
        (err: grpc.ServiceError | null, out: any) => (err ? reject(err) : resolve(out)),
      ),
    );
    assert.equal(res.outputs[0].datatype, 'BYTES');
    assert.deepEqual(res.outputs[0].shape, ['2', '2']);
    assert.deepEqual(
      res.outputs[0].contents.bytes_contents.map((b: Buffer) => b.toString()),
      ['3.300000:1', '2.400000:3', '2.000000:2', '1.000000:3'],
    );
  });

  test('mistakes are 400s naming the output', async () => {
    const cases: [string, object, RegExp][] = [
      [
        'identity_fp32',
        { name: 'OUTPUT0', parameters: { classification: 0 } },
        /output 'OUTPUT0': classification must be a positive integer .*got 0/,
      ],
      ['identity_fp32', { name: 'OUTPUT0', parameters: { classification: 'two' } }, /got "two"/],
      [
        'identity_fp32',
        {
          name: 'OUTPUT0',
          parameters: { classification: 2, shared_memory_region: 'r', shared_memory_byte_size: 8 },
        },
        /cannot be written to shared memory/,
      ],
    ];
    for (const [model, output, message] of cases) {
      const r = await fetchReply(`${base}/v2/models/${model}/infer`, 'POST', request(output));
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error, message);
    }
    const bytes = await fetchReply(`${base}/v2/models/identity_bytes/infer`, 'POST', {
      inputs: [{ name: 'INPUT0', datatype: 'BYTES', shape: [1, 1], data: ['a'] }],
      outputs: [{ name: 'OUTPUT0', parameters: { classification: 1 } }],
    });
    assert.equal(bytes.status, 400, bytes.text);
    assert.match(bytes.body.error, /output 'OUTPUT0' is BYTES; classification needs an output of numbers/);
  });
});
