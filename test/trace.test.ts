/**
 * Triton's trace extension: sampling by rate and count, trace files (indexed every
 * log_frequency traces, or one file at shutdown), global and per-model settings over REST and
 * gRPC, and bad settings answered with a 400 naming the setting.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import type { App } from '../src/app.js';
import { loadSettings } from '../src/config/index.js';
import { Tracer } from '../src/inference/index.js';
import { MAX_HELD_TRACES } from '../src/inference/trace.js';
import { getJson, grpcClient, postJson, slowRequest, startTestApp } from './helpers.js';

type Entry = Record<string, any>;

const readTrace = async (path: string): Promise<Entry[]> => JSON.parse(await readFile(path, 'utf8'));
/** The trace files a live server has written so far (one being written is still `.partial`). */
const writtenTraceFiles = async (dir: string): Promise<string[]> =>
  (await readdir(dir)).filter((n) => !n.endsWith('.partial')).sort();

const addSub = (a: number[], b: number[], id?: string) => ({
  ...(id !== undefined ? { id } : {}),
  inputs: [
    { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: a },
    { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: b },
  ],
});

describe('Tracer', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-trace-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const fakeRequest = (tracer: Tracer, model = 'm') => {
    const trace = tracer.sample(model);
    if (trace) tracer.finish(trace, { model, version: '1' });
    return trace;
  };

  test('one request in trace_rate is traced, the rate-th first; trace_count stops it', async () => {
    const file = join(dir, 'rate.json');
    const tracer = new Tracer({ file, level: ['TIMESTAMPS'], rate: 3, count: 2, logFrequency: 0 });
    const traced = Array.from({ length: 10 }, () => fakeRequest(tracer) !== undefined);
    assert.deepEqual(
      traced.map((t, i) => (t ? i + 1 : 0)).filter((n) => n > 0),
      [3, 6],
    );
    assert.equal(tracer.settings().trace_count, '0');
    assert.equal(tracer.active, false, 'nothing left to trace');
    // The last trace of a count is written to the next indexed file at once, as Triton does.
    await waitFor(`${file}.0`);
    const entries = await readTrace(`${file}.0`);
    assert.deepEqual(
      entries.filter((e) => e.model_name).map((e) => [e.id, e.model_name, e.model_version]),
      [
        [1, 'm', 1],
        [2, 'm', 1],
      ],
    );
    // The same count given again starts counting again (an update is a new setting, as in Triton).
    tracer.update(undefined, { trace_count: '2' });
    assert.equal(tracer.active, true);
    assert.equal(tracer.settings().trace_count, '2');
    await tracer.close();
  });

  test('a trace with transport times, finished just before close, is in the closed file', async () => {
    const file = join(dir, 'closing.json');
    const tracer = new Tracer({ file, level: ['TIMESTAMPS'], rate: 1, count: -1, logFrequency: 0 });
    const at = performance.now();
    const trace = tracer.sample('m', at, { protocol: 'HTTP', recvStart: at, recvEnd: at })!;
    tracer.finish(trace, { model: 'm', version: '1' });
    trace.transport!.sendStart = performance.now();
    trace.transport!.sendEnd = performance.now();
    await tracer.close();
    const entries = await readTrace(file);
    const stamps = entries.find((e) => e.timestamps)!.timestamps.map((x: { name: string }) => x.name);
    assert.deepEqual(stamps, [
      'HTTP_RECV_START',
      'HTTP_RECV_END',
      'REQUEST_START',
      'REQUEST_END',
      'INFER_RESPONSE_COMPLETE',
      'HTTP_SEND_START',
      'HTTP_SEND_END',
    ]);
    // Finished after close: dropped, and the closed file is left as it was.
    const late = tracer.sample('m')!;
    assert.ok(late);
    tracer.finish(late, { model: 'm', version: '1' });
    await tracer.close();
    assert.equal((await readTrace(file)).filter((e) => e.timestamps).length, 1);
  });

  test('traces still running when the count runs out are written together, once', async () => {
    const file = join(dir, 'inflight.json');
    const tracer = new Tracer({ file, level: ['TIMESTAMPS'], rate: 1, count: 3, logFrequency: 0 });
    const traces = [tracer.sample('m'), tracer.sample('m'), tracer.sample('m')];
    assert.equal(tracer.sample('m'), undefined);
    for (const t of traces) tracer.finish(t!, { model: 'm', version: '1' });
    await tracer.close();
    const names = (await readdir(dir)).filter((n) => n.startsWith('inflight.json'));
    assert.deepEqual(names, ['inflight.json.0']);
    assert.equal((await readTrace(join(dir, 'inflight.json.0'))).filter((e) => e.timestamps).length, 3);
  });

  test('log_frequency writes every n traces to <file>.<i>; 0 writes the rest to <file> at close', async () => {
    const file = join(dir, 'freq.json');
    const tracer = new Tracer({ file, level: ['TIMESTAMPS'], rate: 1, count: -1, logFrequency: 2 });
    for (let i = 0; i < 5; i++) fakeRequest(tracer);
    await tracer.close();
    const names = (await readdir(dir)).filter((n) => n.startsWith('freq.json')).sort();
    assert.deepEqual(names, ['freq.json.0', 'freq.json.1', 'freq.json.2']);
    const ids = async (n: string) =>
      (await readTrace(join(dir, n))).filter((e) => e.timestamps).map((e) => e.id);
    assert.deepEqual(await ids('freq.json.0'), [1, 2]);
    assert.deepEqual(await ids('freq.json.1'), [3, 4]);
    assert.deepEqual(await ids('freq.json.2'), [5], 'the remainder, at close');

    const once = join(dir, 'once.json');
    const atShutdown = new Tracer({ file: once, level: ['TIMESTAMPS'], rate: 1, count: -1, logFrequency: 0 });
    for (let i = 0; i < 3; i++) fakeRequest(atShutdown);
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(readFile(once), /ENOENT/, 'nothing is written before shutdown');
    // A setting replaced writes what it held to the file; the file stays one JSON array.
    atShutdown.update(undefined, { trace_rate: '1' });
    for (let i = 0; i < 2; i++) fakeRequest(atShutdown);
    await atShutdown.close();
    assert.deepEqual(
      (await readTrace(once)).filter((e) => e.timestamps).map((e) => e.id),
      [1, 2, 3, 4, 5],
    );
  });

  test(`at most ${MAX_HELD_TRACES} traces are held: more are written, whatever log_frequency says`, async () => {
    const file = join(dir, 'held.json');
    const tracer = new Tracer({ file, level: ['TIMESTAMPS'], rate: 1, count: -1, logFrequency: 0 });
    for (let i = 0; i < MAX_HELD_TRACES + 5; i++) fakeRequest(tracer);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok((await readFile(file, 'utf8')).length > 0, 'written before close');
    await tracer.close();
    assert.equal((await readTrace(file)).filter((e) => e.timestamps).length, MAX_HELD_TRACES + 5);
  });

  test("a model's own settings override the global ones; null gives a setting back to them", () => {
    const tracer = new Tracer({
      file: join(dir, 'm.json'),
      level: [],
      rate: 1000,
      count: -1,
      logFrequency: 0,
    });
    assert.equal(tracer.active, false);
    tracer.update('a', { trace_level: ['TENSORS'], trace_rate: '1' });
    assert.equal(tracer.active, true);
    assert.deepEqual(tracer.settings('a').trace_level, ['TENSORS']);
    assert.deepEqual(tracer.settings('b').trace_level, ['OFF']);
    assert.ok(tracer.sample('a'));
    assert.equal(tracer.sample('b'), undefined);
    tracer.update(undefined, { trace_rate: '7' });
    assert.equal(tracer.settings('a').trace_rate, '1', 'its own rate stays');
    tracer.update('a', { trace_rate: null });
    assert.equal(tracer.settings('a').trace_rate, '7', 'the global rate again');
    tracer.update('a', { trace_level: null });
    assert.equal(tracer.active, false);
  });

  test('a model that sets nothing of its own shares the global counter again; global null restores the start', () => {
    const tracer = new Tracer({
      file: join(dir, 'g.json'),
      level: ['TIMESTAMPS'],
      rate: 1,
      count: 5,
      logFrequency: 0,
    });
    tracer.update('a', { trace_count: '2' });
    assert.equal(tracer.settings('a').trace_count, '2');
    tracer.sample('m');
    tracer.update('a', { trace_count: null });
    assert.equal(tracer.settings('a').trace_count, '4', "the global setting's count left");
    tracer.sample('a');
    assert.equal(tracer.settings().trace_count, '3', 'one counter for both');
    tracer.update(undefined, { trace_rate: '9' });
    tracer.update(undefined, { trace_rate: null });
    assert.equal(tracer.settings().trace_rate, '1', 'back to the rate given at start');
  });

  test('bad settings are 400s naming the setting', () => {
    const tracer = new Tracer({
      file: join(dir, 'x.json'),
      level: [],
      rate: 1000,
      count: -1,
      logFrequency: 0,
    });
    const cases: [string | undefined, unknown, RegExp][] = [
      [undefined, { trace_sample: '1' }, /unknown trace setting 'trace_sample'/],
      [undefined, { trace_rate: '0' }, /'trace_rate' must be an integer from 1 to 4294967295, got "0"/],
      [undefined, { trace_rate: 'ten' }, /'trace_rate' must be an integer/],
      [undefined, { trace_count: '-2' }, /'trace_count' must be an integer from -1/],
      [undefined, { log_frequency: 1.5 }, /'log_frequency' must be an integer from 0/],
      [undefined, { trace_level: ['OFF', 'TENSORS'] }, /OFF cannot be given with other levels/],
      [undefined, { trace_level: ['VERBOSE'] }, /unknown level "VERBOSE"/],
      [undefined, { trace_level: [] }, /'trace_level' must be a list of levels/],
      [undefined, { trace_level: ['TIMESTAMPS'], trace_count: '0' }, /'trace_count' 0 traces nothing/],
      [undefined, { trace_mode: 'opentelemetry' }, /'trace_mode' must be "triton"/],
      [undefined, [], /trace settings must be a JSON object/],
    ];
    for (const [model, patch, message] of cases) {
      assert.throws(
        () => tracer.update(model, patch),
        (e: any) => e.code === 'SLIPWAY_ERR_BAD_REQUEST' && message.test(e.message),
        JSON.stringify(patch),
      );
    }
    assert.throws(
      () => tracer.update(undefined, { trace_file: '/etc/passwd' }),
      (e: any) =>
        e.code === 'SLIPWAY_ERR_NOT_IMPLEMENTED' &&
        /'trace_file' cannot be changed through the network/.test(e.message),
    );
    assert.equal(tracer.settings().trace_rate, '1000', 'nothing changed');
    const noFile = new Tracer({ file: '', level: [], rate: 1, count: -1, logFrequency: 0 });
    assert.throws(
      () => noFile.update(undefined, { trace_level: ['TIMESTAMPS'] }),
      /tracing needs a trace file/,
    );
  });
});

