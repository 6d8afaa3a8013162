/**
 * `slipway data schema infer` and `slipway data validate` end to end: infer a schema from a file
 * or a dataset version, edit it, validate clean and broken files (exit codes, the text and JSON
 * reports, --max-failures, --env), and the errors of a bad schema file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { Schema, ValidationReport } from '../src/data/index.js';
import { REPO_ROOT } from './helpers.js';

const exec = promisify(execFile);
const ORDERS = join(REPO_ROOT, 'test/fixtures/data/orders.csv');

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

/** The orders fixture with cells replaced: `edits[row][column] = value` (row: 1-based data row). */
async function ordersWith(path: string, edits: Record<number, Record<string, string>>, drop?: string) {
  const lines = (await readFile(ORDERS, 'utf8')).trimEnd().split('\n');
  const header = lines[0]!.split(',');
  const rows = lines.slice(1).map((l) => l.split(','));
  for (const [row, cells] of Object.entries(edits)) {
    for (const [column, value] of Object.entries(cells))
      rows[Number(row) - 1]![header.indexOf(column)] = value;
  }
  const keep = header.map((h) => h !== drop);
  const out = [header, ...rows].map((r) => r.filter((_, i) => keep[i]).join(','));
  await writeFile(path, `${out.join('\n')}\n`);
}

