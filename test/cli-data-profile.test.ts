/** `slipway data profile --json` on the real Adult file, against statistics computed here. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from './helpers.js';

const run = promisify(execFile);

test('data profile --json: counts, missing and moments of datasets/adult/adult.csv', async () => {
  const file = join(REPO_ROOT, 'datasets/adult/adult.csv');
  const { stdout } = await run(
    process.execPath,
    [join(REPO_ROOT, 'bin/slipway.js'), 'data', 'profile', file, '--json'],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const summary = JSON.parse(stdout) as {
    rows: number;
    columns: {
      name: string;
      type: string;
      count: number;
      missing: number;
      mean?: number;
      std?: number;
      min?: number;
      max?: number;
    }[];
  };
  // The Adult CSV has no quoted fields, so a plain split reads it.
  const lines = (await readFile(file, 'utf8')).split(/\r?\n/).filter((l) => l !== '');
  const header = lines[0]!.split(',');
  const rows = lines.slice(1).map((l) => l.split(','));
  assert.equal(summary.rows, rows.length);
  const age = rows.map((r) => Number(r[header.indexOf('age')]));
  const mean = age.reduce((a, b) => a + b, 0) / age.length;
  const std = Math.sqrt(age.reduce((a, b) => a + (b - mean) ** 2, 0) / (age.length - 1));
  const col = summary.columns.find((c) => c.name === 'age')!;
  assert.equal(col.type, 'integer');
  assert.equal(col.count, age.length);
  assert.ok(Math.abs(col.mean! - mean) < 1e-9, `${col.mean} vs ${mean}`);
  assert.ok(Math.abs(col.std! - std) < 1e-9, `${col.std} vs ${std}`);
  assert.equal(col.min, Math.min(...age));
  assert.equal(col.max, Math.max(...age));
  const workclass = summary.columns.find((c) => c.name === 'workclass')!;
  const missing = rows.filter((r) => r[header.indexOf('workclass')] === '').length;
  assert.equal(workclass.type, 'categorical');
  assert.equal(workclass.missing, missing);
  assert.ok(missing > 0);
});

test('data profile --threads: one thread gives the default output; a bad count is refused by name', async () => {
  const file = join(REPO_ROOT, 'datasets/german_credit/german.csv');
  const cli = (...args: string[]) =>
    run(process.execPath, [join(REPO_ROOT, 'bin/slipway.js'), 'data', 'profile', file, '--json', ...args], {
      maxBuffer: 64 * 1024 * 1024,
    });
  assert.equal((await cli('--threads', '1')).stdout, (await cli()).stdout);
  await assert.rejects(cli('--threads', '0'), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /--threads must be a positive integer/);
    return true;
  });
});
