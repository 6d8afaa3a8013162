/**
 * Alerts: the rule grammar, the state machine on every dialect (ok → firing → still firing →
 * resolved, pending with `for`, no_data), webhooks (signature, retries with backoff, attempts
 * recorded, never holding up evaluation), and end to end on a server: drift against the training
 * dataset firing a rule over REST, a Python retraining command pushing a version that becomes
 * `challenger` with lineage, Prometheus gauges.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { App } from '../src/app.js';
import { Datasets } from '../src/data/index.js';
import { type AlertTables, alertMigrations } from '../src/monitoring/alert-migrations.js';
import {
  AlertEngine,
  type AlertNotification,
  DEFAULT_WINDOW_MS,
  type DeliveryAttempt,
  deliver,
  MonitoringMetrics,
  parseRuleExpression,
  verifySignature,
} from '../src/monitoring/alerts/index.js';
import { Monitoring } from '../src/monitoring/monitoring.js';
import { monitoringMigrations } from '../src/monitoring/monitoring-migrations.js';
import { PredictionLog } from '../src/monitoring/prediction-log.js';
import { Database } from '../src/store/index.js';
import { getJson, postJson, REPO_ROOT, startTestApp, tempRepository } from './helpers.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';

const MIN = 60_000;

describe('alert rule grammar', () => {
  test("the issue's examples", () => {
    const pick = (s: string) => {
      const e = parseRuleExpression(s);
      return [
        e.metric,
        e.kind,
        e.op,
        e.threshold,
        e.windowMs,
        e.explicitWindow,
        e.segment ?? null,
        e.test ?? null,
        e.column ?? null,
      ];
    };
    assert.deepEqual(pick('drift_share > 0.5 over 1h'), [
      'drift_share',
      'drift',
      '>',
      0.5,
      3_600_000,
      true,
      null,
      null,
      null,
    ]);
    assert.deepEqual(pick('psi(age) > 0.2'), [
      'psi(age)',
      'column_drift',
      '>',
      0.2,
      DEFAULT_WINDOW_MS,
      false,
      null,
      'psi',
      'age',
    ]);
    assert.deepEqual(pick('p99_latency_ms > 50 over 5m'), [
      'p99_latency_ms',
      'service',
      '>',
      50,
      300_000,
      true,
      null,
      null,
      null,
    ]);
    assert.deepEqual(pick('error_rate > 0.01'), [
      'error_rate',
      'service',
      '>',
      0.01,
      3_600_000,
      false,
      null,
      null,
      null,
    ]);
    assert.deepEqual(pick('accuracy < 0.8 over 1d segment=region:EU'), [
      'accuracy',
      'performance',
      '<',
      0.8,
      86_400_000,
      true,
      { key: 'region', value: 'EU' },
      null,
      null,
    ]);
  });

  test('every metric name, operator and unit; spacing is free', () => {
    for (const m of [
      'accuracy',
      'precision',
      'recall',
      'f1',
      'roc_auc',
      'log_loss',
      'mae',
      'rmse',
      'mape',
      'r2',
    ]) {
      assert.equal(parseRuleExpression(`${m} < 1`).kind, 'performance');
    }
    for (const m of [
      'requests',
      'errors',
      'error_rate',
      'p50_latency_ms',
      'p95_latency_ms',
      'p99_latency_ms',
    ]) {
      assert.equal(parseRuleExpression(`${m} > 1`).kind, 'service');
    }
    for (const op of ['>', '>=', '<', '<=', '==', '!='])
      assert.equal(parseRuleExpression(`requests ${op} 3`).op, op);
    assert.equal(parseRuleExpression('requests<=3').op, '<=');
    assert.equal(parseRuleExpression('ks(hours_per_week)<0.05 over 30s').windowMs, 30_000);
    assert.equal(parseRuleExpression('drift_score(workclass) > 0.1 over 2w').windowMs, 1_209_600_000);
    assert.equal(parseRuleExpression('requests < 1e3 over 500ms').threshold, 1000);
    assert.equal(parseRuleExpression('dataset_drift == 1').kind, 'drift');
    assert.deepEqual(parseRuleExpression('drift_share > 0.3 segment=region:EU:West over 1h').segment, {
      key: 'region',
      value: 'EU:West',
    });
  });

  test('errors name the position of what could not be read', () => {
    const err = (s: string) => {
      try {
        parseRuleExpression(s);
      } catch (e) {
        return (e as Error).message;
      }
      assert.fail(`${s} parsed`);
    };
    assert.match(err('accuracyy < 0.8'), /at position 1: unknown metric 'accuracyy'/);
    assert.match(err('accuracy = 0.8'), /at position 10: expected a comparison/);
    assert.match(err('accuracy < high'), /at position 12: expected a number, got 'high'/);
    assert.match(err('accuracy < 0.8 over 1x'), /at position 21: expected a duration/);
    assert.match(err('accuracy < 0.8 over'), /at position 20: expected a duration .* got the end/);
    assert.match(err('accuracy < 0.8 segment=region'), /at position 24: expected key:value/);
    assert.match(err('accuracy < 0.8 by region'), /at position 16: expected 'over <duration>'/);
    assert.match(err('psi(age > 0.2'), /at position 9: expected '\)'/);
    assert.match(err('foo(age) > 0.2'), /at position 1: unknown drift test 'foo'/);
    assert.match(err('psi > 0.2'), /at position 4: 'psi' takes a column/);
    assert.match(err('error_rate > 0.1 segment=region:EU'), /at position 18: error_rate .* takes no segment/);
    assert.match(err('requests > 1 over 1m over 2m'), /at position 22: 'over' given twice/);
    assert.match(err('requests ! 1'), /at position 10: expected a comparison .* got '!'/);
    assert.match(err('  '), /expression: must be a non-empty string/);
  });
});

/** A local webhook receiver: answers each POST with the next status in `statuses` (then 200). */
async function receiver(statuses: number[] = []) {
  const got: { headers: IncomingMessage['headers']; raw: string; atMs: number }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8'), atMs: Date.now() });
      res.statusCode = statuses.shift() ?? 200;
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const hmac = (secret: string, raw: string) =>
  `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;

describe('webhook delivery', () => {
  test('a timeout is retried; a 4xx other than 408/429 is not; verifySignature checks the raw body', async () => {
    let n = 0;
    const hung: import('node:http').ServerResponse[] = [];
    const server = createServer((req, res) => {
      req.resume();
      n++;
      if (n === 1)
        hung.push(res); // never answered: the attempt times out
      else if (req.url === '/gone') {
        res.statusCode = 410;
        res.end();
      } else res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const attempts: DeliveryAttempt[] = [];
      const ok = await deliver(
        { url: `${base}/hook`, secret: 'k' },
        '{"a":1}',
        (a) => void attempts.push(a),
        {
          timeoutMs: 200,
          backoffMs: 20,
        },
      );
      assert.equal(ok, true);
      assert.deepEqual(
        attempts.map((a) => [a.attempt, a.status, a.ok, a.error]),
        [
          [1, null, false, 'timed out after 200 ms'],
          [2, 200, true, null],
        ],
      );
      const gone: DeliveryAttempt[] = [];
      assert.equal(
        await deliver({ url: `${base}/gone` }, '{}', (a) => void gone.push(a), { backoffMs: 20 }),
        false,
      );
      assert.deepEqual(
        gone.map((a) => [a.attempt, a.status, a.error]),
        [[1, 410, 'HTTP 410']],
      );
      // A port nobody listens on any more.
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const freePort = (closed.address() as { port: number }).port;
      await new Promise<void>((r) => closed.close(() => r()));
      const refused: DeliveryAttempt[] = [];
      assert.equal(
        await deliver({ url: `http://127.0.0.1:${freePort}/x` }, '{}', (a) => void refused.push(a), {
          backoffMs: 10,
          maxAttempts: 3,
        }),
        false,
      );
      assert.equal(refused.length, 3);
      assert.match(refused[0]!.error!, /ECONNREFUSED/);
      assert.equal(verifySignature('k', '{"a":1}', hmac('k', '{"a":1}')), true);
      assert.equal(verifySignature('k', '{"a":2}', hmac('k', '{"a":1}')), false);
      assert.equal(verifySignature('k', '{"a":1}', undefined), false);
    } finally {
      for (const r of hung) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

for (const make of [sqliteDatabase, postgresDatabase]) {
  describe(`alert engine on ${make === sqliteDatabase ? 'sqlite' : 'postgres'}`, () => {
    let server: TestDatabase | { skip: string };
    before(async () => {
      server = await make();
    });
    after(async () => {
      if ('stop' in server) await server.stop();
    });

    async function open(now: () => number = Date.now) {
      if ('skip' in server) throw new Error(server.skip);
      const db = await Database.open({ url: await server.fresh() });
      await db.migrate([...monitoringMigrations, ...alertMigrations]);
      const logger = pino({ level: 'silent' });
      const log = new PredictionLog(db, { flushMs: 1000, queueMax: 10_000, retentionDays: 7, logger, now });
      const engine = new AlertEngine(db, {
        metrics: new MonitoringMetrics({ monitoring: new Monitoring(db) }),
        logger,
        webhook: { backoffMs: 150, maxAttempts: 4, timeoutMs: 2000 },
      });
      return {
        db,
        log,
        engine,
        close: async () => {
          await engine.stop();
          await log.close();
          await db.close();
        },
      };
    }

    test('firing → still firing (one notification) → resolved; no data is no_data, never firing', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const clock = { now: Math.floor(Date.now() / MIN) * MIN + 5000 };
      const s = await open(() => clock.now);
      const hook = await receiver();
      try {
        await s.engine.createRule({
          name: 'errors',
          model: 'm',
          expression: 'error_rate > 0.1 over 5m',
          webhooks: [{ url: hook.url, secret: 's3cret' }],
        });
        const at = (dt: number) => clock.now + dt;
        // Nothing logged yet: no_data (recorded), nothing sent.
        let [e] = await s.engine.evaluate('errors', at(0));
        assert.deepEqual([e!.state, e!.previous, e!.value], ['no_data', 'ok', null]);
        assert.equal(e!.reason, 'no requests in the window');

        for (let i = 0; i < 8; i++) s.log.count('m', '1', false, 0);
        for (let i = 0; i < 2; i++) s.log.count('m', '1', true, 0);
        await s.log.checkpoint();
        [e] = await s.engine.evaluate('errors', at(1000));
        assert.deepEqual([e!.state, e!.previous, e!.value, e!.threshold], ['firing', 'no_data', 0.2, 0.1]);
        [e] = await s.engine.evaluate('errors', at(2000));
        assert.deepEqual([e!.state, e!.previous, e!.event], ['firing', 'firing', undefined]);
        await s.engine.idle();
        assert.equal(hook.got.length, 1, 'one notification while the rule stays firing');

        for (let i = 0; i < 30; i++) s.log.count('m', '1', false, 0);
        await s.log.checkpoint();
        [e] = await s.engine.evaluate('errors', at(3000));
        assert.deepEqual([e!.state, e!.previous, e!.value], ['ok', 'firing', 0.05]);
        // Ten minutes on, the 5-minute window is empty.
        [e] = await s.engine.evaluate('errors', at(10 * MIN));
        assert.deepEqual([e!.state, e!.value], ['no_data', null]);
        await s.engine.idle();

        const bodies = hook.got.map((g) => JSON.parse(g.raw) as AlertNotification);
        assert.deepEqual(
          bodies.map((b) => [b.state, b.value, b.previous]),
          [
            ['firing', 0.2, 'no_data'],
            ['resolved', 0.05, 'firing'],
          ],
        );
        const first = bodies[0]!;
        assert.equal(first.rule, 'errors');
        assert.equal(first.model, 'm');
        assert.equal(first.expression, 'error_rate > 0.1 over 5m');
        assert.equal(first.threshold, 0.1);
        assert.equal(first.window, '5m');
        assert.equal(first.window_end, new Date(at(1000)).toISOString());
        assert.equal(first.window_start, new Date(at(1000) - 5 * MIN).toISOString());
        for (const g of hook.got) {
          assert.equal(g.headers['x-slipway-signature'], hmac('s3cret', g.raw));
          assert.match(String(g.headers['x-slipway-timestamp']), /^\d{10}$/);
        }

        const history = await s.engine.history({ rule: 'errors' });
        assert.deepEqual(
          history.map((h) => [h.state, h.previous, h.value]),
          [
            ['no_data', 'ok', null],
            ['ok', 'firing', 0.05],
            ['firing', 'no_data', 0.2],
            ['no_data', 'ok', null],
          ],
        );
        assert.equal(history[2]!.threshold, 0.1);
        assert.equal(history[2]!.atMs, at(1000));
        const rule = await s.engine.getRule('errors');
        assert.deepEqual([rule.state, rule.value, rule.lastEvalMs], ['no_data', null, at(10 * MIN)]);
        assert.deepEqual(rule.webhooks, [{ url: hook.url, signed: true }]);
      } finally {
        await hook.close();
        await s.close();
      }
    });

    test('`for` holds a true condition in pending until it has lasted that long', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const clock = { now: Math.floor(Date.now() / MIN) * MIN + 1000 };
      const s = await open(() => clock.now);
      try {
        await s.engine.createRule({
          name: 'busy',
          model: 'm',
          expression: 'requests >= 3 over 10m',
          for: '2m',
        });
        for (let i = 0; i < 3; i++) s.log.count('m', '1', false, 0);
        await s.log.checkpoint();
        const states: string[] = [];
        for (const dt of [0, MIN, 2 * MIN, 3 * MIN]) {
          states.push((await s.engine.evaluate('busy', clock.now + dt))[0]!.state);
        }
        assert.deepEqual(states, ['pending', 'pending', 'firing', 'firing']);
        // requests never lacks data: zero requests is a value.
        const [e] = await s.engine.evaluate('busy', clock.now + 60 * MIN);
        assert.deepEqual([e!.state, e!.value], ['ok', 0]);
      } finally {
        await s.close();
      }
    });

    test('a failing webhook is retried with backoff until it answers, every attempt recorded, evaluation not held up', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      const flaky = await receiver([500, 503]);
      const dead = await receiver([500, 500, 500, 500]);
      try {
        await s.engine.createRule({
          name: 'any-traffic',
          model: 'm',
          expression: 'requests > 0 over 5m',
          webhooks: [
            { url: flaky.url, secret: 'k1' },
            { url: dead.url, secret: 'k2' },
          ],
        });
        s.log.count('m', '1', false, 0);
        await s.log.checkpoint();
        const started = Date.now();
        const [e] = await s.engine.evaluate('any-traffic');
        assert.equal(e!.state, 'firing');
        // Evaluation returned before the retries (150 ms, then 300 ms apart) were done.
        assert.ok(flaky.got.length <= 1, `${flaky.got.length} attempts before evaluate returned`);
        await s.engine.idle();
        assert.equal(flaky.got.length, 3);
        assert.equal(dead.got.length, 4, 'bounded: maxAttempts');
        const gaps = flaky.got.slice(1).map((g, i) => g.atMs - flaky.got[i]!.atMs);
        assert.ok(gaps[0]! >= 140 && gaps[1]! >= 290, `backoff gaps ${gaps}`);
        assert.ok(Date.now() - started >= 440);
        // The same body (and so the same signature) on every attempt.
        assert.equal(new Set(flaky.got.map((g) => g.raw)).size, 1);
        for (const g of flaky.got) assert.equal(g.headers['x-slipway-signature'], hmac('k1', g.raw));
        assert.equal(dead.got[0]!.headers['x-slipway-signature'], hmac('k2', dead.got[0]!.raw));
        const deliveries = await s.engine.deliveries('any-traffic');
        const of = (url: string) =>
          deliveries.filter((d) => d.url === url).map((d) => [d.attempt, d.status, d.ok]);
        assert.deepEqual(of(flaky.url), [
          [1, 500, false],
          [2, 503, false],
          [3, 200, true],
        ]);
        assert.deepEqual(of(dead.url), [
          [1, 500, false],
          [2, 500, false],
          [3, 500, false],
          [4, 500, false],
        ]);
        assert.equal(deliveries.find((d) => d.url === dead.url)!.error, 'HTTP 500');
      } finally {
        await flaky.close();
        await dead.close();
        await s.close();
      }
    });

    test('drift rules against a past window of the log, per column and per segment', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const now = Date.now();
        const entry = (timeMs: number, i: number, age: number, region: string) => ({
          timeMs,
          model: 'm',
          version: '1',
          protocol: 'v1',
          requestId: `r-${timeMs}-${i}`,
          latencyUs: 1000,
          records: [{ age, hours: 40 + (i % 7) }],
          predictions: [{ label: age >= 60 ? 'old' : 'young' }],
          segments: { region },
        });
        // Two days ago: ages 20–59 everywhere. Now: the EU has grown old, the US has not; the
        // predictions (a column of their own, prediction.label) follow the ages.
        for (let i = 0; i < 120; i++)
          s.log.record(entry(now - 2 * 86_400_000 + i, i, 20 + (i % 40), i % 2 ? 'EU' : 'US'));
        for (let i = 0; i < 120; i++) {
          s.log.record(
            entry(now - 60_000 + i, i, i % 2 ? 70 + (i % 20) : 20 + (i % 40), i % 2 ? 'EU' : 'US'),
          );
        }
        await s.log.flush();
        const rule = (name: string, expression: string) =>
          s.engine.createRule({ name, model: 'm', expression, reference: 'window:3d/1d' });
        await rule('age-ks', 'ks(age) < 0.05 over 1h');
        await rule('eu-share', 'drift_share >= 0.5 over 1h segment=region:EU');
        await rule('us-share', 'drift_share >= 0.5 over 1h segment=region:US');
        await rule('no-col', 'psi(salary) > 0.1 over 1h');
        await rule('eu-label', 'drift_score(prediction.label) < 0.05 over 1h segment=region:EU');
        const got = Object.fromEntries((await s.engine.evaluate()).map((e) => [e.rule, e]));
        assert.equal(got['age-ks']!.state, 'firing');
        assert.ok(got['age-ks']!.value! < 1e-6, `ks p-value ${got['age-ks']!.value}`);
        // EU: age and the predicted label drifted, hours did not: two of three columns.
        assert.deepEqual([got['eu-share']!.state, got['eu-share']!.value], ['firing', 2 / 3]);
        assert.deepEqual([got['us-share']!.state, got['us-share']!.value], ['ok', 0]);
        assert.equal(got['eu-label']!.state, 'firing', JSON.stringify(got['eu-label']));
        assert.deepEqual(
          [got['no-col']!.state, got['no-col']!.reason],
          ['no_data', "no logged values of column 'salary'"],
        );
      } finally {
        await s.close();
      }
    });

    test('rules are checked, named uniquely, listed and deleted with their history', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const rejects = (input: object, re: RegExp) =>
          assert.rejects(
            s.engine.createRule({ name: 'x', model: 'm', expression: 'requests > 1', ...input }),
            (e: Error & { code?: string }) => e.code === 'SLIPWAY_ERR_BAD_REQUEST' && re.test(e.message),
          );
        await rejects({ expression: 'requests >' }, /expression: at position 11: expected a number/);
        await rejects({ interval: 'often' }, /interval must be a duration/);
        await rejects({ interval: '500ms' }, /interval must be at least 1s/);
        await rejects({ webhooks: [{ url: 'ftp://x' }] }, /webhooks\[0\]\.url must be an http\(s\) URL/);
        await rejects({ retrain: { command: [] } }, /retrain\.command must be a non-empty array/);
        await rejects({ reference: 'adult@1' }, /reference: requests is not a drift metric/);
        await rejects({ name: '' }, /^name must be/);
        const r = await s.engine.createRule({
          name: 'drift',
          model: 'm',
          version: '2',
          expression: 'drift_share > 0.5 over 1h',
          interval: '30s',
          reference: 'window:8d/1d',
        });
        assert.deepEqual(
          [r.intervalMs, r.forMs, r.version, r.reference, r.state],
          [30_000, 0, '2', 'window:8d/1d', 'ok'],
        );
        await assert.rejects(
          s.engine.createRule({ name: 'drift', model: 'm', expression: 'requests > 1' }),
          (e: Error & { code?: string }) => e.code === 'SLIPWAY_ERR_ALREADY_EXISTS',
        );
        // No predictions: drift has no data.
        const [e] = await s.engine.evaluate('drift');
        assert.deepEqual([e!.state, e!.reason], ['no_data', 'no logged predictions in the window']);
        assert.deepEqual(
          (await s.engine.listRules()).map((x) => x.name),
          ['drift'],
        );
        await s.engine.deleteRule(r.id);
        assert.deepEqual(await s.engine.listRules(), []);
        assert.deepEqual(await s.engine.history(), []);
        await assert.rejects(
          s.engine.getRule('drift'),
          (e: Error & { code?: string }) => e.code === 'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
        );
      } finally {
        await s.close();
      }
    });

    test('windows, intervals and `for` are bounded, references and names checked when a rule is created', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        const rejects = (input: Record<string, unknown>, re: RegExp) =>
          assert.rejects(
            s.engine.createRule({ name: 'x', model: 'm', expression: 'requests > 1', ...input } as never),
            (e: Error & { code?: string }) =>
              e.code === 'SLIPWAY_ERR_BAD_REQUEST' && re.test(e.message) ? true : assert.fail(e.message),
          );
        // Past 366 days a window leaves the dates a Date holds (or soon would): refused, naming the field.
        for (const metric of [
          'p99_latency_ms > 0',
          'accuracy < 0.8',
          'psi(age) > 0.1',
          'drift_share > 0.5',
        ]) {
          await rejects(
            { expression: `${metric} over 99999999999999w` },
            /^expression: at position \d+: the window must be 1ms to 366d, got '99999999999999w'/,
          );
        }
        await rejects({ expression: 'requests > 1 over 367d' }, /^expression: .*366d/);
        await rejects({ expression: 'requests > 1 over 0.1ms' }, /^expression: .*1ms to 366d/);
        await rejects({ interval: '99999999999999w' }, /^interval must be at most 366d/);
        await rejects({ interval: 99_999_999_999_999 }, /^interval must be at most 366d/);
        await rejects({ for: '99999999999999w' }, /^for must be at most 366d/);
        await rejects({ for: true }, /^for must be a duration/);
        await rejects(
          { retrain: { command: ['x'], timeoutMs: 2 ** 31 } },
          /^retrain\.timeoutMs .* at most 2147483647/,
        );
        // A reference is read when the rule is created, as it will be when it is evaluated.
        const drift = { expression: 'psi(age) > 0.1' };
        await rejects(
          { ...drift, reference: 'window:x/y' },
          /^reference since must be epoch milliseconds .* got "x"/,
        );
        await rejects({ ...drift, reference: 'window:1d/8d' }, /^reference "window:1d\/8d" is reversed/);
        await rejects(
          { ...drift, reference: 'window:99999999999999w/1d' },
          /^reference since must lie between/,
        );
        await rejects({ ...drift, reference: 'window:8d' }, /^reference must be window:<since>\/<until>/);
        await rejects({ ...drift, reference: 'a@b@c' }, /^reference: "a@b@c" is neither a dataset reference/);
        await rejects({ ...drift, reference: '@' }, /^reference: "@" is neither/);
        await rejects({ ...drift, reference: 's3://bucket/x.csv' }, /^reference: .* cannot be read/);
        await rejects({ ...drift, reference: 1 }, /^reference must be training, a dataset version/);
        // Names the routes take for themselves, and the shape of rule ids.
        await rejects({ name: 'history' }, /^name: 'history' is reserved/);
        await rejects({ name: 'evaluate' }, /^name: 'evaluate' is reserved/);
        await rejects({ name: 'al-0b1d2e3f-0000-4000-8000-000000000000' }, /^name: .* is reserved/);
        await rejects({ nmae: 'typo' }, /^nmae is not a rule field/);
        // Both ways of writing a window reference; bounds met exactly.
        const ok = await s.engine.createRule({
          name: 'dots',
          model: 'm',
          expression: 'psi(age) > 0.1 over 366d',
          reference: 'window:8d..1d',
          interval: '366d',
          for: 31_622_400_000,
        });
        assert.deepEqual(
          [ok.parsed.windowMs, ok.intervalMs, ok.forMs],
          [31_622_400_000, 31_622_400_000, 31_622_400_000],
        );
      } finally {
        await s.close();
      }
    });

    test('a rule stored before the bounds still lists, evaluates to no_data and leaves history readable', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const s = await open();
      try {
        await s.engine.createRule({ name: 'fine', model: 'm', expression: 'requests >= 0 over 5m' });
        const now = Date.now();
        // As an older server accepted it: a window no Date can start.
        await s.db
          .as<AlertTables>()
          .insertInto('alert_rules')
          .values({
            id: 'al-old',
            name: 'huge',
            model: 'm',
            version: null,
            expression: 'p99_latency_ms > 0 over 99999999999999w',
            interval_ms: 60_000,
            for_ms: 0,
            reference: null,
            webhooks: '[]',
            retrain: null,
            state: 'ok',
            state_since_ms: now,
            last_value: null,
            last_eval_ms: null,
            last_reason: null,
            created_ms: now,
          })
          .execute();
        assert.deepEqual(
          (await s.engine.listRules()).map((r) => r.name),
          ['fine', 'huge'],
        );
        const got = Object.fromEntries((await s.engine.evaluate(undefined, now)).map((e) => [e.rule, e]));
        assert.equal(got.fine!.state, 'firing');
        assert.equal(got.huge!.state, 'no_data');
        assert.match(got.huge!.reason!, /outside 1ms to 366d: recreate the rule/);
        const history = await s.engine.history();
        assert.deepEqual(history.map((e) => e.rule).sort(), ['fine', 'huge']);
        const huge = history.find((e) => e.rule === 'huge')!;
        assert.equal(huge.windowStartMs, -8.64e15, 'held within the dates a Date holds');
        assert.equal(new Date(huge.windowStartMs).toISOString(), '-271821-04-20T00:00:00.000Z');
        await s.engine.deleteRule('huge');
      } finally {
        await s.close();
      }
    });

    test('the schedule evaluates each rule at its own interval', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const { db, log } = await open();
      const engine = new AlertEngine(db, {
        metrics: new MonitoringMetrics({ monitoring: new Monitoring(db) }),
        tickMs: 100,
      });
      try {
        await engine.createRule({
          name: 'fast',
          model: 'm',
          expression: 'requests > 0 over 5m',
          interval: '1s',
        });
        await engine.createRule({
          name: 'slow',
          model: 'm',
          expression: 'requests > 0 over 5m',
          interval: '1h',
        });
        log.count('m', '1', false, 0);
        await log.checkpoint();
        engine.start();
        await new Promise((r) => setTimeout(r, 2600));
        await engine.stop();
        const fast = await engine.getRule('fast');
        const slow = await engine.getRule('slow');
        assert.equal(fast.state, 'firing');
        assert.equal(slow.state, 'firing');
        // `slow` ran once at start; `fast` again after each second.
        assert.ok(
          fast.lastEvalMs! - slow.lastEvalMs! >= 1900,
          `${fast.lastEvalMs! - slow.lastEvalMs!} ms apart`,
        );
        assert.deepEqual(
          engine.states().map((r) => [r.name, r.state]),
          [
            ['fast', 'firing'],
            ['slow', 'firing'],
          ],
        );
      } finally {
        await log.close();
        await db.close();
      }
    });
  });
}

