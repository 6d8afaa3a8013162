import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { App } from '../src/app.js';
import type { OnnxRuntimePool } from '../src/inference/index.js';
import { addSubRequest, postJson, startTestApp, tempRepository } from './helpers.js';

// One repository, three copies of add_sub placed differently, and `slow` left on auto.
let app: App;
let repo: Awaited<ReturnType<typeof tempRepository>>;
before(async () => {
  repo = await tempRepository(['add_sub', 'slow']);
  const { cp } = await import('node:fs/promises');
  for (const [name, execution] of [
    ['on_main', 'main'],
    ['on_worker', 'worker'],
    ['on_auto', 'auto'],
  ] as const) {
    await cp(join(repo.dir, 'add_sub'), join(repo.dir, name), { recursive: true });
    await writeFile(join(repo.dir, name, 'config.json'), JSON.stringify({ max_batch_size: 64, execution }));
  }
  app = await startTestApp({ models: repo.dir });
});
after(async () => {
  await app.close();
  await repo.remove();
});

const pool = (model: string) => app.plane.manager.resolve(model).runtime as OnnxRuntimePool;

test('every placement gives the same numbers', async () => {
  const expected = (await postJson(`${app.http.url}/v2/models/add_sub/infer`, addSubRequest(3, 1))).body
    .outputs;
  for (const m of ['on_main', 'on_worker', 'on_auto']) {
    for (let i = 0; i < 12; i++) {
      const r = await postJson(`${app.http.url}/v2/models/${m}/infer`, addSubRequest(3, 1));
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.outputs, expected, m);
    }
  }
  assert.equal(pool('on_main').placements.worker, 0);
  assert.equal(pool('on_worker').placements.main, 0);
});

test('auto runs a cheap model on the main thread once it has measured it', async () => {
  const p = pool('on_auto');
  assert.ok(p.placements.worker >= 8, `warm-up runs go to a worker (${JSON.stringify(p.placements)})`);
  assert.ok(p.placements.main > 0, `later runs stay on the main thread (${JSON.stringify(p.placements)})`);
  assert.equal(p.onMainThread, true);
  assert.equal(p.capacity, 1);
});

test('auto keeps an expensive model on its worker', async () => {
  const row = new Array(256).fill(0.01);
  for (let i = 0; i < 10; i++) {
    const r = await postJson(`${app.http.url}/v2/models/slow/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 256], data: row }],
    });
    assert.equal(r.status, 200);
  }
  assert.deepEqual(pool('slow').placements, { main: 0, worker: 10 });
  assert.equal(
    pool('slow').onMainThread,
    false,
    'a model that costs more than the budget stays on its worker',
  );
});

test('the cost model fits a line over recent runs', async () => {
  const { CostModel } = await import('../src/inference/onnx-runtime-pool.js');
  const m = new CostModel();
  assert.equal(m.estimate(1), Number.POSITIVE_INFINITY);
  for (let i = 0; i < 20; i++) m.observe(1, 40_000);
  assert.equal(m.estimate(1), 40_000);
  assert.equal(m.estimate(10), 400_000, 'one row count seen: cost assumed proportional beyond it');
  for (let i = 0; i < 40; i++) m.observe(i % 2 ? 64 : 16, i % 2 ? 72_000 : 48_000);
  assert.ok(Math.abs(m.estimate(32) - 56_000) < 2_000, `${m.estimate(32)}`);
});

test('a main-thread run answers in the turn of the event loop that dispatched it', async () => {
  const request = {
    inputs: [
      { name: 'INPUT0', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) },
      { name: 'INPUT1', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) },
    ],
  };
  const first = await app.plane.infer('on_main', undefined, request, { protocol: 'rest' });
  const expected = Array.from(first.outputs[0]!.data as Float32Array);
  // From an I/O callback (as a request arrives), the batcher dispatches in this turn's check
  // phase. An immediate queued after the request runs in that phase too: the answer must come
  // before it, not in a later turn (onnxruntime-node's own run() defers to another immediate).
  const order = await new Promise<string[]>((resolve, reject) => {
    const seen: string[] = [];
    import('node:fs').then(({ stat }) =>
      stat(new URL(import.meta.url), () => {
        app.plane.infer('on_main', undefined, request, { protocol: 'rest' }).then((r) => {
          assert.deepEqual(Array.from(r.outputs[0]!.data as Float32Array), expected);
          seen.push('answer');
        }, reject);
        setImmediate(() => seen.push('immediate after it'));
        setTimeout(() => resolve(seen), 20);
      }),
    );
  });
  assert.deepEqual(order, ['answer', 'immediate after it']);
  assert.ok(pool('on_main').placements.main >= 2);
});

test('a run whose input buffers were handed to a thread before is refused, not left unanswered', async () => {
  const rt = pool('on_worker');
  const inputs = () => [
    { name: 'INPUT0', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) },
    { name: 'INPUT1', datatype: 'FP32' as const, shape: [1, 4], data: Float32Array.of(1, 1, 1, 1) },
  ];
  const sent = inputs();
  await rt.run(sent, ['OUTPUT0']);
  assert.equal((sent[0]!.data as Float32Array).length, 0, 'the buffers went to the worker');
  await assert.rejects(rt.run(sent, ['OUTPUT0']), {
    code: 'SLIPWAY_ERR_INTERNAL',
    message: /could not be sent to ONNX Runtime's thread/,
  });
  // Nothing is left counted as running: the next run goes through.
  const again = await rt.run(inputs(), ['OUTPUT0']);
  assert.deepEqual(Array.from(again.outputs[0]!.data as Float32Array), [3, 4, 5, 6], 'version 2: a + b + 1');
});
