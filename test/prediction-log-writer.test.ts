import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pino from 'pino';
import type { PredictionEntry, Tensor } from '../src/inference/index.js';
import { Monitoring } from '../src/monitoring/monitoring.js';
import { type MonitoringTables, monitoringMigrations } from '../src/monitoring/monitoring-migrations.js';
import {
  BufferPool,
  batchRows,
  HANDOFF_BYTES,
  storedColumns,
  TensorAccumulator,
  tensorBatchStorage,
  transferables,
} from '../src/monitoring/prediction-batch.js';
import { PredictionLog, RECORDS_PER_MESSAGE } from '../src/monitoring/prediction-log.js';
import { predictionRows } from '../src/monitoring/prediction-rows.js';
import {
  commitSyncOf,
  MINUTE_MS,
  PredictionWriter,
  WINDOW_SAMPLE_PER_SECOND,
  type WriteMessage,
} from '../src/monitoring/prediction-writer.js';
import { Database } from '../src/store/index.js';
import { postgresDatabase, type TestDatabase } from './support/databases.js';

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);

/** A V2 answer of a 3-feature model: one or more rows, a label and two probabilities per row. */
function entry(requestId: string, rows: number[][], timeMs = T0, extra: Partial<PredictionEntry> = {}) {
  const n = rows.length;
  return {
    timeMs,
    model: 'iris',
    version: '2',
    protocol: 'rest',
    requestId,
    latencyUs: 250 + n,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 3], data: new Float32Array(rows.flat()) }],
    outputs: [
      {
        name: 'label',
        datatype: 'INT64',
        shape: [n],
        data: BigInt64Array.from(rows, (r) => BigInt(r[0]! > 1)),
      },
      {
        name: 'probabilities',
        datatype: 'FP32',
        shape: [n, 2],
        data: new Float32Array(rows.flatMap((r) => [0.25, 0.75 + r[2]! * 0])),
      },
    ],
    featureNames: ['a', 'b', 'c'],
    ...extra,
  } satisfies PredictionEntry;
}

