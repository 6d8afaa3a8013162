import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { type App, openStore } from '../src/app.js';
import { loadSettings } from '../src/config/index.js';
import { Monitoring } from '../src/monitoring/monitoring.js';
import type { MonitoringTables } from '../src/monitoring/monitoring-migrations.js';
import { PredictionLog } from '../src/monitoring/prediction-log.js';
import { HOUR_MS, MINUTE_MS, mergeProfiles } from '../src/monitoring/prediction-writer.js';
import { postJson, REPO_ROOT, startTestApp, tempRepository } from './helpers.js';

const good = { age: 41, hours_per_week: 40, workclass: 'Private' };

/** The logged rows, oldest first, in the shape of one row per prediction. */
async function logRows(dataDir: string, model?: string) {
  const store = await openStore(loadSettings({ flags: { dataDir, models: null } }));
  try {
    const rows = await new Monitoring(store.db).predictions({
      ...(model ? { model } : {}),
      limit: 1_000_000,
    });
    return rows
      .map((r) => ({
        request_id: r.requestId,
        row_index: r.row,
        time_ms: r.timeMs,
        protocol: r.protocol,
        latency_us: r.latencyUs,
        inputs: JSON.stringify(r.inputs),
        outputs: JSON.stringify(r.outputs),
        segments: r.segments === null ? null : JSON.stringify(r.segments),
      }))
      .sort(
        (a, b) =>
          a.time_ms - b.time_ms || (a.request_id < b.request_id ? -1 : 1) || a.row_index - b.row_index,
      );
  } finally {
    await store.close();
  }
}

