import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import type { App } from '../src/app.js';
import { type MonitoringTables, monitoringMigrations } from '../src/monitoring/monitoring-migrations.js';
import { PredictionLog } from '../src/monitoring/prediction-log.js';
import { MINUTE_MS } from '../src/monitoring/prediction-writer.js';
import { Database } from '../src/store/index.js';
import {
  addSubRequest,
  FIXTURES,
  getJson,
  postBinary,
  postJson,
  slowRequest,
  startTestApp,
  tempRepository,
} from './helpers.js';

/** An array nested `depth` levels around a 1. */
function deep(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

const good = { age: 41, hours_per_week: 40, workclass: 'Private' };

describe('bad input is a 4xx naming the field, and the server lives on', () => {
  let app: App;
  let url: string;
  let repo: { dir: string; remove: () => Promise<void> };

  before(async () => {
    repo = await tempRepository(['tabular', 'add_sub', 'identity_fp32', 'identity_bool', 'slow']);
    for (const m of ['identity_int8', 'identity_uint64', 'identity_bytes']) {
      await mkdir(join(repo.dir, `rec_${m}`));
      await symlink(join(FIXTURES, m, '1'), join(repo.dir, `rec_${m}`, '1'));
      await writeFile(join(repo.dir, `rec_${m}`, 'config.json'), JSON.stringify({ feature_names: ['x'] }));
    }
    // A model folder that is itself a symbolic link is served like a folder.
    await symlink(join(FIXTURES, 'matrix'), join(repo.dir, 'linked'));
    app = await startTestApp({ models: repo.dir, predictionFlushMs: 50, maxRequestBytes: 1 << 20 });
    url = app.http.url;
  });
  after(async () => {
    await app?.close();
    await repo?.remove();
  });

  const alive = async () => assert.equal((await getJson(`${url}/v2/health/live`)).status, 200);

  test('a record holding a deeply nested extra field is refused, and the log keeps flushing', async () => {
    const body = `{"instances":[{"age":39,"hours_per_week":40,"workclass":"Private","note":${deep(20_000)}}]}`;
    const r = await postJson(`${url}/v1/models/tabular:predict`, body);
    assert.equal(r.status, 400);
    assert.match(r.body.error, /instances\[0\]\.note nests deeper than 32 levels/);
    // Shallow nesting is still accepted and logged.
    const ok = await postJson(`${url}/v1/models/tabular:predict`, {
      instances: [{ ...good, note: { source: ['web', { page: 2 }] } }],
    });
    assert.equal(ok.status, 200);
    await app.predictions!.flush();
    assert.equal(app.predictions!.stats.dropped, 0);
    await alive();
  });

  test('V2 data nested deeper than its shape is refused without recursion', async () => {
    const body = `{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,1],"data":${deep(20_000)}}]}`;
    const r = await postJson(`${url}/v2/models/identity_fp32/infer`, body);
    assert.equal(r.status, 400);
    assert.match(r.body.error, /input 'INPUT0': data nests deeper than its shape's 2 dimensions/);
    // Nested as deep as the shape is fine.
    const ok = await postJson(`${url}/v2/models/identity_fp32/infer`, {
      inputs: [
        {
          name: 'INPUT0',
          datatype: 'FP32',
          shape: [2, 2],
          data: [
            [1, 2],
            [3, 4],
          ],
        },
      ],
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.outputs[0].data, [1, 2, 3, 4]);
    // A deep value where a datatype or an element belongs is described, not serialized.
    const dt = await postJson(
      `${url}/v2/models/identity_fp32/infer`,
      `{"inputs":[{"name":"INPUT0","datatype":${deep(20_000)},"shape":[1,1],"data":[1]}]}`,
    );
    assert.equal(dt.status, 400);
    assert.match(dt.body.error, /datatype an array is not one of/);
    const el = await postJson(
      `${url}/v2/models/identity_fp32/infer`,
      `{"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,2],"data":[1,${deep(20_000)}]}]}`,
    );
    assert.equal(el.status, 400);
    assert.match(el.body.error, /element 1 is an array, expected a number/);
    await alive();
  });

  test('a request id an HTTP header cannot carry is a 400 naming id, before the model runs', async () => {
    const before = (await getJson(`${url}/v2/models/identity_fp32/stats`)).body;
    const count = before.model_stats[0].inference_stats.success.count;
    for (const id of ['日本', 'a\nb', '\u0000', 'x'.repeat(1025)]) {
      const r = await postJson(`${url}/v2/models/identity_fp32/infer`, {
        id,
        inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 1], data: [1] }],
      });
      assert.equal(r.status, 400, JSON.stringify(id));
      assert.match(r.body.error, /'id'/);
      const rec = await postJson(`${url}/v1/models/tabular:predict`, { id, instances: [good] });
      assert.equal(rec.status, 400);
      assert.match(rec.body.error, /'id'/);
    }
    const after = (await getJson(`${url}/v2/models/identity_fp32/stats`)).body;
    assert.equal(after.model_stats[0].inference_stats.success.count, count);
    // The records API refuses a non-string id as V2 does, and echoes a good one in both places.
    const num = await postJson(`${url}/v1/models/tabular:predict`, { id: 7, instances: [good] });
    assert.equal(num.status, 400);
    assert.match(num.body.error, /'id' must be a string/);
    const fine = await postJson(`${url}/v1/models/tabular:predict`, { id: 'order-17', instances: [good] });
    assert.equal(fine.status, 200);
    assert.equal(fine.body.id, 'order-17');
    assert.equal(fine.headers.get('x-request-id'), 'order-17');
  });

  test('an output asked for twice is a 400 naming it, on a worker and on the main thread alike', async () => {
    for (const model of ['add_sub', 'identity_fp32']) {
      const base =
        model === 'add_sub'
          ? addSubRequest(1)
          : { inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 1], data: [1] }] };
      const out = 'OUTPUT0';
      const r = await postJson(`${url}/v2/models/${model}/infer`, {
        ...base,
        outputs: [{ name: out }, { name: out }],
      });
      assert.equal(r.status, 400, model);
      assert.match(r.body.error, /output 'OUTPUT0' is requested twice \(outputs\[0\] and outputs\[1\]\)/);
    }
  });

  test('FP32 values beyond its range are refused, over V2 and records', async () => {
    const r = await postJson(`${url}/v2/models/identity_fp32/infer`, {
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [1, 3.5e39] }],
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'SLIPWAY_ERR_INPUT_DATA');
    assert.match(r.body.error, /element 1 is 3\.5e\+39, expected a number within FP32's range/);
    const rec = await postJson(`${url}/v1/models/linked:predict`, { instances: [{ a: 1, b: 2, c: -1e300 }] });
    assert.equal(rec.status, 400);
    assert.match(rec.body.error, /instances\[0\]\.c is -1e\+300, beyond FP32's range/);
  });

  test('records: integers out of their type range, hex strings and bad strings are refused; decimal strings are logged as numbers', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['rec_identity_int8', 128, /instances\[0\]\.x must be an integer from -128 to 127 for INT8, got 128/],
      ['rec_identity_int8', -129, /from -128 to 127/],
      ['rec_identity_uint64', -1, /from 0 to 9007199254740991 for UINT64, got -1/],
      ['rec_identity_uint64', 1e20, /for UINT64/],
      ['rec_identity_bytes', 'a\u0000b', /instances\[0\]\.x holds a NUL or is not valid UTF-8/],
      ['rec_identity_bytes', '\ud800', /holds a NUL or is not valid UTF-8/],
      ['linked', '0x10', /instances\[0\]\.a must be a number, got "0x10"/],
      ['linked', 'Infinity', /must be a number, got "Infinity"/],
    ];
    for (const [model, x, message] of cases) {
      const instance = model === 'linked' ? { a: x, b: 1, c: 1 } : { x };
      const r = await postJson(`${url}/v1/models/${model}:predict`, { instances: [instance] });
      assert.equal(r.status, 400, `${model} ${JSON.stringify(x)}`);
      assert.match(r.body.error, message);
    }
    const ok = await postJson(`${url}/v1/models/rec_identity_int8:predict`, {
      instances: [{ x: -128 }, { x: 127 }],
    });
    assert.equal(ok.status, 200);
    const id = 'decimal-strings';
    const dec = await postJson(`${url}/v1/models/linked:predict`, {
      id,
      instances: [{ a: ' 1.5e1 ', b: '-2', c: 3 }],
    });
    assert.equal(dec.status, 200);
    await app.predictions!.flush();
    const rows = await getJson(`${url}/api/v1/monitoring/predictions?model=linked&request_id=${id}`);
    assert.equal(rows.status, 200);
    assert.deepEqual(rows.body.predictions[0].inputs, { a: 15, b: -2, c: 3 });
  });

  test('BOOL bytes other than 0 and 1 are refused', async () => {
    const res = await postBinary(
      `${url}/v2/models/identity_bool/infer`,
      { inputs: [{ name: 'INPUT0', datatype: 'BOOL', shape: [1, 3], parameters: { binary_data_size: 3 } }] },
      [Uint8Array.of(0, 1, 2)],
    );
    assert.equal(res.status, 400);
    assert.match(
      ((await res.json()) as { error: string }).error,
      /BOOL element 2 is the byte 2; a BOOL element is 0 or 1/,
    );
  });

  test('the size limit holds for a decompressed body: a small gzip body expanding past it is a 413', async () => {
    const huge = Buffer.alloc(4 << 20, 0x20); // 4 MiB of spaces, well past the 1 MiB limit
    const res = await fetch(`${url}/v2/models/identity_fp32/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(huge),
    });
    assert.equal(res.status, 413);
    assert.match(
      ((await res.json()) as { error: string }).error,
      /once decompressed exceeds the limit of 1048576 bytes/,
    );
    await alive();
  });

  test('control-plane routes take gzip bodies too, with the size limit on the inflated bytes', async () => {
    const send = (body: Buffer, encoding = 'gzip') =>
      fetch(`${url}/v1/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body,
      });
    const ok = await send(gzipSync(JSON.stringify({ request_id: 'gz-1', ground_truth: 'yes' })));
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { accepted: 1 });
    const padded = `{"request_id":"gz-2","ground_truth":"yes"${' '.repeat(2 << 20)}}`;
    const big = await send(gzipSync(padded));
    assert.equal(big.status, 413);
    const broken = await send(Buffer.from('not gzip at all'));
    assert.equal(broken.status, 400);
    assert.match(((await broken.json()) as { error: string }).error, /cannot be decompressed/);
    const br = await send(Buffer.from('{}'), 'br');
    assert.equal(br.status, 400);
    assert.match(((await br.json()) as { error: string }).error, /Content-Encoding 'br' is not supported/);
  });

  test('an alert rule with a 256-character name can be fetched by its path', async () => {
    const name = 'r'.repeat(256);
    const made = await postJson(`${url}/api/v1/monitoring/alerts`, {
      name,
      model: 'tabular',
      expression: 'error_rate > 0.5',
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const got = await getJson(`${url}/api/v1/monitoring/alerts/${name}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.name, name);
    const del = await fetch(`${url}/api/v1/monitoring/alerts/${name}`, { method: 'DELETE' });
    assert.ok(del.status < 300);
  });

  test('compressed uploads are refused, not half-stored; a corrupt gzip upload does not stop the server', async () => {
    for (const [path, method] of [
      ['/api/v1/models/gz-model/versions?create_model=true', 'POST'],
      ['/api/2.0/mlflow-artifacts/artifacts/gz/a.txt', 'PUT'],
    ] as const) {
      for (const body of [gzipSync('hello world'), Buffer.from('\x1f\x8b\x08\x00junk', 'latin1')]) {
        const res = await fetch(`${url}${path}`, {
          method,
          headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
          body,
        });
        assert.equal(res.status, 400, path);
        // The admin API answers {error}, the MLflow proxy {error_code, message}.
        assert.match(await res.text(), /Content-Encoding 'gzip' is accepted on JSON bodies only/);
        await alive();
      }
    }
  });

  test('a path segment past 2048 characters is a 414 in the error shape of its API', async () => {
    const admin = await getJson(`${url}/api/v1/models/${'a'.repeat(3000)}`);
    assert.equal(admin.status, 414);
    assert.equal(admin.body.code, 'SLIPWAY_ERR_BAD_REQUEST');
    assert.match(admin.body.error, /longer than the 2048 characters/);
    const mlflow = await getJson(`${url}/api/2.0/mlflow/logged-models/${'a'.repeat(3000)}`);
    assert.equal(mlflow.status, 414);
    assert.equal(mlflow.body.error_code, 'INVALID_PARAMETER_VALUE');
    const badUrl = await fetch(`${url}/api/2.0/mlflow-artifacts/artifacts/%FF`, { method: 'PUT', body: 'x' });
    assert.equal(badUrl.status, 400);
    assert.equal(((await badUrl.json()) as { error_code: string }).error_code, 'INVALID_PARAMETER_VALUE');
  });

  test('a timeout past what a Node timer holds waits like no timeout, not an instant 504', async () => {
    const r = await postJson(`${url}/v2/models/slow/infer`, {
      ...slowRequest(1),
      parameters: { timeout: 2 ** 31 * 1000 }, // µs: 2^31 ms
    });
    assert.equal(r.status, 200);
    const h = await postJson(`${url}/v2/models/slow/infer`, slowRequest(1), { 'slipway-timeout-ms': '1e10' });
    assert.equal(h.status, 200);
  });

  test('a client that leaves mid-body is counted as cancelled (499), not as a server error', async () => {
    const port = Number(new URL(url).port);
    await new Promise<void>((resolve) => {
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v2/models/identity_fp32/infer',
        headers: { 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('error', () => resolve());
      req.write('{"inputs":[');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    await sleep(200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(
      metrics,
      /slipway_inference_requests_total\{model="identity_fp32",version="",protocol="rest",status="499"\} 1/,
    );
    assert.doesNotMatch(metrics, /model="identity_fp32",version="[^"]*",protocol="rest",status="500"/);
  });

  test('HEAD answers as GET without a body; load parameters must be an object', async () => {
    const head = await fetch(`${url}/v2/health/live`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    assert.equal((await fetch(`${url}/v2/models/add_sub`, { method: 'HEAD' })).status, 200);
    const r = await postJson(`${url}/v2/repository/models/add_sub/load`, { parameters: ['config'] });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /'parameters' must be an object/);
  });

  test('a request line or headers past the parser limit get a JSON 431', async () => {
    const res = await fetch(`${url}/v2/models/${'m'.repeat(20_000)}`);
    assert.equal(res.status, 431);
    assert.equal(((await res.json()) as { code: string }).code, 'SLIPWAY_ERR_BAD_REQUEST');
    await alive();
  });

  test('an empty version (or model) segment is no endpoint, not the default version', async () => {
    const record = { instances: [{ age: 41 }] };
    for (const path of ['/v1/models/tabular/versions/:predict', '/v1/models/:predict']) {
      const r = await postJson(`${url}${path}`, record);
      assert.equal(r.status, 404, path);
      assert.equal(r.body.code, 'SLIPWAY_ERR_ROUTE_NOT_FOUND', path);
    }
    assert.equal((await getJson(`${url}/v1/models/tabular/versions/`)).status, 404);
    assert.equal((await postJson(`${url}/v2/models/tabular/versions//infer`, { inputs: [] })).status, 404);
  });
});

describe('the prediction log on its own', () => {
  test('a minute with traffic is written once it ends, though no later traffic comes', async () => {
    const db = await Database.open({ url: ':memory:' });
    await db.migrate(monitoringMigrations);
    let clock = Date.UTC(2026, 0, 5, 10, 0, 30);
    const log = new PredictionLog(db, {
      flushMs: 20,
      queueMax: 1000,
      retentionDays: 7,
      logger: pino({ level: 'silent' }),
      now: () => clock,
    });
    log.start();
    const minutes = () =>
      db
        .as<MonitoringTables>()
        .selectFrom('monitoring_windows')
        .select(['window_ms', 'requests'])
        .where('granularity', '=', 'minute')
        .execute();
    try {
      log.count('m', '1', false, 5);
      log.count('m', '1', false, 5);
      await sleep(150);
      assert.deepEqual(await minutes(), []); // the minute is still open
      clock += MINUTE_MS;
      const deadline = Date.now() + 5000;
      while ((await minutes()).length === 0 && Date.now() < deadline) await sleep(20);
      assert.deepEqual(await minutes(), [{ window_ms: Date.UTC(2026, 0, 5, 10, 0, 0), requests: 2 }]);
    } finally {
      await log.close();
      await db.close();
    }
  });

  test('rows that cannot be copied to the writer thread are counted as dropped; the log goes on', async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'slipway-clone-'));
    const path = join(dir, 'slipway.db');
    const db = await Database.open({ url: path });
    await db.migrate(monitoringMigrations);
    const log = new PredictionLog(db, {
      flushMs: 1000,
      queueMax: 1000,
      retentionDays: 7,
      logger: pino({ level: 'silent' }),
      databaseUrl: path,
    });
    try {
      const entry = (id: string, note: unknown) => ({
        timeMs: Date.now(),
        model: 'm',
        version: '1',
        protocol: 'records',
        requestId: id,
        latencyUs: 10,
        records: [{ a: 1, note }],
        predictions: [{ label: 'x' }],
      });
      log.record(entry('bad', () => 1)); // a function cannot be cloned
      await log.flush();
      assert.equal(log.stats.dropped, 1);
      log.record(entry('good', 'fine'));
      await log.flush();
      assert.equal(log.stats.written, 1);
      assert.equal(log.stats.queued, 0);
    } finally {
      await log.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