describe('data schema infer / data validate', () => {
  let dir: string;
  let schemaFile: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-validate-'));
    schemaFile = join(dir, 'schema.json');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('infer writes an editable schema; the file it came from passes it (exit 0)', async () => {
    const inferred = await slipway([
      'data',
      'schema',
      'infer',
      ORDERS,
      '-o',
      schemaFile,
      '--label',
      'returned',
    ]);
    assert.equal(inferred.code, 0, inferred.stderr);
    assert.equal(inferred.stdout, `wrote ${schemaFile}: 8 columns from 40 rows\n`);
    const schema = JSON.parse(await readFile(schemaFile, 'utf8')) as Schema;
    assert.deepEqual(
      schema.columns.map((c) => [c.name, c.type]),
      [
        ['order_id', 'integer'],
        ['customer', 'text'],
        ['status', 'categorical'],
        ['amount', 'float'],
        ['quantity', 'integer'],
        ['ordered_at', 'datetime'],
        ['shipped_at', 'datetime'],
        ['returned', 'boolean'],
      ],
    );
    const byName = new Map(schema.columns.map((c) => [c.name, c]));
    assert.equal(byName.get('order_id')!.unique, true);
    assert.equal(byName.get('customer')!.pattern, '[A-Z]-[0-9]{4}');
    assert.deepEqual(new Set(byName.get('status')!.categories), new Set(['open', 'shipped', 'closed']));
    assert.equal(byName.get('shipped_at')!.nullable, true, 'open orders have no ship date');
    assert.equal(byName.get('ordered_at')!.nullable, false);
    assert.deepEqual(byName.get('returned')!.environments, ['training']);
    // Numeric ranges are the observed bounds widened by 5% of the span each side, a non-negative
    // minimum kept at 0, rounded outward: quantity 1..12 ± 0.55 → 0..13; amount 8.66..887.89 ±
    // 43.9615 → 0..931.8515 → 931.852 (6 significant digits). Dates keep only their minimum.
    assert.deepEqual(byName.get('quantity')!.range, { min: 0, max: 13 });
    assert.deepEqual(byName.get('amount')!.range, { min: 0, max: 931.852 });
    assert.deepEqual(byName.get('ordered_at')!.range, { min: '2024-03-02T00:00:00.000Z' });

    // Edit: a business range for amount, a cross-column rule, relaxed quantity.
    byName.get('amount')!.range = { min: 0, max: 1000 };
    byName.get('quantity')!.mostly = { range: 0.9 };
    schema.rules = [{ name: 'ships after ordering', expr: 'shipped_at >= ordered_at' }];
    await writeFile(schemaFile, JSON.stringify(schema, null, 2));

    const clean = await slipway(['data', 'validate', ORDERS, '--schema', schemaFile]);
    assert.equal(clean.code, 0, clean.stdout + clean.stderr);
    assert.match(clean.stdout, /^PASSED: .*orders\.csv, 40 rows \(training\), (\d+) of \1 rules passed\n$/);
    const json = await slipway(['data', 'validate', ORDERS, '--schema', schemaFile, '--json']);
    assert.equal(json.code, 0);
    const report = JSON.parse(json.stdout) as ValidationReport;
    assert.equal(report.success, true);
    assert.equal(report.rows_checked, 40);
    assert.deepEqual(report.failures, []);
  });

  test('a file with errors: exit 1, every failing row in the JSON report, a readable text report', async () => {
    const broken = join(dir, 'orders-broken.csv');
    await ordersWith(broken, {
      3: { quantity: '-2' },
      5: { status: 'lost' },
      7: { customer: 'c-12' },
      9: { ordered_at: '2024-04-20', shipped_at: '2024-04-19' },
      10: { amount: 'abc' },
      12: { order_id: '2' },
      15: { ordered_at: '' },
      20: { amount: '1000.01' },
    });
    const r = await slipway([
      'data',
      'validate',
      broken,
      '--schema',
      schemaFile,
      '--json',
      '--max-failures',
      '0',
    ]);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as ValidationReport;
    assert.equal(report.success, false);
    assert.equal(report.rows_checked, 40);
    assert.deepEqual(
      report.failures.map((f) => [f.row, f.column, f.rule, f.value]),
      [
        [2, 'order_id', 'unique', 2],
        [5, 'status', 'categories', 'lost'],
        [7, 'customer', 'length', 'c-12'],
        [7, 'customer', 'pattern', 'c-12'],
        [
          9,
          'ships after ordering',
          'expression',
          { shipped_at: '2024-04-19T00:00:00.000Z', ordered_at: '2024-04-20T00:00:00.000Z' },
        ],
        [10, 'amount', 'type', 'abc'],
        [12, 'order_id', 'unique', 2],
        [15, 'ordered_at', 'nullable', null],
        [20, 'amount', 'range', 1000.01],
      ],
      'quantity -2 at row 3 is within its mostly 0.9, so not listed',
    );
    const range = report.rules.find((x) => x.column === 'quantity' && x.rule === 'range')!;
    assert.deepEqual([range.failed, range.checked, range.success], [1, 40, true]);
    assert.equal(report.failures.find((f) => f.rule === 'range')!.expected, '0..1000');
    assert.equal(report.failures.find((f) => f.rule === 'pattern')!.expected, 'matches [A-Z]-[0-9]{4}');

    const text = await slipway(['data', 'validate', broken, '--schema', schemaFile]);
    assert.equal(text.code, 1);
    assert.match(
      text.stdout,
      /^FAILED: .*orders-broken\.csv, 40 rows \(training\), \d+ of \d+ rules passed\n/,
    );
    assert.match(
      text.stdout,
      /\n {2}FAIL status: categories one of "shipped", "closed", "open": 1 of 40 failed\n {7}row 5: "lost"\n/,
    );
    assert.match(
      text.stdout,
      /\n {2}FAIL order_id: unique unique: 2 of 40 failed\n {7}row 2: 2\n {7}row 12: 2\n/,
    );
    assert.match(
      text.stdout,
      /\n {2}FAIL ordered_at: nullable a value \(not missing\): 1 of 40 failed\n {7}row 15: null\n/,
    );
    // quantity is 1..12 in the fixture, widened by 5% of the span (0.55) each side and rounded
    // outward: 0..13 (so -2 at row 3 is still outside).
    assert.match(text.stdout, /\n {2}pass quantity: range 0\.\.13: 1 of 40 failed, within mostly 0\.9\n/);

    const capped = await slipway([
      'data',
      'validate',
      broken,
      '--schema',
      schemaFile,
      '--json',
      '--max-failures',
      '3',
    ]);
    assert.equal(capped.code, 1);
    const first = JSON.parse(capped.stdout) as ValidationReport;
    assert.deepEqual(first.failures, report.failures.slice(0, 3));
    assert.equal(first.failures_truncated, true);
    assert.deepEqual(first.rules, report.rules);
  });

  test('--env serving: the label must be absent; in training it is required', async () => {
    const features = join(dir, 'orders-features.csv');
    await ordersWith(features, {}, 'returned');
    const serving = await slipway([
      'data',
      'validate',
      features,
      '--schema',
      schemaFile,
      '--env',
      'serving',
      '--json',
    ]);
    assert.equal(serving.code, 0, serving.stdout);
    assert.equal((JSON.parse(serving.stdout) as ValidationReport).environment, 'serving');

    const training = await slipway(['data', 'validate', features, '--schema', schemaFile, '--json']);
    assert.equal(training.code, 1);
    assert.deepEqual((JSON.parse(training.stdout) as ValidationReport).failures, [
      { row: null, column: 'returned', rule: 'required', value: null, expected: 'the column present' },
    ]);

    const labelled = await slipway([
      'data',
      'validate',
      ORDERS,
      '--schema',
      schemaFile,
      '--env',
      'serving',
      '--json',
    ]);
    assert.equal(labelled.code, 1);
    assert.deepEqual(
      (JSON.parse(labelled.stdout) as ValidationReport).failures.map((f) => [f.row, f.column, f.rule]),
      [[null, 'returned', 'absent']],
    );
    const bad = await slipway(['data', 'validate', ORDERS, '--schema', schemaFile, '--env', 'production']);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /--env <environment>' argument 'production' is invalid\. must be one of training, serving/,
    );
  });

  test('a bad schema file is "error: …" naming the problem, with exit 1 and nothing on stdout', async () => {
    const cases: [string, string | null, RegExp][] = [
      ['missing.json', null, /^error: --schema .*missing\.json: no such file or folder/],
      ['broken.json', '{"format": "slipway.schema",', /^error: --schema .*broken\.json: .*JSON/],
      [
        'bad-type.json',
        JSON.stringify({ format: 'slipway.schema', version: 1, columns: [{ name: 'a', type: 'int' }] }),
        /^error: schema columns\[0\]\.type must be one of integer, float/,
      ],
      [
        'bad-range.json',
        JSON.stringify({
          format: 'slipway.schema',
          version: 1,
          columns: [{ name: 'a', type: 'text', range: { max: 3 } }],
        }),
        /^error: schema columns\[0\]\.range\.max applies to integer, float and datetime columns, not text\n$/,
      ],
      [
        'bad-expr.json',
        JSON.stringify({
          format: 'slipway.schema',
          version: 1,
          columns: [{ name: 'a', type: 'integer' }],
          rules: [{ expr: 'a >= b' }],
        }),
        /^error: schema rules\[0\]\.expr unknown column 'b' at position 6\n$/,
      ],
    ];
    for (const [name, content, message] of cases) {
      const file = join(dir, name);
      if (content !== null) await writeFile(file, content);
      const r = await slipway(['data', 'validate', ORDERS, '--schema', file, '--json']);
      assert.equal(r.code, 1, name);
      assert.equal(r.stdout, '', name);
      assert.match(r.stderr, message, name);
    }
    const noFile = await slipway(['data', 'validate', join(dir, 'nope.csv'), '--schema', schemaFile]);
    assert.equal(noFile.code, 1);
    assert.match(noFile.stderr, /^error: .*nope\.csv/);
    const negative = await slipway([
      'data',
      'validate',
      ORDERS,
      '--schema',
      schemaFile,
      '--max-failures',
      '-1',
    ]);
    assert.equal(negative.code, 1);
    assert.match(negative.stderr, /must be a non-negative integer/);
    const label = await slipway(['data', 'schema', 'infer', ORDERS, '-o', '-', '--label', 'refund']);
    assert.equal(label.code, 1);
    assert.match(label.stderr, /^error: --label: no column 'refund' in /);
  });

  test('infer from a dataset version name@1 (its stored profile) gives the schema the file gives', async () => {
    const dataDir = join(dir, 'store');
    const added = await slipway(['data', 'add', ORDERS, '--name', 'orders', '--data-dir', dataDir]);
    assert.equal(added.code, 0, added.stderr);
    const fromVersion = await slipway([
      'data',
      'schema',
      'infer',
      'orders@1',
      '-o',
      '-',
      '--label',
      'returned',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(fromVersion.code, 0, fromVersion.stderr);
    const fromFile = await slipway(['data', 'schema', 'infer', ORDERS, '-o', '-', '--label', 'returned']);
    assert.deepEqual(JSON.parse(fromVersion.stdout), JSON.parse(fromFile.stdout));
    const out = join(dir, 'from-version.json');
    const written = await slipway(['data', 'schema', 'infer', 'orders@1', '-o', out, '--data-dir', dataDir]);
    assert.equal(written.stdout, `wrote ${out}: 8 columns from 40 rows\n`);
    const valid = await slipway(['data', 'validate', ORDERS, '--schema', out]);
    assert.equal(valid.code, 0, valid.stdout);
    const unknown = await slipway(['data', 'schema', 'infer', 'orders@7', '-o', '-', '--data-dir', dataDir]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, "error: dataset 'orders' has no version '7'\n");
  });
});