describe('the prediction log', () => {
  let app: App;
  let url: string;
  let repo: { dir: string; remove: () => Promise<void> };
  let dataDir: string;

  before(async () => {
    repo = await tempRepository(['tabular', 'add_sub']);
    await writeFile(
      join(repo.dir, 'tabular', 'config.json'),
      JSON.stringify({
        max_batch_size: 64,
        label_names: ['<=50K', '>50K'],
        monitoring: { segments: ['region', 'header:x-channel'] },
      }),
    );
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-log-'));
    app = await startTestApp({ models: repo.dir, dataDir, predictionFlushMs: 50 });
    url = app.http.url;
  });
  after(async () => {
    await app?.close();
    await repo?.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('a records request: an id comes back (header and body), each record is one row with its segments', async () => {
    const res = await fetch(`${url}/v1/models/tabular:predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-channel': 'web' },
      body: JSON.stringify({
        instances: [
          { ...good, region: 'EU' },
          { ...good, age: 60, region: 'US' },
        ],
      }),
    });
    const body = (await res.json()) as { id: string; predictions: unknown[] };
    assert.equal(res.status, 200);
    const id = res.headers.get('x-request-id');
    assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(body.id, id);
    await app.predictions!.flush();
    const rows = (await logRows(dataDir, 'tabular')).filter((r) => r.request_id === id);
    assert.deepEqual(
      rows.map((r) => [r.row_index, r.protocol, JSON.parse(r.inputs).age, JSON.parse(r.segments!)]),
      [
        [0, 'records', 41, { 'x-channel': 'web', region: 'EU' }],
        [1, 'records', 60, { 'x-channel': 'web', region: 'US' }],
      ],
    );
    const out = JSON.parse(rows[1]!.outputs);
    assert.deepEqual(out, body.predictions[1]);
    assert.ok(rows[0]!.latency_us > 0);
  });

  test('a V2 request keeps its own id; each tensor row is one row, outputs by name', async () => {
    const r = await postJson(`${url}/v2/models/add_sub/infer`, {
      id: 'my-id-1',
      inputs: [
        { name: 'INPUT0', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] },
        { name: 'INPUT1', datatype: 'FP32', shape: [2, 4], data: [1, 1, 1, 1, 1, 1, 1, 1] },
      ],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.id, 'my-id-1');
    await app.predictions!.flush();
    const rows = (await logRows(dataDir, 'add_sub')).filter((x) => x.request_id === 'my-id-1');
    assert.equal(rows.length, 2);
    assert.deepEqual(JSON.parse(rows[1]!.inputs), { INPUT0: [5, 6, 7, 8], INPUT1: [1, 1, 1, 1] });
    // add_sub serves version 2 by default: a + b + 1 and a - b.
    assert.deepEqual(JSON.parse(rows[1]!.outputs), { OUTPUT0: [7, 8, 9, 10], OUTPUT1: [4, 5, 6, 7] });
  });

  test('window profiles: minute parts of the logged rows, merged into an hour profile by the sweep', async () => {
    for (let i = 0; i < 20; i++) {
      await postJson(`${url}/v1/models/tabular:predict`, { instances: [{ ...good, age: 20 + i }] });
    }
    await app.predictions!.flush();
    // A second log over the same store, with a clock an hour ahead, writes and sweeps.
    const clock = Date.now() + HOUR_MS + MINUTE_MS;
    const other = new PredictionLog(app.db, {
      flushMs: 1000,
      queueMax: 10,
      retentionDays: 7,
      logger: pino({ level: 'silent' }),
      now: () => clock,
    });
    await app.predictions!.close(); // writes the open minute windows
    await other.sweep();
    const db = app.db.as<MonitoringTables>();
    const minutes = await db
      .selectFrom('monitoring_windows')
      .selectAll()
      .where('model', '=', 'tabular')
      .where('granularity', '=', 'minute')
      .execute();
    const hours = await db
      .selectFrom('monitoring_windows')
      .selectAll()
      .where('model', '=', 'tabular')
      .where('granularity', '=', 'hour')
      .execute();
    const logged = (await logRows(dataDir, 'tabular')).length;
    assert.equal(
      minutes.reduce((n, m) => n + m.rows, 0),
      logged,
    );
    assert.equal(
      hours.reduce((n, h) => n + h.rows, 0),
      logged,
    );
    const merged = mergeProfiles(hours.map((h) => h.profile));
    const age = merged.summary().columns.find((c) => c.name === 'age')!;
    assert.equal(age.count, logged);
    assert.equal(age.max, 60);
    assert.ok(merged.summary().columns.some((c) => c.name === 'prediction.probabilities.>50K'));
  });
});

describe('the prediction log under load and shutdown', () => {
  test('sampling: a sample_rate of 0 logs nothing; graceful close writes every answered request', async () => {
    const repo = await tempRepository(['tabular']);
    await rm(join(repo.dir, 'tabular', 'config.json'));
    const { cp } = await import('node:fs/promises');
    await cp(join(repo.dir, 'tabular'), join(repo.dir, 'unsampled'), { recursive: true });
    await writeFile(
      join(repo.dir, 'unsampled', 'config.json'),
      JSON.stringify({ monitoring: { sample_rate: 0 } }),
    );
    const dataDir = await mkdtemp(join(tmpdir(), 'slipway-log-'));
    const app = await startTestApp({ models: repo.dir, dataDir, predictionFlushMs: 60_000 });
    try {
      const sent = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          postJson(`${app.http.url}/v1/models/${i % 2 ? 'unsampled' : 'tabular'}:predict`, {
            instances: [{ ...good, age: i }],
          }),
        ),
      );
      assert.ok(sent.every((r) => r.status === 200));
    } finally {
      await app.close(); // long flush interval: only close writes them
    }
    assert.equal((await logRows(dataDir, 'tabular')).length, 100);
    assert.equal((await logRows(dataDir, 'unsampled')).length, 0);
    await repo.remove();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('after a crash (SIGKILL) at most the last flush interval of answered requests is lost', async () => {
    const repo = await tempRepository(['tabular']);
    const dataDir = await mkdtemp(join(tmpdir(), 'slipway-crash-'));
    const flushMs = 300;
    const child: ChildProcess = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'bin', 'slipway.js'),
        'serve',
        '--models',
        repo.dir,
        '--data-dir',
        dataDir,
        '--port',
        '0',
        '--grpc-port',
        'off',
      ],
      {
        env: { ...process.env, SLIPWAY_PREDICTION_FLUSH_MS: String(flushMs), SLIPWAY_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const base = await new Promise<string>((resolve, reject) => {
        let text = '';
        const onData = (d: Buffer) => {
          text += d.toString();
          const m = /REST\s+(http:\/\/\S+)/.exec(text);
          if (m) resolve(m[1]!.replace(/\/$/, ''));
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        child.once('exit', () => reject(new Error(`server exited: ${text}`)));
      });
      const acked: { id: string; at: number }[] = [];
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        const r = await postJson(`${base}/v1/models/tabular:predict`, { instances: [good] });
        if (r.status === 200) acked.push({ id: r.body.id, at: Date.now() });
      }
      const killedAt = Date.now();
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const stored = new Set((await logRows(dataDir, 'tabular')).map((r) => r.request_id));
      const lost = acked.filter((a) => !stored.has(a.id));
      assert.ok(acked.length > 100, `only ${acked.length} requests answered`);
      // Everything answered before the last flush interval (plus one write's time) is stored.
      const bound = killedAt - flushMs - 250;
      assert.deepEqual(
        lost.filter((a) => a.at < bound),
        [],
        `lost ${lost.length} of ${acked.length}`,
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await repo.remove();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
