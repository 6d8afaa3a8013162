/**
 * Dynamic batching: requests that meet in a model's queue run as one execution and each gets
 * back exactly what it would have got alone.
 *
 * The REST suites run the real server on the fixture models and compare every response with
 * the unbatched result computed here in float32 (Math.fround), then read the model's
 * statistics to prove batching happened. The DynamicBatcher suite drives the batcher with a
 * small runtime of its own, for what the fixtures cannot do on demand: fail at run time for
 * one request of a batch.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { App } from '../src/app.js';
import { SlipwayError } from '../src/errors/index.js';
import {
  DEFAULT_MODEL_CONFIG,
  DynamicBatcher,
  type Job,
  type ModelConfig,
  type ModelRuntime,
  type RunOptions,
  type RunResult,
  stack,
  type Tensor,
  unstack,
} from '../src/inference/index.js';
import { StatsRecorder } from '../src/inference/stats.js';
import { getJson, postJson, readBinaryResponse, startTestApp, tempRepository } from './helpers.js';

/** Small deterministic PRNG, so a failure replays with the same requests. */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface AddSubCase {
  rows: number;
  a: number[];
  b: number[];
  binary: boolean;
}

function addSubCases(count: number, maxRows: number, seed: number): AddSubCase[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => {
    const rows = 1 + Math.floor(rng() * maxRows);
    const values = () => Array.from({ length: rows * 4 }, () => rng() * 200 - 100);
    // Every fourth response comes back as binary tensors: views into the batch's output.
    return { rows, a: values(), b: values(), binary: i % 4 === 3 };
  });
}

/** What add_sub computes for one request alone, in float32. `bias` is 1 for version 2. */
function expected(c: AddSubCase, bias: number): { out0: number[]; out1: number[] } {
  const out0: number[] = [];
  const out1: number[] = [];
  for (let k = 0; k < c.a.length; k++) {
    const a = Math.fround(c.a[k]!);
    const b = Math.fround(c.b[k]!);
    const sum = Math.fround(a + b);
    out0.push(bias === 0 ? sum : Math.fround(sum + bias));
    out1.push(Math.fround(a - b));
  }
  return { out0, out1 };
}

interface Outputs {
  version: string;
  out0: number[];
  out1: number[];
  shapes: number[][];
}

async function inferAddSub(url: string, c: AddSubCase): Promise<Outputs> {
  const body = {
    inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [c.rows, 4], data: c.a },
      { name: 'INPUT1', datatype: 'FP32', shape: [c.rows, 4], data: c.b },
    ],
    ...(c.binary ? { parameters: { binary_data_output: true } } : {}),
  };
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `status ${res.status}: ${res.ok ? '' : await res.text()}`);
  if (c.binary) {
    const { header, raw } = await readBinaryResponse(res);
    const floats = (name: string) => {
      const buf = raw.get(name)!;
      return Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)));
    };
    return {
      version: header.model_version,
      out0: floats('OUTPUT0'),
      out1: floats('OUTPUT1'),
      shapes: header.outputs.map((o: { shape: number[] }) => o.shape),
    };
  }
  const json = (await res.json()) as {
    model_version: string;
    outputs: { name: string; shape: number[]; data: number[] }[];
  };
  const byName = new Map(json.outputs.map((o) => [o.name, o]));
  return {
    version: json.model_version,
    out0: byName.get('OUTPUT0')!.data,
    out1: byName.get('OUTPUT1')!.data,
    shapes: json.outputs.map((o) => o.shape),
  };
}

interface Stats {
  inference_count: number;
  execution_count: number;
  inference_stats: Record<string, { count: number; ns: number }>;
  batch_stats: { batch_size: number; compute_infer: { count: number } }[];
}

async function statsOf(base: string, model: string, version: string): Promise<Stats> {
  const res = await getJson<{ model_stats: Stats[] }>(`${base}/v2/models/${model}/versions/${version}/stats`);
  assert.equal(res.status, 200);
  assert.equal(res.body.model_stats.length, 1);
  return res.body.model_stats[0]!;
}