describe('gathering V2 answers into a tensor batch', () => {
  test('a batch stores, row for row, what each request expands to', () => {
    const entries = [
      entry('r1', [[1, 2, 3]]),
      entry('r2-é✓😀', [
        [4, 5, 6],
        [7.5, 8, 9],
      ]),
      entry('r3', [[0.5, -1, 2]], T0 + 5, { segments: { region: 'EU' }, protocol: 'grpc' }),
    ];
    const acc = new TensorAccumulator('iris', '2', entries[0]!);
    for (const e of entries) {
      assert.ok(acc.matches(e));
      acc.add(e);
    }
    // Another width is another signature.
    assert.equal(acc.matches(entry('r4', [[1, 2, 3]], T0, { featureNames: ['a', 'b', 'c'] })), true);
    const wide = entry('r5', [[1, 2, 3]]);
    const wider: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array(4) };
    assert.equal(acc.matches({ ...wide, inputs: [wider] }), false);

    const batch = acc.take();
    assert.equal(batch.rows, 4);
    assert.equal(acc.rows, 0);
    // Stored as the writer stores it: a JSON header and the buffers as they are. The payload
    // comes back from the database at any byte offset.
    const { header, payload } = tensorBatchStorage(batch);
    const text = JSON.stringify(header);
    assert.ok(text.length < 600, 'the header holds no per-row data');
    const moved = Buffer.alloc(payload.length + 3);
    payload.copy(moved, 3);
    const stored = storedColumns(text, moved.subarray(3));
    assert.deepEqual(stored.row, [0, 0, 1, 0]);
    assert.deepEqual(stored.time_ms, [T0, T0, T0, T0 + 5]);
    assert.deepEqual(stored.segments, { region: [null, null, null, 'EU'] });
    const read = batchRows('iris', '2', stored);
    const expected = entries.flatMap((e) => predictionRows(e));
    assert.deepEqual(read, expected);
    assert.deepEqual(read[2]!.inputs, { a: 7.5, b: 8, c: 9 });
    assert.deepEqual(read[2]!.outputs, { label: 1, probabilities: [0.25, 0.75] });
    assert.equal(read[1]!.requestId, 'r2-é✓😀');
    assert.equal(read[3]!.protocol, 'grpc');
    assert.throws(() => storedColumns(text, payload.subarray(0, 16)), /shorter than its header/);
  });

  test('a V2 batch stored as JSON before binary payloads (tensors in base64) still reads', () => {
    const b64 = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
    const legacy = {
      kind: 'tensors',
      request_id: ['old-1', 'old-1'],
      row: [0, 1],
      time_ms: [T0, T0],
      latency_us: [300, 300],
      protocol: ['rest', 'rest'],
      segments: {},
      inputs: [{ name: 'x', datatype: 'FP32', width: 3, b64: b64(new Float32Array([1, 2, 3, 4, 5, 6])) }],
      outputs: [{ name: 'label', datatype: 'INT64', width: 1, b64: b64(BigInt64Array.of(0n, 1n)) }],
      feature_names: ['a', 'b', 'c'],
    };
    const rows = batchRows('iris', '2', storedColumns(JSON.stringify(legacy), null));
    assert.deepEqual(
      rows.map((r) => [r.requestId, r.rowIndex, r.inputs, r.outputs]),
      [
        ['old-1', 0, { a: 1, b: 2, c: 3 }, { label: 0 }],
        ['old-1', 1, { a: 4, b: 5, c: 6 }, { label: 1 }],
      ],
    );
  });

  test('the next batch starts empty and grows past the first one', () => {
    const acc = new TensorAccumulator('iris', '2', entry('a', [[1, 1, 1]]));
    for (let i = 0; i < 1000; i++) acc.add(entry(`a${i}`, [[i, i + 1, i + 2]]));
    const first = acc.take();
    for (let i = 0; i < 3000; i++) acc.add(entry(`b${i}`, [[i, 0, 0]]));
    const second = acc.take();
    assert.equal(first.rows, 1000);
    assert.equal(second.rows, 3000);
    // As the writer thread gets it: the buffers transferred (the ids arrive as a Uint8Array).
    const moved = structuredClone(second, { transfer: transferables([second]) });
    assert.equal(second.numbers.length, 0, 'transferred, not copied');
    const { header, payload } = tensorBatchStorage(moved);
    const rows = batchRows('iris', '2', storedColumns(JSON.stringify(header), payload));
    assert.equal(rows[0]!.requestId, 'b0');
    assert.equal(rows[2999]!.requestId, 'b2999');
    assert.deepEqual(rows[2999]!.inputs, { a: 2999, b: 0, c: 0 });
  });

  test('a buffer pool hands a given-back buffer to a need it fits, and drops detached ones and any beyond its bound', () => {
    const pool = new BufferPool(10_000);
    const a = new ArrayBuffer(4000);
    const b = new ArrayBuffer(1000);
    const detached = new ArrayBuffer(64);
    structuredClone(detached, { transfer: [detached] });
    pool.release([a, b, detached, new ArrayBuffer(6000)]);
    assert.equal(pool.size, 5000, 'the 6000-byte buffer is beyond the bound');
    assert.equal(pool.take(900), b, 'the smallest that fits');
    assert.notEqual(pool.take(900), a, 'not a buffer over four times the need');
    assert.equal(pool.take(3000), a);
    assert.equal(pool.size, 0);
    assert.equal(pool.take(3000).byteLength, 3000, 'a new one when none fits');
  });

  test('batches gathered into given-back buffers store exactly what fresh buffers store', () => {
    const requests = (tag: string, n: number) =>
      Array.from({ length: n }, (_, i) =>
        entry(`${tag}-${i}-${'é'.repeat(i % 3)}`, [[i, -i, i / 3]], T0 + i, {
          protocol: i % 2 ? 'grpc' : 'rest',
        }),
      );
    const pool = new BufferPool();
    const recycled = new TensorAccumulator('iris', '2', entry('x', [[0, 0, 0]]), pool);
    // A first, larger batch leaves its bytes in the buffers given back.
    for (const e of requests('first', 900)) recycled.add(e);
    const first = recycled.take();
    const stale = transferables([first]);
    for (const buffer of stale) new Uint8Array(buffer).fill(0xab);
    pool.release(stale);
    // The accumulator readies the next batch's buffers as it hands one over: the batch after
    // this one is the first gathered into buffers given back.
    for (const e of requests('warm', 900)) recycled.add(e);
    recycled.take();
    const fresh = new TensorAccumulator('iris', '2', entry('x', [[0, 0, 0]]));
    for (const e of requests('second', 700)) {
      recycled.add(e);
      fresh.add(e);
    }
    const again = recycled.take();
    assert.ok(
      transferables([again]).some((buffer) => stale.includes(buffer)),
      'gathered into given-back buffers',
    );
    // The payloads go to an arena of stale bytes too, as the writer lays them out.
    const dirty = (bytes: number) => Buffer.alloc(bytes, 0xcd);
    const a = tensorBatchStorage(again, dirty);
    const b = tensorBatchStorage(fresh.take());
    assert.deepEqual(a.header, b.header);
    assert.ok(a.payload.equals(b.payload), 'the same bytes, padding included');
    const rows = batchRows('iris', '2', storedColumns(JSON.stringify(a.header), a.payload));
    assert.deepEqual(
      rows,
      requests('second', 700).flatMap((e) => predictionRows(e)),
    );
  });
});

