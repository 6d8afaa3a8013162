/**
 * Triton's response cache: identical requests to a model that enables it are answered from the
 * cache (counted as cache hits, not executions), keys tell requests apart by every input value,
 * shape, datatype, the outputs asked for and the loaded version, and the cache stays within its
 * size, least recently used first.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { App } from '../src/app.js';
import { loadSettings } from '../src/config/index.js';
import {
  FolderModelSource,
  ModelManager,
  OnnxRuntimePool,
  ResponseCache,
  resolveModelConfig,
  type Tensor,
} from '../src/inference/index.js';
import { FIXTURES, getJson, grpcClient, postJson, startTestApp, tempRepository } from './helpers.js';

const f32 = (name: string, values: number[], shape = [1, values.length]): Tensor => ({
  name,
  datatype: 'FP32',
  shape,
  data: Float32Array.from(values),
});

const L = (model: string, version: string, loadId = 1) => ResponseCache.load(model, version, loadId);

describe('ResponseCache', () => {
  test('keys differ by load, version, outputs, and each input name, datatype, shape and value', () => {
    const base = ResponseCache.key(L('m', '1'), [f32('x', [1, 2, 3, 4])], ['y']);
    const variants = [
      ResponseCache.key(L('m', '1', 2), [f32('x', [1, 2, 3, 4])], ['y']),
      ResponseCache.key(L('m', '2'), [f32('x', [1, 2, 3, 4])], ['y']),
      ResponseCache.key(L('n', '1'), [f32('x', [1, 2, 3, 4])], ['y']),
      ResponseCache.key(L('m', '1'), [f32('x', [1, 2, 3, 4])], ['y', 'z']),
      ResponseCache.key(L('m', '1'), [f32('x', [1, 2, 3, 5])], ['y']),
      ResponseCache.key(L('m', '1'), [f32('x', [1, 2, 3, 4], [2, 2])], ['y']),
      ResponseCache.key(L('m', '1'), [f32('w', [1, 2, 3, 4])], ['y']),
      ResponseCache.key(
        L('m', '1'),
        [{ ...f32('x', []), datatype: 'INT32', data: Int32Array.of(1, 2, 3, 4) }],
        ['y'],
      ),
    ];
    assert.equal(new Set([base, ...variants]).size, variants.length + 1);
    assert.equal(
      ResponseCache.key(L('m', '1'), [f32('x', [1, 2, 3, 4])], ['y']),
      base,
      'the same request, the same key',
    );
    const strings = (d: string[]): Tensor => ({ name: 's', datatype: 'BYTES', shape: [d.length], data: d });
    assert.notEqual(
      ResponseCache.key(L('m', '1'), [strings(['ab', 'c'])], []),
      ResponseCache.key(L('m', '1'), [strings(['a', 'bc'])], []),
    );
    // A view into a larger buffer keys on its own bytes only.
    const big = Float32Array.of(9, 1, 2, 3, 4, 9);
    const view: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 4], data: big.subarray(1, 5) };
    assert.equal(ResponseCache.key(L('m', '1'), [view], ['y']), base);
  });

  test('keeps a copy, evicts the least recently used to stay within its size', () => {
    const out = (v: number) => [
      f32(
        'y',
        Array.from({ length: 64 }, () => v),
      ),
    ]; // 256 bytes of data
    const cache = new ResponseCache(3 * (256 + 256 + 44) + 10); // room for three entries
    const original = out(1);
    cache.set('a', original, 'L');
    (original[0]!.data as Float32Array)[0] = 99;
    assert.equal(
      (cache.get('a')![0]!.data as Float32Array)[0],
      1,
      'the answer changing later does not change the cache',
    );
    cache.set('b', out(2), 'L');
    cache.set('c', out(3), 'L');
    cache.get('a'); // a is now the most recently used
    cache.set('d', out(4), 'L');
    assert.equal(cache.get('b'), undefined, 'b was the least recently used');
    assert.ok(cache.get('a') && cache.get('c') && cache.get('d'));
    assert.equal(cache.evictions, 1);
    assert.ok(cache.usedBytes <= cache.maxBytes);
    cache.set('huge', [f32('y', new Array(10_000).fill(0))], 'L');
    assert.equal(cache.get('huge'), undefined, 'an answer larger than the cache is not kept');
    assert.equal(cache.size, 3);
  });

  test("drops a load's entries, and only those", () => {
    const cache = new ResponseCache(1 << 20);
    cache.set('a', [f32('y', [1])], L('m', '1', 1));
    cache.set('b', [f32('y', [2])], L('m', '1', 2));
    cache.set('c', [f32('y', [3])], L('m', '1', 1));
    const before = cache.usedBytes;
    cache.dropLoad(L('m', '1', 1));
    assert.equal(cache.size, 1);
    assert.ok(cache.get('b'));
    assert.equal(cache.get('a'), undefined);
    assert.ok(cache.usedBytes > 0 && cache.usedBytes < before / 2);
    cache.dropLoad(L('m', '1', 2));
    assert.equal(cache.usedBytes, 0);
  });

  test('config.json response_cache is read and checked', () => {
    assert.equal(resolveModelConfig('m', { response_cache: { enable: true } }).responseCache, true);
    assert.equal(resolveModelConfig('m', {}).responseCache, false);
    assert.throws(
      () => resolveModelConfig('m', { response_cache: { enable: 'yes' } }),
      /'response_cache.enable' must be true or false/,
    );
    assert.throws(
      () => resolveModelConfig('m', { response_cache: { size: 1 } }),
      /'response_cache.size' must be one of: enable/,
    );
    assert.equal(
      loadSettings({ env: { SLIPWAY_RESPONSE_CACHE_BYTES: '1048576' } }).responseCacheBytes,
      1048576,
    );
    assert.throws(
      () => loadSettings({ env: { SLIPWAY_RESPONSE_CACHE_BYTES: '-1' } }),
      /SLIPWAY_RESPONSE_CACHE_BYTES/,
    );
  });
});

test('a model that enables the cache on a server without one is served, with a warning', async () => {
  const repo = await tempRepository(['identity_fp32']);
  try {
    await writeFile(
      join(repo.dir, 'identity_fp32', 'config.json'),
      JSON.stringify({ response_cache: { enable: true } }),
    );
    const warnings = async (responseCache: boolean) => {
      const lines: { msg: string; model?: string }[] = [];
      const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
      const manager = new ModelManager({
        sources: [new FolderModelSource(repo.dir)],
        logger,
        createRuntime: (path, config) => OnnxRuntimePool.create(path, config),
        responseCache,
      });
      await manager.load('identity_fp32');
      assert.equal(manager.versionsOf('identity_fp32')[0]!.state, 'READY');
      await manager.close();
      return lines.filter((l) => /response_cache/.test(l.msg));
    };
    const [warning, ...more] = await warnings(false);
    assert.equal(more.length, 0);
    assert.equal(warning!.model, 'identity_fp32');
    assert.match(warning!.msg, /no cache \(give it --response-cache-bytes\): served uncached/);
    assert.deepEqual(await warnings(true), [], 'no warning where the server has a cache');
  } finally {
    await repo.remove();
  }
});

describe('the response cache on a live server', () => {
  let app: App;
  let base: string;
  let repo: Awaited<ReturnType<typeof tempRepository>>;

  const addSub = (a: number[]) => ({
    inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], data: a },
      { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] },
    ],
  });
  const stats = async (model: string, version: string) =>
    (await getJson(`${base}/v2/models/${model}/versions/${version}/stats`)).body.model_stats[0];

  before(async () => {
    repo = await tempRepository(['add_sub', 'identity_fp32']);
    await writeFile(
      join(repo.dir, 'add_sub', 'config.json'),
      JSON.stringify({ max_batch_size: 8, version_policy: { all: {} }, response_cache: { enable: true } }),
    );
    app = await startTestApp({ models: repo.dir, grpcPort: 0, responseCacheBytes: 1 << 20 });
    base = app.http.url;
  });
  after(async () => {
    await app.close();
    await repo.remove();
  });

  test('an identical request is answered from the cache: a hit, no execution', async () => {
    const first = await postJson(`${base}/v2/models/add_sub/versions/2/infer`, addSub([1, 2, 3, 4]));
    const second = await postJson(`${base}/v2/models/add_sub/versions/2/infer`, addSub([1, 2, 3, 4]));
    assert.equal(second.status, 200);
    assert.deepEqual(second.body.outputs, first.body.outputs);
    assert.deepEqual(first.body.outputs[0].data, [3, 4, 5, 6]);
    const other = await postJson(`${base}/v2/models/add_sub/versions/2/infer`, addSub([0, 0, 0, 1]));
    assert.deepEqual(other.body.outputs[0].data, [2, 2, 2, 3], 'other inputs run the model');
    // Only the sum asked for: another key.
    const one = await postJson(`${base}/v2/models/add_sub/versions/2/infer`, {
      ...addSub([1, 2, 3, 4]),
      outputs: [{ name: 'OUTPUT1' }],
    });
    assert.deepEqual(
      one.body.outputs.map((o: { name: string }) => o.name),
      ['OUTPUT1'],
    );
    const s = await stats('add_sub', '2');
    assert.deepEqual(
      [s.inference_stats.cache_hit.count, s.inference_stats.cache_miss.count, s.execution_count],
      [1, 3, 3],
    );
    // As Triton counts a hit: a success and a queue entry, not an inference.
    assert.equal(s.inference_stats.success.count, 4);
    assert.equal(s.inference_stats.queue.count, 4);
    assert.equal(s.inference_count, 3);
    assert.ok(s.inference_stats.cache_hit.ns > 0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(
      metrics,
      /^slipway_response_cache_lookups_total\{model="add_sub",version="2",result="hit"\} 1$/m,
    );
    assert.match(
      metrics,
      /^slipway_response_cache_lookups_total\{model="add_sub",version="2",result="miss"\} 3$/m,
    );
    assert.match(metrics, /^slipway_response_cache_entries 3$/m);
    assert.match(metrics, /^slipway_response_cache_bytes \d+$/m);
    assert.match(metrics, /^slipway_response_cache_evictions_total 0$/m);
    // Version 1 is another key: the same inputs run it.
    const v1 = await postJson(`${base}/v2/models/add_sub/versions/1/infer`, addSub([1, 2, 3, 4]));
    assert.deepEqual(v1.body.outputs[0].data, [2, 3, 4, 5]);
  });

  test('a model that does not enable it is not cached', async () => {
    const body = { inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };
    await postJson(`${base}/v2/models/identity_fp32/infer`, body);
    await postJson(`${base}/v2/models/identity_fp32/infer`, body);
    const s = (await getJson(`${base}/v2/models/identity_fp32/stats`)).body.model_stats[0];
    assert.deepEqual(
      [s.inference_stats.cache_hit.count, s.inference_stats.cache_miss.count, s.execution_count],
      [0, 0, 2],
    );
  });

  test('other files loaded under the same version number are not answered from the old ones', async () => {
    // Version 1 becomes the repository's version 2 (a + b + 1), uploaded with the load.
    const v2 = await readFile(join(FIXTURES, 'add_sub', '2', 'model.onnx'));
    const load = await postJson(`${base}/v2/repository/models/add_sub/load`, {
      parameters: {
        config: JSON.stringify({ response_cache: { enable: true } }),
        'file:1/model.onnx': v2.toString('base64'),
      },
    });
    assert.equal(load.status, 200, JSON.stringify(load.body));
    const r = await postJson(`${base}/v2/models/add_sub/versions/1/infer`, addSub([1, 2, 3, 4]));
    assert.deepEqual(r.body.outputs[0].data, [3, 4, 5, 6]);
    const entries = async () =>
      Number(
        (await (await fetch(`${base}/metrics`)).text()).match(/^slipway_response_cache_entries (\d+)$/m)![1],
      );
    assert.equal(await entries(), 1, 'the versions the upload replaced took their entries along');
    assert.equal((await postJson(`${base}/v2/repository/models/add_sub/load`, {})).status, 200);
    assert.equal(await entries(), 0, 'and so did the uploaded version');
  });

  test('/config and gRPC ModelConfig report it; gRPC statistics carry the hits', async () => {
    const config = await getJson(`${base}/v2/models/add_sub/config`);
    assert.deepEqual(config.body.response_cache, { enable: true });
    const client = grpcClient(app.grpc!.port);
    const call = (method: string, req: unknown) =>
      new Promise<any>((resolve, reject) =>
        (client as any)[method](req, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
      );
    try {
      const c = await call('ModelConfig', { name: 'add_sub' });
      assert.deepEqual(c.config.response_cache, { enable: true });
      await postJson(`${base}/v2/models/add_sub/versions/2/infer`, addSub([5, 5, 5, 5]));
      await postJson(`${base}/v2/models/add_sub/versions/2/infer`, addSub([5, 5, 5, 5]));
      const s = await call('ModelStatistics', { name: 'add_sub', version: '2' });
      assert.ok(Number(s.model_stats[0].inference_stats.cache_hit.count) >= 1);
    } finally {
      client.close();
    }
  });
});
