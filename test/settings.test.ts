import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_SETTINGS, loadSettings } from '../src/config/index.js';
import { SlipwayError } from '../src/errors/index.js';

async function settingsFile(content: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-settings-'));
  const path = join(dir, 'slipway.json');
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

test('defaults alone', () => {
  const s = loadSettings();
  assert.deepEqual({ ...s }, { ...DEFAULT_SETTINGS });
  assert.ok(Object.isFrozen(s));
});

test('file overrides defaults', async () => {
  const file = await settingsFile({ port: 9000, models: '/srv/models' });
  const s = loadSettings({ configFile: file });
  assert.equal(s.port, 9000);
  assert.equal(s.models, '/srv/models');
  assert.equal(s.host, DEFAULT_SETTINGS.host);
});

test('SLIPWAY_CONFIG names the file when no flag does', async () => {
  const file = await settingsFile({ port: 9001 });
  assert.equal(loadSettings({ env: { SLIPWAY_CONFIG: file } }).port, 9001);
});

test('environment overrides the file', async () => {
  const file = await settingsFile({ port: 9000, logLevel: 'debug' });
  const s = loadSettings({ configFile: file, env: { SLIPWAY_PORT: '9100', SLIPWAY_GRPC_PORT: 'off' } });
  assert.equal(s.port, 9100);
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.grpcPort, null);
});

test('flags override the environment', async () => {
  const file = await settingsFile({ port: 9000, host: '0.0.0.0' });
  const s = loadSettings({
    configFile: file,
    env: { SLIPWAY_PORT: '9100', SLIPWAY_HOST: '::1' },
    flags: { port: '9200' },
  });
  assert.equal(s.port, 9200);
  assert.equal(s.host, '::1');
});

test('undefined flags leave lower layers alone', () => {
  const s = loadSettings({ env: { SLIPWAY_MODELS: '/m' }, flags: { models: undefined } });
  assert.equal(s.models, '/m');
});

test('bad values name their source', async () => {
  assert.throws(
    () => loadSettings({ env: { SLIPWAY_PORT: 'eighty' } }),
    (e: unknown) =>
      e instanceof SlipwayError &&
      e.code === 'SLIPWAY_ERR_CONFIG' &&
      /SLIPWAY_PORT: must be an integer/.test(e.message),
  );
  assert.throws(
    () => loadSettings({ flags: { grpcPort: '70000' } }),
    /--grpc-port: must be an integer from 0 to 65535/,
  );
  const file = await settingsFile({ prot: 1 });
  assert.throws(() => loadSettings({ configFile: file }), /prot: unknown setting/);
  const broken = await settingsFile('{not json');
  assert.throws(() => loadSettings({ configFile: broken }), /settings file .*slipway\.json/);
  assert.throws(
    () => loadSettings({ env: { SLIPWAY_LOG_LEVEL: 'loud' } }),
    /SLIPWAY_LOG_LEVEL: must be one of/,
  );
});