const PYTHON = (() => {
  for (const p of [join(REPO_ROOT, 'interop', '.venv', 'bin', 'python'), 'python3']) {
    if (
      spawnSync(p, ['-c', 'import sys; print(sys.version_info[0])'], { encoding: 'utf8' }).stdout?.trim() ===
      '3'
    )
      return p;
  }
  return undefined;
})();

describe('alerts on a server: REST, drift against the training data, retraining, Prometheus', () => {
  let app: App;
  let url: string;
  let remove: () => Promise<void>;
  let hook: Awaited<ReturnType<typeof receiver>>;
  const MODEL_FILE = join(REPO_ROOT, 'test', 'fixtures', 'models', 'tabular', '1', 'model.onnx');

  before(async () => {
    const repo = await tempRepository([]);
    remove = repo.remove;
    app = await startTestApp({ models: null, predictionFlushMs: 50, registryPollMs: 100 });
    url = app.http.url;
    hook = await receiver();
    // A 3000-row slice of Adult as the training dataset version.
    const lines = (await readFile(join(REPO_ROOT, 'datasets', 'adult', 'adult.csv'), 'utf8')).split('\n');
    const slice = join(repo.dir, 'adult-train.csv');
    await writeFile(slice, `${lines.slice(0, 3001).join('\n')}\n`);
    await new Datasets(app.db, app.artifacts).add(slice, { name: 'adult-train' }, 'test');
    const config = JSON.parse(
      await readFile(join(REPO_ROOT, 'test', 'fixtures', 'models', 'tabular', 'config.json'), 'utf8'),
    );
    await app.registry.createVersion(
      {
        name: 'income',
        content: { file: await readFile(MODEL_FILE), fileName: 'model.onnx' },
        createModel: true,
        trainingData: ['adult-train@1'],
        aliases: ['champion'],
        config: { ...config, monitoring: { segments: ['region'] } },
      },
      'test',
    );
    // Wait for the registry watcher to load it.
    for (let i = 0; i < 100; i++) {
      if ((await getJson(`${url}/v2/models/income/ready`)).status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    await app?.close();
    await hook?.close();
    await remove?.();
  });

  test('REST: create (400s name the field), list, get, evaluate, history, delete', async () => {
    const base = `${url}/api/v1/monitoring/alerts`;
    const badExpr = await postJson(base, { name: 'x', model: 'income', expression: 'accuracy <' });
    assert.equal(badExpr.status, 400);
    assert.match(badExpr.body.error, /expression: at position 11: expected a number/);
    const noModel = await postJson(base, { name: 'x', expression: 'requests > 1' });
    assert.equal(noModel.status, 400);
    assert.match(noModel.body.error, /model/);
    const badHook = await postJson(base, {
      name: 'x',
      model: 'income',
      expression: 'requests > 1',
      webhooks: [{ url: 'nope' }],
    });
    assert.equal(badHook.status, 400);
    assert.match(badHook.body.error, /webhooks\[0\]\.url/);
    const badRetrain = await postJson(base, {
      name: 'x',
      model: 'income',
      expression: 'requests > 1',
      retrain: { command: ['x'], shell: true },
    });
    assert.equal(badRetrain.status, 400);
    assert.match(badRetrain.body.error, /retrain/);

    const created = await postJson(base, {
      name: 'eu-accuracy',
      model: 'income',
      expression: 'accuracy < 0.8 over 1d segment=region:EU',
      interval: '10m',
      webhooks: [{ url: hook.url, secret: 'topsecret' }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.metric, 'accuracy');
    assert.deepEqual(created.body.segment, { key: 'region', value: 'EU' });
    assert.equal(created.body.window_ms, 86_400_000);
    assert.equal(created.body.interval_ms, 600_000);
    assert.deepEqual(created.body.webhooks, [{ url: hook.url, signed: true }]);
    assert.equal(JSON.stringify(created.body).includes('topsecret'), false);
    const dup = await postJson(base, { name: 'eu-accuracy', model: 'income', expression: 'requests > 1' });
    assert.equal(dup.status, 409);

    // A model that is not served (yet, or any more) has had no requests: 0 is a value, and a
    // "gone silent" rule fires on it, though the monitoring API answers 404 for the model.
    const silent = await postJson(base, {
      name: 'silent',
      model: 'not-deployed',
      expression: 'requests < 1 over 10m',
    });
    assert.equal(silent.status, 201, JSON.stringify(silent.body));
    const quiet = await postJson(`${base}/silent/evaluate`, {});
    assert.deepEqual([quiet.body.state, quiet.body.value], ['firing', 0], JSON.stringify(quiet.body));
    assert.equal(
      (await getJson(`${url}/api/v1/monitoring/service?model=not-deployed&since=10m`)).status,
      404,
    );
    assert.equal((await fetch(`${base}/silent`, { method: 'DELETE' })).status, 204);

    // Two EU predictions, one right and one wrong: accuracy 0.5 < 0.8.
    const p = await postJson(`${url}/v1/models/income:predict`, {
      id: 'eu-1',
      instances: [
        { age: 25, hours_per_week: 20, workclass: 'Private', region: 'EU' },
        { age: 60, hours_per_week: 70, workclass: 'Self-emp-inc', region: 'EU' },
      ],
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    const labels = p.body.predictions.map((x: { label: string }) => x.label);
    const wrong = (l: string) => (l === '>50K' ? '<=50K' : '>50K');
    await postJson(`${url}/v1/feedback`, [
      { request_id: 'eu-1', row: 0, ground_truth: labels[0] },
      { request_id: 'eu-1', row: 1, ground_truth: wrong(labels[1]) },
    ]);
    await app.predictions!.flush();

    const ev = await postJson(`${base}/eu-accuracy/evaluate`, {});
    assert.equal(ev.status, 200, JSON.stringify(ev.body));
    assert.deepEqual(
      [ev.body.state, ev.body.previous, ev.body.value, ev.body.threshold],
      ['firing', 'ok', 0.5, 0.8],
    );
    await app.alerts.idle();
    assert.equal(hook.got.length, 1);
    const note = JSON.parse(hook.got[0]!.raw) as AlertNotification;
    assert.deepEqual(
      [note.rule, note.state, note.value, note.segment],
      ['eu-accuracy', 'firing', 0.5, { key: 'region', value: 'EU' }],
    );
    assert.equal(hook.got[0]!.headers['x-slipway-signature'], hmac('topsecret', hook.got[0]!.raw));

    const all = await postJson(`${base}/evaluate`, {});
    assert.equal(all.status, 200);
    assert.deepEqual(
      all.body.evaluations.map((e: { rule: string; state: string }) => [e.rule, e.state]),
      [['eu-accuracy', 'firing']],
    );

    const list = await getJson(`${base}?model=income`);
    assert.deepEqual(
      list.body.rules.map((r: { name: string; state: string; value: number }) => [r.name, r.state, r.value]),
      [['eu-accuracy', 'firing', 0.5]],
    );
    const one = await getJson(`${base}/eu-accuracy`);
    assert.equal(one.body.expression, 'accuracy < 0.8 over 1d segment=region:EU');
    const hist = await getJson(`${base}/eu-accuracy/history`);
    assert.deepEqual(
      hist.body.events.map((e: { state: string }) => e.state),
      ['firing'],
    );
    assert.deepEqual(
      hist.body.deliveries.map((d: { attempt: number; status: number; ok: boolean }) => [
        d.attempt,
        d.status,
        d.ok,
      ]),
      [[1, 200, true]],
    );
    const global = await getJson(`${base}/history?rule=eu-accuracy&limit=5`);
    assert.equal(global.body.events[0].rule, 'eu-accuracy');

    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /slipway_alert_state\{rule="eu-accuracy",model="income",state="firing"\} 1/);
    assert.match(metrics, /slipway_alert_state\{rule="eu-accuracy",model="income",state="ok"\} 0/);
    assert.match(metrics, /slipway_alert_value\{rule="eu-accuracy",model="income"\} 0\.5/);

    const del = await fetch(`${base}/eu-accuracy`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal((await getJson(`${base}/eu-accuracy`)).status, 404);
    assert.equal((await postJson(`${base}/nope/evaluate`, {})).status, 404);
  });

  test('drift against the training dataset fires; the retraining command pushes a version that becomes challenger', async (t) => {
    if (!PYTHON) return t.skip('no Python 3 (interop/.venv or python3 on PATH) for the trainer');
    const base = `${url}/api/v1/monitoring/alerts`;
    const created = await postJson(base, {
      name: 'income-drift',
      model: 'income',
      expression: 'drift_share > 0.5 over 1h',
      retrain: {
        command: [PYTHON, join(REPO_ROOT, 'test', 'fixtures', 'retrain', 'train.py'), MODEL_FILE, 'income'],
        timeoutMs: 120_000,
        env: { SLIPWAY_CLI: JSON.stringify([process.execPath, join(REPO_ROOT, 'bin', 'slipway.js')]) },
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const psi = await postJson(base, { name: 'age-psi', model: 'income', expression: 'psi(age) > 0.2' });
    assert.equal(psi.status, 201);

    // Nothing logged for the model in the last hour except the EU rows above, which are few: send
    // traffic far from Adult's: everyone is 80 and works 90 hours.
    const rows = Array.from({ length: 200 }, (_, i) => ({
      age: 78 + (i % 5),
      hours_per_week: 88 + (i % 4),
      workclass: 'Never-worked',
      region: 'US',
    }));
    for (let i = 0; i < rows.length; i += 50) {
      const r = await postJson(`${url}/v1/models/income:predict`, { instances: rows.slice(i, i + 50) });
      assert.equal(r.status, 200);
    }
    await app.predictions!.flush();

    const ev = await postJson(`${base}/evaluate`, {});
    const byRule = Object.fromEntries(
      ev.body.evaluations.map((e: { rule: string; state: string; value: number }) => [e.rule, e]),
    );
    assert.equal(byRule['income-drift'].state, 'firing', JSON.stringify(byRule['income-drift']));
    assert.equal(byRule['income-drift'].value, 1);
    assert.equal(byRule['age-psi'].state, 'firing');
    // The same score the drift engine gives for age with psi on these tables.
    assert.ok(byRule['age-psi'].value > 1, `psi(age) = ${byRule['age-psi'].value}`);

    await app.alerts.idle();
    const hist = await getJson(`${base}/income-drift/history`);
    const [run] = hist.body.runs;
    assert.equal(run.status, 'succeeded', run.output_tail);
    assert.equal(run.exit_code, 0);
    assert.match(run.output_tail, /retraining income on adult-train@1 \(trigger tr-/);
    assert.match(run.output_tail, /trained on 3000 rows/);
    assert.equal(run.model_version, 2);
    assert.equal(run.event_id, hist.body.events[0].id);

    const v2 = await app.registry.getVersion('income', 2);
    assert.equal(v2.tags.trigger, run.id);
    assert.equal(v2.tags.alert, 'income-drift');
    assert.deepEqual(
      v2.trainingData.map((d) => d.ref),
      ['adult-train@1'],
    );
    assert.ok(v2.metrics.accuracy! > 0.7 && v2.metrics.accuracy! < 0.8);
    assert.deepEqual(v2.aliases, ['challenger']);
    assert.deepEqual((await app.registry.getVersionByAlias('income', 'champion')).version, 1);
    const moves = await app.registry.aliasHistory('income', 'challenger');
    assert.ok(
      moves.some((m) => m.toVersion === 2 && m.actor === 'alert:income-drift'),
      JSON.stringify(moves),
    );

    // Still firing on the next evaluation: no second run.
    await postJson(`${base}/income-drift/evaluate`, {});
    await app.alerts.idle();
    assert.equal((await getJson(`${base}/income-drift/history`)).body.runs.length, 1);
  });
  test('REST: a rule body is taken as sent (no coercion), bounds and reserved names are 400s naming the field; one bad stored event does not break history', async () => {
    const base = `${url}/api/v1/monitoring/alerts`;
    const create = (body: Record<string, unknown>) =>
      postJson(base, { name: 'x', model: 'income', expression: 'requests > 1', ...body });
    for (const [body, re] of [
      [{ name: 1 }, /^name must be/],
      [{ model: 1 }, /^model must be a model name/],
      [{ version: 2 }, /^version must be a version string/],
      [
        { expression: 'p99_latency_ms > 0 over 99999999999999w' },
        /^expression: at position 25: the window must be 1ms to 366d/,
      ],
      [{ interval: '99999999999999w' }, /^interval must be at most 366d/],
      [{ for: '99999999999999w' }, /^for must be at most 366d/],
      [{ expression: 'psi(age) > 0.1', reference: 'window:1d/8d' }, /^reference "window:1d\/8d" is reversed/],
      [{ expression: 'psi(age) > 0.1', reference: 'a@b@c' }, /^reference: "a@b@c" is neither/],
      [{ name: 'history' }, /^name: 'history' is reserved/],
      [{ extra: 1 }, /^extra is not a rule field/],
    ] as const) {
      const r = await create(body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 'SLIPWAY_ERR_BAD_REQUEST');
      assert.match(r.body.error, re);
    }
    assert.deepEqual(
      (await getJson(`${base}?model=income`)).body.rules.map((r: { name: string }) => r.name).includes('x'),
      false,
    );

    // An event whose window no Date holds, as a server without the bounds stored one.
    const rule = await create({ name: 'old-window' });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    await app.db
      .as<AlertTables>()
      .insertInto('alert_events')
      .values({
        id: 'ae-old',
        rule_id: rule.body.id,
        state: 'no_data',
        previous: 'ok',
        value: null,
        threshold: 1,
        window_start_ms: -9_000_000_000_000_000,
        window_end_ms: Date.now(),
        at_ms: Date.now(),
        reason: 'cannot measure: Invalid time value',
      })
      .execute();
    const all = await getJson(`${base}/history`);
    assert.equal(all.status, 200, JSON.stringify(all.body));
    const old = all.body.events.find((e: { id: string }) => e.id === 'ae-old');
    assert.equal(old.window_start, null);
    assert.equal(typeof old.window_end, 'string');
    assert.equal((await getJson(`${base}/old-window/history`)).status, 200);
    assert.equal((await fetch(`${base}/old-window`, { method: 'DELETE' })).status, 204);
  });
});