test('window profiles fold about WINDOW_SAMPLE_PER_SECOND rows a second of traffic, however many messages bring them', async () => {
  const db = await Database.open({ url: ':memory:' });
  try {
    await db.migrate(monitoringMigrations);
    const writer = new PredictionWriter(db.as<MonitoringTables>(), {
      flushMs: 1000,
      warn: () => undefined,
      now: () => T0 + 30_000, // the minute is still open: one part per version
    });
    const message = (minute: number, startMs: number, spanMs: number, rows: number): WriteMessage => {
      const acc = new TensorAccumulator('iris', String(minute), entry('s-0', [[1, 2, 3]], startMs));
      for (let i = 0; i < rows; i++)
        acc.add(entry(`s-${i}`, [[i % 5, i % 7, i % 3]], startMs + Math.floor((i * spanMs) / rows)));
      return { tensors: [acc.take()], records: [], counts: [], entries: rows, sync: false };
    };
    // Version 1: ten messages of 1000 rows within one second of traffic (as large batches go
    // before the flush). Version 2: ten of 1000 rows, one a second.
    for (let k = 0; k < 10; k++) await writer.write(message(1, T0 + k * 100, 100, 1000));
    for (let k = 0; k < 10; k++) await writer.write(message(2, T0 + 10_000 + k * 1000, 1000, 1000));
    await writer.writeWindows(true);
    const windows = await db
      .as<MonitoringTables>()
      .selectFrom('monitoring_windows')
      .select(['version', 'rows', 'profile'])
      .execute();
    const profiled = (v: string) => {
      const w = windows.find((x) => x.version === v)!;
      assert.equal(w.rows, 10_000, 'every row is counted');
      return (JSON.parse(w.profile) as { rows: number }).rows;
    };
    const one = profiled('1');
    const ten = profiled('2');
    // A full bucket, then 0.9 s of refill for the first; ten full buckets for the second
    // (binomial samples around those).
    const rate = WINDOW_SAMPLE_PER_SECOND;
    assert.ok(Math.abs(one - 1.9 * rate) < 0.3 * rate, `one second of traffic: ${one} rows profiled`);
    assert.ok(Math.abs(ten - 10 * rate) < 0.8 * rate, `ten seconds of traffic: ${ten} rows profiled`);
  } finally {
    await db.close();
  }
});

