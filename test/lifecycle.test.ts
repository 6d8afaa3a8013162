/**
 * Model lifecycle on a live server: hot reload under load, unload draining in-flight work,
 * models that fail to load, and load/unload cycles that do not leak.
 *
 * Every suite copies fixture models into a temp repository it may change on disk, and runs
 * the real server (REST on 127.0.0.1 port 0, ONNX Runtime in worker threads).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { App } from '../src/app.js';
import { FIXTURES, getJson, postJson, startTestApp, tempRepository } from './helpers.js';

interface IndexRow {
  name: string;
  version?: string;
  state: string;
  reason: string;
}

async function index(base: string, ready = false): Promise<IndexRow[]> {
  const res = await postJson<IndexRow[]>(`${base}/v2/repository/index`, ready ? { ready: true } : {});
  assert.equal(res.status, 200);
  return res.body;
}

async function rowsOf(base: string, model: string): Promise<IndexRow[]> {
  return (await index(base)).filter((r) => r.name === model);
}

/** Polls until `check` returns true; fails after `ms`. */
async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Requests a model version has accepted and not answered, from /metrics. */
async function inFlight(base: string, model: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`slipway_inference_in_flight_requests{model="${model}",`))
      total += Number(line.split(' ').pop());
  }
  return total;
}

const addSub = (a: number[], b: number[]) => ({
  inputs: [
    { name: 'INPUT0', datatype: 'FP32', shape: [a.length / 4, 4], data: a },
    { name: 'INPUT1', datatype: 'FP32', shape: [b.length / 4, 4], data: b },
  ],
});

const slowInput = (rows: number) => ({
  inputs: [
    {
      name: 'INPUT0',
      datatype: 'FP32',
      shape: [rows, 256],
      data: Array.from({ length: rows * 256 }, (_, i) => ((i % 256) - 128) / 256),
    },
  ],
});

/** The slow model's output for one row, compared to a reference with a float32-sized tolerance. */
function assertCloseRows(actual: number[], rowRef: number[], rows: number): void {
  assert.equal(actual.length, rowRef.length * rows);
  for (let i = 0; i < actual.length; i++) {
    const want = rowRef[i % rowRef.length]!;
    assert.ok(
      Math.abs(actual[i]! - want) <= 1e-5 * Math.max(1, Math.abs(want)),
      `element ${i}: ${actual[i]} vs ${want}`,
    );
  }
}

