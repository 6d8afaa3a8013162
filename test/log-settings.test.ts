/**
 * Triton's logging extension: the log settings read and changed at run time over REST and gRPC,
 * mapped onto the server's log level.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { App } from '../src/app.js';
import { levelFor, logSettingsOf } from '../src/config/index.js';
import { fetchReply, grpcClient, startTestApp } from './helpers.js';

const DEFAULTS = {
  log_file: '',
  log_info: true,
  log_warnings: true,
  log_errors: true,
  log_verbose_level: 0,
  log_format: 'default',
};

test('settings and levels map onto each other; a change is checked setting by setting', () => {
  assert.deepEqual(logSettingsOf({ level: 'info' }), DEFAULTS);
  assert.deepEqual(logSettingsOf({ level: 'trace' }), { ...DEFAULTS, log_verbose_level: 2 });
  assert.deepEqual(logSettingsOf({ level: 'silent' }), {
    ...DEFAULTS,
    log_info: false,
    log_warnings: false,
    log_errors: false,
  });
  const cases: [object, string][] = [
    [{}, 'info'],
    [{ log_verbose_level: 1 }, 'debug'],
    [{ log_verbose_level: 7 }, 'trace'],
    [{ log_info: false }, 'warn'],
    [{ log_info: false, log_warnings: false }, 'error'],
    [{ log_info: false, log_warnings: false, log_errors: false }, 'silent'],
    [{ log_file: '', log_format: 'default' }, 'info'],
  ];
  for (const [patch, level] of cases) assert.equal(levelFor('info', patch), level, JSON.stringify(patch));
  // A change that changes nothing keeps the level, 'fatal' included (its switches read as all off).
  assert.equal(levelFor('fatal', {}), 'fatal');
  assert.equal(levelFor('fatal', { log_errors: false }), 'fatal');
  assert.equal(levelFor('fatal', { log_errors: true }), 'error');
  const errors: [unknown, RegExp][] = [
    [{ log_level: 1 }, /unknown log setting 'log_level'; the settings are log_file, log_info/],
    [{ log_info: 'yes' }, /'log_info' must be true or false, got "yes"/],
    [{ log_verbose_level: -1 }, /'log_verbose_level' must be an integer >= 0, got -1/],
    [{ log_file: '/tmp/x.log' }, /'log_file' must be "": the log goes to standard error/],
    [{ log_format: 'ISO8601' }, /'log_format' must be "default" \(JSON lines\), got "ISO8601"/],
    [{ log_warnings: false }, /'log_warnings' cannot be off while 'log_info' is on/],
    [{ log_info: false, log_verbose_level: 1 }, /'log_verbose_level' above 0 needs 'log_info'/],
    [[1], /log settings must be a JSON object/],
  ];
  for (const [patch, message] of errors) {
    assert.throws(
      () => levelFor('info', patch),
      (e: any) => e.code === 'SLIPWAY_ERR_BAD_REQUEST' && message.test(e.message),
    );
  }
});

describe('the logging extension on the real server', () => {
  let app: App;
  let base: string;
  let client: grpc.Client;
  const logSettings = (settings: Record<string, object>) =>
    new Promise<any>((resolve, reject) =>
      (client as any).LogSettings({ settings }, (err: grpc.ServiceError | null, res: any) =>
        err ? reject(err) : resolve(res),
      ),
    );

  before(async () => {
    // The test server's logger starts silent: every switch off.
    app = await startTestApp({ grpcPort: 0 });
    base = app.http.url;
    client = grpcClient(app.grpc!.port);
  });
  after(async () => {
    client.close();
    await app.close();
  });
  const silence = { log_info: false, log_warnings: false, log_errors: false, log_verbose_level: 0 };

  test('REST: GET reads, POST changes some settings and answers all of them', async () => {
    assert.ok((await fetchReply(`${base}/v2`, 'GET')).body.extensions.includes('logging'));
    assert.deepEqual((await fetchReply(`${base}/v2/logging`, 'GET')).body, { ...DEFAULTS, ...silence });
    const on = await fetchReply(`${base}/v2/logging`, 'POST', {
      log_info: true,
      log_warnings: true,
      log_errors: true,
    });
    assert.deepEqual(on.body, DEFAULTS);
    assert.equal(app.logger.level, 'info');
    const changed = await fetchReply(`${base}/v2/logging`, 'POST', { log_verbose_level: 1 });
    assert.equal(changed.status, 200, changed.text);
    assert.deepEqual(changed.body, { ...DEFAULTS, log_verbose_level: 1 });
    assert.equal(app.logger.level, 'debug');
    const bad = await fetchReply(`${base}/v2/logging`, 'POST', { log_errors: 'no' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /'log_errors' must be true or false/);
    assert.equal(app.logger.level, 'debug', 'a refused change changes nothing');
    await fetchReply(`${base}/v2/logging`, 'POST', { log_verbose_level: 0 });
    assert.equal(app.logger.level, 'info');
  });

  test('gRPC: an empty request reads, one with settings changes them', async () => {
    const read = await logSettings({});
    assert.deepEqual(read.settings.log_info, { bool_param: true, parameter_choice: 'bool_param' });
    assert.deepEqual(read.settings.log_file, { string_param: '', parameter_choice: 'string_param' });
    const changed = await logSettings({ log_info: { bool_param: false } });
    assert.equal(changed.settings.log_info.bool_param, false);
    assert.equal(app.logger.level, 'warn');
    await assert.rejects(
      logSettings({ log_file: { string_param: '/tmp/x' } }),
      (e: grpc.ServiceError) =>
        e.code === grpc.status.INVALID_ARGUMENT && /'log_file' must be ""/.test(e.details),
    );
    await logSettings({
      log_warnings: { bool_param: false },
      log_errors: { bool_param: false },
    });
    assert.equal(app.logger.level, 'silent');
  });
});
