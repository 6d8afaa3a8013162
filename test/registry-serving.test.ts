/**
 * Serving from the registry: /v2/models/{name} is the version the serving alias names, versions
 * are addressable, and moving the alias swaps what is served with zero failed requests — in the
 * process that moved it at once, and in another replica on the same store by polling.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.js';
import { addSubRequest, FIXTURES, getJson, postJson, startTestApp } from './helpers.js';

async function pushVersion(url: string, name: string, file: string, query = ''): Promise<number> {
  const res = await fetch(`${url}/api/v1/models/${name}/versions?create_model=true${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: await readFile(file),
  });
  const body = (await res.json()) as { version: number | string };
  assert.equal(res.status, 201, JSON.stringify(body));
  return Number(body.version);
}

async function setAlias(url: string, name: string, alias: string, version: number): Promise<void> {
  const res = await fetch(`${url}/api/v1/models/${name}/aliases/${alias}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ version }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** add_sub v1 answers OUTPUT0 = a + b; v2 is a different graph, so the version is visible in the numbers too. */
async function inferVersion(
  url: string,
  model: string,
): Promise<{ ok: boolean; version?: string; sum?: number[] }> {
  const r = await postJson(`${url}/v2/models/${model}/infer`, addSubRequest(1));
  if (r.status !== 200) return { ok: false };
  return {
    ok: true,
    version: r.body.model_version,
    sum: r.body.outputs.find((o: any) => o.name === 'OUTPUT0').data,
  };
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('serving registered models', () => {
  let app: App;
  let replica: App;
  let expectedV1: number[];
  let expectedV2: number[];

  before(async () => {
    app = await startTestApp({ models: null, registryPollMs: 200 });
    // A second replica on the same store: it hears of changes only by polling the database.
    replica = await startTestApp({ models: null, dataDir: app.settings.dataDir, registryPollMs: 200 });
    const v1 = await pushVersion(app.http.url, 'calc', join(FIXTURES, 'add_sub', '1', 'model.onnx'));
    const v2 = await pushVersion(app.http.url, 'calc', join(FIXTURES, 'add_sub', '2', 'model.onnx'));
    assert.deepEqual([v1, v2], [1, 2]);
    // The same files served from the repository folder give the reference numbers.
    const folder = await startTestApp({ models: FIXTURES });
    try {
      const r1 = await postJson(`${folder.http.url}/v2/models/add_sub/versions/1/infer`, addSubRequest(1));
      const r2 = await postJson(`${folder.http.url}/v2/models/add_sub/versions/2/infer`, addSubRequest(1));
      expectedV1 = r1.body.outputs.find((o: any) => o.name === 'OUTPUT0').data;
      expectedV2 = r2.body.outputs.find((o: any) => o.name === 'OUTPUT0').data;
      assert.notDeepEqual(expectedV1, expectedV2);
    } finally {
      await folder.close();
    }
  });
  after(async () => {
    await replica?.close();
    await app?.close();
  });

  test('without an alias the latest version serves; every served version is addressable', async () => {
    await until(
      async () => (await inferVersion(app.http.url, 'calc')).version === '2',
      10_000,
      'calc to serve',
    );
    const r = await inferVersion(app.http.url, 'calc');
    assert.deepEqual(r.sum, expectedV2);
    const meta = await getJson(`${app.http.url}/v2/models/calc`);
    assert.equal(meta.status, 200);
    assert.deepEqual(
      meta.body.inputs.map((i: any) => i.name),
      ['INPUT0', 'INPUT1'],
    );
    const index = await postJson(`${app.http.url}/v2/repository/index`, {});
    assert.ok(index.body.some((e: any) => e.name === 'calc' && e.version === '2' && e.state === 'READY'));
  });

  test('moving champion swaps the served version under load with zero failed requests, on both replicas', async () => {
    await setAlias(app.http.url, 'calc', 'champion', 1);
    await until(
      async () => (await inferVersion(app.http.url, 'calc')).version === '1',
      10_000,
      'champion v1',
    );
    await until(
      async () => (await inferVersion(replica.http.url, 'calc')).version === '1',
      10_000,
      'replica v1',
    );
    const v1 = await postJson(`${app.http.url}/v2/models/calc/versions/1/infer`, addSubRequest(1));
    assert.deepEqual(v1.body.outputs.find((o: any) => o.name === 'OUTPUT0').data, expectedV1);

    const seen = { app: new Map<string, number>(), replica: new Map<string, number>() };
    let failures = 0;
    let stop = false;
    const wrong: string[] = [];
    const worker = async (url: string, into: Map<string, number>) => {
      while (!stop) {
        const r = await inferVersion(url, 'calc');
        if (!r.ok) {
          failures++;
          continue;
        }
        into.set(r.version!, (into.get(r.version!) ?? 0) + 1);
        const expected = r.version === '1' ? expectedV1 : expectedV2;
        if (JSON.stringify(r.sum) !== JSON.stringify(expected)) wrong.push(`v${r.version}: ${r.sum}`);
      }
    };
    const load = [
      ...Array.from({ length: 6 }, () => worker(app.http.url, seen.app)),
      ...Array.from({ length: 6 }, () => worker(replica.http.url, seen.replica)),
    ];
    await new Promise((r) => setTimeout(r, 300));
    const moved = Date.now();
    await setAlias(app.http.url, 'calc', 'champion', 2);
    await until(async () => (await inferVersion(app.http.url, 'calc')).version === '2', 5_000, 'the swap');
    const swapMs = Date.now() - moved;
    await until(
      async () => (await inferVersion(replica.http.url, 'calc')).version === '2',
      10_000,
      'the replica',
    );
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(load);
    assert.equal(failures, 0, 'requests failed during the swap');
    assert.deepEqual(wrong, []);
    for (const m of [seen.app, seen.replica]) {
      assert.ok((m.get('1') ?? 0) > 0 && (m.get('2') ?? 0) > 0, `both versions served: ${[...m]}`);
    }
    assert.ok(swapMs < 2000, `the swap took ${swapMs} ms`);
    const history = await getJson(`${app.http.url}/api/v1/models/calc/alias-history?alias=champion`);
    assert.deepEqual(
      history.body.moves.map((m: any) => [m.from_version, m.to_version, m.actor]).sort(),
      [
        [1, 2, 'anonymous'],
        [null, 1, 'anonymous'],
      ].sort(),
    );
  });

  test('a folder model of the same name shadows the registered one', async () => {
    await pushVersion(app.http.url, 'add_sub', join(FIXTURES, 'identity_fp32', '1', 'model.onnx'));
    const both = await startTestApp({ models: FIXTURES, dataDir: app.settings.dataDir });
    try {
      const meta = await getJson(`${both.http.url}/v2/models/add_sub`);
      assert.deepEqual(
        meta.body.inputs.map((i: any) => i.name),
        ['INPUT0', 'INPUT1'],
      );
      assert.equal(
        (await getJson(`${both.http.url}/v2/models/calc`)).status,
        200,
        'registry models serve too',
      );
    } finally {
      await both.close();
    }
  });
});