test('on its own SQLite connection, a batch handed over early commits unsynced and the flush syncs it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-commit-sync-'));
  const db = await Database.open({ url: join(dir, 'slipway.db') });
  try {
    await db.migrate(monitoringMigrations);
    const control = commitSyncOf(db)!;
    const calls: string[] = [];
    const writer = new PredictionWriter(db.as<MonitoringTables>(), {
      flushMs: 1000,
      warn: () => undefined,
      now: () => T0 + 30_000,
      commitSync: {
        set: (sync) => {
          calls.push(`set ${sync}`);
          return control.set(sync);
        },
        now: () => {
          calls.push('now');
          return control.now();
        },
      },
    });
    const synchronous = async () =>
      (await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(db.kysely)).rows[0]!.synchronous;
    let n = 0;
    const message = (sync: boolean, rows: number): WriteMessage => {
      const acc = new TensorAccumulator('iris', '2', entry('c-0', [[1, 2, 3]]));
      for (let i = 0; i < rows; i++) acc.add(entry(`c-${n++}`, [[i, i, i]]));
      return { tensors: rows > 0 ? [acc.take()] : [], records: [], counts: [], entries: rows, sync };
    };
    const step = async (sync: boolean, rows: number) => {
      calls.length = 0;
      const reply = await writer.write(message(sync, rows));
      assert.equal(reply.rows, rows);
      return { calls: [...calls], synchronous: await synchronous() };
    };
    // SQLite's synchronous: 1 is NORMAL, 2 is FULL.
    assert.deepEqual(await step(false, 5), { calls: ['set false'], synchronous: 1 });
    assert.deepEqual(await step(false, 5), { calls: [], synchronous: 1 });
    assert.deepEqual(await step(true, 5), { calls: ['set true'], synchronous: 2 });
    assert.deepEqual(await step(true, 0), { calls: [], synchronous: 2 });
    // Handed over, then a flush that brought nothing: a checkpoint syncs what was committed.
    assert.deepEqual(await step(false, 5), { calls: ['set false'], synchronous: 1 });
    assert.deepEqual(await step(true, 0), { calls: ['set true', 'now'], synchronous: 2 });
    const stored = await db.as<MonitoringTables>().selectFrom('prediction_batches').select('rows').execute();
    assert.equal(
      stored.reduce((sum, r) => sum + Number(r.rows), 0),
      20,
    );
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a batch handed over before the flush is followed by a flush that syncs it, with nothing else gathered', async () => {
  const db = await Database.open({ url: ':memory:' });
  await db.migrate(monitoringMigrations);
  const syncs: boolean[] = [];
  const write = PredictionWriter.prototype.write;
  PredictionWriter.prototype.write = function (this: PredictionWriter, m: WriteMessage) {
    syncs.push(m.sync);
    return write.call(this, m);
  };
  const log = new PredictionLog(db, {
    flushMs: 50,
    queueMax: 100_000,
    retentionDays: 7,
    logger: pino({ level: 'silent' }),
  });
  try {
    const probe = new TensorAccumulator('iris', '2', entry('h-0', [[1, 2, 3]]));
    for (let i = 0; i < probe.handoffRows; i++) log.record(entry(`h-${i}`, [[i, i, i]], Date.now()));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(syncs, [false]);
    log.start();
    const deadline = Date.now() + 5000;
    while (syncs.length < 2 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(syncs, [false, true]);
  } finally {
    PredictionWriter.prototype.write = write;
    await log.close();
    await db.close();
  }
});

