/** `slipway models …` as users run it: the real binary in child processes, on SQLite and PostgreSQL. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FIXTURES, REPO_ROOT } from './helpers.js';
import { postgresDatabase, type TestDatabase } from './support/databases.js';

const BIN = join(REPO_ROOT, 'bin/slipway.js');
const ADULT_FILE = join(REPO_ROOT, 'examples/models/adult-income/1/model.onnx');
const ADD_SUB_FILE = join(FIXTURES, 'add_sub/1/model.onnx');
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const ACTOR = `cli:${userInfo().username}`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with only the given SLIPWAY_* settings in its environment. */
function slipway(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLIPWAY_')));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...clean, ...env } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

describe('slipway models on SQLite', () => {
  let dir: string;
  let data: string[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-models-'));
    data = ['--data-dir', join(dir, 'data')];
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('push, list, versions, show, alias and card', async () => {
    // Lineage names a dataset version of this store, or data kept elsewhere by URI: a typo is refused.
    let r = await slipway([
      'models',
      'push',
      ADULT_FILE,
      '--name',
      'adult',
      '--train-data',
      'adult@3',
      ...data,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: training_data: dataset 'adult@3' is not in this store/);
    r = await slipway([
      'models',
      'push',
      ADULT_FILE,
      '--name',
      'adult',
      '--metric',
      'auc=0.91',
      '--metric',
      'accuracy=0.85',
      '--tag',
      'framework=sklearn',
      '--alias',
      'champion',
      '--description',
      'Gradient boosting on UCI Adult',
      '--train-data',
      's3://bucket/adult-train.parquet',
      '--eval-data',
      's3://bucket/adult-test.parquet',
      ...data,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^Registered new model adult version 1\n/);
    assert.match(r.stdout, new RegExp(`sha256 ${sha(ADULT_FILE)}`));
    assert.match(r.stdout, /inputs +age FP32 \[-1,1\], fnlwgt FP32 \[-1,1\]/);
    assert.match(r.stdout, /outputs +label INT64 \[-1\], probabilities FP32 \[-1,2\]/);
    assert.match(r.stdout, /metrics +auc=0\.91 accuracy=0\.85/);
    assert.match(r.stdout, /training data +s3:\/\/bucket\/adult-train\.parquet/);
    assert.match(r.stdout, /evaluation data +s3:\/\/bucket\/adult-test\.parquet/);
    assert.match(r.stdout, new RegExp(`created .* by ${ACTOR}`));
    assert.match(r.stdout, /\n {2}champion → v1\n$/);

    r = await slipway(['models', 'push', ADD_SUB_FILE, '--name', 'adult', '--alias', 'champion', ...data]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Registered adult version 2\n/);
    assert.match(r.stdout, /champion → v2 \(was v1\)/);

    r = await slipway(['models', 'list', ...data]);
    assert.equal(r.code, 0);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME +VERSIONS +LATEST +ALIASES +UPDATED +DESCRIPTION$/);
    assert.match(lines[1]!, /^adult +2 +2 +champion=v2 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);

    r = await slipway(['models', 'versions', 'adult', ...data]);
    const rows = r.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^VERSION +STATUS +ALIASES +CREATED +BY +SHA256 +METRICS$/);
    assert.match(
      rows[1]!,
      new RegExp(`^2 +READY +champion .* ${ACTOR} +${sha(ADD_SUB_FILE).slice(0, 12)} +-$`),
    );
    assert.match(
      rows[2]!,
      new RegExp(`^1 +READY +- .* ${sha(ADULT_FILE).slice(0, 12)} +auc=0\\.91 accuracy=0\\.85$`),
    );

    r = await slipway(['models', 'show', 'adult', ...data]);
    assert.match(r.stdout, /^adult\n {2}created/);
    assert.match(r.stdout, /versions +2 \(latest v2\)/);
    assert.match(r.stdout, /aliases +champion=v2/);

    r = await slipway(['models', 'show', 'adult', '--version', '1', ...data]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^adult version 1\n/);
    assert.match(r.stdout, /tags +framework=sklearn/);
    r = await slipway(['models', 'show', 'adult', '--version', 'champion', ...data]);
    assert.match(r.stdout, /^adult version 2\n/);

    r = await slipway(['models', 'show', 'adult', '--version', '1', '--json', ...data]);
    const v1 = JSON.parse(r.stdout);
    assert.equal(v1.version, 1);
    assert.equal(v1.modelFile.sha256, sha(ADULT_FILE));
    assert.equal(v1.signature.inputs.length, 14);

    r = await slipway(['models', 'alias', 'adult', 'champion', '1', ...data]);
    assert.equal(r.stdout, 'adult@champion → v1 (was v2)\n');
    r = await slipway(['models', 'alias', 'adult', 'challenger', '2', ...data]);
    assert.equal(r.stdout, 'adult@challenger → v2\n');
    r = await slipway(['models', 'alias', 'adult', 'champion', ...data]);
    assert.equal(r.stdout, 'adult@champion → v1\n');
    r = await slipway(['models', 'alias', 'adult', 'challenger', '--delete', ...data]);
    assert.equal(r.stdout, 'Deleted adult@challenger (was v2)\n');
    r = await slipway(['models', 'alias', 'adult', 'champion', '--history', ...data]);
    const history = r.stdout.trimEnd().split('\n');
    assert.match(history[0]!, /^WHEN +FROM +TO +BY$/);
    assert.deepEqual(
      history.slice(1).map((l) => l.split(/ {2,}/).slice(1)),
      [
        ['v2', 'v1', ACTOR],
        ['v1', 'v2', ACTOR],
        ['-', 'v1', ACTOR],
      ],
    );

    r = await slipway([
      'models',
      'card',
      'adult',
      '--set',
      'intended_use=Research <b>only</b>.',
      '--set',
      'ethical-considerations=Uses race & sex.',
      ...data,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# Model card: adult\n/);
    assert.match(r.stdout, /## Intended use\n\nResearch <b>only<\/b>\.\n/);
    assert.match(r.stdout, /\| v1 \(champion\) \| 0\.85 \| 0\.91 \|/);
    r = await slipway(['models', 'card', 'adult', '--format', 'html', ...data]);
    assert.match(r.stdout, /^<!doctype html>/);
    assert.match(r.stdout, /<p>Research &lt;b&gt;only&lt;\/b&gt;\.<\/p>/);
    assert.match(r.stdout, /<p>Uses race &amp; sex\.<\/p>/);
    r = await slipway(['models', 'card', 'adult', '--format', 'json', ...data]);
    const card = JSON.parse(r.stdout);
    assert.equal(card.sections.intendedUse, 'Research <b>only</b>.');
    assert.equal(card.updatedBy, ACTOR);
  });

  test('failures exit 1 with the message on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [['models', 'show', 'nope'], /^error: registered model 'nope' does not exist\n$/],
      [['models', 'versions', 'nope'], /^error: registered model 'nope' does not exist\n$/],
      [
        ['models', 'show', 'adult', '--version', '99'],
        /^error: version 99 of registered model 'adult' does not exist\n$/,
      ],
      [
        ['models', 'push', join(REPO_ROOT, 'package.json'), '--name', 'adult'],
        /^error: file 'package\.json' is not a valid ONNX model/,
      ],
      [
        ['models', 'push', join(dir, 'missing.onnx'), '--name', 'adult'],
        /^error: .*missing\.onnx: no such file or folder/,
      ],
      [
        ['models', 'push', ADD_SUB_FILE, '--name', 'adult', '--metric', 'auc=high'],
        /^error: --metric: "auc=high" must be name=<number>/,
      ],
      [['models', 'push', ADD_SUB_FILE, '--name', 'a/b'], /^error: name: "a\/b" is not a valid model name/],
      [['models', 'push', ADD_SUB_FILE], /required option '--name <name>' not specified/],
      [['models', 'alias', 'adult', 'latest', '1'], /^error: alias: "latest" is not a valid alias/],
      [['models', 'alias', 'adult', 'champion', 'two'], /^error: version: 'two' is not a version number/],
      [
        ['models', 'alias', 'adult', 'ghost', '--delete'],
        /^error: registered model 'adult' has no alias 'ghost'/,
      ],
      [
        ['models', 'card', 'adult', '--set', 'purpose=x'],
        /^error: sections: unknown model card section "purpose"/,
      ],
      [['models', 'card', 'adult', '--format', 'pdf'], /argument 'pdf' is invalid/],
    ];
    for (const [args, message] of cases) {
      const r = await slipway([...args, ...data]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    // Nothing was registered by the failed pushes.
    const r = await slipway(['models', 'versions', 'adult', ...data]);
    assert.equal(r.stdout.trimEnd().split('\n').length, 3);
  });

  test('settings come from SLIPWAY_* too; pushes from several processes get distinct numbers', async () => {
    const env = { SLIPWAY_DATA_DIR: join(dir, 'race') };
    // The first creates the database (migrations on one SQLite file are not raced), the rest race.
    const first = await slipway(['models', 'push', ADD_SUB_FILE, '--name', 'race'], env);
    assert.equal(first.code, 0, first.stderr);
    const pushes = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        slipway(
          ['models', 'push', i % 2 ? ADD_SUB_FILE : ADULT_FILE, '--name', 'race', '--tag', `i=${i}`],
          env,
        ),
      ),
    );
    for (const p of pushes) assert.equal(p.code, 0, p.stderr);
    const numbers = pushes.map((p) => Number(/version (\d+)\n/.exec(p.stdout)![1])).sort();
    assert.deepEqual(numbers, [2, 3, 4, 5, 6]);
    const list = await slipway(['models', 'versions', 'race', '--json'], env);
    assert.deepEqual(
      JSON.parse(list.stdout).map((v: any) => v.version),
      [6, 5, 4, 3, 2, 1],
    );
  });

  test('a serving config travels with the version', async () => {
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ max_batch_size: 16, label_names: ['<=50K', '>50K'] }));
    let r = await slipway([
      'models',
      'push',
      ADULT_FILE,
      '--name',
      'configured',
      '--serving-config',
      config,
      ...data,
    ]);
    assert.equal(r.code, 0, r.stderr);
    await writeFile(config, JSON.stringify({ max_batch_size: 'lots' }));
    r = await slipway([
      'models',
      'push',
      ADULT_FILE,
      '--name',
      'configured',
      '--serving-config',
      config,
      ...data,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /max_batch_size/);
  });
});

describe('slipway models on PostgreSQL', () => {
  let server: TestDatabase | { skip: string };
  let dir: string;
  before(async () => {
    server = await postgresDatabase();
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-models-pg-'));
  });
  after(async () => {
    if ('stop' in server) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('concurrent pushes from several processes number versions 1..n', async (t) => {
    if ('skip' in server) return t.skip(server.skip);
    const url = await server.fresh();
    // Artifacts in one shared folder; the registry in PostgreSQL.
    const args = ['--database-url', url, '--data-dir', join(dir, 'data')];
    // The first push migrates; the rest race for numbers.
    const first = await slipway(['models', 'push', ADD_SUB_FILE, '--name', 'race', ...args]);
    assert.equal(first.code, 0, first.stderr);
    const pushes = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        slipway([
          'models',
          'push',
          i % 2 ? ADD_SUB_FILE : ADULT_FILE,
          '--name',
          'race',
          '--alias',
          'champion',
          ...args,
        ]),
      ),
    );
    for (const p of pushes) assert.equal(p.code, 0, p.stderr);
    const numbers = pushes.map((p) => Number(/version (\d+)\n/.exec(p.stdout)![1])).sort((a, b) => a - b);
    assert.deepEqual(numbers, [2, 3, 4, 5, 6, 7]);
    // Each move saw the alias where the previous one left it.
    const h = await slipway(['models', 'alias', 'race', 'champion', '--history', ...args]);
    const moves = h.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/ {2,}/).slice(1, 3))
      .reverse();
    assert.equal(moves.length, 6);
    assert.equal(moves[0]![0], '-');
    for (let i = 1; i < moves.length; i++) assert.equal(moves[i]![0], moves[i - 1]![1]);
  });
});