/** Per-batch-size counts must add up to the totals: every execution and every row once. */
function assertStatsConsistent(s: Stats, requests: number, rows: number): void {
  assert.equal(s.inference_count, rows, 'inference_count counts rows');
  assert.equal(s.inference_stats.success!.count, requests);
  assert.equal(s.inference_stats.fail!.count, 0);
  assert.equal(s.inference_stats.queue!.count, requests);
  assert.equal(s.inference_stats.compute_infer!.count, requests, 'compute_infer counts requests');
  const executions = s.batch_stats.reduce((n, b) => n + b.compute_infer.count, 0);
  const batchedRows = s.batch_stats.reduce((n, b) => n + b.batch_size * b.compute_infer.count, 0);
  assert.equal(executions, s.execution_count);
  assert.equal(batchedRows, s.inference_count);
}

describe('dynamic batching on the fixture repository (REST)', () => {
  let app: App;
  let base: string;

  before(async () => {
    app = await startTestApp();
    base = app.http.url;
  });
  after(() => app.close());

  test('a lone request on an idle server runs as a batch of one', async () => {
    // Version 1 sees no other traffic in this suite, so its statistics are this request's alone.
    const c: AddSubCase = { rows: 1, a: [1.1, 2.2, -3.3, 4.4], b: [0.5, 0.25, 8, -16], binary: false };
    const got = await inferAddSub(`${base}/v2/models/add_sub/versions/1/infer`, c);
    const want = expected(c, 0);
    assert.equal(got.version, '1');
    assert.deepEqual(got.out0, want.out0);
    assert.deepEqual(got.out1, want.out1);
    const s = await statsOf(base, 'add_sub', '1');
    assert.equal(s.execution_count, 1);
    assert.deepEqual(
      s.batch_stats.map((b) => [b.batch_size, b.compute_infer.count]),
      [[1, 1]],
    );
    assertStatsConsistent(s, 1, 1);
  });

  test('200 concurrent requests of 1-5 rows each get their unbatched result, in fewer executions', async () => {
    const cases = addSubCases(200, 5, 20240611);
    const results = await Promise.all(cases.map((c) => inferAddSub(`${base}/v2/models/add_sub/infer`, c)));
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      const got = results[i]!;
      const want = expected(c, 1);
      assert.equal(got.version, '2', 'requests without a version go to the latest');
      assert.deepEqual(got.shapes, [
        [c.rows, 4],
        [c.rows, 4],
      ]);
      assert.deepEqual(got.out0, want.out0, `request ${i} (${c.rows} rows, binary ${c.binary}): OUTPUT0`);
      assert.deepEqual(got.out1, want.out1, `request ${i} (${c.rows} rows, binary ${c.binary}): OUTPUT1`);
    }
    const rows = cases.reduce((n, c) => n + c.rows, 0);
    const s = await statsOf(base, 'add_sub', '2');
    assertStatsConsistent(s, cases.length, rows);
    assert.ok(
      s.execution_count < cases.length,
      `expected batching: ${s.execution_count} executions for ${cases.length} requests`,
    );
    // A single request carries at most 5 rows, so a larger batch holds several requests.
    assert.ok(
      s.batch_stats.some((b) => b.batch_size > 5),
      `no batch held several requests: ${JSON.stringify(s.batch_stats.map((b) => b.batch_size))}`,
    );
    assert.ok(
      s.batch_stats.every((b) => b.batch_size <= 64),
      'no batch exceeds max_batch_size',
    );
  });

  test('BYTES and INT64 requests batched together each get their own rows back', async () => {
    const rng = mulberry32(7);
    const n = 100;
    const bytesCases = Array.from({ length: n }, (_, i) => {
      const rows = 1 + Math.floor(rng() * 3);
      // Varied lengths (empty, multi-byte UTF-8) so an off-by-one in slicing shows.
      const data = Array.from(
        { length: rows * 3 },
        (_, k) => `${'é'.repeat(k % 3)}r${i}-${k}${k % 5 === 0 ? '' : '✓'}`,
      );
      return { rows, data };
    });
    const intCases = Array.from({ length: n }, (_, i) => {
      const rows = 1 + Math.floor(rng() * 3);
      const data = Array.from({ length: rows * 3 }, (_, k) =>
        k === 0 ? Number.MAX_SAFE_INTEGER - i : k === 1 ? Number.MIN_SAFE_INTEGER + i : i * 1000 + k - 500,
      );
      return { rows, data };
    });
    const send = (model: string, datatype: string, c: { rows: number; data: unknown[] }) =>
      postJson(`${base}/v2/models/${model}/infer`, {
        inputs: [{ name: 'INPUT0', datatype, shape: [c.rows, 3], data: c.data }],
      });
    const [bytesRes, intRes] = await Promise.all([
      Promise.all(bytesCases.map((c) => send('identity_bytes', 'BYTES', c))),
      Promise.all(intCases.map((c) => send('identity_int64', 'INT64', c))),
    ]);
    for (let i = 0; i < n; i++) {
      assert.equal(bytesRes[i]!.status, 200, JSON.stringify(bytesRes[i]!.body));
      assert.deepEqual(bytesRes[i]!.body.outputs, [
        { name: 'OUTPUT0', datatype: 'BYTES', shape: [bytesCases[i]!.rows, 3], data: bytesCases[i]!.data },
      ]);
      assert.equal(intRes[i]!.status, 200, JSON.stringify(intRes[i]!.body));
      assert.deepEqual(intRes[i]!.body.outputs, [
        { name: 'OUTPUT0', datatype: 'INT64', shape: [intCases[i]!.rows, 3], data: intCases[i]!.data },
      ]);
    }
    for (const [model, cases] of [
      ['identity_bytes', bytesCases],
      ['identity_int64', intCases],
    ] as const) {
      const s = await statsOf(base, model, '1');
      assertStatsConsistent(
        s,
        n,
        cases.reduce((r, c) => r + c.rows, 0),
      );
      assert.ok(
        s.execution_count < n,
        `${model}: expected batching, ${s.execution_count} executions for ${n} requests`,
      );
    }
  });
});

