/**
 * `slipway monitor …` end to end on a data dir: service, predictions and performance as the REST
 * API gives them, and alert rules — add (errors by position), list, evaluate (a signed webhook,
 * once while firing), history, remove.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { MIGRATIONS } from '../src/app.js';
import { Monitoring } from '../src/monitoring/monitoring.js';
import { PredictionLog } from '../src/monitoring/prediction-log.js';
import { Database } from '../src/store/index.js';
import { REPO_ROOT } from './helpers.js';

const exec = promisify(execFile);

describe('slipway monitor', () => {
  let dir: string;
  let hookUrl: string;
  const got: { headers: IncomingMessage['headers']; raw: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
      res.end('ok');
    });
  });

  async function slipway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [join(REPO_ROOT, 'bin/slipway.js'), ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, SLIPWAY_DATA_DIR: dir, SLIPWAY_DATABASE_URL: '' },
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-monitor-'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    hookUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
    // What a server would have logged: 10 requests to m v1, 2 of them failed, one prediction logged.
    const db = await Database.open({ url: join(dir, 'slipway.db') });
    await db.migrate(MIGRATIONS);
    const log = new PredictionLog(db, {
      flushMs: 1000,
      queueMax: 100,
      retentionDays: 7,
      logger: pino({ level: 'silent' }),
    });
    for (let i = 0; i < 8; i++) log.count('m', '1', false, 0);
    for (let i = 0; i < 2; i++) log.count('m', '1', true, 0);
    log.record({
      timeMs: Date.now(),
      model: 'm',
      version: '1',
      protocol: 'v1',
      requestId: 'r-1',
      latencyUs: 12_000,
      records: [{ age: 30 }],
      predictions: [{ label: 'yes' }],
    });
    await new Monitoring(db).recordFeedback([{ request_id: 'r-1', ground_truth: 'yes' }]);
    await log.close();
    await db.close();
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  test('service, predictions and performance print what the REST API gives', async () => {
    const service = await slipway(['monitor', 'service', '--model', 'm', '--since', '1h']);
    assert.equal(service.code, 0, service.stderr);
    const s = JSON.parse(service.stdout);
    assert.deepEqual([s.requests, s.errors, s.error_rate, s.logged, s.latency_ms.p99], [8, 2, 0.2, 1, 12]);

    const predictions = await slipway(['monitor', 'predictions', '--model', 'm', '--limit', '5']);
    assert.equal(predictions.code, 0, predictions.stderr);
    const [p] = JSON.parse(predictions.stdout).predictions;
    assert.deepEqual([p.request_id, p.latency_ms, p.inputs, p.ground_truth], ['r-1', 12, { age: 30 }, 'yes']);

    const perf = await slipway(['monitor', 'performance', '--model', 'm']);
    assert.equal(perf.code, 0, perf.stderr);
    const r = JSON.parse(perf.stdout);
    assert.deepEqual([r.predictions, r.labelled, r.metrics.accuracy], [1, 1, 1]);

    const bad = await slipway(['monitor', 'performance', '--model', 'm', '--segment', 'EU']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--segment must be key:value/);
    // A model the store knows nothing of (neither logged nor registered) is an error, not zeros;
    // a registered model without traffic has zeros.
    for (const command of ['service', 'performance']) {
      const unknown = await slipway(['monitor', command, '--model', 'mm']);
      assert.equal(unknown.code, 1, unknown.stdout);
      assert.match(
        unknown.stderr,
        /model 'mm' has no logged predictions in this store and is not registered/,
      );
    }
    const pushed = await slipway([
      'models',
      'push',
      join(REPO_ROOT, 'test/fixtures/models/add_sub/1/model.onnx'),
      '--name',
      'quiet',
    ]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const quiet = await slipway(['monitor', 'service', '--model', 'quiet']);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(JSON.parse(quiet.stdout).requests, 0);
    const badSince = await slipway(['monitor', 'service', '--model', 'm', '--since', 'yesterday']);
    assert.equal(badSince.code, 1);
    assert.match(badSince.stderr, /--since must be epoch milliseconds \(digits only\), an ISO 8601 date/);
  });

  test('alerts add, list, evaluate (webhook once while firing), history, remove', async () => {
    const badExpr = await slipway([
      'monitor',
      'alerts',
      'add',
      '--name',
      'x',
      '--model',
      'm',
      '--expr',
      'error_rate >> 1',
    ]);
    assert.equal(badExpr.code, 1);
    assert.match(badExpr.stderr, /expression: at position 13: expected a number, got '>'/);
    const badRetrain = await slipway([
      'monitor',
      'alerts',
      'add',
      '--name',
      'x',
      '--model',
      'm',
      '--expr',
      'requests > 1',
      '--retrain',
      'python3 train.py',
    ]);
    assert.equal(badRetrain.code, 1);
    assert.match(badRetrain.stderr, /--retrain must be a JSON array of strings/);

    const add = await slipway([
      'monitor',
      'alerts',
      'add',
      '--name',
      'errs',
      '--model',
      'm',
      '--expr',
      'error_rate > 0.1 over 1h',
      '--interval',
      '30s',
      '--webhook',
      hookUrl,
      '--webhook-secret',
      'cli-secret',
    ]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(
      add.stdout,
      /Added alert rule errs \(al-[0-9a-f-]+\): error_rate > 0.1 over 1h on m, every 30s/,
    );

    const list = await slipway(['monitor', 'alerts', 'list', '--json']);
    const [rule] = JSON.parse(list.stdout).rules;
    assert.deepEqual(
      [rule.name, rule.state, rule.interval_ms, rule.webhooks],
      ['errs', 'ok', 30_000, [{ url: hookUrl, signed: true }]],
    );

    const ev = await slipway(['monitor', 'alerts', 'evaluate', '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const [e] = JSON.parse(ev.stdout).evaluations;
    assert.deepEqual([e.rule, e.state, e.previous, e.value, e.threshold], ['errs', 'firing', 'ok', 0.2, 0.1]);
    // The command waited for its webhook before exiting.
    assert.equal(got.length, 1);
    const body = JSON.parse(got[0]!.raw);
    assert.deepEqual([body.rule, body.state, body.value, body.window], ['errs', 'firing', 0.2, '1h']);
    assert.equal(
      got[0]!.headers['x-slipway-signature'],
      `sha256=${createHmac('sha256', 'cli-secret').update(got[0]!.raw).digest('hex')}`,
    );

    const again = await slipway(['monitor', 'alerts', 'evaluate', 'errs']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /errs\s+firing\s+firing\s+0\.2\s+0\.1/);
    assert.equal(got.length, 1, 'no second notification while firing');

    const text = await slipway(['monitor', 'alerts', 'list']);
    assert.match(text.stdout, /errs\s+m\s+error_rate > 0.1 over 1h\s+firing\s+0\.2\s+30s/);
    const history = await slipway(['monitor', 'alerts', 'history', 'errs', '--json']);
    assert.deepEqual(
      JSON.parse(history.stdout).events.map((x: { state: string; previous: string; value: number }) => [
        x.state,
        x.previous,
        x.value,
      ]),
      [['firing', 'ok', 0.2]],
    );

    const missing = await slipway(['monitor', 'alerts', 'remove', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no alert rule 'nope'/);
    const removed = await slipway(['monitor', 'alerts', 'remove', 'errs']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match((await slipway(['monitor', 'alerts', 'list'])).stdout, /No alert rules\./);
  });
});
