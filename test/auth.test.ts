/** API tokens: scopes on every transport, hashing, revocation, expiry, and the loopback guard. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { App } from '../src/app.js';
import { allows, isLoopback, TokenStore, tokenMigrations } from '../src/auth/index.js';
import { grpcProtoPath, LOADER_OPTIONS } from '../src/server/grpc/index.js';
import { Database } from '../src/store/index.js';
import { addSubRequest, REPO_ROOT, startTestApp } from './helpers.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';

const run = promisify(execFile);

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

async function call(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

test('slipway tokens create stores a fractional expiry as whole milliseconds and refuses a bad one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-cli-tokens-'));
  const cli = (...args: string[]) =>
    run(process.execPath, [join(REPO_ROOT, 'bin/slipway.js'), 'tokens', ...args, '--data-dir', dir], {
      env: { ...process.env, SLIPWAY_LOG_LEVEL: 'silent' },
    });
  try {
    await cli('create', '--name', 'tiny', '--expires-in-days', '0.000000123');
    for (const bad of ['0', '-1', 'abc', '0x10', '1e9']) {
      await assert.rejects(
        cli('create', '--name', 'bad', '--expires-in-days', bad),
        (err: { stderr: string }) => {
          assert.match(err.stderr, /--expires-in-days must be a number of days/);
          return true;
        },
      );
    }
    const { stdout } = await cli('list');
    assert.match(stdout, /tiny\s+read\s+\S+\s+expired/);
    assert.doesNotMatch(stdout, /bad/);
    const db = await Database.open({ url: join(dir, 'slipway.db') });
    try {
      // The row itself, not the listing (which rounds what older versions stored).
      const rows = await db.as<any>().selectFrom('api_tokens').select('expires_ms').execute();
      assert.equal(rows.length, 1);
      assert.ok(Number.isInteger(Number(rows[0].expires_ms)), String(rows[0].expires_ms));
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('token auth over REST, the control plane and gRPC', () => {
  let app: App;
  let dataDir: string;
  let admin: string;
  let reader: string;
  let predictor: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-auth-'));
    // The first admin token comes from the CLI, straight on the store, before the server runs.
    const { stdout } = await run(
      process.execPath,
      [
        join(REPO_ROOT, 'bin/slipway.js'),
        'tokens',
        'create',
        '--name',
        'root',
        '--scope',
        'admin',
        '--data-dir',
        dataDir,
      ],
      { env: { ...process.env, SLIPWAY_LOG_LEVEL: 'silent' } },
    );
    admin = stdout.trim();
    assert.match(admin, /^slw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    app = await startTestApp({ dataDir, auth: 'token', grpcPort: 0 });
    const mk = async (name: string, scopes: string[]) => {
      const r = await call(`${app.http.url}/api/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(admin) },
        body: JSON.stringify({ name, scopes }),
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body.token as string;
    };
    reader = await mk('dashboard', ['read']);
    predictor = await mk('checkout-service', ['predict']);
  });
  after(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('health stays open; everything else needs a token', async () => {
    assert.equal((await call(`${app.http.url}/v2/health/ready`)).status, 200);
    assert.equal((await call(`${app.http.url}/v2/health/live`)).status, 200);
    const meta = await call(`${app.http.url}/v2/models/add_sub`);
    assert.equal(meta.status, 401);
    assert.equal(meta.body.code, 'SLIPWAY_ERR_UNAUTHENTICATED');
    assert.equal((await call(`${app.http.url}/metrics`)).status, 401);
    assert.equal((await call(`${app.http.url}/api/v1/tokens`)).status, 401);
    assert.equal(
      (await call(`${app.http.url}/v2/models/add_sub`, { headers: bearer('slw_nope') })).status,
      401,
    );
  });

  test('scopes: read reads, predict infers, only admin manages tokens and the repository', async () => {
    const infer = (token: string) =>
      call(`${app.http.url}/v2/models/add_sub/versions/1/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(token) },
        body: JSON.stringify(addSubRequest(1)),
      });
    assert.equal((await call(`${app.http.url}/v2/models/add_sub`, { headers: bearer(reader) })).status, 200);
    const denied = await infer(reader);
    assert.equal(denied.status, 403);
    assert.match(denied.body.error, /needs 'predict'/);
    const ok = await infer(predictor);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.outputs[0].data, [2, 2.5, 3, 3.5]);
    // Shared memory: status is a read, (un)registering needs 'predict'.
    const shm = (path: string, token: string, method = 'POST') =>
      call(`${app.http.url}/v2/systemsharedmemory${path}`, { method, headers: bearer(token) });
    assert.equal((await shm('/status', reader, 'GET')).status, 200);
    assert.equal((await shm('/unregister', reader)).status, 403);
    assert.equal((await shm('/region/r/register', reader)).status, 403);
    assert.equal((await shm('/unregister', predictor)).status, 200);
    // Log settings: reading needs 'read', changing them 'admin'.
    const logging = (token: string, method = 'POST') =>
      call(`${app.http.url}/v2/logging`, {
        method,
        headers: bearer(token),
        ...(method === 'POST' ? { body: '{}' } : {}),
      });
    assert.equal((await logging(reader, 'GET')).status, 200);
    assert.equal((await logging(predictor)).status, 403);
    assert.equal((await logging(admin)).status, 200);
    assert.equal(
      (await call(`${app.http.url}/v2/models/add_sub`, { headers: bearer(predictor) })).status,
      403,
    );
    assert.equal((await call(`${app.http.url}/api/v1/tokens`, { headers: bearer(reader) })).status, 403);
    const unload = await call(`${app.http.url}/v2/repository/models/identity_fp32/unload`, {
      method: 'POST',
      headers: bearer(reader),
    });
    assert.equal(unload.status, 403);
    assert.equal((await infer(admin)).status, 200, 'admin implies every scope');
  });

  test('Basic auth carries the token as the password, as MLFLOW_TRACKING_USERNAME/PASSWORD do', async () => {
    const basic = `Basic ${Buffer.from(`anyone:${reader}`).toString('base64')}`;
    assert.equal(
      (await call(`${app.http.url}/v2/models/add_sub`, { headers: { authorization: basic } })).status,
      200,
    );
  });

  test('the token list never shows secrets; a revoked token stops working at once', async () => {
    const list = await call(`${app.http.url}/api/v1/tokens`, { headers: bearer(admin) });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.tokens.map((t: { name: string }) => t.name).sort(), [
      'checkout-service',
      'dashboard',
      'root',
    ]);
    const text = JSON.stringify(list.body);
    for (const t of [admin, reader, predictor]) assert.ok(!text.includes(t.slice(-43)), 'a secret leaked');
    const temp = await call(`${app.http.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(admin) },
      body: JSON.stringify({ name: 'temp', scopes: ['read'] }),
    });
    assert.equal(
      (await call(`${app.http.url}/v2/models/add_sub`, { headers: bearer(temp.body.token) })).status,
      200,
    );
    const revoked = await call(`${app.http.url}/api/v1/tokens/${temp.body.info.id}`, {
      method: 'DELETE',
      headers: bearer(admin),
    });
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revoked_ms > 0);
    const after = await call(`${app.http.url}/v2/models/add_sub`, { headers: bearer(temp.body.token) });
    assert.equal(after.status, 401);
    assert.match(after.body.error, /revoked/);
  });

  test('bad token requests are 400s naming the field', async () => {
    const r = await call(`${app.http.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(admin) },
      body: JSON.stringify({ name: 'x', scopes: ['superuser'] }),
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /scopes/);
  });

  test('gRPC reads the authorization metadata; ServerLive stays open', async () => {
    const definition = loadSync(grpcProtoPath(), LOADER_OPTIONS);
    const inference = grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject;
    const Service = inference.GRPCInferenceService as grpc.ServiceClientConstructor;
    const client = new Service(`127.0.0.1:${app.grpc!.port}`, grpc.credentials.createInsecure());
    const unary = (method: string, req: object, token?: string) =>
      new Promise<{ err: grpc.ServiceError | null; res: any }>((resolve) => {
        const md = new grpc.Metadata();
        if (token) md.set('authorization', `Bearer ${token}`);
        (client[method] as any).call(client, req, md, {}, (err: grpc.ServiceError | null, res: any) =>
          resolve({ err, res }),
        );
      });
    try {
      assert.equal((await unary('ServerLive', {})).res.live, true);
      const meta = await unary('ModelMetadata', { name: 'add_sub' });
      assert.equal(meta.err?.code, grpc.status.UNAUTHENTICATED);
      const req = {
        model_name: 'add_sub',
        model_version: '1',
        inputs: [
          { name: 'INPUT0', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [0, 0.5, 1, 1.5] } },
          { name: 'INPUT1', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [2, 2, 2, 2] } },
        ],
      };
      assert.equal((await unary('ModelInfer', req, reader)).err?.code, grpc.status.PERMISSION_DENIED);
      const ok = await unary('ModelInfer', req, predictor);
      assert.equal(ok.err, null);
      assert.deepEqual(ok.res.outputs[0].contents.fp32_contents, [2, 2.5, 3, 3.5]);
      // A stream is authorized once, when it opens, with the predict scope.
      const stream = (token?: string) =>
        new Promise<{ status: grpc.StatusObject; answers: any[] }>((resolve) => {
          const md = new grpc.Metadata();
          if (token) md.set('authorization', `Bearer ${token}`);
          const call = (client as any).ModelStreamInfer(md);
          const answers: any[] = [];
          call.on('data', (m: any) => answers.push(m));
          call.on('error', () => {});
          call.on('status', (status: grpc.StatusObject) => resolve({ status, answers }));
          call.write(req);
          call.end();
        });
      assert.equal((await stream()).status.code, grpc.status.UNAUTHENTICATED);
      assert.equal((await stream(reader)).status.code, grpc.status.PERMISSION_DENIED);
      const streamed = await stream(predictor);
      assert.equal(streamed.status.code, grpc.status.OK);
      assert.deepEqual(
        streamed.answers[0].infer_response.outputs[0].contents.fp32_contents,
        [2, 2.5, 3, 3.5],
      );
    } finally {
      client.close();
    }
  });
});

test('listening beyond loopback without auth is refused unless insecure', async () => {
  await assert.rejects(startTestApp({ host: '0.0.0.0' }), /refusing to listen on 0\.0\.0\.0 without auth/);
  assert.equal(isLoopback('127.0.0.1'), true);
  assert.equal(isLoopback('::1'), true);
  assert.equal(isLoopback('localhost'), true);
  assert.equal(isLoopback('0.0.0.0'), false);
  assert.equal(isLoopback('10.1.2.3'), false);
  assert.equal(allows(['write'], 'read'), true);
  assert.equal(allows(['read'], 'write'), false);
  assert.equal(allows(['predict'], 'read'), false);
  assert.equal(allows(['admin'], 'predict'), true);
});

for (const make of [sqliteDatabase, postgresDatabase]) {
  describe(`token store on ${make === sqliteDatabase ? 'sqlite' : 'postgres'}`, () => {
    let server: TestDatabase | { skip: string };
    before(async () => {
      server = await make();
    });
    after(async () => {
      if ('stop' in server) await server.stop();
    });

    test('stores only a hash; expiry and revocation are enforced', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const db = await Database.open({ url: await server.fresh() });
      try {
        await db.migrate(tokenMigrations);
        const store = new TokenStore(db, { cacheMs: 0 });
        const { token, info } = await store.create({ name: 'ci', scopes: ['write', 'read'] }, 'test');
        assert.deepEqual(info.scopes, ['read', 'write']);
        const rows = await db.kysely.selectFrom('api_tokens').selectAll().execute();
        assert.equal(rows.length, 1);
        assert.ok(
          !JSON.stringify(rows).includes(token.slice('slw_'.length + 12 + 1)),
          'the secret is stored',
        );
        assert.equal((await store.authenticate(`Bearer ${token}`, 'write')).name, 'ci');
        // A wrong secret with a real id is refused.
        await assert.rejects(
          Promise.resolve().then(() =>
            store.authenticate(`Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, 'read'),
          ),
          /not valid/,
        );
        await db.kysely
          .updateTable('api_tokens')
          .set({ expires_ms: Date.now() - 1 })
          .execute();
        await assert.rejects(
          Promise.resolve().then(() => store.authenticate(`Bearer ${token}`, 'read')),
          /expired/,
        );
        await store.revoke(info.id);
        await assert.rejects(
          Promise.resolve().then(() => store.authenticate(`Bearer ${token}`, 'read')),
          /revoked/,
        );
        await assert.rejects(store.revoke('000000000000'), /no token/);
      } finally {
        await db.close();
      }
    });
  });
}