describe('dynamic batching with preferred batch sizes, a queue delay and two instances', () => {
  let app: App;
  let base: string;
  let remove: () => Promise<void>;

  before(async () => {
    const repo = await tempRepository(['add_sub']);
    remove = repo.remove;
    await writeFile(
      join(repo.dir, 'add_sub', 'config.json'),
      JSON.stringify({
        max_batch_size: 8,
        instance_count: 2,
        execution: 'worker',
        dynamic_batching: { preferred_batch_size: [4, 8], max_queue_delay_microseconds: 5000 },
        version_policy: { latest: { num_versions: 1 } },
      }),
    );
    app = await startTestApp({ models: repo.dir });
    base = app.http.url;
  });
  after(async () => {
    await app.close();
    await remove();
  });

  test('the configuration is applied', async () => {
    const res = await getJson(`${base}/v2/models/add_sub/config`);
    assert.equal(res.status, 200);
    assert.equal(res.body.max_batch_size, 8);
    assert.equal(res.body.instance_group[0].count, 2);
    assert.deepEqual(res.body.dynamic_batching.preferred_batch_size, [4, 8]);
    assert.equal(res.body.dynamic_batching.max_queue_delay_microseconds, 5000);
  });

  test('an idle model does not hold a lone request for the queue delay', async () => {
    // With a 10 s delay configured, a request that waited for it would take 10 s; the bound
    // is half of that, loose enough for a loaded machine.
    await postJson(`${base}/v2/repository/models/add_sub/load`, {
      parameters: {
        config: JSON.stringify({
          max_batch_size: 8,
          dynamic_batching: { max_queue_delay_microseconds: 10_000_000 },
          version_policy: { latest: { num_versions: 1 } },
        }),
      },
    });
    const c: AddSubCase = {
      rows: 2,
      a: [1, 2, 3, 4, 5, 6, 7, 8],
      b: [8, 7, 6, 5, 4, 3, 2, 1],
      binary: false,
    };
    const started = performance.now();
    const got = await inferAddSub(`${base}/v2/models/add_sub/infer`, c);
    assert.ok(performance.now() - started < 5000, 'the lone request waited for the queue delay');
    assert.deepEqual(got.out0, expected(c, 1).out0);
    // Back to the config.json on disk for the next test.
    const reload = await postJson(`${base}/v2/repository/models/add_sub/load`, {});
    assert.equal(reload.status, 200);
  });

  test('200 concurrent requests of 1-4 rows: exact results, batches of at most 8', async () => {
    // Rows stay at or below the smallest preferred size; see the DynamicBatcher suite for larger.
    const cases = addSubCases(200, 4, 99);
    const results = await Promise.all(cases.map((c) => inferAddSub(`${base}/v2/models/add_sub/infer`, c)));
    for (let i = 0; i < cases.length; i++) {
      const want = expected(cases[i]!, 1);
      assert.equal(results[i]!.version, '2');
      assert.deepEqual(results[i]!.out0, want.out0, `request ${i}: OUTPUT0`);
      assert.deepEqual(results[i]!.out1, want.out1, `request ${i}: OUTPUT1`);
    }
    const s = await statsOf(base, 'add_sub', '2');
    assertStatsConsistent(
      s,
      cases.length,
      cases.reduce((n, c) => n + c.rows, 0),
    );
    assert.ok(s.execution_count < cases.length, `expected batching: ${s.execution_count} executions`);
    const sizes = s.batch_stats.map((b) => b.batch_size);
    assert.ok(
      sizes.every((b) => b <= 8),
      `a batch exceeds max_batch_size 8: ${sizes}`,
    );
  });
});

