/** The admin REST API over a real registry on a real HTTP server: routes, validation, scopes, OpenAPI. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import AjvModule from 'ajv';
import type { FastifyPluginAsync, RouteOptions } from 'fastify';
import { pino } from 'pino';
import { ArtifactRepository, artifactMigrations, FolderBlobStore } from '../src/artifacts/index.js';
import type { Scope } from '../src/auth/index.js';
import { Registry, registryMigrations } from '../src/registry/index.js';
import { adminRoutes } from '../src/server/admin/index.js';
import { type ApiServer, buildApiServer } from '../src/server/api/index.js';
import { Database } from '../src/store/index.js';
import { FIXTURES, fetchReply, REPO_ROOT } from './helpers.js';

const Ajv: typeof AjvModule.default = (AjvModule as any).default ?? AjvModule;
const ADULT = readFileSync(join(REPO_ROOT, 'examples/models/adult-income/1/model.onnx'));
const ADD_SUB = readFileSync(join(FIXTURES, 'add_sub/1/model.onnx'));

interface Harness {
  url: string;
  registry: Registry;
  api: ApiServer;
  routes: RouteOptions[];
  scopes: { method: string; url: string; scope: Scope }[];
  close(): Promise<void>;
}

/** The registry's admin routes on Fastify, behind a real node:http server on port 0. */
async function startHarness(options: { maxUploadBytes?: number } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-admin-'));
  const db = await Database.open({ url: join(dir, 'slipway.db') });
  await db.migrate([...artifactMigrations, ...registryMigrations]);
  const blobs = new FolderBlobStore(join(dir, 'artifacts'));
  const registry = new Registry(db, new ArtifactRepository(db, blobs));
  const routes: RouteOptions[] = [];
  const scopes: Harness['scopes'] = [];
  const collect: FastifyPluginAsync = async (app) => {
    app.addHook('onRoute', (r) => {
      routes.push(r);
    });
    await app.register(adminRoutes(registry, options));
  };
  const api = await buildApiServer({
    logger: pino({ level: 'silent' }),
    version: '0.0.0-test',
    bodyLimit: 1 << 20,
    plugins: [collect],
    // Records the scope each request was asked for; the caller is 'alice'.
    authenticate: async (req, scope) => {
      scopes.push({ method: req.method!, url: req.url!, scope });
      return { name: 'alice', scopes: ['admin'] };
    },
  });
  const server: Server = createServer(api.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    registry,
    api,
    routes,
    scopes,
    async close() {
      await new Promise((r) => server.close(r));
      await api.close();
      await blobs.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function call(
  h: Harness,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return fetchReply(`${h.url}${path}`, method, body, headers);
}

describe('admin API', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  test('models, versions by upload, aliases, card and audit, end to end', async () => {
    let r = await call(h, 'POST', '/api/v1/models', {
      name: 'adult',
      description: 'Income above 50K',
      tags: { team: 'risk' },
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.name, 'adult');
    assert.equal(r.body.creator, 'alice');
    assert.deepEqual(r.body.tags, { team: 'risk' });
    assert.equal(r.body.latest_version, null);

    r = await call(h, 'POST', '/api/v1/models', { name: 'adult' });
    assert.equal(r.status, 409);
    assert.deepEqual(r.body, {
      error: "registered model 'adult' already exists",
      code: 'SLIPWAY_ERR_ALREADY_EXISTS',
    });

    const qs =
      'metric=auc=0.91&metric=accuracy=0.85&tag=framework=sklearn&alias=champion' +
      '&training_data=adult@3&evaluation_data=s3://b/test.parquet&run_id=r1&description=first';
    r = await call(h, 'POST', `/api/v1/models/adult/versions?${qs}`, ADULT);
    assert.equal(r.status, 201, r.text);
    const v1 = r.body;
    assert.equal(v1.version, 1);
    assert.equal(v1.status, 'READY');
    assert.equal(v1.creator, 'alice');
    assert.deepEqual(v1.metrics, { auc: 0.91, accuracy: 0.85 });
    assert.deepEqual(v1.tags, { framework: 'sklearn' });
    assert.deepEqual(v1.aliases, ['champion']);
    assert.equal(v1.run_id, 'r1');
    assert.equal(v1.description, 'first');
    assert.equal(v1.source, 'upload:model.onnx');
    assert.equal(v1.model_file.path, 'registry/adult/1/model.onnx');
    assert.equal(v1.model_file.size, ADULT.length);
    assert.deepEqual(v1.signature.outputs, [
      { name: 'label', datatype: 'INT64', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
    ]);
    assert.deepEqual(v1.training_data, [{ ref: 'adult@3', name: 'adult', version: '3', uri: null }]);
    assert.deepEqual(v1.evaluation_data[0].uri, 's3://b/test.parquet');

    // A new model is registered on the fly only when asked.
    r = await call(h, 'POST', '/api/v1/models/fresh/versions', ADD_SUB);
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'SLIPWAY_ERR_RESOURCE_NOT_FOUND');
    r = await call(
      h,
      'POST',
      '/api/v1/models/fresh/versions?create_model=true&file_name=add_sub.onnx',
      ADD_SUB,
    );
    assert.equal(r.status, 201);
    assert.equal(r.body.version, 1);

    r = await call(h, 'POST', '/api/v1/models/adult/versions?file_name=broken.onnx', Buffer.from('garbage'));
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'SLIPWAY_ERR_BAD_REQUEST');
    assert.match(r.body.error, /^file 'broken\.onnx' is not a valid ONNX model/);

    r = await call(h, 'POST', '/api/v1/models/adult/versions', ADD_SUB);
    assert.equal(r.body.version, 2);

    r = await call(h, 'GET', '/api/v1/models/adult');
    assert.equal(r.body.latest_version, 2);
    assert.equal(r.body.version_count, 2);
    assert.deepEqual(r.body.aliases, { champion: 1 });

    r = await call(h, 'GET', '/api/v1/models/adult/versions?limit=1');
    assert.deepEqual(
      r.body.versions.map((v: any) => v.version),
      [2],
    );
    r = await call(h, 'GET', `/api/v1/models/adult/versions?limit=1&page_token=${r.body.next_page_token}`);
    assert.deepEqual(
      r.body.versions.map((v: any) => v.version),
      [1],
    );
    assert.equal(r.body.next_page_token, null);

    r = await call(h, 'PATCH', '/api/v1/models/adult/versions/2', {
      description: 'second',
      tags: { x: '1' },
    });
    assert.equal(r.body.description, 'second');
    assert.deepEqual(r.body.tags, { x: '1' });
    r = await call(h, 'PATCH', '/api/v1/models/adult/versions/2', { tags: { x: null } });
    assert.deepEqual(r.body.tags, {});

    // Aliases: move, read, history, delete.
    r = await call(h, 'PUT', '/api/v1/models/adult/aliases/champion', { version: 2 });
    assert.equal(r.status, 200);
    assert.equal(r.body.from_version, 1);
    assert.equal(r.body.to_version, 2);
    assert.equal(r.body.actor, 'alice');
    r = await call(h, 'PUT', '/api/v1/models/adult/aliases/challenger', { version: 1 });
    assert.equal(r.body.from_version, null);
    r = await call(h, 'GET', '/api/v1/models/adult/aliases/champion');
    assert.equal(r.body.version, 2);
    r = await call(h, 'GET', '/api/v1/models/adult/aliases');
    assert.deepEqual(
      r.body.aliases.map((a: any) => [a.alias, a.version, a.updated_by]),
      [
        ['challenger', 1, 'alice'],
        ['champion', 2, 'alice'],
      ],
    );
    r = await call(h, 'DELETE', '/api/v1/models/adult/aliases/challenger');
    assert.equal(r.body.to_version, null);
    r = await call(h, 'GET', '/api/v1/models/adult/alias-history?alias=champion');
    assert.deepEqual(
      r.body.moves.map((m: any) => [m.from_version, m.to_version]),
      [
        [1, 2],
        [null, 1],
      ],
    );
    r = await call(h, 'PUT', '/api/v1/models/adult/aliases/latest', { version: 1 });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /^alias:/);
    r = await call(h, 'PUT', '/api/v1/models/adult/aliases/champion', { version: 99 });
    assert.equal(r.status, 404);
    assert.match(r.body.error, /version 99 of registered model 'adult' does not exist/);

    // Model card: edit sections, render.
    r = await call(h, 'PATCH', '/api/v1/models/adult/card', {
      sections: { intended_use: 'Research <b>only</b>.', 'caveats-and-recommendations': 'Old data.' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.sections.intended_use, 'Research <b>only</b>.');
    assert.equal(r.body.sections.caveats_and_recommendations, 'Old data.');
    assert.equal(r.body.updated_by, 'alice');
    assert.equal(r.body.facts.signature.version, 2);
    assert.deepEqual(
      r.body.facts.versions.map((v: any) => v.version),
      [1, 2],
    );
    r = await call(h, 'PUT', '/api/v1/models/adult/card', { sections: { factors: 'Age.' } });
    assert.equal(r.body.sections.intended_use, '');
    assert.equal(r.body.sections.factors, 'Age.');
    r = await call(h, 'PATCH', '/api/v1/models/adult/card', {
      sections: { intended_use: 'Research <b>only</b>.' },
    });
    r = await call(h, 'PATCH', '/api/v1/models/adult/card', { sections: { purpose: 'x' } });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /unknown model card section "purpose"/);
    r = await call(h, 'GET', '/api/v1/models/adult/card.md');
    assert.equal(r.status, 200);
    assert.match(r.type!, /^text\/markdown/);
    assert.match(r.text, /^# Model card: adult\n/);
    assert.match(r.text, /## Intended use\n\nResearch <b>only<\/b>\./);
    assert.match(r.text, /Aliases: champion → v2\./);
    r = await call(h, 'GET', '/api/v1/models/adult/card.html');
    assert.match(r.type!, /^text\/html/);
    assert.match(r.text, /<p>Research &lt;b&gt;only&lt;\/b&gt;\.<\/p>/);
    assert.ok(!r.text.includes('<b>only'));

    // Search and rename.
    r = await call(h, 'GET', '/api/v1/models?q=ADU');
    assert.deepEqual(
      r.body.models.map((m: any) => m.name),
      ['adult'],
    );
    r = await call(h, 'GET', '/api/v1/models?tag=team=risk');
    assert.deepEqual(
      r.body.models.map((m: any) => m.name),
      ['adult'],
    );
    r = await call(h, 'GET', `/api/v1/models?filter=${encodeURIComponent("name LIKE 'f%'")}`);
    assert.deepEqual(
      r.body.models.map((m: any) => m.name),
      ['fresh'],
    );
    r = await call(h, 'GET', '/api/v1/models?order_by=name&descending=true');
    assert.deepEqual(
      r.body.models.map((m: any) => m.name),
      ['fresh', 'adult'],
    );
    r = await call(h, 'PATCH', '/api/v1/models/fresh', {
      name: 'fresh2',
      description: 'renamed',
      tags: { a: 'b' },
    });
    assert.equal(r.body.name, 'fresh2');
    assert.equal(r.body.description, 'renamed');
    r = await call(h, 'GET', '/api/v1/models/fresh2/versions/1');
    assert.equal(r.body.artifact_path, 'registry/fresh2/1');

    // Deletions are 204 and then 404.
    r = await call(h, 'DELETE', '/api/v1/models/adult/versions/1');
    assert.equal(r.status, 204);
    r = await call(h, 'GET', '/api/v1/models/adult/versions/1');
    assert.equal(r.status, 404);
    r = await call(h, 'DELETE', '/api/v1/models/fresh2');
    assert.equal(r.status, 204);
    r = await call(h, 'GET', '/api/v1/models/fresh2');
    assert.deepEqual(r.body, {
      error: "registered model 'fresh2' does not exist",
      code: 'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
    });

    // The audit log saw every change, by alice.
    r = await call(h, 'GET', '/api/v1/audit?model=adult&limit=1000');
    const actions = r.body.entries.map((e: any) => e.action).reverse();
    assert.deepEqual(actions, [
      'model.create',
      'version.create',
      'alias.set',
      'version.create',
      'version.update',
      'version.tag.set',
      'version.tag.delete',
      'alias.set',
      'alias.set',
      'alias.delete',
      'card.update',
      'card.update',
      'card.update',
      'version.delete',
    ]);
    assert.ok(r.body.entries.every((e: any) => e.actor === 'alice'));
    r = await call(h, 'GET', '/api/v1/audit?action=model.*&limit=2');
    assert.deepEqual(
      r.body.entries.map((e: any) => [e.action, e.model]),
      [
        ['model.delete', 'fresh2'],
        ['model.tag.set', 'fresh2'],
      ],
    );
    const older = await call(h, 'GET', `/api/v1/audit?action=model.*&limit=2&before=${r.body.next}`);
    assert.deepEqual(
      older.body.entries.map((e: any) => e.action),
      ['model.update', 'model.rename'],
    );
  });

  test('reads ask for the read scope and changes for write', async () => {
    h.scopes.length = 0;
    await call(h, 'POST', '/api/v1/models', { name: 'scoped' });
    await call(h, 'GET', '/api/v1/models/scoped');
    await call(h, 'POST', '/api/v1/models/scoped/versions', ADD_SUB);
    await call(h, 'PUT', '/api/v1/models/scoped/aliases/champion', { version: 1 });
    await call(h, 'GET', '/api/v1/models/scoped/card.html');
    await call(h, 'GET', '/api/v1/audit');
    await call(h, 'DELETE', '/api/v1/models/scoped');
    assert.deepEqual(
      h.scopes.map((s) => `${s.method} ${s.scope}`),
      ['POST write', 'GET read', 'POST write', 'PUT write', 'GET read', 'GET read', 'DELETE write'],
    );
    // Every route declares its scope: GET/HEAD read, the others write.
    for (const route of h.routes) {
      const methods = ([] as string[]).concat(route.method);
      const expected = methods.every((m) => m === 'GET' || m === 'HEAD') ? 'read' : 'write';
      assert.equal(route.config?.scope, expected, `${methods.join(',')} ${route.url}`);
    }
  });

  test('client mistakes are 400s naming the field', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/api/v1/models', { name: { first: 'x' } }, /body[./]name must be string/],
      ['POST', '/api/v1/models', { name: 'a b' }, /body[./]name must match pattern/],
      [
        'POST',
        '/api/v1/models',
        { name: 'ok', extra: 1 },
        /body(: unknown field 'extra'| must NOT have additional properties)/,
      ],
      ['GET', '/api/v1/models?limit=5000', undefined, /querystring[./]limit must be <= 1000/],
      [
        'GET',
        '/api/v1/models?order_by=size',
        undefined,
        /querystring[./]order_by must be (equal to )?one of/,
      ],
      ['GET', '/api/v1/models?filter=nam%20%3D%20%27x%27', undefined, /filter: unknown attribute 'nam'/],
      ['GET', '/api/v1/models?tag=novalue', undefined, /^tag: "novalue" must be key=value/],
      ['GET', '/api/v1/models?page_token=zzz', undefined, /page_token/],
      [
        'GET',
        '/api/v1/models/adult/versions/abc',
        undefined,
        /params[./]version: "abc" is not a version number/,
      ],
      [
        'GET',
        '/api/v1/models/adult/versions/1e3',
        undefined,
        /params[./]version: "1e3" is not a version number/,
      ],
      ['GET', '/api/v1/models/adult/versions/0', undefined, /params[./]version must be >= 1/],
      [
        'GET',
        '/api/v1/models/adult/versions/2147483648',
        undefined,
        /params[./]version must be <= 2147483647/,
      ],
      ['GET', '/api/v1/models/adult/alias-history?alias=a%00b', undefined, /^alias: must not contain NUL/],
      ['PATCH', '/api/v1/models/adult', { description: 'a\u0000b' }, /^description: must not contain NUL/],
      ['PUT', '/api/v1/models/adult/aliases/champion', { version: 'two' }, /body[./]version must be integer/],
      ['PUT', '/api/v1/models/adult/aliases/a.b', { version: 1 }, /params[./]alias must match pattern/],
      ['GET', '/api/v1/audit?since_ms=yesterday', undefined, /querystring[./]since_ms must be integer/],
      [
        'PATCH',
        '/api/v1/models/adult/card',
        { sections: { factors: { text: 'x' } } },
        /body[./]sections[./]factors must be string/,
      ],
    ];
    for (const [method, path, body, message] of cases) {
      const r = await call(h, method, path, body);
      assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
      assert.equal(r.body.code, 'SLIPWAY_ERR_BAD_REQUEST', `${method} ${path}`);
      assert.match(r.body.error, message, `${method} ${path}`);
    }
    const uploads: [string, RegExp][] = [
      ['metric=auc', /^metric: "auc" must be key=value/],
      ['metric=auc=high', /^metric: "auc=high" must be name=<number>/],
      ['training_data=not%20a%20ref', /^training_data: "not a ref"/],
      ['alias=v2', /^alias: "v2" is not a valid alias/],
      ['config=%7Bnope', /^config: not JSON/],
      ['nonsense=1', /querystring(: unknown field 'nonsense'| must NOT have additional properties)/],
    ];
    await call(h, 'POST', '/api/v1/models', { name: 'adult' });
    for (const [qs, message] of uploads) {
      const r = await call(h, 'POST', `/api/v1/models/adult/versions?${qs}`, ADD_SUB);
      assert.equal(r.status, 400, `${qs}: ${r.text}`);
      assert.match(r.body.error, message, qs);
    }
    // JSON instead of the file.
    const r = await call(h, 'POST', '/api/v1/models/adult/versions', { file: 'x' });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /^body: send the ONNX file as Content-Type: application\/octet-stream/);
    await call(h, 'DELETE', '/api/v1/models/adult');
  });

  test('every route is in /openapi.json, and answers match their documented schemas', async () => {
    const doc = (await call(h, 'GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.0.3');
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries<any>(doc.paths)) {
      for (const method of Object.keys(ops)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const ours = h.routes.flatMap((r) =>
      ([] as string[])
        .concat(r.method)
        .filter((m) => m !== 'HEAD')
        .map((m) => `${m} ${r.url.replace(/:([A-Za-z_]+)/g, '{$1}')}`),
    );
    assert.ok(ours.length >= 20, `expected the admin routes, got ${ours.length}`);
    for (const route of ours) assert.ok(documented.has(route), `${route} is missing from /openapi.json`);
    const upload = doc.paths['/api/v1/models/{name}/versions'].post;
    assert.deepEqual(upload.requestBody.content['application/octet-stream'].schema, {
      type: 'string',
      format: 'binary',
    });
    assert.ok(upload.parameters.some((p: any) => p.in === 'query' && p.name === 'metric'));

    // Answers validated against the document's own response schemas.
    const ajv = new Ajv({ strict: false, allErrors: true });
    const check = (path: string, method: string, status: number, body: unknown) => {
      const content = doc.paths[path][method].responses[String(status)].content;
      const schema = content['application/json'].schema;
      const validate = ajv.compile(schema);
      assert.ok(validate(body), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}`);
    };
    await call(h, 'POST', '/api/v1/models', { name: 'doc', tags: { k: 'v' } });
    const created = await call(h, 'POST', '/api/v1/models/doc/versions?metric=auc=0.5&alias=champion', ADULT);
    check('/api/v1/models/{name}/versions', 'post', 201, created.body);
    check('/api/v1/models/{name}', 'get', 200, (await call(h, 'GET', '/api/v1/models/doc')).body);
    check('/api/v1/models', 'get', 200, (await call(h, 'GET', '/api/v1/models')).body);
    check('/api/v1/models/{name}/card', 'get', 200, (await call(h, 'GET', '/api/v1/models/doc/card')).body);
    check('/api/v1/audit', 'get', 200, (await call(h, 'GET', '/api/v1/audit')).body);
    check(
      '/api/v1/models/{name}/alias-history',
      'get',
      200,
      (await call(h, 'GET', '/api/v1/models/doc/alias-history')).body,
    );
    const missing = await call(h, 'GET', '/api/v1/models/nope');
    check('/api/v1/models/{name}', 'get', 404, missing.body);
    // A wrong answer would fail: the check is not vacuous.
    assert.throws(() => check('/api/v1/models/{name}', 'get', 200, { name: 'doc' }));
  });

  test('an upload over the limit is a 413', async () => {
    const small = await startHarness({ maxUploadBytes: 1000 });
    try {
      await call(small, 'POST', '/api/v1/models', { name: 'big' });
      const r = await call(small, 'POST', '/api/v1/models/big/versions', ADULT);
      assert.equal(r.status, 413);
      assert.equal(r.body.code, 'SLIPWAY_ERR_PAYLOAD_TOO_LARGE');
      assert.match(r.body.error, /larger than 1000 bytes/);
      // Without a declared length (chunked) the limit holds while streaming.
      const chunked = await fetch(`${small.url}/api/v1/models/big/versions`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: new Blob([ADULT]).stream(),
        duplex: 'half',
      } as RequestInit);
      assert.equal(chunked.status, 413);
      assert.equal(((await chunked.json()) as any).code, 'SLIPWAY_ERR_PAYLOAD_TOO_LARGE');
      assert.equal((await small.registry.getModel('big')).versionCount, 0);
    } finally {
      await small.close();
    }
  });
});
