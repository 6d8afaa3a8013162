/**
 * Triton's system shared memory extension: the regions themselves (on objects in a test folder),
 * then REST and gRPC on the real server with objects in /dev/shm, as tritonclient creates them:
 * inputs read from a region, outputs written to one, and every mistake a 400 naming it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { App } from '../src/app.js';
import type { RepositoryOp } from '../src/cluster/index.js';
import { journalize } from '../src/cluster/supervisor.js';
import { MAX_REGIONS, SharedMemoryRegions } from '../src/inference/shared-memory.js';
import { fetchReply, grpcClient, startTestApp } from './helpers.js';

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const floats = (b: Buffer, offset = 0, n = (b.length - offset) / 4) =>
  Array.from(new Float32Array(b.buffer.slice(b.byteOffset + offset, b.byteOffset + offset + 4 * n)));

describe('SharedMemoryRegions', () => {
  const root = mkdtempSync(join(tmpdir(), 'slipway-shm-'));
  const regions = new SharedMemoryRegions({ allowed: true, root });
  writeFileSync(join(root, 'obj'), Buffer.alloc(64));
  after(() => {
    regions.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('registers, reports, reads, writes and unregisters regions', () => {
    regions.register({ name: 'a', key: '/obj', offset: 16, byteSize: 32 });
    regions.register({ name: 'b', key: 'obj', offset: 0, byteSize: 64 });
    assert.deepEqual(regions.status('a'), [{ name: 'a', key: '/obj', offset: 16, byteSize: 32 }]);
    assert.equal(regions.status().length, 2);
    regions.write({ region: 'a', offset: 8, byteSize: 8 }, f32([1.5, 2.5]), "output 'y'");
    // Region a starts at byte 16 of the object: its byte 8 is the object's byte 24.
    assert.deepEqual(floats(readFileSync(join(root, 'obj')), 24, 2), [1.5, 2.5]);
    assert.deepEqual(
      floats(Buffer.from(regions.read({ region: 'b', offset: 24, byteSize: 8 }, "input 'x'"))),
      [1.5, 2.5],
    );
    regions.unregister('a');
    regions.unregister('a'); // an unknown name is no error
    assert.deepEqual(
      regions.status().map((r) => r.name),
      ['b'],
    );
    regions.unregister();
    assert.equal(regions.size, 0);
    assert.equal(regions.openObjects, 0);
  });

  test('regions of one object share one open file, closed with the last of them', () => {
    writeFileSync(join(root, 'again'), Buffer.from('OLD!'));
    for (let i = 0; i < 3; i++) regions.register({ name: `s${i}`, key: '/obj', offset: 8 * i, byteSize: 8 });
    assert.equal(regions.openObjects, 1);
    regions.unregister('s0');
    regions.unregister('s1');
    assert.equal(regions.openObjects, 1);
    regions.unregister('s2');
    assert.equal(regions.openObjects, 0);
    // An object unlinked and created again under its key is a new object, read as it is now.
    regions.register({ name: 'old', key: '/again', offset: 0, byteSize: 4 });
    rmSync(join(root, 'again'));
    writeFileSync(join(root, 'again'), Buffer.from('NEW!NEW!'));
    regions.register({ name: 'new', key: '/again', offset: 0, byteSize: 8 });
    assert.equal(regions.openObjects, 2);
    assert.equal(
      Buffer.from(regions.read({ region: 'new', offset: 0, byteSize: 4 }, "input 'x'")).toString(),
      'NEW!',
    );
    assert.equal(
      Buffer.from(regions.read({ region: 'old', offset: 0, byteSize: 4 }, "input 'x'")).toString(),
      'OLD!',
    );
    regions.unregister();
    assert.equal(regions.openObjects, 0);
    for (let i = 0; i < MAX_REGIONS; i++)
      regions.register({ name: `m${i}`, key: '/obj', offset: 0, byteSize: 8 });
    assert.throws(
      () => regions.register({ name: 'one-more', key: '/obj', offset: 0, byteSize: 8 }),
      new RegExp(`${MAX_REGIONS} shared memory regions are registered, the most this server keeps`),
    );
    regions.unregister();
  });

  test('every mistake is a 400 naming the field or region', () => {
    const rejects = (fn: () => unknown, message: RegExp, code = 'SLIPWAY_ERR_BAD_REQUEST') =>
      assert.throws(fn, (e: any) => e.code === code && message.test(e.message));
    const reg = (r: object) => () =>
      regions.register({ name: 'r', key: '/obj', offset: 0, byteSize: 8, ...r });
    rejects(reg({ key: '../etc/passwd' }), /'key' "..\/etc\/passwd" is not a shared memory object name/);
    rejects(reg({ key: '/a/b' }), /is not a shared memory object name/);
    rejects(reg({ key: 7 }), /'key' must be a string, got 7/);
    rejects(reg({ key: '/missing' }), /'\/missing' does not exist \(create it with shm_open first\)/);
    symlinkSync(join(root, 'obj'), join(root, 'link'));
    rejects(reg({ key: '/link' }), /'\/link' is a symbolic link, not a shared memory object/);
    rejects(reg({ offset: -1 }), /'offset' must be a non-negative integer, got -1/);
    rejects(reg({ byteSize: 0 }), /'byte_size' must be a positive integer, got 0/);
    rejects(reg({ byteSize: 1.5 }), /'byte_size' must be a positive integer, got 1.5/);
    rejects(reg({ offset: 60 }), /offset 60 \+ byte_size 8 runs past the end of '\/obj' \(64 bytes\)/);
    rejects(reg({ name: '' }), /'name' must be a non-empty region name/);
    reg({})();
    rejects(reg({}), /shared memory region 'r' is already registered/, 'SLIPWAY_ERR_ALREADY_EXISTS');
    rejects(
      () => regions.status('nope'),
      /no shared memory region 'nope' is registered/,
      'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
    );
    rejects(
      () => regions.read({ region: 'nope', offset: 0, byteSize: 4 }, "input 'x'"),
      /input 'x': .*'nope' is not registered/,
    );
    rejects(
      () => regions.read({ region: 'r', offset: 4, byteSize: 8 }, "input 'x'"),
      /input 'x': shared_memory_offset 4 \+ shared_memory_byte_size 8 runs past the end of region 'r' \(8 bytes\)/,
    );
    rejects(
      () => regions.write({ region: 'r', offset: 0, byteSize: 4 }, f32([1, 2]), "output 'y'"),
      /output 'y' is 8 bytes, more than its shared_memory_byte_size of 4/,
    );
    writeFileSync(join(root, 'short'), Buffer.alloc(16));
    regions.register({ name: 'short', key: '/short', offset: 0, byteSize: 16 });
    truncateSync(join(root, 'short'), 4);
    rejects(
      () => regions.read({ region: 'short', offset: 0, byteSize: 16 }, "input 'x'"),
      /input 'x': shared memory object '\/short' ends before the 16 bytes .*truncated/,
    );
    regions.unregister();
    const off = new SharedMemoryRegions({ allowed: false, root });
    rejects(
      () => off.register({ name: 'r', key: '/obj', offset: 0, byteSize: 8 }),
      /registering shared memory is off on this server; start it with --allow-client-shm/,
    );
  });

  test('a replacement serving process repeats the regions registered now, not those unregistered', () => {
    const journal = new Map<string, RepositoryOp>();
    const region = (name: string) => ({ name, key: '/obj', offset: 0, byteSize: 8 });
    journalize(journal, { kind: 'shm-register', region: region('a') });
    journalize(journal, { kind: 'shm-register', region: region('b') });
    journalize(journal, { kind: 'unload', model: 'a' });
    journalize(journal, { kind: 'shm-unregister', name: 'a' });
    assert.deepEqual(
      [...journal.values()].map((op) =>
        op.kind === 'shm-register' ? `register ${op.region.name}` : op.kind,
      ),
      ['register b', 'unload'],
    );
    journalize(journal, { kind: 'shm-unregister' });
    assert.deepEqual(
      [...journal.values()].map((op) => op.kind),
      ['unload'],
    );
  });
});

describe('system shared memory on the real server', () => {
  let app: App;
  let base: string;
  let client: grpc.Client;
  const keys = { in: `/slipway-test-${process.pid}-in`, out: `/slipway-test-${process.pid}-out` };
  const file = (key: string) => join('/dev/shm', key.slice(1));
  const call = (method: string, path: string, body?: unknown) => fetchReply(`${base}${path}`, method, body);
  const grpcCall = (method: string, req: object) =>
    new Promise<Record<string, any>>((resolve, reject) =>
      (client as any)[method](req, (err: grpc.ServiceError | null, res: any) =>
        err ? reject(err) : resolve(res),
      ),
    );

  before(async () => {
    // add_sub version 1: OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, [N, 4] FP32.
    writeFileSync(file(keys.in), f32([1, 2, 3, 4, 10, 20, 30, 40]));
    writeFileSync(file(keys.out), Buffer.alloc(64));
    app = await startTestApp({ grpcPort: 0, allowClientShm: true });
    base = app.http.url;
    client = grpcClient(app.grpc!.port);
    for (const [name, key, size] of [
      ['in', keys.in, 32],
      ['out', keys.out, 64],
    ] as const) {
      const r = await call('POST', `/v2/systemsharedmemory/region/${name}/register`, {
        key,
        offset: 0,
        byte_size: size,
      });
      assert.equal(r.status, 200, r.text);
    }
  });
  after(async () => {
    client.close();
    await app.close();
    rmSync(file(keys.in), { force: true });
    rmSync(file(keys.out), { force: true });
  });

  const sharedInput = (name: string, offset: number) => ({
    name,
    datatype: 'FP32',
    shape: [1, 4],
    parameters: { shared_memory_region: 'in', shared_memory_byte_size: 16, shared_memory_offset: offset },
  });

  test('server metadata lists the extension; status lists the regions', async () => {
    const meta = await call('GET', '/v2');
    assert.ok(meta.body.extensions.includes('system_shared_memory'));
    assert.deepEqual((await call('GET', '/v2/systemsharedmemory/region/in/status')).body, [
      { name: 'in', key: keys.in, offset: 0, byte_size: 32 },
    ]);
    assert.equal((await call('GET', '/v2/systemsharedmemory/status')).body.length, 2);
    const unknown = await call('GET', '/v2/systemsharedmemory/region/nope/status');
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error, /no shared memory region 'nope' is registered/);
    const { regions } = await grpcCall('SystemSharedMemoryStatus', {});
    assert.deepEqual(regions.in, { name: 'in', key: keys.in, offset: '0', byte_size: '32' });
  });

  test('REST: inputs from a region, one output to a region and one inline', async () => {
    writeFileSync(file(keys.out), Buffer.alloc(64));
    const r = await call('POST', '/v2/models/add_sub/versions/1/infer', {
      inputs: [sharedInput('INPUT0', 0), sharedInput('INPUT1', 16)],
      outputs: [
        {
          name: 'OUTPUT0',
          parameters: { shared_memory_region: 'out', shared_memory_byte_size: 16, shared_memory_offset: 8 },
        },
        { name: 'OUTPUT1' },
      ],
    });
    assert.equal(r.status, 200, r.text);
    // The output in shared memory is answered with its shape only, as Triton answers it.
    assert.deepEqual(r.body.outputs, [
      { name: 'OUTPUT0', datatype: 'FP32', shape: [1, 4] },
      { name: 'OUTPUT1', datatype: 'FP32', shape: [1, 4], data: [-9, -18, -27, -36] },
    ]);
    assert.deepEqual(floats(readFileSync(file(keys.out)), 8, 4), [11, 22, 33, 44]);
  });

  test('gRPC: a region beside raw contents, outputs raw with an empty entry for the one in a region', async () => {
    writeFileSync(file(keys.out), Buffer.alloc(64));
    const res = await grpcCall('ModelInfer', {
      model_name: 'add_sub',
      model_version: '1',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [1, 4] },
        {
          name: 'INPUT1',
          datatype: 'FP32',
          shape: [1, 4],
          parameters: {
            shared_memory_region: { string_param: 'in' },
            shared_memory_byte_size: { int64_param: 16 },
            shared_memory_offset: { int64_param: 16 },
          },
        },
      ],
      outputs: [
        { name: 'OUTPUT0' },
        {
          name: 'OUTPUT1',
          parameters: {
            shared_memory_region: { string_param: 'out' },
            shared_memory_byte_size: { int64_param: 16 },
          },
        },
      ],
      raw_input_contents: [f32([5, 5, 5, 5])],
    });
    assert.deepEqual(floats(res.raw_output_contents[0]), [15, 25, 35, 45]);
    assert.equal(res.raw_output_contents[1].length, 0);
    assert.equal(res.outputs[1].contents, undefined);
    assert.deepEqual(floats(readFileSync(file(keys.out)), 0, 4), [-5, -15, -25, -35]);
  });

  test('mistakes are 400s naming the input, output or region', async () => {
    const infer = (body: object) => call('POST', '/v2/models/add_sub/versions/1/infer', body);
    const cases: [object, RegExp][] = [
      [
        { inputs: [{ ...sharedInput('INPUT0', 0), data: [1, 2, 3, 4] }, sharedInput('INPUT1', 16)] },
        /input 'INPUT0' is in shared memory .*must not also have 'data'/,
      ],
      [
        { inputs: [sharedInput('INPUT0', 24), sharedInput('INPUT1', 16)] },
        /input 'INPUT0': shared_memory_offset 24 \+ shared_memory_byte_size 16 runs past the end of region 'in'/,
      ],
      [
        {
          inputs: [
            {
              ...sharedInput('INPUT0', 0),
              parameters: { shared_memory_region: 'gone', shared_memory_byte_size: 16 },
            },
            sharedInput('INPUT1', 16),
          ],
        },
        /input 'INPUT0': shared memory region 'gone' is not registered/,
      ],
      [
        {
          inputs: [
            { ...sharedInput('INPUT0', 0), parameters: { shared_memory_region: 'in' } },
            sharedInput('INPUT1', 16),
          ],
        },
        /input 'INPUT0': shared_memory_byte_size must be a non-negative integer/,
      ],
      [
        {
          inputs: [sharedInput('INPUT0', 0), sharedInput('INPUT1', 16)],
          outputs: [
            { name: 'OUTPUT0', parameters: { shared_memory_region: 'out', shared_memory_byte_size: 8 } },
          ],
        },
        /output 'OUTPUT0' is 16 bytes, more than its shared_memory_byte_size of 8/,
      ],
      [
        {
          inputs: [sharedInput('INPUT0', 0), sharedInput('INPUT1', 16)],
          outputs: [
            { name: 'OUTPUT0', parameters: { shared_memory_region: 'nope', shared_memory_byte_size: 16 } },
          ],
        },
        /output 'OUTPUT0': shared memory region 'nope' is not registered/,
      ],
    ];
    for (const [body, message] of cases) {
      const r = await infer(body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error, message);
    }
    const register = await call('POST', '/v2/systemsharedmemory/region/x/register', {
      key: keys.in,
      byte_size: 'ten',
    });
    assert.equal(register.status, 400);
    assert.match(register.body.error, /'byte_size' must be a positive integer, got "ten"/);
  });

  test('CUDA shared memory: no regions, none can be registered', async () => {
    assert.deepEqual((await call('GET', '/v2/cudasharedmemory/status')).body, []);
    assert.equal((await call('GET', '/v2/cudasharedmemory/region/g/status')).status, 404);
    assert.equal((await call('POST', '/v2/cudasharedmemory/unregister')).status, 200);
    const r = await call('POST', '/v2/cudasharedmemory/region/g/register', {
      raw_handle: { b64: '' },
      device_id: 0,
      byte_size: 8,
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /CUDA shared memory is not supported/);
    await assert.rejects(
      grpcCall('CudaSharedMemoryRegister', { name: 'g', byte_size: 8 }),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /not supported/.test(e.details),
    );
    assert.deepEqual((await grpcCall('CudaSharedMemoryStatus', {})).regions ?? {}, {});
  });

  test('unregistering over gRPC: one region, then all', async () => {
    await grpcCall('SystemSharedMemoryUnregister', { name: 'out' });
    assert.deepEqual(
      (await call('GET', '/v2/systemsharedmemory/status')).body.map((r: any) => r.name),
      ['in'],
    );
    await grpcCall('SystemSharedMemoryUnregister', {});
    assert.deepEqual((await call('GET', '/v2/systemsharedmemory/status')).body, []);
    await grpcCall('SystemSharedMemoryRegister', { name: 'in', key: keys.in, offset: 0, byte_size: 32 });
    assert.equal((await call('GET', '/v2/systemsharedmemory/status')).body.length, 1);
  });
});

test('registration is off unless allowed, and the extension is not listed', async () => {
  const app = await startTestApp({});
  try {
    const meta = await fetchReply(`${app.http.url}/v2`, 'GET');
    assert.ok(!meta.body.extensions.includes('system_shared_memory'));
    const r = await fetchReply(`${app.http.url}/v2/systemsharedmemory/region/r/register`, 'POST', {
      key: '/x',
      offset: 0,
      byte_size: 8,
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /--allow-client-shm/);
    assert.deepEqual((await fetchReply(`${app.http.url}/v2/systemsharedmemory/status`, 'GET')).body, []);
  } finally {
    await app.close();
  }
});