// --- The batcher alone, with a runtime that fails on demand ------------------------------------

/** Any row holding this value makes the runtime fail, as a bad value would make ORT fail. */
const POISON = -777;

/**
 * Doubles its input. A run waits for `gate` (to hold the instance busy while requests queue),
 * fails when an input holds POISON, and records its batch sizes and peak concurrency.
 */
class MarkerRuntime implements ModelRuntime {
  readonly signature = {
    inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 2] }],
    outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 2] }],
  };
  readonly batchable = true;
  readonly runs: number[] = [];
  /** Each run's `keepInputs` option. */
  readonly kept: boolean[] = [];
  active = 0;
  peak = 0;
  gate: Promise<void> = Promise.resolve();

  constructor(readonly capacity: number) {}

  async run(inputs: Tensor[], _outputs: string[], options?: RunOptions): Promise<RunResult> {
    this.kept.push(options?.keepInputs === true);
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    try {
      await this.gate;
      await new Promise((r) => setImmediate(r));
      const x = inputs[0]!;
      this.runs.push(x.shape[0]!);
      const data = x.data as Float32Array;
      if (data.includes(POISON))
        throw new SlipwayError('SLIPWAY_ERR_INFERENCE_FAILED', 'ONNX Runtime: poisoned row');
      return {
        outputs: [{ name: 'y', datatype: 'FP32', shape: [...x.shape], data: data.map((v) => v * 2) }],
        inferNs: 1,
      };
    } finally {
      this.active--;
    }
  }

  async unload(): Promise<void> {}
}

function job(rows: number, first: number): Job {
  const data = Float32Array.from({ length: rows * 2 }, (_, k) => first + k);
  return {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 2], data }],
    batchSize: rows,
    outputs: ['y'],
    key: '2;y',
  };
}

function gated(runtime: MarkerRuntime): () => void {
  let open!: () => void;
  runtime.gate = new Promise((r) => {
    open = r;
  });
  return open;
}