describe('hot reload under load', () => {
  let app: App;
  let base: string;
  let repo: Awaited<ReturnType<typeof tempRepository>>;

  before(async () => {
    repo = await tempRepository(['add_sub']);
    await writeFile(
      join(repo.dir, 'add_sub', 'config.json'),
      JSON.stringify({ max_batch_size: 64, version_policy: { latest: { num_versions: 1 } } }),
    );
    app = await startTestApp({ models: repo.dir });
    base = app.http.url;
  });
  after(async () => {
    await app.close();
    await repo.remove();
  });

  test('a new version takes over with no failed request', async () => {
    assert.deepEqual(await rowsOf(base, 'add_sub'), [
      { name: 'add_sub', version: '2', state: 'READY', reason: '' },
    ]);

    interface Sample {
      startedAt: number;
      status: number;
      version: string;
      a: number;
      out0: number;
    }
    const samples: Sample[] = [];
    let stop = false;
    const loop = async (id: number) => {
      for (let n = 0; !stop; n++) {
        // Values exact in float32, distinct per request.
        const a = id * 10_000 + n;
        const startedAt = performance.now();
        const res = await postJson(
          `${base}/v2/models/add_sub/infer`,
          addSub([a, a, a, a], [0.5, 0.5, 0.5, 0.5]),
        );
        samples.push({
          startedAt,
          status: res.status,
          version: res.body?.model_version,
          a,
          out0: res.body?.outputs?.[0]?.data?.[0],
        });
      }
    };
    const loops = Array.from({ length: 6 }, (_, i) => loop(i + 1));

    await sleep(700);
    // Version 3 is a copy of version 1 (a + b), so each answer shows which graph computed it.
    await cp(join(FIXTURES, 'add_sub', '1'), join(repo.dir, 'add_sub', '3'), { recursive: true });
    const loadStarted = performance.now();
    const load = await postJson(`${base}/v2/repository/models/add_sub/load`, {});
    const loadReturned = performance.now();
    assert.equal(load.status, 200, JSON.stringify(load.body));
    await sleep(1000);
    stop = true;
    await Promise.all(loops);

    const failed = samples.filter((s) => s.status !== 200);
    assert.deepEqual(failed, [], `${failed.length} of ${samples.length} requests failed`);
    for (const s of samples) {
      assert.ok(s.version === '2' || s.version === '3', `version ${s.version}`);
      const want = s.version === '2' ? s.a + 0.5 + 1 : s.a + 0.5;
      assert.equal(s.out0, want, `request a=${s.a} answered by version ${s.version}`);
    }
    const before = samples.filter((s) => s.startedAt < loadStarted);
    const afterLoad = samples.filter((s) => s.startedAt > loadReturned);
    assert.ok(before.length > 10, `only ${before.length} requests before the reload`);
    assert.ok(afterLoad.length > 10, `only ${afterLoad.length} requests after the reload`);
    assert.ok(
      before.some((s) => s.version === '2'),
      'requests sent before the reload were answered by version 2',
    );
    assert.deepEqual(
      afterLoad.filter((s) => s.version !== '3'),
      [],
      'requests sent after the load returned were answered by version 3',
    );

    assert.deepEqual(await rowsOf(base, 'add_sub'), [
      { name: 'add_sub', version: '3', state: 'READY', reason: '' },
    ]);
    const meta = await getJson(`${base}/v2/models/add_sub`);
    assert.deepEqual(meta.body.versions, ['3']);
    const old = await postJson(
      `${base}/v2/models/add_sub/versions/2/infer`,
      addSub([1, 1, 1, 1], [1, 1, 1, 1]),
    );
    assert.equal(old.status, 404, 'version 2 is no longer served under latest 1');
    assert.match(old.body.error, /no version '2'/);
  });

  test('a reload whose new version is corrupt keeps the old version serving', async () => {
    await mkdir(join(repo.dir, 'add_sub', '4'));
    await writeFile(
      join(repo.dir, 'add_sub', '4', 'model.onnx'),
      Buffer.from('this is not an ONNX model\n'.repeat(20)),
    );
    const load = await postJson(`${base}/v2/repository/models/add_sub/load`, {});
    assert.equal(load.status, 400, JSON.stringify(load.body));
    assert.equal(load.body.code, 'SLIPWAY_ERR_MODEL_LOAD');
    assert.match(load.body.error, /version 4/);

    const res = await postJson(`${base}/v2/models/add_sub/infer`, addSub([1, 2, 3, 4], [4, 3, 2, 1]));
    assert.equal(res.status, 200);
    assert.equal(res.body.model_version, '3');
    assert.deepEqual(res.body.outputs[0].data, [5, 5, 5, 5]);
    assert.deepEqual(await rowsOf(base, 'add_sub'), [
      { name: 'add_sub', version: '3', state: 'READY', reason: '' },
    ]);
  });
});

