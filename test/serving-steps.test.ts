import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { App } from '../src/app.js';
import { readTable } from '../src/data/index.js';
import { FIXTURES, postJson, REPO_ROOT, startTestApp } from './helpers.js';

const run = promisify(execFile);
const ADULT = join(REPO_ROOT, 'datasets', 'adult', 'adult.csv');
const ROWS = 300;

/** Cleaning steps a data scientist would fit on Adult before a linear model. */
const SPEC = {
  steps: [
    { step: 'impute', columns: ['workclass', 'occupation'], strategy: 'most_frequent' },
    { step: 'impute', columns: ['age', 'hours_per_week'], strategy: 'median' },
    { step: 'clip', columns: ['hours_per_week'], min: 1, max: 80 },
    { step: 'log', columns: ['capital_gain'], function: 'log1p' },
    { step: 'standardize', columns: ['age', 'hours_per_week', 'capital_gain'] },
    { step: 'min_max_scale', columns: ['education_num'] },
    { step: 'one_hot', columns: ['workclass', 'sex'] },
    { step: 'ordinal', columns: ['occupation'] },
  ],
  remainder: 'drop',
};

/** A CSV row as an application would send it: numbers as numbers, empty cells as null. */
function asRecord(columns: readonly string[], cells: readonly unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  columns.forEach((c, i) => {
    const v = cells[i];
    record[c] = typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : (v ?? null);
  });
  return record;
}

describe('fitted cleaning steps in the serving path', () => {
  let dir: string;
  let app: App;
  let outputColumns: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-steps-'));
    await writeFile(join(dir, 'spec.json'), JSON.stringify(SPEC));
    const cli = join(REPO_ROOT, 'bin', 'slipway.js');
    await run(process.execPath, [
      cli,
      'data',
      'fit',
      ADULT,
      '--steps',
      join(dir, 'spec.json'),
      '-o',
      join(dir, 'fitted.json'),
    ]);
    await run(process.execPath, [
      cli,
      'data',
      'transform',
      ADULT,
      '--steps',
      join(dir, 'fitted.json'),
      '-o',
      join(dir, 'out.csv'),
    ]);
    const fitted = JSON.parse(await readFile(join(dir, 'fitted.json'), 'utf8'));
    outputColumns = fitted.output_columns;
    // A model that answers its own input matrix: serving's numbers are the steps' output, as the model sees them.
    const repo = join(dir, 'models');
    await mkdir(repo);
    await cp(join(FIXTURES, 'identity_fp32'), join(repo, 'prepared'), { recursive: true });
    await writeFile(
      join(repo, 'prepared', 'config.json'),
      JSON.stringify({ feature_names: outputColumns, max_batch_size: 512 }),
    );
    await writeFile(join(repo, 'prepared', '1', 'steps.json'), JSON.stringify(fitted));
    app = await startTestApp({ models: repo });
  });
  after(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('serving and `slipway data transform` produce identical numbers for the same rows', async () => {
    const records: Record<string, unknown>[] = [];
    for await (const batch of readTable(ADULT, { batchRows: ROWS })) {
      for (const cells of batch.rows) records.push(asRecord(batch.columns, cells));
      break;
    }
    assert.equal(records.length, ROWS);
    assert.ok(
      records.some((r) => r.workclass === null),
      'the rows include missing values to impute',
    );

    const r = await postJson(`${app.http.url}/v1/models/prepared:predict`, { instances: records });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));

    const batch: number[][] = [];
    for await (const b of readTable(join(dir, 'out.csv'), { batchRows: ROWS })) {
      assert.deepEqual(b.columns, outputColumns);
      for (const cells of b.rows) batch.push(cells.map((c) => Number(c)));
      if (batch.length >= ROWS) break;
    }
    for (let i = 0; i < ROWS; i++) {
      // A float [N, F] output reads as class probabilities, keyed by column index.
      const p = r.body.predictions[i].probabilities as Record<string, number>;
      const served = outputColumns.map((_, k) => p[String(k)]);
      // The model reads FP32: the batch file's doubles, rounded to float32, must be what serving fed it.
      assert.deepEqual(
        served,
        batch[i]!.map((x) => Math.fround(x)),
        `row ${i + 1}`,
      );
    }
    // The steps did their work: a standardized column has mean about 0 over the whole file.
    const age = outputColumns.indexOf('age');
    assert.ok(age >= 0 && Math.abs(batch.reduce((s, row) => s + row[age]!, 0) / ROWS) < 1);
  });

  test('a record the steps cannot read is a 400 naming it', async () => {
    const r = await postJson(`${app.http.url}/v1/models/prepared:predict`, { instances: [{ age: 'old' }] });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error, /age|instances\[0\]/);
  });

  test('unfitted steps.json keeps the version from loading, saying to fit it', async () => {
    const repo = join(dir, 'unfitted');
    await mkdir(repo);
    await cp(join(FIXTURES, 'identity_fp32'), join(repo, 'prepared'), { recursive: true });
    await writeFile(join(repo, 'prepared', '1', 'steps.json'), JSON.stringify(SPEC));
    const other = await startTestApp({ models: repo });
    try {
      const index = await postJson(`${other.http.url}/v2/repository/index`, {});
      assert.match(JSON.stringify(index.body), /steps\.json: .*slipway data fit/);
    } finally {
      await other.close();
    }
  });
});