/** Settles within `ms`, or says it did not: a batcher that wedges must fail the test, not hang it. */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('DynamicBatcher', () => {
  const config = (overrides: Partial<ModelConfig> = {}): ModelConfig => ({
    ...DEFAULT_MODEL_CONFIG,
    maxBatchSize: 16,
    ...overrides,
  });

  test('a failing batch fails only the request that caused it', async () => {
    const runtime = new MarkerRuntime(1);
    const stats = new StatsRecorder('m', '1');
    const batcher = new DynamicBatcher(runtime, config(), stats);
    const open = gated(runtime);
    const blocker = batcher.submit(job(1, 0));
    await new Promise((r) => setImmediate(r)); // dispatch happens at the end of the loop turn
    const rows = [1, 2, 1, 3, 1];
    const jobs = rows.map((r, i) => job(r, 100 * (i + 1)));
    (jobs[2]!.inputs[0]!.data as Float32Array)[1] = POISON;
    const pending = jobs.map((j) => batcher.submit(j));
    assert.equal(batcher.depth, 5, 'the five requests queue behind the busy instance');
    open();
    const settled = await within(5000, Promise.allSettled([blocker, ...pending]));

    assert.equal(settled[0]!.status, 'fulfilled');
    for (let i = 0; i < jobs.length; i++) {
      const s = settled[i + 1]!;
      if (i === 2) {
        assert.equal(s.status, 'rejected');
        const err = (s as PromiseRejectedResult).reason as SlipwayError;
        assert.equal(err.code, 'SLIPWAY_ERR_INFERENCE_FAILED');
        assert.match(err.message, /poisoned row/);
        continue;
      }
      assert.equal(s.status, 'fulfilled', `request ${i} failed with its neighbour`);
      const r = (s as PromiseFulfilledResult<Awaited<ReturnType<DynamicBatcher['submit']>>>).value;
      const input = jobs[i]!.inputs[0]!;
      assert.deepEqual(r.outputs[0]!.shape, input.shape);
      assert.deepEqual(
        Array.from(r.outputs[0]!.data as Float32Array),
        Array.from(input.data as Float32Array, (v) => v * 2),
      );
    }
    // The blocker alone, the batch of all five (8 rows) that failed, then each request alone.
    assert.equal(runtime.runs[0], 1);
    assert.equal(runtime.runs[1], 8);
    assert.deepEqual(
      runtime.runs.slice(2).sort((a, b) => a - b),
      [...rows].sort((a, b) => a - b),
    );
    const snap = stats.snapshot();
    assert.equal(snap.inference_stats.success.count, 5);
    assert.equal(snap.inference_stats.fail.count, 1);
    assert.equal(snap.execution_count, 5, 'the blocker and the four good requests');
    assert.equal(snap.inference_count, 1 + 1 + 2 + 3 + 1);
    await within(1000, batcher.drain());
  });

  test('a job of no rows that reaches the batcher runs alone instead of forming an empty batch', async () => {
    // Validation answers such requests 400; the batcher must still never dispatch nothing (an
    // empty batch once re-pumped itself until the stack overflowed and the process died).
    const runtime = new MarkerRuntime(1);
    const batcher = new DynamicBatcher(runtime, config(), new StatsRecorder('m', '1'));
    const alone = await within(5000, batcher.submit(job(0, 0)));
    assert.deepEqual(alone.outputs[0]!.shape, [0, 2]);
    // Beside a request with rows it simply joins that request's batch.
    const [none, two] = await within(
      5000,
      Promise.all([batcher.submit(job(0, 0)), batcher.submit(job(2, 0))]),
    );
    assert.deepEqual(runtime.runs, [0, 2]);
    assert.deepEqual(none.outputs[0]!.shape, [0, 2]);
    assert.deepEqual(two.outputs[0]!.shape, [2, 2]);
    await within(1000, batcher.drain());
  });

  test('a request whose inputs are read afterwards asks the runtime to keep them when it runs alone (a stacked batch is a new tensor)', async () => {
    const runtime = new MarkerRuntime(1);
    const batcher = new DynamicBatcher(runtime, config(), new StatsRecorder('m', '1'));
    const open = gated(runtime);
    const lone = { ...job(1, 0), keepInputs: true };
    const blocker = batcher.submit(lone);
    await new Promise((r) => setImmediate(r));
    const stacked = [job(1, 10), { ...job(2, 20), keepInputs: true }];
    const pending = stacked.map((j) => batcher.submit(j));
    open();
    await within(5000, Promise.all([blocker, ...pending]));
    assert.deepEqual(runtime.runs, [1, 3]);
    assert.deepEqual(runtime.kept, [true, false]);
    // Failed batches re-run request by request: then the request's own inputs go again.
    const retried = new MarkerRuntime(1);
    const again = new DynamicBatcher(retried, config(), new StatsRecorder('m', '1'));
    const gate = gated(retried);
    const first = again.submit(job(1, 0));
    await new Promise((r) => setImmediate(r));
    const bad = job(1, 50);
    (bad.inputs[0]!.data as Float32Array)[0] = POISON;
    const rest = [{ ...job(1, 60), keepInputs: true }, bad].map((j) => again.submit(j));
    gate();
    await within(5000, Promise.allSettled([first, ...rest]));
    assert.deepEqual(retried.runs, [1, 2, 1, 1]);
    assert.deepEqual(retried.kept, [false, false, true, false]);
    await within(1000, batcher.drain());
    await within(1000, again.drain());
  });

  test('retrying a failed batch request by request stays within the runtime capacity', async () => {
    // ModelRuntime: "`run` may be called concurrently up to `capacity` times; callers queue beyond that."
    const runtime = new MarkerRuntime(1);
    const batcher = new DynamicBatcher(runtime, config(), new StatsRecorder('m', '1'));
    const open = gated(runtime);
    const blocker = batcher.submit(job(1, 0));
    await new Promise((r) => setImmediate(r)); // dispatch happens at the end of the loop turn
    const jobs = [1, 1, 1, 1].map((r, i) => job(r, 10 * (i + 1)));
    (jobs[0]!.inputs[0]!.data as Float32Array)[0] = POISON;
    const pending = jobs.map((j) => batcher.submit(j));
    open();
    await within(5000, Promise.allSettled([blocker, ...pending]));
    assert.equal(runtime.peak, 1, `runs in parallel on a runtime of capacity 1: ${runtime.peak}`);
  });

  test('a lone request larger than the preferred batch size is still served', async () => {
    // preferred_batch_size [4] with max_batch_size 8: a 5-row request on an idle model is a valid batch.
    const outcome = await batcherScenario({ maxBatchSize: 8, preferredBatchSizes: [4] }, [5], false);
    assert.notEqual(outcome, 'wedged', 'the batcher never answered the 5-row request');
    assert.deepEqual(outcome, [{ shape: [5, 2], data: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18] }]);
  });

  test('queued requests larger than the preferred batch size are still served', async () => {
    // preferred_batch_size [2]: two 3-row requests wait behind a 1-row one, then must still run.
    const outcome = await batcherScenario({ maxBatchSize: 8, preferredBatchSizes: [2] }, [1, 3, 3], true);
    assert.notEqual(outcome, 'wedged', 'the batcher never answered the queued 3-row requests');
    assert.deepEqual(
      (outcome as { shape: number[] }[]).map((r) => r.shape),
      [
        [1, 2],
        [3, 2],
        [3, 2],
      ],
    );
  });
});