describe('unload', () => {
  let app: App;
  let base: string;
  let repo: Awaited<ReturnType<typeof tempRepository>>;
  let reference: number[];

  before(async () => {
    repo = await tempRepository(['slow', 'add_sub']);
    app = await startTestApp({ models: repo.dir });
    base = app.http.url;
    const res = await postJson(`${base}/v2/models/slow/infer`, slowInput(1));
    assert.equal(res.status, 200);
    reference = res.body.outputs[0].data;
  });
  after(async () => {
    await app.close();
    await repo.remove();
  });

  test('waits for in-flight requests, refuses new ones meanwhile, then the model is unavailable', async () => {
    // About a second of work: one 4-row request runs, two more queue and run as one batch.
    const slow = [1, 2, 3].map(() => postJson(`${base}/v2/models/slow/infer`, slowInput(4)));
    await waitFor('three slow requests in flight', async () => (await inFlight(base, 'slow')) === 3);

    let unloadReturned = false;
    const unload = postJson(`${base}/v2/repository/models/slow/unload`, {}).then((r) => {
      unloadReturned = true;
      return r;
    });
    await waitFor('slow to be unloading', async () => (await rowsOf(base, 'slow'))[0]?.state === 'UNLOADING');
    const refused = await postJson(`${base}/v2/models/slow/infer`, slowInput(1));
    assert.equal(refused.status, 503);
    assert.equal(refused.body.code, 'SLIPWAY_ERR_MODEL_UNAVAILABLE');
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(refused.body.error, /unloading/);
    assert.equal(unloadReturned, false, 'unload returned while requests were still in flight');

    for (const r of await Promise.all(slow)) {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.outputs[0].shape, [4, 256]);
      assertCloseRows(r.body.outputs[0].data, reference, 4);
    }
    assert.equal((await unload).status, 200);

    assert.deepEqual(await rowsOf(base, 'slow'), [
      { name: 'slow', state: 'UNAVAILABLE', reason: 'unloaded' },
    ]);
    const after = await postJson(`${base}/v2/models/slow/infer`, slowInput(1));
    assert.equal(after.status, 503);
    assert.match(after.body.error, /model 'slow' is unavailable: unloaded/);
    const ready = await getJson(`${base}/v2/models/slow/ready`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.ready, false);
    // An explicitly unloaded model does not make the server unready (as in Triton).
    assert.equal((await getJson(`${base}/v2/health/ready`)).status, 200);
    // Other models are untouched.
    const other = await postJson(`${base}/v2/models/add_sub/infer`, addSub([1, 2, 3, 4], [1, 1, 1, 1]));
    assert.equal(other.status, 200);
    assert.deepEqual(other.body.outputs[0].data, [3, 4, 5, 6]);
  });

  test('loading again brings the model back', async () => {
    const load = await postJson(`${base}/v2/repository/models/slow/load`, {});
    assert.equal(load.status, 200, JSON.stringify(load.body));
    assert.deepEqual(await rowsOf(base, 'slow'), [
      { name: 'slow', version: '1', state: 'READY', reason: '' },
    ]);
    const res = await postJson(`${base}/v2/models/slow/infer`, slowInput(1));
    assert.equal(res.status, 200);
    assertCloseRows(res.body.outputs[0].data, reference, 1);
    assert.equal((await getJson(`${base}/v2/health/ready`)).status, 200);
  });
});