describe('settings', () => {
  test('traceLevel and the rest come from the environment and flags; a level needs a file', () => {
    const s = loadSettings({
      env: { SLIPWAY_TRACE_FILE: '/tmp/t.json', SLIPWAY_TRACE_LEVEL: 'TIMESTAMPS,TENSORS' },
      flags: { traceRate: '5', traceCount: '10', traceLogFrequency: '100' },
    });
    assert.deepEqual(
      [s.traceFile, s.traceLevel, s.traceRate, s.traceCount, s.traceLogFrequency],
      ['/tmp/t.json', ['TIMESTAMPS', 'TENSORS'], 5, 10, 100],
    );
    assert.deepEqual(loadSettings({ env: { SLIPWAY_TRACE_LEVEL: 'OFF' } }).traceLevel, []);
    assert.throws(() => loadSettings({ env: { SLIPWAY_TRACE_LEVEL: 'TIMESTAMPS' } }), /needs traceFile/);
    assert.throws(
      () => loadSettings({ env: { SLIPWAY_TRACE_LEVEL: 'LOUD' } }),
      /SLIPWAY_TRACE_LEVEL: must be OFF/,
    );
    assert.throws(
      () => loadSettings({ flags: { traceRate: '0' } }),
      /--trace-rate: must be an integer from 1/,
    );
  });
});