for (const writer of ['worker thread', 'serving thread', 'worker thread on PostgreSQL'] as const) {
  describe(`the prediction log, written on the ${writer}`, () => {
    let dir: string;
    let db: Database;
    let databaseUrl: string | undefined;
    let postgres: TestDatabase | undefined;
    let skipped: string | undefined;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'slipway-log-writer-'));
      if (writer === 'worker thread on PostgreSQL') {
        const available = await postgresDatabase();
        if ('skip' in available) {
          skipped = available.skip;
          return;
        }
        postgres = available;
        databaseUrl = await postgres.fresh();
        db = await Database.open({ url: databaseUrl });
      } else {
        const file = join(dir, 'slipway.db');
        db = await Database.open({ url: file });
        databaseUrl = writer === 'worker thread' ? file : undefined;
      }
      await db.migrate(monitoringMigrations);
    });
    after(async () => {
      if (!skipped) await db.close();
      await postgres?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    function open(queueMax = 1000) {
      return new PredictionLog(db, {
        flushMs: 1000,
        queueMax,
        retentionDays: 7,
        logger: pino({ level: 'silent' }),
        ...(databaseUrl ? { databaseUrl } : {}),
      });
    }

    test('flush stores what was gathered; close writes the minute windows with their counts', async (t) => {
      if (skipped) return t.skip(skipped);
      const log = open();
      const now = Date.now();
      const sent = [
        entry(`${writer}-1`, [[1, 2, 3]], now),
        entry(`${writer}-2`, [
          [4, 5, 6],
          [7, 8, 9],
        ]),
      ];
      for (const e of sent) {
        log.record({ ...e, timeMs: now });
        log.count('iris', '2', false, 40);
      }
      log.count('iris', '2', true, 0);
      log.record({
        timeMs: now,
        model: 'adult',
        version: '1',
        protocol: 'records',
        requestId: `${writer}-3`,
        latencyUs: 90,
        records: [{ age: 41 }, { age: 60 }],
        predictions: [{ label: '>50K' }, { label: '<=50K' }],
      });
      assert.deepEqual(log.stats, { queued: 3, written: 0, dropped: 0, failedFlushes: 0 });
      await log.flush();
      assert.deepEqual(log.stats, { queued: 0, written: 5, dropped: 0, failedFlushes: 0 });
      const stored = await new Monitoring(db).logged({ model: 'iris', limit: 100 });
      const mine = stored.filter((r) => r.requestId.startsWith(writer)).sort((a, b) => a.row - b.row);
      assert.deepEqual(
        mine.map((r) => [r.requestId, r.row, r.inputs, r.outputs.label]),
        [
          [`${writer}-1`, 0, { a: 1, b: 2, c: 3 }, 0],
          [`${writer}-2`, 0, { a: 4, b: 5, c: 6 }, 1],
          [`${writer}-2`, 1, { a: 7, b: 8, c: 9 }, 1],
        ],
      );
      const adult = await new Monitoring(db).logged({ model: 'adult', limit: 100 });
      assert.deepEqual(adult.map((r) => r.inputs.age).sort(), [41, 60]);

      await log.close();
      const windows = await db
        .as<MonitoringTables>()
        .selectFrom('monitoring_windows')
        .selectAll()
        .where('model', '=', 'iris')
        .where('window_ms', '=', now - (now % MINUTE_MS))
        .execute();
      assert.equal(windows.length, 1);
      assert.deepEqual(
        [windows[0]!.rows, windows[0]!.requests, windows[0]!.errors, windows[0]!.cpu_us],
        [3, 2, 1, 80],
      );
      // Nothing is taken after close; what arrives is dropped and counted.
      log.record(entry('late', [[1, 1, 1]]));
      assert.equal(log.stats.dropped, 1);
      await db.as<MonitoringTables>().deleteFrom('monitoring_windows').execute();
    });

    test('the writer gives stored batches back; later flushes gather into them and store the right rows', async (t) => {
      if (skipped) return t.skip(skipped);
      const log = open(100_000);
      const model = `reuse-${writer.replace(/\W+/g, '-')}`;
      const monitoring = new Monitoring(db);
      const sent: PredictionEntry[] = [];
      try {
        // Flushes of different sizes: a larger one, a smaller one, a larger one again.
        for (const [f, n] of [3000, 500, 2000].entries()) {
          for (let i = 0; i < n; i++) {
            const e = { ...entry(`${model}-${f}-${i}`, [[f, i, i % 7]], Date.now()), model };
            sent.push(e);
            log.record(e);
          }
          await log.flush();
          assert.ok(log.reusableBytes > 0, `flush ${f}: the batch's buffers came back`);
        }
      } finally {
        await log.close();
      }
      const rows = await monitoring.logged({ model, limit: 10_000 });
      const key = (r: { requestId: string }) => r.requestId;
      assert.deepEqual(
        rows.map((r) => [r.requestId, r.inputs, r.outputs.label]).sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
        sent
          .map((e) => [key(e), predictionRows(e)[0]!.inputs, predictionRows(e)[0]!.outputs.label])
          .sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
      );
      await db.as<MonitoringTables>().deleteFrom('monitoring_windows').execute();
    });

    test('a payload is in a segment file beside a SQLite file written by the writer thread, else in its row; the sweep removes both', async (t) => {
      if (skipped) return t.skip(skipped);
      const model = `where-${writer.replace(/\W+/g, '-')}`;
      const log = open();
      const now = Date.now();
      for (let i = 0; i < 40; i++) log.record({ ...entry(`${model}-${i}`, [[i, 1, 2]], now), model });
      await log.flush();
      const batches = () =>
        db
          .as<MonitoringTables>()
          .selectFrom('prediction_batches')
          .select(['payload', 'payload_file', 'payload_offset', 'payload_length'])
          .where('model', '=', model)
          .execute();
      const [b] = await batches();
      const folder = db.file && `${db.file}-predictions`;
      if (writer === 'worker thread') {
        assert.equal(b!.payload, null);
        assert.match(b!.payload_file!, /^\d{8}T\d{2}-[0-9a-f]{8}\.seg$/);
        assert.ok(Number(b!.payload_length) > 40 * 60, `${b!.payload_length} bytes`);
        assert.ok((await readdir(folder!)).includes(b!.payload_file!));
      } else {
        assert.ok(b!.payload && b!.payload.byteLength > 40 * 60);
        assert.equal(b!.payload_file, null);
      }
      const rows = await new Monitoring(db).logged({ model, limit: 100 });
      assert.deepEqual(
        rows.map((r) => r.inputs.a as number).sort((x, y) => x - y),
        [...Array(40).keys()],
      );
      await log.close();

      // A sweep eight days later removes the rows past retention, then their files.
      const later = new PredictionLog(db, {
        flushMs: 1000,
        queueMax: 10,
        retentionDays: 7,
        logger: pino({ level: 'silent' }),
        now: () => now + 8 * 86_400_000,
      });
      await later.sweep();
      assert.deepEqual(await batches(), []);
      if (writer === 'worker thread') assert.deepEqual(await readdir(folder!), []);
      assert.deepEqual(await new Monitoring(db).logged({ model, limit: 100 }), []);
      await db.as<MonitoringTables>().deleteFrom('monitoring_windows').execute();
    });

    // Segment files are the writer thread's on a SQLite file.
    if (writer === 'worker thread')
      test('a batch whose segment file is gone is skipped when read, not an error', async () => {
        const model = 'gone';
        const log = open();
        log.record({ ...entry('gone-1', [[1, 2, 3]]), model, timeMs: Date.now() });
        await log.close();
        const folder = `${db.file}-predictions`;
        assert.equal((await new Monitoring(db).logged({ model, limit: 10 })).length, 1);
        for (const f of await readdir(folder)) await rm(join(folder, f));
        assert.deepEqual(await new Monitoring(db).logged({ model, limit: 10 }), []);
        await db.as<MonitoringTables>().deleteFrom('prediction_batches').execute();
        await db.as<MonitoringTables>().deleteFrom('monitoring_windows').execute();
      });

    test('records-API entries go to the writer in messages of RECORDS_PER_MESSAGE, before the flush', async (t) => {
      if (skipped) return t.skip(skipped);
      const log = open(10_000); // not started: no flush timer
      const model = `chunks-${writer.replace(/\W+/g, '-')}`;
      const total = RECORDS_PER_MESSAGE + 3;
      for (let i = 0; i < total; i++) {
        log.record({
          timeMs: Date.now(),
          model,
          version: '1',
          protocol: 'records',
          requestId: `${model}-${i}`,
          latencyUs: 50,
          records: [{ age: i }],
          predictions: [{ label: '>50K' }],
        });
      }
      const monitoring = new Monitoring(db);
      try {
        const deadline = Date.now() + 10_000;
        while (log.stats.written < RECORDS_PER_MESSAGE && Date.now() < deadline) await sleep(10);
        assert.deepEqual(log.stats, {
          queued: 3,
          written: RECORDS_PER_MESSAGE,
          dropped: 0,
          failedFlushes: 0,
        });
        assert.equal((await monitoring.logged({ model, limit: 5000 })).length, RECORDS_PER_MESSAGE);
      } finally {
        await log.close();
      }
      const rows = await monitoring.logged({ model, limit: 5000 });
      assert.deepEqual(
        rows.map((r) => r.inputs.age as number).sort((a, b) => a - b),
        Array.from({ length: total }, (_, i) => i),
      );
      await db.as<MonitoringTables>().deleteFrom('monitoring_windows').execute();
    });

    test('a V2 batch goes to the writer once it holds HANDOFF_BYTES, before the flush', async (t) => {
      if (skipped) return t.skip(skipped);
      const log = open(10_000); // not started: no flush timer
      const model = `handoff-${writer.replace(/\W+/g, '-')}`;
      // 1000 FP32 features: ~4 KB a row, so a batch is handed over at 256 rows (the floor).
      const wide = (i: number): PredictionEntry => ({
        timeMs: Date.now(),
        model,
        version: '1',
        protocol: 'rest',
        requestId: `${model}-${i}`,
        latencyUs: 80,
        inputs: [
          {
            name: 'x',
            datatype: 'FP32',
            shape: [1, 1000],
            data: Float32Array.from({ length: 1000 }, (_, k) => i + k / 1000),
          },
        ],
        outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(i) }],
      });
      const probe = new TensorAccumulator(model, '1', wide(0));
      assert.equal(
        probe.handoffRows,
        Math.max(256, Math.floor(HANDOFF_BYTES / (4000 + 4 + 48 + `${model}-0`.length))),
      );
      const first = probe.handoffRows;
      const total = first + 3;
      for (let i = 0; i < total; i++) log.record(wide(i));
      const monitoring = new Monitoring(db);
      try {
        const deadline = Date.now() + 10_000;
        while (log.stats.written < first && Date.now() < deadline) await sleep(10);
        assert.deepEqual(log.stats, { queued: 3, written: first, dropped: 0, failedFlushes: 0 });
      } finally {
        await log.close();
      }
      const rows = await monitoring.logged({ model, limit: 5000 });
      assert.equal(rows.length, total);
      const byId = new Map(rows.map((r) => [r.requestId, r]));
      for (const i of [0, first - 1, first, total - 1]) {
        const r = byId.get(`${model}-${i}`)!;
        assert.equal(r.outputs.y, i);
        assert.equal((r.inputs.x as number[])[999], Math.fround(i + 0.999));
      }
      await db.as<MonitoringTables>().deleteFrom('monitoring_windows').execute();
    });

    test('an entry is read once the promise continuations after record have run, in the same callback', async (t) => {
      if (skipped) return t.skip(skipped);
      const log = open();
      const e = entry('deferred', [[7, 8, 9]]);
      const inputs = e.inputs;
      let phase = 'record';
      let readIn: string | undefined;
      Object.defineProperty(e, 'inputs', {
        get() {
          readIn ??= phase;
          return inputs;
        },
      });
      // As the data plane calls it: in a continuation, with the transport's continuations (which
      // send the answer) a few awaits behind.
      const answer = async () => {
        await null;
        log.record(e);
        phase = 'recorded';
        await null;
        await null;
        phase = 'answer sent';
      };
      let checkPhase = false;
      const immediate = new Promise<void>((resolve) =>
        setImmediate(() => {
          checkPhase = true;
          resolve();
        }),
      );
      await answer();
      assert.equal(readIn, undefined, 'not read while the continuations run');
      await new Promise<void>((resolve) => process.nextTick(resolve));
      assert.equal(readIn, 'answer sent');
      assert.equal(checkPhase, false, 'read before the check phase: no turn of the event loop spent');
      await immediate;
      await log.close();
      assert.deepEqual(log.stats, { queued: 0, written: 1, dropped: 0, failedFlushes: 0 });
    });

    test('beyond queueMax entries not yet stored, new ones are dropped and counted by rows', async (t) => {
      if (skipped) return t.skip(skipped);
      const log = open(2);
      log.record(entry('q1', [[1, 1, 1]]));
      log.record(entry('q2', [[2, 2, 2]]));
      log.record(
        entry('q3', [
          [3, 3, 3],
          [4, 4, 4],
        ]),
      );
      assert.deepEqual(log.stats, { queued: 2, written: 0, dropped: 2, failedFlushes: 0 });
      await log.close();
      assert.deepEqual(log.stats, { queued: 0, written: 2, dropped: 2, failedFlushes: 0 });
    });
  });
}