describe('models that fail to load', () => {
  let app: App;
  let base: string;
  let repo: Awaited<ReturnType<typeof tempRepository>>;

  before(async () => {
    repo = await tempRepository(['add_sub', 'identity_fp32']);
    // A version whose model.onnx is garbage, and a version folder with no model.onnx at all.
    await cp(join(FIXTURES, 'identity_fp32'), join(repo.dir, 'garbled'), { recursive: true });
    await writeFile(
      join(repo.dir, 'garbled', '1', 'model.onnx'),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131) % 256)),
    );
    await mkdir(join(repo.dir, 'hollow', '1'), { recursive: true });
    await writeFile(join(repo.dir, 'hollow', '1', 'README.txt'), 'the model file is missing\n');
    app = await startTestApp({ models: repo.dir });
    base = app.http.url;
  });
  after(async () => {
    await app.close();
    await repo.remove();
  });

  test('are UNAVAILABLE in the index with the reason, while the others serve', async () => {
    const rows = await index(base);
    const garbled = rows.filter((r) => r.name === 'garbled');
    assert.equal(garbled.length, 1);
    assert.equal(garbled[0]!.version, '1');
    assert.equal(garbled[0]!.state, 'UNAVAILABLE');
    assert.match(garbled[0]!.reason, /cannot load .*garbled.*model\.onnx/);
    const hollow = rows.filter((r) => r.name === 'hollow');
    assert.equal(hollow.length, 1);
    assert.equal(hollow[0]!.state, 'UNAVAILABLE');
    assert.match(hollow[0]!.reason, /model file .*hollow.*model\.onnx does not exist/);
    assert.deepEqual(
      rows.filter((r) => r.state === 'READY').map((r) => `${r.name}/${r.version}`),
      ['add_sub/1', 'add_sub/2', 'identity_fp32/1'],
    );
    assert.deepEqual(
      (await index(base, true)).map((r) => r.name),
      ['add_sub', 'add_sub', 'identity_fp32'],
    );

    const ok = await postJson(`${base}/v2/models/add_sub/infer`, addSub([1, 2, 3, 4], [1, 1, 1, 1]));
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.outputs[0].data, [3, 4, 5, 6]);
    assert.deepEqual(ok.body.outputs[1].data, [0, 1, 2, 3]);
  });

  test('inference on them is 503 with the reason; the server is live but not ready', async () => {
    const identity = { inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };
    for (const [model, reason] of [
      ['garbled', /cannot load/],
      ['hollow', /does not exist/],
    ] as const) {
      const res = await postJson(`${base}/v2/models/${model}/infer`, identity);
      assert.equal(res.status, 503, `${model}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'SLIPWAY_ERR_MODEL_UNAVAILABLE');
      assert.equal(res.headers.get('retry-after'), '1', 'every 503 carries Retry-After');
      assert.match(res.body.error, new RegExp(`model '${model}' is unavailable`));
      assert.match(res.body.error, reason);
      const ready = await getJson(`${base}/v2/models/${model}/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.body.ready, false);
    }
    // docs/serving.md: ready is 503 while any model is unavailable; live stays 200.
    const ready = await getJson(`${base}/v2/health/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body, { ready: false });
    const live = await getJson(`${base}/v2/health/live`);
    assert.equal(live.status, 200);
    assert.deepEqual(live.body, { live: true });
  });

  test('once repaired on disk, a load brings them up and the server is ready', async () => {
    for (const model of ['garbled', 'hollow']) {
      await cp(join(FIXTURES, 'identity_fp32', '1', 'model.onnx'), join(repo.dir, model, '1', 'model.onnx'));
      const load = await postJson(`${base}/v2/repository/models/${model}/load`, {});
      assert.equal(load.status, 200, `${model}: ${JSON.stringify(load.body)}`);
      const res = await postJson(`${base}/v2/models/${model}/infer`, {
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 3], data: [1.5, -2, 3] }],
      });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.outputs[0].data, [1.5, -2, 3]);
    }
    assert.equal((await getJson(`${base}/v2/health/ready`)).status, 200);
    assert.ok((await index(base)).every((r) => r.state === 'READY'));
  });
});

describe('load/unload cycles', () => {
  test('200 cycles of a small model do not grow RSS by more than 50 MB', { timeout: 120_000 }, async (t) => {
    // In a child process with --expose-gc, so the figure is this workload's alone and collected.
    const helpers = new URL('./helpers.js', import.meta.url).href;
    const script = `
      import { startTestApp, tempRepository, postJson } from ${JSON.stringify(helpers)};
      const repo = await tempRepository(['identity_fp32']);
      const app = await startTestApp({ models: repo.dir });
      const base = app.http.url;
      const cycle = async (i) => {
        const unload = await postJson(base + '/v2/repository/models/identity_fp32/unload', {});
        const load = await postJson(base + '/v2/repository/models/identity_fp32/load', {});
        const res = await postJson(base + '/v2/models/identity_fp32/infer', {
          inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [i, -i] }],
        });
        if (unload.status !== 200 || load.status !== 200 || res.status !== 200 || res.body.outputs[0].data[0] !== i) {
          throw new Error('cycle ' + i + ': ' + unload.status + ' ' + load.status + ' ' + JSON.stringify(res.body));
        }
      };
      const rss = () => {
        globalThis.gc();
        globalThis.gc();
        return process.memoryUsage().rss;
      };
      for (let i = 0; i < 10; i++) await cycle(i);
      const warm = rss();
      const started = performance.now();
      for (let i = 0; i < 200; i++) await cycle(i);
      const ms = performance.now() - started;
      const end = rss();
      await app.close();
      await repo.remove();
      process.stdout.write(JSON.stringify({ warm, end, ms }) + '\\n');
    `;
    // A file rather than --eval: worker threads inherit the parent's execArgv, and
    // --input-type is refused outside --eval.
    const dir = await mkdtemp(join(tmpdir(), 'slipway-rss-'));
    const file = join(dir, 'cycles.mjs');
    await writeFile(file, script);
    const child = spawn(process.execPath, ['--expose-gc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 110_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, `child failed (${code}): ${err}`);
    const { warm, end, ms } = JSON.parse(out.trim().split('\n').pop()!) as {
      warm: number;
      end: number;
      ms: number;
    };
    const growthMb = (end - warm) / 2 ** 20;
    t.diagnostic(
      `200 load/unload cycles: ${(ms / 1000).toFixed(1)} s, RSS ${(warm / 2 ** 20).toFixed(0)} → ${(end / 2 ** 20).toFixed(0)} MB`,
    );
    assert.ok(growthMb < 50, `RSS grew by ${growthMb.toFixed(1)} MB over 200 cycles`);
  });
});
