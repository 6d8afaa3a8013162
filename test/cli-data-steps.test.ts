/** `slipway data fit` and `slipway data transform` end to end: files, dataset versions, errors. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { FittedSteps, readTable } from '../src/data/index.js';
import { REPO_ROOT } from './helpers.js';

const exec = promisify(execFile);
const ADULT = join(REPO_ROOT, 'datasets/adult/adult.csv');

async function slipway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [join(REPO_ROOT, 'bin/slipway.js'), ...args], {
      cwd: REPO_ROOT,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, SLIPWAY_DATA_DIR: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const SPEC = {
  steps: [
    { step: 'impute', columns: ['workclass', 'occupation', 'native_country'], strategy: 'most_frequent' },
    { step: 'log', columns: ['capital_gain'] },
    { step: 'min_max_scale', columns: ['capital_gain'] },
    { step: 'standardize', columns: ['age', 'hours_per_week'] },
    { step: 'one_hot', columns: ['workclass', 'sex'] },
    { step: 'ordinal', columns: ['education'] },
    { step: 'drop_duplicates' },
  ],
};

describe('data fit / data transform', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-steps-'));
    await writeFile(join(dir, 'spec.json'), JSON.stringify(SPEC));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('fit on a file writes fitted steps; transform writes the CSV the library computes', async () => {
    const fitted = join(dir, 'fitted.json');
    const fit = await slipway(['data', 'fit', ADULT, '--steps', join(dir, 'spec.json'), '-o', fitted]);
    assert.equal(fit.code, 0, fit.stderr);
    assert.match(fit.stdout, /^fitted 7 steps on .*adult\.csv \(48842 rows\): 16 columns → 24; wrote /);
    const json = JSON.parse(await readFile(fitted, 'utf8'));
    assert.equal(json.format, 'slipway.steps');
    assert.equal(json.fitted_on, ADULT);
    assert.deepEqual(json.steps[0].fitted.workclass, { value: 'Private', n: 46043, exact: true });

    const out = join(dir, 'out.csv');
    const t = await slipway(['data', 'transform', ADULT, '--steps', fitted, '-o', out]);
    assert.equal(t.code, 0, t.stderr);
    const expected = FittedSteps.fromJSON(json);
    const want: unknown[][] = [];
    for await (const b of expected.transformTable(readTable(ADULT))) want.push(...b.rows);
    assert.match(t.stdout, new RegExp(`^wrote ${want.length} rows × 24 columns to `));
    // Adult holds duplicate rows; drop_duplicates removed them.
    assert.ok(want.length < 48842 && want.length > 48000, String(want.length));
    const got: unknown[][] = [];
    let header: readonly string[] = [];
    for await (const b of readTable(out)) {
      header = b.columns;
      got.push(...b.rows);
    }
    assert.deepEqual(header, expected.outputColumns);
    assert.equal(got.length, want.length);
    for (let i = 0; i < got.length; i++) {
      for (let j = 0; j < header.length; j++) {
        const w = want[i][j];
        const g = got[i][j];
        const same = typeof w === 'number' ? Number(g) === w : w === null ? g === null : g === String(w);
        if (!same) assert.fail(`row ${i + 1}, ${header[j]}: file ${g}, expected ${w}`);
      }
    }
  });

  test('transform of an unfitted spec says so; --fit fits it on the same table', async () => {
    const spec = join(dir, 'spec.json');
    const out = join(dir, 'fit-out.csv');
    const refused = await slipway(['data', 'transform', ADULT, '--steps', spec, '-o', out]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^error: .*spec\.json is a steps spec, not fitted steps: fit it first .* or pass --fit/,
    );
    const saved = join(dir, 'saved.json');
    const t = await slipway([
      'data',
      'transform',
      ADULT,
      '--steps',
      spec,
      '--fit',
      '--save-fitted',
      saved,
      '-o',
      out,
    ]);
    assert.equal(t.code, 0, t.stderr);
    const json = JSON.parse(await readFile(saved, 'utf8'));
    assert.equal(json.output_columns.length, 24);
    assert.equal((await readFile(out, 'utf8')).split('\n')[0], json.output_columns.join(','));
  });

  test('a bad spec, a missing file and a missing column are errors with exit code 1', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ steps: [{ step: 'impute', columns: ['age'], strategy: 'avg' }] }));
    const r1 = await slipway(['data', 'fit', ADULT, '--steps', bad, '-o', join(dir, 'x.json')]);
    assert.equal(r1.code, 1);
    assert.match(
      r1.stderr,
      /^error: .*bad\.json: steps\[0\]\.strategy must be one of mean, median, most_frequent, constant/,
    );

    const r2 = await slipway([
      'data',
      'fit',
      join(dir, 'nope.csv'),
      '--steps',
      bad,
      '-o',
      join(dir, 'x.json'),
    ]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /^error: .*nope\.csv: no such file/);

    const typo = join(dir, 'typo.json');
    await writeFile(typo, JSON.stringify({ steps: [{ step: 'standardize', columns: ['agee'] }] }));
    const r3 = await slipway(['data', 'fit', ADULT, '--steps', typo, '-o', join(dir, 'x.json')]);
    assert.equal(r3.code, 1);
    assert.match(r3.stderr, /^error: .*typo\.json: steps\[0\]\.columns: 'agee' is not a column here/);

    const notJson = join(dir, 'not.json');
    await writeFile(notJson, '{"steps": [');
    const r4 = await slipway(['data', 'transform', ADULT, '--steps', notJson, '-o', join(dir, 'x.csv')]);
    assert.equal(r4.code, 1);
    assert.match(r4.stderr, /^error: .*not\.json: not JSON/);
  });

  test('a transform error leaves no output file, and a file lacking columns is warned about', async () => {
    const train = join(dir, 'train.csv');
    await writeFile(train, 'x,label\n1,a\n2,b\n4,a\n');
    const spec = join(dir, 'x.json');
    await writeFile(spec, JSON.stringify({ steps: [{ step: 'standardize', columns: ['x'] }] }));
    const fitted = join(dir, 'x-fitted.json');
    assert.equal((await slipway(['data', 'fit', train, '--steps', spec, '-o', fitted])).code, 0);

    const serving = join(dir, 'serving.csv');
    await writeFile(serving, 'x\n1\n4\n');
    const ok = await slipway(['data', 'transform', serving, '--steps', fitted, '-o', join(dir, 's.csv')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /warning: .*serving\.csv lacks column label: read as missing/);
    const lines = (await readFile(join(dir, 's.csv'), 'utf8')).trim().split('\n');
    const scale = Math.sqrt(14 / 9);
    assert.deepEqual(lines, ['x,label', `${(1 - 7 / 3) / scale},`, `${(4 - 7 / 3) / scale},`]);

    const unrelated = join(dir, 'unrelated.csv');
    await writeFile(unrelated, 'name,city\nbob,paris\n');
    const none = await slipway(['data', 'transform', unrelated, '--steps', fitted, '-o', join(dir, 'u.csv')]);
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^error: .*unrelated\.csv has none of the columns the steps read \(x, label\); its columns are name, city/,
    );
    await assert.rejects(readFile(join(dir, 'u.csv')));

    // A file system error names the path in plain words: the output's, not its temporary file's.
    const nowhere = join(dir, 'no-such-folder', 'out.csv');
    const r3 = await slipway(['data', 'transform', serving, '--steps', fitted, '-o', nowhere]);
    assert.equal(r3.code, 1);
    assert.equal(r3.stderr.split('\n').at(-2), `error: ${nowhere}: no such file or folder`);
    const r4 = await slipway(['data', 'profile', dir]);
    assert.equal(r4.code, 1);
    assert.match(r4.stderr, /^error: .*: a folder, not a table file\n$/);

    const broken = join(dir, 'broken.csv');
    await writeFile(broken, 'x,label\n1,a\nabc,b\n');
    const r = await slipway(['data', 'transform', broken, '--steps', fitted, '-o', join(dir, 'b.csv')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: row 2, column 'x': "abc" is not a number \(steps\[0\] standardize\)/);
    await assert.rejects(readFile(join(dir, 'b.csv')), /ENOENT/);
  });

  test('fit on a dataset version (name@number) records it as fitted_on', async () => {
    const dataDir = join(dir, 'store');
    const csv = join(dir, 'small.csv');
    await writeFile(csv, 'age,city\n30,Oslo\n40,\n50,Oslo\n20,Rome\n');
    const added = await slipway(['data', 'add', csv, '--name', 'small', '--data-dir', dataDir]);
    assert.equal(added.code, 0, added.stderr);
    const spec = join(dir, 'small-spec.json');
    await writeFile(
      spec,
      JSON.stringify({
        steps: [
          { step: 'impute', columns: ['city'], strategy: 'most_frequent' },
          { step: 'one_hot', columns: ['city'] },
          { step: 'min_max_scale', columns: ['age'] },
        ],
      }),
    );
    const fitted = join(dir, 'small-fitted.json');
    const fit = await slipway([
      'data',
      'fit',
      'small@1',
      '--steps',
      spec,
      '-o',
      fitted,
      '--data-dir',
      dataDir,
    ]);
    assert.equal(fit.code, 0, fit.stderr);
    const json = JSON.parse(await readFile(fitted, 'utf8'));
    assert.equal(json.fitted_on, 'small@1');
    assert.deepEqual(json.output_columns, ['age', 'city=Oslo', 'city=Rome']);
    const out = join(dir, 'small-out.csv');
    const t = await slipway([
      'data',
      'transform',
      'small@latest',
      '--steps',
      fitted,
      '-o',
      out,
      '--data-dir',
      dataDir,
    ]);
    assert.equal(t.code, 0, t.stderr);
    // scikit-learn's MinMaxScaler: x * scale + min with scale = 1 / (50 - 20), min = -20 * scale.
    const scaled = (x: number) => x * (1 / 30) + (0 - 20 * (1 / 30));
    assert.equal(
      await readFile(out, 'utf8'),
      `age,city=Oslo,city=Rome\n${scaled(30)},1,0\n${scaled(40)},1,0\n${scaled(50)},1,0\n${scaled(20)},0,1\n`,
    );
    const missing = await slipway([
      'data',
      'fit',
      'small@9',
      '--steps',
      spec,
      '-o',
      fitted,
      '--data-dir',
      dataDir,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: dataset 'small' has no version '9'/);
  });
});
