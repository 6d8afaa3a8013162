/**
 * Triton's `model_warmup`: config.json samples are run on each version before it serves (and not
 * counted as inferences); a sample that cannot run keeps the version from serving with the reason;
 * bad samples are config errors naming the field.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { App } from '../src/app.js';
import {
  FolderModelSource,
  ModelManager,
  OnnxRuntimePool,
  resolveModelConfig,
} from '../src/inference/index.js';
import { getJson, grpcClient, postJson, startTestApp, tempRepository } from './helpers.js';

const zeros = (batch = 4, count = 3) => ({
  name: 'zeros',
  batch_size: batch,
  count,
  inputs: {
    INPUT0: { data_type: 'TYPE_FP32', dims: [4], zero_data: true },
    INPUT1: { data_type: 'TYPE_FP32', dims: [4], random_data: true },
  },
});

describe('model_warmup in config.json', () => {
  test("is read in Triton's spelling", () => {
    const c = resolveModelConfig('m', { model_warmup: [zeros()] });
    assert.deepEqual(c.warmup, [
      {
        name: 'zeros',
        batchSize: 4,
        count: 3,
        inputs: [
          { name: 'INPUT0', datatype: 'FP32', dims: [4], fill: 'zero' },
          { name: 'INPUT1', datatype: 'FP32', dims: [4], fill: 'random' },
        ],
      },
    ]);
    const strings = resolveModelConfig('m', {
      model_warmup: [{ name: 's', inputs: { x: { data_type: 'TYPE_STRING', dims: [1], zero_data: true } } }],
    });
    assert.deepEqual(strings.warmup[0]!.inputs[0]!.datatype, 'BYTES');
    assert.equal(strings.warmup[0]!.batchSize, 1);
    assert.equal(strings.warmup[0]!.count, 1);
  });

  test('bad samples are config errors naming the field', () => {
    const input = (v: object) => [{ name: 'w', inputs: { x: v } }];
    const cases: [unknown, RegExp][] = [
      [{}, /'model_warmup' must be an array/],
      [[{ inputs: {} }], /'model_warmup\[0\].name' must be a non-empty string/],
      [[{ name: 'w', inputs: {} }], /'model_warmup\[0\].inputs' must be an object/],
      [
        [{ name: 'w', batch_size: 0, inputs: { x: {} } }],
        /'model_warmup\[0\].batch_size' must be an integer from 1/,
      ],
      [
        [{ name: 'w', count: 1001, inputs: { x: {} } }],
        /'model_warmup\[0\].count' must be an integer from 1 to 1000/,
      ],
      [[{ name: 'w', speed: 1, inputs: {} }], /'model_warmup\[0\].speed' must be one of/],
      [
        input({ data_type: 'TYPE_FLOAT', dims: [1], zero_data: true }),
        /'model_warmup\[0\].inputs.x.data_type'/,
      ],
      [
        input({ data_type: 'TYPE_FP32', dims: [-1], zero_data: true }),
        /'model_warmup\[0\].inputs.x.dims\[0\]'/,
      ],
      [input({ data_type: 'TYPE_FP32', dims: [1] }), /exactly one of zero_data: true or random_data: true/],
      [
        input({ data_type: 'TYPE_FP32', dims: [1], zero_data: true, random_data: true }),
        /exactly one of zero_data/,
      ],
      [
        input({ data_type: 'TYPE_FP32', dims: [1], input_data_file: 'x.bin' }),
        /input_data_file' must be absent/,
      ],
      [
        input({ data_type: 'TYPE_FP32', dims: [1 << 20, 1 << 10], zero_data: true }),
        /at most 67108864 elements/,
      ],
      [
        [
          { name: 'w', inputs: { x: { data_type: 'TYPE_FP32', dims: [1], zero_data: true } } },
          { name: 'w', inputs: { x: { data_type: 'TYPE_FP32', dims: [1], zero_data: true } } },
        ],
        /'model_warmup\[1\].name' must be a name not used by another sample/,
      ],
    ];
    for (const [raw, message] of cases) {
      assert.throws(
        () => resolveModelConfig('m', { model_warmup: raw }),
        (e: any) => e.code === 'SLIPWAY_ERR_MODEL_LOAD' && message.test(e.message),
        JSON.stringify(raw),
      );
    }
  });

  test('each version runs its samples on every instance before it serves, in batches of batch_size', async () => {
    const repo = await tempRepository(['add_sub', 'fixed_shape']);
    const rounds: number[][][] = [];
    const runtimes: OnnxRuntimePool[] = [];
    let unloaded = 0;
    try {
      await writeFile(
        join(repo.dir, 'add_sub', 'config.json'),
        JSON.stringify({
          max_batch_size: 8,
          instance_count: 2,
          version_policy: { all: {} },
          model_warmup: [zeros(4, 3)],
        }),
      );
      // A model that does not batch takes whole shapes, batch_size 1.
      await writeFile(
        join(repo.dir, 'fixed_shape', 'config.json'),
        JSON.stringify({ model_warmup: [{ ...zeros(2, 1), name: 'rows' }] }),
      );
      const manager = new ModelManager({
        sources: [new FolderModelSource(repo.dir)],
        logger: pino({ level: 'silent' }),
        createRuntime: async (path, config) => {
          const rt = await OnnxRuntimePool.create(path, config);
          runtimes.push(rt);
          const warm = rt.warmUp.bind(rt);
          rt.warmUp = (inputs, outputs) => {
            rounds.push(inputs.map((t) => t.shape));
            return warm(inputs, outputs);
          };
          const unload = rt.unload.bind(rt);
          rt.unload = () => {
            unloaded++;
            return unload();
          };
          return rt;
        },
      });
      await manager.load('add_sub');
      assert.equal(rounds.length, 6, 'three rounds on each of the two versions');
      for (const shapes of rounds)
        assert.deepEqual(shapes, [
          [4, 4],
          [4, 4],
        ]);
      for (const v of manager.versionsOf('add_sub')) {
        assert.equal(v.state, 'READY');
        assert.equal(v.stats.snapshot().inference_count, 0, 'warmup is not counted');
      }
      for (const rt of runtimes) {
        assert.deepEqual(rt.placements, { main: 0, worker: 0 }, 'warmup does not count towards placement');
      }
      await manager.load('fixed_shape').catch(() => undefined);
      const [fixed] = manager.versionsOf('fixed_shape');
      assert.equal(fixed!.state, 'UNAVAILABLE');
      assert.match(fixed!.reason, /model_warmup 'rows': batch_size must be 1: the model does not batch/);
      assert.equal(unloaded, 1, 'the runtime that failed its warmup is freed');
      await manager.close();
    } finally {
      await repo.remove();
    }
  });
});

describe('model_warmup on a live server', () => {
  let app: App;
  let base: string;
  let repo: Awaited<ReturnType<typeof tempRepository>>;

  before(async () => {
    repo = await tempRepository(['add_sub', 'identity_fp32']);
    await writeFile(
      join(repo.dir, 'add_sub', 'config.json'),
      JSON.stringify({ max_batch_size: 8, version_policy: { all: {} }, model_warmup: [zeros(2, 1)] }),
    );
    // A sample naming an input the model does not have: the version cannot serve.
    await writeFile(
      join(repo.dir, 'identity_fp32', 'config.json'),
      JSON.stringify({
        model_warmup: [
          { name: 'typo', inputs: { INPUT_0: { data_type: 'TYPE_FP32', dims: [2], zero_data: true } } },
        ],
      }),
    );
    app = await startTestApp({ models: repo.dir, grpcPort: 0 });
    base = app.http.url;
  });
  after(async () => {
    await app.close();
    await repo.remove();
  });

  test('a warmed model serves, its config shows the samples, its statistics start at zero', async () => {
    const r = await postJson(`${base}/v2/models/add_sub/infer`, {
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
        { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] },
      ],
    });
    assert.equal(r.status, 200);
    const config = await getJson(`${base}/v2/models/add_sub/config`);
    assert.deepEqual(config.body.model_warmup, [zeros(2, 1)]);
    const stats = await getJson(`${base}/v2/models/add_sub/versions/2/stats`);
    assert.equal(stats.body.model_stats[0].inference_count, 1);
    const client = grpcClient(app.grpc!.port);
    try {
      const res: any = await new Promise((resolve, reject) =>
        (client as any).ModelConfig({ name: 'add_sub' }, (err: Error | null, r: unknown) =>
          err ? reject(err) : resolve(r),
        ),
      );
      const [sample] = res.config.model_warmup;
      assert.deepEqual([sample.name, sample.batch_size, sample.count], ['zeros', 2, 1]);
      assert.deepEqual(sample.inputs.INPUT0.dims.map(Number), [4]);
      assert.equal(sample.inputs.INPUT0.data_type, 'TYPE_FP32');
      assert.equal(sample.inputs.INPUT1.random_data, true);
    } finally {
      client.close();
    }
  });

  test('a sample that cannot run keeps the version out, with the reason; the others serve', async () => {
    const index = await postJson(`${base}/v2/repository/index`, {});
    const row = index.body.find((r: { name: string }) => r.name === 'identity_fp32');
    assert.equal(row.state, 'UNAVAILABLE');
    assert.match(row.reason, /model_warmup 'typo': .*INPUT_0/);
    const r = await postJson(`${base}/v2/models/identity_fp32/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    });
    assert.equal(r.status, 503);
    assert.equal((await getJson(`${base}/v2/health/ready`)).status, 503);
  });
});
