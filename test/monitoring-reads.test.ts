import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { openStore } from '../src/app.js';
import { loadSettings } from '../src/config/index.js';
import { Monitoring } from '../src/monitoring/monitoring.js';
import { PredictionLog } from '../src/monitoring/prediction-log.js';

/**
 * How the monitoring reads the raw log: a listing reads the newest batches only, and drift over
 * a long range reads a uniform sample of its batches rather than all of them (or its newest).
 */
describe('reading the prediction log', () => {
  const BATCHES = 60;
  const ROWS = 20;
  const DAY = 86_400_000;
  const end = Date.UTC(2026, 10, 30);
  const start = end - 7 * DAY;
  let dir: string;
  let store: Awaited<ReturnType<typeof openStore>>;
  let monitoring: Monitoring;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-reads-'));
    store = await openStore(loadSettings({ flags: { dataDir: dir, models: null } }));
    let clock = start;
    const log = new PredictionLog(store.db, {
      flushMs: 1000,
      queueMax: 100_000,
      retentionDays: 30,
      logger: pino({ level: 'silent' }),
      now: () => clock,
    });
    // A week of traffic, one stored batch every 2.8 hours, each flushed on its own.
    for (let b = 0; b < BATCHES; b++) {
      clock = start + Math.floor((b * 7 * DAY) / BATCHES);
      for (let i = 0; i < ROWS; i++) {
        log.record({
          timeMs: clock + i,
          model: 'm',
          version: '1',
          protocol: 'records',
          requestId: `b${b}-r${i}`,
          latencyUs: 100,
          records: [{ x: b * ROWS + i }],
          predictions: [{ label: 'a' }],
        });
      }
      await log.flush();
    }
    await log.close();
    monitoring = new Monitoring(store.db);
  });
  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a listing of the newest rows is what sorting the whole range gives', async () => {
    const all = await monitoring.logged({ model: 'm', limit: 1_000_000 });
    assert.equal(all.length, BATCHES * ROWS);
    for (const limit of [1, 30, 45]) {
      const newest = await monitoring.logged({ model: 'm', limit });
      assert.deepEqual(
        newest.map((r) => r.requestId),
        all.slice(0, limit).map((r) => r.requestId),
      );
    }
  });

  test("drift options: the config's choices unless a request or a rule chooses", () => {
    const m = new Monitoring(store.db, undefined, undefined, () => ({
      drift: {
        test: 'psi',
        threshold: 0.2,
        driftShare: 0.4,
        columns: { a: { test: 'psi', threshold: 0.01 } },
      },
    }));
    // The config alone; its column named as optional (a comparison without it leaves it out).
    assert.deepEqual(m.driftOptions('any'), {
      test: 'psi',
      threshold: 0.2,
      driftShare: 0.4,
      columns: { a: { test: 'psi', threshold: 0.01 } },
      optionalColumns: ['a'],
    });
    // A rule's test for a column replaces the config's for it, with that test's own threshold.
    assert.deepEqual(m.driftOptions('any', { columns: { a: { test: 'ks' } } }).columns, {
      a: { test: 'ks', threshold: 0.05 },
    });
    // A request's test for every column replaces the config's choices altogether.
    assert.deepEqual(m.driftOptions('any', { test: 'ks' }), { test: 'ks' });
  });

  test('a listing holds the newest rows when the batches of one flush overlap in time', async () => {
    // One flush stores a batch per version: version 1 spans the others ([t, t+900]), version 2
    // starts latest ([t+500, t+510]), version 3 in between ([t+400, t+410]).
    const t = end + 3 * DAY;
    const log = new PredictionLog(store.db, {
      flushMs: 1000,
      queueMax: 1000,
      retentionDays: 30,
      logger: pino({ level: 'silent' }),
      now: () => t,
    });
    const times: [string, number][] = [
      ['1', t],
      ['1', t + 900],
      ...Array.from({ length: 11 }, (_, i): [string, number] => ['2', t + 500 + i]),
      ...Array.from({ length: 11 }, (_, i): [string, number] => ['3', t + 400 + i]),
    ];
    times.forEach(([version, timeMs], i) => {
      log.record({
        timeMs,
        model: 'o',
        version,
        protocol: 'records',
        requestId: `o-${version}-${timeMs - t}-${i}`,
        latencyUs: 1,
        records: [{ x: i }],
        predictions: [{ label: 'a' }],
      });
    });
    await log.close();
    const newest = await monitoring.logged({ model: 'o', limit: 5 });
    assert.deepEqual(
      newest.map((r) => r.timeMs - t),
      [900, 510, 509, 508, 507],
    );
  });

  test('drift over a long range reads a uniform sample of its batches, whole batches of about the asked rows', async () => {
    const range = { model: 'm', sinceMs: start, untilMs: end + DAY };
    const everything = await monitoring.sampled(range, 1_000_000);
    assert.equal(everything.length, BATCHES * ROWS);
    const seenOldest: number[] = [];
    for (let round = 0; round < 5; round++) {
      const sample = await monitoring.sampled(range, 200);
      // Whole batches until at least 200 rows: 10 of the 60.
      assert.equal(sample.length, 200);
      const batches = new Set(sample.map((r) => r.requestId.split('-')[0]));
      assert.equal(batches.size, 10);
      seenOldest.push(Math.min(...sample.map((r) => r.timeMs)));
    }
    // Not the newest ten batches every time: the sample reaches across the week.
    const newestTenStart = start + Math.floor((50 * 7 * DAY) / BATCHES);
    assert.ok(
      seenOldest.some((t) => t < newestTenStart),
      `oldest sampled times ${seenOldest.map((t) => new Date(t).toISOString()).join(', ')}`,
    );
  });
});