/** A request's timestamps inside the server, between its transport's receive and send. */
const SERVER_STAMPS = [
  'REQUEST_START',
  'QUEUE_START',
  'COMPUTE_START',
  'COMPUTE_INPUT_END',
  'COMPUTE_OUTPUT_START',
  'COMPUTE_END',
  'REQUEST_END',
  'INFER_RESPONSE_COMPLETE',
];

describe('the trace extension on a live server', () => {
  let app: App;
  let base: string;
  let dir: string;
  let file: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-trace-server-'));
    file = join(dir, 'trace.json');
    // The prediction log off: traced tensors must not rely on it keeping the inputs readable.
    app = await startTestApp({ grpcPort: 0, traceFile: file, predictionLog: false });
    base = app.http.url;
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Traces the next `count` requests of `model`; the trace files there were before. */
  const traceModel = async (model: string, count: number) => {
    const set = await postJson(`${base}/v2/models/${model}/trace/setting`, {
      trace_level: ['TIMESTAMPS'],
      trace_rate: '1',
      trace_count: String(count),
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const files = () => writtenTraceFiles(dir);
    return { files, had: await files() };
  };
  const untrace = (model: string) =>
    postJson(`${base}/v2/models/${model}/trace/setting`, {
      trace_level: null,
      trace_rate: null,
      trace_count: null,
    });

  test('the server lists the extension; settings start as configured, tracing off', async () => {
    const meta = await getJson(`${base}/v2`);
    assert.ok(meta.body.extensions.includes('trace'));
    const res = await getJson(`${base}/v2/trace/setting`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      trace_level: ['OFF'],
      trace_rate: '1000',
      trace_count: '-1',
      log_frequency: '0',
      trace_file: file,
      trace_mode: 'triton',
    });
  });

  test('TIMESTAMPS: every traced request has its model, id and ordered timestamps', async () => {
    const set = await postJson(`${base}/v2/trace/setting`, {
      trace_level: ['TIMESTAMPS'],
      trace_rate: '1',
      log_frequency: '2',
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(
      [set.body.trace_level, set.body.trace_rate, set.body.log_frequency],
      [['TIMESTAMPS'], '1', '2'],
    );
    const before = Number(process.hrtime.bigint());
    for (let i = 0; i < 4; i++) {
      const r = await postJson(
        `${base}/v2/models/add_sub/infer`,
        addSub([1, 2, 3, 4], [i, i, i, i], `req-${i}`),
      );
      assert.equal(r.status, 200);
    }
    const after = Number(process.hrtime.bigint());
    await postJson(`${base}/v2/trace/setting`, { trace_level: ['OFF'] });
    await waitFor(`${file}.1`);
    const entries = [...(await readTrace(`${file}.0`)), ...(await readTrace(`${file}.1`))];
    const heads = entries.filter((e) => e.model_name);
    assert.deepEqual(
      heads.map((h) => [h.model_name, h.model_version, h.request_id]),
      [0, 1, 2, 3].map((i) => ['add_sub', 2, `req-${i}`]),
    );
    const order = ['HTTP_RECV_START', 'HTTP_RECV_END', ...SERVER_STAMPS, 'HTTP_SEND_START', 'HTTP_SEND_END'];
    for (const h of heads) {
      const stamps = entries.find((e) => e.id === h.id && e.timestamps)!.timestamps;
      assert.deepEqual(
        stamps.map((s: Entry) => s.name),
        order,
      );
      const ns = stamps.map((s: Entry) => s.ns);
      for (let i = 1; i < ns.length; i++) assert.ok(ns[i] >= ns[i - 1], `${order[i]} before ${order[i - 1]}`);
      // The monotonic clock's nanoseconds, as Triton's steady clock.
      assert.ok(
        ns[0] >= before - 1e6 && ns[ns.length - 1] <= after + 1e6,
        `${ns[0]} outside ${before}..${after}`,
      );
    }
  });

  test("TENSORS for one model: its inputs and outputs as Triton's trace shows them", async () => {
    const set = await postJson(`${base}/v2/models/identity_fp32/trace/setting`, {
      trace_level: ['TENSORS'],
      trace_count: '1',
      trace_rate: '1',
    });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(set.body.trace_level, ['TENSORS']);
    assert.equal(set.body.log_frequency, '2', 'unset settings follow the global ones');
    const global = await getJson(`${base}/v2/trace/setting`);
    assert.deepEqual(global.body.trace_level, ['OFF']);
    const files = () => writtenTraceFiles(dir);
    const had = await files();
    const r = await postJson(`${base}/v2/models/identity_fp32/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 3], data: [0.5, -2, 3] }],
    });
    assert.equal(r.status, 200);
    // Count 1 reached: that trace is written to the next file at once, and tracing stops.
    const added = (await waitForNewFile(files, had.length))!.filter((n) => !had.includes(n));
    assert.deepEqual(added, ['trace.json.2']);
    const entries = await readTrace(join(dir, 'trace.json.2'));
    const tensors = entries.filter((e) => e.activity).map((e) => [e.activity, e.tensor]);
    assert.deepEqual(tensors, [
      ['TENSOR_QUEUE_INPUT', { name: 'INPUT0', data: '0.5,-2,3', shape: '1,3', dtype: 'FP32' }],
      ['TENSOR_BACKEND_OUTPUT', { name: 'OUTPUT0', data: '0.5,-2,3', shape: '1,3', dtype: 'FP32' }],
    ]);
    assert.equal(entries.filter((e) => e.timestamps).length, 0, 'TENSORS only');
    const now = await getJson(`${base}/v2/models/identity_fp32/trace/setting`);
    assert.equal(now.body.trace_count, '0');
    const cleared = await postJson(`${base}/v2/models/identity_fp32/trace/setting`, {
      trace_level: null,
      trace_count: null,
    });
    assert.deepEqual([cleared.body.trace_level, cleared.body.trace_count], [['OFF'], '-1']);
  });

  test('a request that times out while it runs: its trace has the times it reached', async () => {
    const { files, had } = await traceModel('slow', 1);
    // Four rows cost 70 ms or more; the server's own deadline is 20 ms.
    const r = await postJson(`${base}/v2/models/slow/infer`, {
      ...slowRequest(4),
      parameters: { timeout: 20_000 },
    });
    assert.equal(r.status, 504, JSON.stringify(r.body));
    const added = (await waitForNewFile(files, had.length))!.filter((n) => !had.includes(n));
    assert.equal(added.length, 1);
    const entries = await readTrace(join(dir, added[0]!));
    const stamps = entries.find((e) => e.timestamps)!.timestamps.map((s: Entry) => s.name);
    // The error is answered by the server's error handler: no send times.
    assert.deepEqual(stamps, [
      'HTTP_RECV_START',
      'HTTP_RECV_END',
      'REQUEST_START',
      'QUEUE_START',
      'COMPUTE_START',
      'COMPUTE_INPUT_END',
      'REQUEST_END',
      'INFER_RESPONSE_COMPLETE',
    ]);
    await untrace('slow');
  });

  test('bad requests: 400 naming the setting, 404 for an unknown model', async () => {
    const file = await postJson(`${base}/v2/trace/setting`, { trace_file: '/tmp/elsewhere.json' });
    assert.equal(file.status, 501, 'as Triton: UNSUPPORTED');
    assert.match(file.body.error, /'trace_file' cannot be changed through the network/);
    const rate = await postJson(`${base}/v2/trace/setting`, { trace_rate: '-3' });
    assert.equal(rate.status, 400);
    assert.match(rate.body.error, /'trace_rate' must be an integer/);
    const notJson = await postJson(`${base}/v2/trace/setting`, '{"trace_rate":');
    assert.equal(notJson.status, 400);
    const unknown = await getJson(`${base}/v2/models/nope/trace/setting`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /nope/);
    const unknownPost = await postJson(`${base}/v2/models/nope/trace/setting`, { trace_rate: '1' });
    assert.equal(unknownPost.status, 404);
  });

  test('gRPC ModelInfer and ModelStreamInfer: the read and send times of the call', async () => {
    const { files, had } = await traceModel('add_sub', 2);
    const request = (id: string) => ({
      model_name: 'add_sub',
      id,
      inputs: ['INPUT0', 'INPUT1'].map((name) => ({
        name,
        datatype: 'FP32',
        shape: [1, 4],
        contents: { fp32_contents: [1, 2, 3, 4] },
      })),
    });
    const client = grpcClient(app.grpc!.port);
    try {
      await new Promise((resolve, reject) =>
        (client as any).ModelInfer(request('unary'), (err: Error | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        ),
      );
      const stream = (client as any).ModelStreamInfer();
      const answered = new Promise((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
      });
      stream.write(request('streamed'));
      await answered;
      stream.end();
    } finally {
      client.close();
    }
    // Count 2 reached: both traces go to the next file at once.
    const added = (await waitForNewFile(files, had.length))!.filter((n) => !had.includes(n));
    assert.equal(added.length, 1);
    const entries = await readTrace(join(dir, added[0]!));
    const heads = entries.filter((e) => e.model_name);
    assert.deepEqual(
      heads.map((h) => h.request_id),
      ['unary', 'streamed'],
    );
    for (const h of heads) {
      const stamps = entries.find((e) => e.id === h.id && e.timestamps)!.timestamps;
      assert.deepEqual(
        stamps.map((x: Entry) => x.name),
        ['GRPC_WAITREAD_END', ...SERVER_STAMPS, 'GRPC_SEND_START', 'GRPC_SEND_END'],
        h.request_id,
      );
      const ns = stamps.map((x: Entry) => x.ns);
      for (let i = 1; i < ns.length; i++) assert.ok(ns[i] >= ns[i - 1], `${h.request_id}: stamp ${i}`);
    }
    await untrace('add_sub');
  });

  test('gRPC TraceSetting reads and changes the same settings', async () => {
    const client = grpcClient(app.grpc!.port);
    const call = (req: unknown) =>
      new Promise<any>((resolve, reject) =>
        (client as any).TraceSetting(req, (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        ),
      );
    try {
      const read = await call({});
      assert.deepEqual(read.settings.trace_file.value, [file]);
      const changed = await call({
        model_name: 'add_sub',
        settings: { trace_rate: { value: ['4'] }, trace_level: { value: ['TIMESTAMPS', 'TENSORS'] } },
      });
      assert.deepEqual(changed.settings.trace_level.value, ['TIMESTAMPS', 'TENSORS']);
      assert.deepEqual(changed.settings.trace_rate.value, ['4']);
      const rest = await getJson(`${base}/v2/models/add_sub/trace/setting`);
      assert.deepEqual(rest.body.trace_level, ['TIMESTAMPS', 'TENSORS']);
      const cleared = await call({ model_name: 'add_sub', settings: { trace_level: {}, trace_rate: {} } });
      assert.deepEqual(cleared.settings.trace_level.value, ['OFF']);
      const err = await call({ settings: { trace_count: { value: ['x'] } } }).catch((e) => e);
      assert.equal(err.code, 3, 'INVALID_ARGUMENT');
      assert.match(err.details, /'trace_count' must be an integer/);
    } finally {
      client.close();
    }
  });
});

async function waitFor(path: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    try {
      JSON.parse(await readFile(path, 'utf8'));
      return;
    } catch {}
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${path} was not written`);
}

async function waitForNewFile(list: () => Promise<string[]>, count: number): Promise<string[] | undefined> {
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    const names = await list();
    if (names.length > count) return names;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}