/**
 * Runs requests of `rows` rows through a DynamicBatcher (doubling runtime of capacity 1) in a
 * worker thread, terminated after a few seconds: a batcher that loops synchronously would
 * otherwise stop this thread's timers and hang the suite. With `gated`, the first request holds
 * the instance until every request is queued. Resolves with each output, or 'wedged'.
 */
async function batcherScenario(
  config: Partial<ModelConfig>,
  rows: number[],
  gated: boolean,
  ms = 3000,
): Promise<{ shape: number[]; data: number[] }[] | 'wedged'> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      const { DynamicBatcher } = await import(workerData.batcher);
      const { StatsRecorder } = await import(workerData.stats);
      const { DEFAULT_MODEL_CONFIG } = await import(workerData.config);
      let open = () => {};
      const gate = workerData.gated ? new Promise((r) => { open = r; }) : Promise.resolve();
      const runtime = {
        signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] },
        capacity: 1,
        batchable: true,
        async run(inputs) {
          await gate;
          const x = inputs[0];
          return { outputs: [{ name: 'y', datatype: 'FP32', shape: [...x.shape], data: x.data.map((v) => v * 2) }], inferNs: 1 };
        },
        async unload() {},
      };
      const batcher = new DynamicBatcher(runtime, { ...DEFAULT_MODEL_CONFIG, ...workerData.overrides }, new StatsRecorder('m', '1'));
      const pending = workerData.rows.map((n, i) =>
        batcher.submit({
          inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 2], data: Float32Array.from({ length: n * 2 }, (_, k) => 100 * i + k) }],
          batchSize: n,
          outputs: ['y'],
          key: '2;y',
        }),
      );
      open();
      const results = await Promise.all(pending);
      parentPort.postMessage(results.map((r) => ({ shape: r.outputs[0].shape, data: Array.from(r.outputs[0].data) })));
    })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
  `;
  const worker = new Worker(code, {
    eval: true,
    stderr: true,
    workerData: {
      batcher: new URL('../src/inference/batcher.js', import.meta.url).href,
      stats: new URL('../src/inference/stats.js', import.meta.url).href,
      config: new URL('../src/inference/model-config.js', import.meta.url).href,
      overrides: config,
      rows,
      gated,
    },
  });
  worker.stderr.resume();
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve('wedged'), ms);
      worker.once('message', (m: { error?: string } | { shape: number[]; data: number[] }[]) => {
        clearTimeout(timer);
        if ('error' in m) reject(new Error(m.error));
        else resolve(m as { shape: number[]; data: number[] }[]);
      });
      worker.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  } finally {
    await worker.terminate();
  }
}

describe('stack and unstack', () => {
  test('BYTES: rows of several requests concatenate and split back', () => {
    const a: Tensor = { name: 's', datatype: 'BYTES', shape: [2, 2], data: ['a', 'bb', '', 'é✓'] };
    const b: Tensor = { name: 's', datatype: 'BYTES', shape: [1, 2], data: ['x', ''] };
    const c: Tensor = { name: 's', datatype: 'BYTES', shape: [3, 2], data: ['1', '2', '3', '4', '5', '6'] };
    const [stacked] = stack([[a], [b], [c]]);
    assert.deepEqual(stacked, {
      name: 's',
      datatype: 'BYTES',
      shape: [6, 2],
      data: ['a', 'bb', '', 'é✓', 'x', '', '1', '2', '3', '4', '5', '6'],
    });
    const parts = unstack([stacked!], [2, 1, 3], 6);
    assert.deepEqual(
      parts.map((p) => p[0]),
      [a, b, c],
    );
  });

  test('INT64: 64-bit extremes survive, in a BigInt64Array', () => {
    const min = -(2n ** 63n);
    const max = 2n ** 63n - 1n;
    const a: Tensor = {
      name: 'i',
      datatype: 'INT64',
      shape: [1, 3],
      data: BigInt64Array.from([min, -1n, max]),
    };
    const b: Tensor = {
      name: 'i',
      datatype: 'INT64',
      shape: [2, 3],
      data: BigInt64Array.from([0n, 1n, 2n ** 53n + 1n, max, min, 7n]),
    };
    const extra: Tensor = { name: 'j', datatype: 'FP32', shape: [1], data: Float32Array.from([0.5]) };
    const extraB: Tensor = { name: 'j', datatype: 'FP32', shape: [2], data: Float32Array.from([1.5, 2.5]) };
    const [ints, floats] = stack([
      [a, extra],
      [b, extraB],
    ]);
    assert.ok(ints!.data instanceof BigInt64Array, `stacked INT64 is a ${ints!.data.constructor.name}`);
    assert.deepEqual(ints!.shape, [3, 3]);
    assert.deepEqual(Array.from(ints!.data as BigInt64Array), [
      min,
      -1n,
      max,
      0n,
      1n,
      2n ** 53n + 1n,
      max,
      min,
      7n,
    ]);
    assert.deepEqual(floats!.shape, [3]);
    assert.deepEqual(Array.from(floats!.data as Float32Array), [0.5, 1.5, 2.5]);

    const [pa, pb] = unstack([ints!, floats!], [1, 2], 3);
    assert.deepEqual(pa![0]!.shape, [1, 3]);
    assert.deepEqual(Array.from(pa![0]!.data as BigInt64Array), [min, -1n, max]);
    assert.deepEqual(pb![0]!.shape, [2, 3]);
    assert.deepEqual(Array.from(pb![0]!.data as BigInt64Array), [0n, 1n, 2n ** 53n + 1n, max, min, 7n]);
    assert.deepEqual(Array.from(pb![1]!.data as Float32Array), [1.5, 2.5]);
  });

  test('an output whose first dimension is not the batch cannot be split', () => {
    const o: Tensor = { name: 'y', datatype: 'FP32', shape: [2, 2], data: new Float32Array(4) };
    assert.throws(
      () => unstack([o], [1, 2], 3),
      (e: SlipwayError) => e.code === 'SLIPWAY_ERR_INFERENCE_FAILED' && /'y'.*batch size 3/.test(e.message),
    );
  });
});
