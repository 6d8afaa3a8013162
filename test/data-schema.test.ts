/**
 * Schemas: `parseSchema` names the field of every mistake, each rule on small in-memory batches,
 * `mostly`, the report's shape and order, `inferSchema` on edge cases, and the conservative
 * inference target on the repository's datasets (train → test under 1% of rows flagged).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { readTable } from '../src/data/formats/index.js';
import { profileTable, TableProfile } from '../src/data/profile/index.js';
import {
  type ColumnSchema,
  type CrossRule,
  compileExpression,
  type Failure,
  inferSchema,
  parseSchema,
  patternOf,
  type Schema,
  type ValidateOptions,
  type ValidationReport,
  Validator,
  validateTable,
} from '../src/data/schema/index.js';
import type { Cell } from '../src/data/table.js';
import { SlipwayError } from '../src/errors/index.js';
import { REPO_ROOT } from './helpers.js';

function schemaOf(columns: ColumnSchema[], extra: Partial<Schema> = {}): Schema {
  return { format: 'slipway.schema', version: 1, columns, ...extra };
}

/** Validates rows given as batches of `batchRows` (all in one by default). */
function check(
  schema: Schema,
  columns: string[],
  rows: Cell[][],
  options: ValidateOptions & { batchRows?: number } = {},
): ValidationReport {
  const v = new Validator(parseSchema(schema), { maxFailures: 0, ...options });
  const size = options.batchRows ?? Math.max(1, rows.length);
  for (let i = 0; i < rows.length; i += size) {
    v.add({ columns, rows: rows.slice(i, i + size), firstRow: i + 1 });
  }
  return v.finish();
}

/** One column's cells checked against one column schema. */
function checkColumn(col: Omit<ColumnSchema, 'name'>, cells: Cell[], options: ValidateOptions = {}) {
  return check(
    schemaOf([{ name: 'x', ...col }]),
    ['x'],
    cells.map((c) => [c]),
    options,
  );
}

const rowsOf = (r: ValidationReport, rule: string): (number | null)[] =>
  r.failures.filter((f) => f.rule === rule).map((f) => f.row);
const valuesOf = (r: ValidationReport, rule: string): unknown[] =>
  r.failures.filter((f) => f.rule === rule).map((f) => f.value);
const ruleOf = (r: ValidationReport, rule: string, column: string | null = 'x') => {
  const found = r.rules.find((s) => s.rule === rule && s.column === column);
  assert.ok(found, `no ${rule} rule on ${column}`);
  return found;
};

function rejects(json: unknown, message: RegExp): void {
  assert.throws(
    () => parseSchema(json),
    (err: unknown) => {
      assert.ok(err instanceof SlipwayError, String(err));
      assert.equal(err.code, 'SLIPWAY_ERR_BAD_REQUEST');
      assert.match(err.message, message);
      return true;
    },
  );
}

const col = (fields: Record<string, unknown>) => ({
  format: 'slipway.schema',
  version: 1,
  columns: [{ name: 'x', type: 'integer', ...fields }],
});

describe('parseSchema', () => {
  test('accepts the documented example and compiles its parts', () => {
    const parsed = parseSchema({
      format: 'slipway.schema',
      version: 1,
      description: 'orders',
      columns: [
        { name: 'age', type: 'integer', nullable: false, range: { min: 17, max: 90 } },
        { name: 'start_date', type: 'datetime', range: { min: '2011-01-01' } },
        { name: 'end_date', type: 'datetime' },
        {
          name: 'workclass',
          type: 'categorical',
          nullable: true,
          categories: ['Private', 'State-gov'],
          mostly: { categories: 0.99 },
        },
        { name: 'code', type: 'text', pattern: '[A-Z][0-9]+', length: { min: 2, max: 5 } },
        { name: 'income', type: 'categorical', environments: ['training'] },
      ],
      table: { rows: { min: 1, max: null }, extra_columns: false },
      rules: [{ name: 'dates', expr: 'end_date >= start_date' }],
    });
    assert.deepEqual(parsed.bounds.get('age'), { min: 17, max: 90, bigMin: undefined, bigMax: undefined });
    assert.equal(parsed.bounds.get('start_date')!.min, Date.UTC(2011, 0, 1));
    assert.equal(parsed.bounds.get('start_date')!.max, Number.POSITIVE_INFINITY);
    assert.equal(parsed.patterns.get('code')!.source, '^(?:[A-Z][0-9]+)$');
    assert.deepEqual(parsed.rules[0]!.expression.columns, ['end_date', 'start_date']);
    assert.deepEqual(
      [...parsed.byName.keys()],
      ['age', 'start_date', 'end_date', 'workclass', 'code', 'income'],
    );
  });

  test('every mistake is a bad request naming its field', () => {
    rejects([], /^schema must be a JSON object$/);
    rejects({ format: 'other', version: 1, columns: [] }, /^schema format must be "slipway.schema"$/);
    rejects({ format: 'slipway.schema', version: 2, columns: [] }, /^schema version must be 1$/);
    rejects({ format: 'slipway.schema', version: 1, colums: [] }, /^schema colums is not a schema field/);
    rejects({ format: 'slipway.schema', version: 1, columns: {} }, /^schema columns must be an array$/);
    rejects(col({ type: 'int' }), /^schema columns\[0\]\.type must be one of integer, float, boolean/);
    rejects(col({ name: '' }), /^schema columns\[0\]\.name must be a non-empty string$/);
    rejects(
      {
        format: 'slipway.schema',
        version: 1,
        columns: [
          { name: 'a', type: 'any' },
          { name: 'a', type: 'any' },
        ],
      },
      /^schema columns\[1\]\.name repeats column 'a'$/,
    );
    rejects(
      col({ nulable: false }),
      /^schema columns\[0\]\.nulable is not a schema field \(allowed: name, type/,
    );
    rejects(col({ nullable: 'no' }), /^schema columns\[0\]\.nullable must be true or false$/);
    rejects(col({ unique: 1 }), /^schema columns\[0\]\.unique must be true or false$/);
    // Ranges: numbers for numeric columns, dates for datetime columns, nothing for the others.
    rejects(
      col({ type: 'text', range: { min: 1 } }),
      /^schema columns\[0\]\.range\.min applies to integer, float and datetime columns, not text$/,
    );
    rejects(col({ range: { min: 'ten' } }), /^schema columns\[0\]\.range\.min must be a number, got "ten"$/);
    rejects(col({ range: { min: 5, max: 4 } }), /^schema columns\[0\]\.range has min above max$/);
    rejects(
      col({ range: { min: '12345678901234567891', max: '12345678901234567890' } }),
      /^schema columns\[0\]\.range has min above max$/,
    );
    rejects(col({ range: { low: 1 } }), /^schema columns\[0\]\.range\.low is not a schema field/);
    rejects(
      col({ type: 'datetime', range: { max: '2011-02-30' } }),
      /^schema columns\[0\]\.range\.max must be an ISO date or date-time for a datetime column, got "2011-02-30"$/,
    );
    rejects(
      col({ type: 'datetime', range: { min: '2012-01-01', max: '2011-01-01' } }),
      /^schema columns\[0\]\.range has min above max$/,
    );
    rejects(col({ length: { min: 3, max: 2 } }), /^schema columns\[0\]\.length has min above max$/);
    rejects(
      col({ length: { min: -1 } }),
      /^schema columns\[0\]\.length\.min must be a non-negative integer$/,
    );
    rejects(col({ pattern: '[A-Z' }), /^schema columns\[0\]\.pattern is not a valid regular expression/);
    rejects(col({ pattern: 7 }), /^schema columns\[0\]\.pattern must be a regular expression string$/);
    rejects(col({ categories: 'a,b' }), /^schema columns\[0\]\.categories must be an array of values$/);
    rejects(
      col({ categories: ['a', { b: 1 }] }),
      /^schema columns\[0\]\.categories\[1\] must be a string, number or boolean$/,
    );
    rejects(
      col({ categories: [0, 'NA'] }),
      /^schema columns\[0\]\.categories\[1\] "NA" reads as a missing value; use nullable$/,
    );
    rejects(
      col({ mostly: { range: 1.5 } }),
      /^schema columns\[0\]\.mostly\.range must be a number from 0 to 1$/,
    );
    rejects(col({ mostly: { absent: 0.5 } }), /^schema columns\[0\]\.mostly\.absent is not a rule/);
    rejects(col({ mostly: 0.9 }), /^schema columns\[0\]\.mostly must be an object of rule → fraction$/);
    rejects(col({ environments: [] }), /^schema columns\[0\]\.environments must be a non-empty array/);
    rejects(
      col({ environments: ['training', 'train'] }),
      /^schema columns\[0\]\.environments\[1\] must be one of training, serving$/,
    );
    rejects(
      { ...col({}), table: { rows: { min: -1 } } },
      /^schema table\.rows\.min must be a non-negative integer$/,
    );
    rejects({ ...col({}), table: { extra: true } }, /^schema table\.extra is not a schema field/);
    rejects(
      { ...col({}), table: { extra_columns: 'yes' } },
      /^schema table\.extra_columns must be true or false$/,
    );
    rejects(
      { ...col({}), rules: [{ expr: '  ' }] },
      /^schema rules\[0\]\.expr must be an expression string$/,
    );
    rejects(
      { ...col({}), rules: [{ expr: 'x > 0', mostly: 2 }] },
      /^schema rules\[0\]\.mostly must be a number/,
    );
    rejects(
      { ...col({}), rules: [{ expr: 'x > 0', when: 1 }] },
      /^schema rules\[0\]\.when is not a schema field/,
    );
  });

  test('a bad expression names the rule and the position of the mistake', () => {
    const expr = (e: string) => ({ ...col({}), rules: [{ expr: 'x > 0' }, { expr: e }] });
    rejects(expr('x >= y'), /^schema rules\[1\]\.expr unknown column 'y' at position 6$/);
    rejects(expr('x >= '), /^schema rules\[1\]\.expr unexpected end of expression$/);
    rejects(expr('x $ 3'), /^schema rules\[1\]\.expr unexpected '\$' at position 3$/);
    rejects(expr('x > "a"'), /^schema rules\[1\]\.expr '>' at position 3 compares a number with a string$/);
    rejects(expr('(x > 1'), /^schema rules\[1\]\.expr expected '\)' at the end$/);
    rejects(expr('x > 1 2'), /^schema rules\[1\]\.expr unexpected '2' at position 7$/);
    rejects(expr('x = "open'), /^schema rules\[1\]\.expr unterminated string at position 5$/);
    rejects(expr('sqrt(x) > 1'), /^schema rules\[1\]\.expr unknown function 'sqrt' at position 1/);
    rejects(expr('abs(x, 2) > 1'), /^schema rules\[1\]\.expr abs\(\) at position 1 takes 1 argument$/);
    rejects(expr('x in (1, x)'), /^schema rules\[1\]\.expr 'in' at position 3 takes a list of constants$/);
    rejects(
      expr('x in (1, "2")'),
      /^schema rules\[1\]\.expr 'in' at position 3 compares a number with a string$/,
    );
    rejects(expr('x not 3'), /^schema rules\[1\]\.expr unexpected 'not' at position 3$/);
    const dates = {
      format: 'slipway.schema',
      version: 1,
      columns: [{ name: 'd', type: 'datetime' }],
      rules: [{ expr: 'd >= "yesterday"' }],
    };
    rejects(dates, /^schema rules\[0\]\.expr "yesterday" is compared with a date but is not an ISO date$/);
  });
});

describe('column rules', () => {
  test('type integer: integral floats, exponents and big integers pass; fractions, words and booleans fail', () => {
    const r = checkColumn({ type: 'integer' }, [
      '41',
      '41.0',
      '4.1e1',
      ' 7 ',
      41,
      '-12345678901234567890',
      12345678901234567890n,
      '41.5',
      'abc',
      'true',
      '2011-01-01',
    ]);
    assert.deepEqual(rowsOf(r, 'type'), [8, 9, 10, 11]);
    assert.deepEqual(valuesOf(r, 'type'), [41.5, 'abc', true, '2011-01-01']);
    assert.deepEqual(
      r.failures[0],
      { row: 8, column: 'x', rule: 'type', value: 41.5, expected: 'integer' },
      'a failure carries the value as the data reads and the rule as the schema says',
    );
    assert.equal(ruleOf(r, 'type').checked, 11);
  });

  test('type float, boolean and datetime', () => {
    const f = checkColumn({ type: 'float' }, [
      '1',
      '1.5',
      '-2e-3',
      'inf',
      '-Infinity',
      '99999999999999999999',
      'x',
      'false',
    ]);
    assert.deepEqual(rowsOf(f, 'type'), [7, 8]);
    const b = checkColumn({ type: 'boolean' }, ['true', 'False', 'TRUE', true, '1', 'yes', 0, 'f']);
    assert.deepEqual(rowsOf(b, 'type'), [5, 6, 7, 8]);
    const d = checkColumn({ type: 'datetime' }, [
      '2011-01-01',
      '2011-01-01T08:00:00Z',
      '2011-01-01 08:00',
      '2011-01-01T08:00:00.123+02:00',
      new Date(Date.UTC(2020, 1, 29)),
      '2011-02-30',
      '01/02/2011',
      20110101,
      '2011-01-01T25:00',
    ]);
    assert.deepEqual(rowsOf(d, 'type'), [6, 7, 8, 9]);
    assert.deepEqual(valuesOf(d, 'type'), ['2011-02-30', '01/02/2011', 20110101, '2011-01-01T25:00']);
    // Categorical, text and any have no type to check.
    for (const type of ['categorical', 'text', 'any'] as const) {
      const r = checkColumn({ type }, ['a', 1, true]);
      assert.equal(r.rules.length, 0, type);
      assert.equal(r.success, true);
    }
  });

  test('nullable: false flags the empty cell and every pandas NA token, and only those', () => {
    const tokens = [
      '',
      'NA',
      'NaN',
      'nan',
      'null',
      'NULL',
      'None',
      '<NA>',
      'N/A',
      'n/a',
      '#N/A',
      '-nan',
      '1.#QNAN',
    ];
    const cells: Cell[] = [...tokens, null, Number.NaN, 'na', 'none', 'Null', ' ', '0'];
    const r = checkColumn({ type: 'any', nullable: false }, cells);
    assert.deepEqual(
      rowsOf(r, 'nullable'),
      cells.slice(0, tokens.length + 2).map((_, i) => i + 1),
    );
    assert.ok(r.failures.every((f) => f.value === null && f.expected === 'a value (not missing)'));
    assert.equal(ruleOf(r, 'nullable').checked, cells.length);
    // Missing values are nullable's business alone: type and range skip them.
    const typed = checkColumn({ type: 'integer', range: { min: 0 } }, ['', 'NA', null, '3']);
    assert.equal(typed.success, true);
    assert.equal(ruleOf(typed, 'type').checked, 1);
    assert.equal(ruleOf(typed, 'range').checked, 1);
    // nullable defaults to true.
    assert.equal(checkColumn({ type: 'integer' }, ['', 'NA']).success, true);
  });

  test('range: inclusive numeric bounds, open ends, big integers exactly, and values of the wrong type skipped', () => {
    const r = checkColumn({ type: 'integer', range: { min: 0, max: 120 } }, [
      '0',
      '120',
      '-5',
      '121',
      '60.0',
      'x',
      '-0',
    ]);
    assert.deepEqual(rowsOf(r, 'range'), [3, 4]);
    assert.deepEqual(valuesOf(r, 'range'), [-5, 121]);
    assert.equal(r.failures.find((f) => f.rule === 'range')!.expected, '0..120');
    assert.deepEqual(rowsOf(r, 'type'), [6]);
    assert.equal(ruleOf(r, 'range').checked, 6, 'the value that is not an integer is not range-checked');
    const open = checkColumn({ type: 'float', range: { min: 0.5 } }, [
      '0.5',
      '1e300',
      '0.49999',
      'inf',
      '-inf',
    ]);
    assert.deepEqual(rowsOf(open, 'range'), [3, 5]);
    assert.deepEqual(valuesOf(open, 'range'), [0.49999, '-inf']);
    assert.equal(open.failures.find((f) => f.rule === 'range')!.expected, '0.5..');
    // Beyond 2^53, bounds and values compare exactly (as doubles …890 and …891 are the same number).
    const big = checkColumn({ type: 'integer', range: { min: '-5', max: '12345678901234567890' } }, [
      '12345678901234567890',
      '12345678901234567891',
      '-6',
      '9007199254740993',
    ]);
    assert.deepEqual(rowsOf(big, 'range'), [2, 3]);
    assert.deepEqual(valuesOf(big, 'range'), ['12345678901234567891', -6]);
  });

  test('range on datetimes: ISO bounds, date-times with zones, inclusive at the millisecond', () => {
    const r = checkColumn({ type: 'datetime', range: { min: '2011-01-01', max: '2011-12-31T23:59:59Z' } }, [
      '2011-01-01',
      '2011-12-31T23:59:59Z',
      '2011-12-31T23:59:59.001Z',
      '2010-12-31T23:59:59.999Z',
      '2011-01-01T00:30:00+01:00',
      '2011-06-01 12:00',
      'soon',
    ]);
    assert.deepEqual(rowsOf(r, 'range'), [3, 4, 5]);
    assert.deepEqual(valuesOf(r, 'range'), [
      '2011-12-31T23:59:59.001Z',
      '2010-12-31T23:59:59.999Z',
      '2011-01-01T00:30:00+01:00',
    ]);
    assert.deepEqual(rowsOf(r, 'type'), [7]);
  });

  test('categories: "1", 1 and 1.0 are the same value; case matters; missing values are not checked', () => {
    const r = checkColumn({ type: 'categorical', categories: ['1', 2, 'a', true] }, [
      '1',
      1,
      '1.0',
      '2',
      2,
      'a',
      'TRUE',
      true,
      '',
      'A',
      '3',
      'b',
      '1.5',
    ]);
    assert.deepEqual(rowsOf(r, 'categories'), [10, 11, 12, 13]);
    assert.deepEqual(valuesOf(r, 'categories'), ['A', 3, 'b', 1.5]);
    assert.equal(r.failures[0]!.expected, 'one of "1", 2, "a", true');
    assert.equal(ruleOf(r, 'categories', 'x').checked, 12);
    const many = Array.from({ length: 30 }, (_, i) => `v${i}`);
    const long = checkColumn({ type: 'categorical', categories: many }, ['v0', 'w']);
    assert.equal(long.failures[0]!.expected, 'one of 30 allowed values');
  });

  test('length counts characters of the text as written', () => {
    const r = checkColumn({ type: 'text', length: { min: 2, max: 4 } }, [
      'a',
      'ab',
      'abcd',
      'abcde',
      '12345',
      'ñand',
      '',
      7,
    ]);
    assert.deepEqual(rowsOf(r, 'length'), [1, 4, 5, 8]);
    assert.deepEqual(valuesOf(r, 'length'), ['a', 'abcde', 12345, 7]);
    assert.equal(r.failures[0]!.expected, '2..4 characters');
  });

  test('pattern must match the whole value, alternatives included', () => {
    const r = checkColumn({ type: 'text', pattern: '[A-Z][0-9]{2,3}' }, [
      'A11',
      'A143',
      'xA11',
      'A11x',
      'A1',
      'a11',
    ]);
    assert.deepEqual(rowsOf(r, 'pattern'), [3, 4, 5, 6]);
    assert.equal(r.failures[0]!.expected, 'matches [A-Z][0-9]{2,3}');
    // `a|b` is `^(?:a|b)$`, not `^a|b$`, so `ab` and `ba` fail.
    const alt = checkColumn({ type: 'text', pattern: 'a|b' }, ['a', 'b', 'ab', 'ba']);
    assert.deepEqual(rowsOf(alt, 'pattern'), [3, 4]);
  });

  test('unique flags every occurrence of a repeated value, the first one too, across batches', () => {
    const cells: Cell[] = ['a', 'b', 'a', 'c', 'b', 'a', '', 'NA', 'd', '1', 1, '1.0'];
    for (const batchRows of [1, 2, 5, 12]) {
      const r = check(
        schemaOf([{ name: 'x', type: 'any', unique: true }]),
        ['x'],
        cells.map((c) => [c]),
        { batchRows },
      );
      assert.deepEqual(rowsOf(r, 'unique'), [1, 2, 3, 5, 6, 10, 11, 12], `batches of ${batchRows}`);
      assert.deepEqual(valuesOf(r, 'unique'), ['a', 'b', 'a', 'b', 'a', 1, 1, 1]);
      // Missing values are not values: two of them are no duplicate.
      assert.equal(ruleOf(r, 'unique').checked, 10);
      assert.equal(ruleOf(r, 'unique').failed, 8);
    }
  });

  test('required: a missing column fails once, as a table-level failure; required: false allows it', () => {
    const schema = schemaOf([
      { name: 'a', type: 'integer' },
      { name: 'b', type: 'integer' },
      { name: 'c', type: 'integer', required: false },
    ]);
    const r = check(schema, ['a'], [['1'], ['2']]);
    assert.equal(r.success, false);
    assert.deepEqual(r.failures, [
      { row: null, column: 'b', rule: 'required', value: null, expected: 'the column present' },
    ]);
  });

  test('environments: a training-only label is required in training and must be absent at serving', () => {
    const schema = schemaOf([
      { name: 'age', type: 'integer' },
      { name: 'income', type: 'categorical', environments: ['training'] },
    ]);
    const withLabel = [
      ['39', '<=50K'],
      ['50', '>50K'],
    ];
    assert.equal(check(schema, ['age', 'income'], withLabel).success, true);
    const training = check(schema, ['age'], [['39']]);
    assert.deepEqual(rowsOf(training, 'required'), [null]);
    const serving = check(schema, ['age', 'income'], withLabel, { environment: 'serving' });
    assert.equal(serving.environment, 'serving');
    assert.deepEqual(serving.failures, [
      {
        row: null,
        column: 'income',
        rule: 'absent',
        value: 'income',
        expected: 'the column absent in serving (it belongs to training)',
      },
    ]);
    assert.equal(check(schema, ['age'], [['39']], { environment: 'serving' }).success, true);
  });

  test('extra columns fail unless the table allows them', () => {
    const columns = [{ name: 'a', type: 'integer' as const }];
    const r = check(schemaOf(columns), ['z', 'a', 'y'], [['1', '2', '3']]);
    assert.deepEqual(
      r.failures.map((f) => [f.row, f.column, f.rule, f.value]),
      [
        [null, 'z', 'columns', 'z'],
        [null, 'y', 'columns', 'y'],
      ],
    );
    assert.equal(
      check(schemaOf(columns, { table: { extra_columns: true } }), ['z', 'a'], [['1', '2']]).success,
      true,
    );
  });

  test('row_count: bounds on the number of data rows', () => {
    const schema = schemaOf([{ name: 'a', type: 'any' }], { table: { rows: { min: 2, max: 3 } } });
    const rows = (n: number) => Array.from({ length: n }, (_, i) => [String(i)]);
    assert.deepEqual(check(schema, ['a'], rows(1)).failures, [
      { row: null, column: null, rule: 'row_count', value: 1, expected: '2..3' },
    ]);
    assert.equal(check(schema, ['a'], rows(2)).success, true);
    assert.equal(check(schema, ['a'], rows(3)).success, true);
    assert.deepEqual(valuesOf(check(schema, ['a'], rows(4), { batchRows: 3 }), 'row_count'), [4]);
    const v = new Validator(
      parseSchema(schemaOf([{ name: 'a', type: 'any' }], { table: { rows: { min: 0 } } })),
    );
    v.begin(['a']);
    assert.equal(v.finish().success, true, 'an empty table with min 0 passes');
  });
});

describe('cross-column rules', () => {
  const columns: ColumnSchema[] = [
    { name: 'a', type: 'integer' },
    { name: 'b', type: 'float' },
    { name: 'start_date', type: 'datetime' },
    { name: 'end_date', type: 'datetime' },
    { name: 'status', type: 'categorical' },
    { name: 'capital-gain', type: 'integer' },
    { name: 'flag', type: 'boolean' },
  ];
  const header = columns.map((c) => c.name);
  /** Rows failing `expr` among `rows` (objects by column, missing columns empty). */
  function failing(expr: string, rows: Record<string, Cell>[], mostly?: number): (number | null)[] {
    const rule: CrossRule = { expr, ...(mostly === undefined ? {} : { mostly }) };
    const r = check(
      schemaOf(columns, { rules: [rule] }),
      header,
      rows.map((o) => header.map((h) => o[h] ?? '')),
    );
    return rowsOf(r, 'expression');
  }

  test('end_date >= start_date, with the failing values shown by column (dates as ISO text)', () => {
    const r = check(
      schemaOf(columns, { rules: [{ name: 'dates in order', expr: 'end_date >= start_date' }] }),
      header,
      [
        ['1', '', '2011-01-01', '2011-01-02', 'open', '', ''],
        ['1', '', '2011-01-02', '2011-01-01', 'open', '', ''],
        ['1', '', '2011-01-02', '', 'open', '', ''],
        ['1', '', '2011-01-02', '2011-01-02', 'open', '', ''],
      ],
    );
    assert.deepEqual(r.failures, [
      {
        row: 2,
        column: 'dates in order',
        rule: 'expression',
        value: { end_date: '2011-01-01T00:00:00.000Z', start_date: '2011-01-02T00:00:00.000Z' },
        expected: 'end_date >= start_date',
      },
    ]);
    // The row with no end date is not checked (a CHECK constraint passes on NULL).
    assert.equal(ruleOf(r, 'expression', 'dates in order').checked, 3);
  });

  test('three-valued logic: missing values make a rule unknown, and unknown rows are not checked', () => {
    const rows = [
      { a: '', b: '1' },
      { a: '', b: '-1' },
      { a: '1', b: '-1' },
      { a: '-1', b: '-1' },
    ];
    assert.deepEqual(failing('a > 0 or b > 0', rows), [4]);
    assert.deepEqual(failing('a > 0 and b > 0', rows), [2, 3, 4]);
    assert.deepEqual(failing('not (a > 0)', rows), [3]);
    assert.deepEqual(failing('is_null(a) or a > 0', rows), [4]);
    assert.deepEqual(failing('a + b > 0', rows), [3, 4]);
    assert.deepEqual(failing('a == null', rows), [], 'a comparison with null is unknown, never false');
    assert.deepEqual(failing('not is_null(a)', rows), [1, 2]);
    // A value of the wrong type reads as missing (the type rule reports it).
    assert.deepEqual(failing('a > 0', [{ a: 'x' }, { a: '-2' }]), [2]);
  });

  test('in and not in, with strings, negative numbers and null', () => {
    const rows = [{ status: 'open' }, { status: 'closed' }, { status: 'lost' }, { status: '' }];
    assert.deepEqual(failing('status in ("open", \'closed\')', rows), [3]);
    assert.deepEqual(failing('status not in ("open")', rows), [1]);
    const nums = [{ a: '-1' }, { a: '0' }, { a: '2' }, { a: '' }];
    assert.deepEqual(failing('a in (-1, 0, 1)', nums), [3]);
    assert.deepEqual(failing('a not in (-1, +0)', nums), [1, 2]);
    assert.deepEqual(
      failing('start_date in ("2011-01-01", "2011-01-02")', [
        { start_date: '2011-01-01' },
        { start_date: '2011-01-03' },
      ]),
      [2],
    );
  });

  test('functions and arithmetic', () => {
    const rows = [
      { a: '-3', b: '2.46', status: 'Open' },
      { a: '3', b: '2.44', status: 'closed' },
    ];
    assert.deepEqual(failing('abs(a) == 3', rows), []);
    assert.deepEqual(failing('a == 3', rows), [1]);
    assert.deepEqual(failing('round(b, 1) == 2.5', rows), [2]);
    assert.deepEqual(failing('round(b) == 2', rows), []);
    assert.deepEqual(failing('min(a, b) < 0', rows), [2]);
    assert.deepEqual(failing('max(a, b, 2.45) == 3', rows), [1]);
    assert.deepEqual(failing('len(status) == 4', rows), [2]);
    assert.deepEqual(failing('lower(status) == "open"', rows), [2]);
    assert.deepEqual(failing('upper(status) = "CLOSED"', rows), [1]);
    assert.deepEqual(failing('a * 2 - 1 <> 5', rows), [2]);
    assert.deepEqual(failing('a % 2 == 1', rows), [1], '-3 % 2 is -1, as in JavaScript and SQL');
    assert.deepEqual(failing('a / 0 > 0', rows), [], 'division by zero is missing, so not checked');
    assert.deepEqual(failing('flag == true', [{ flag: 'true' }, { flag: 'FALSE' }]), [2]);
    const dates = [
      { start_date: '2011-01-01', end_date: '2011-01-31' },
      { start_date: '2011-01-01T12:00:00Z', end_date: '2011-01-03' },
    ];
    assert.deepEqual(failing('days(end_date - start_date) <= 7', dates), [1]);
    assert.deepEqual(failing('days(end_date - start_date) == 1.5', dates), [1]);
  });

  test('a quoted date compared with a datetime column is read as a date', () => {
    const rows = [
      { start_date: '2010-12-31' },
      { start_date: '2011-01-01' },
      { start_date: '2011-01-01T00:00:00-01:00' },
    ];
    assert.deepEqual(failing('start_date >= "2011-01-01"', rows), [1]);
    assert.deepEqual(failing('"2011-01-01T00:30" > start_date', rows), [3]);
  });

  test('backticks name columns with other characters', () => {
    const rows = [{ 'capital-gain': '10' }, { 'capital-gain': '-1' }];
    assert.deepEqual(failing('`capital-gain` >= 0', rows), [2]);
    assert.deepEqual(
      compileExpression('`capital-gain` - a', (n) => (n === 'a' ? 'integer' : 'integer')).columns,
      ['capital-gain', 'a'],
    );
  });

  test('mostly on a rule: within passes with no failures listed; just beyond fails', () => {
    const rows = Array.from({ length: 100 }, (_, i) => ({ a: i < 3 ? '-1' : '1' }));
    const within = check(
      schemaOf(columns, { rules: [{ expr: 'a > 0', mostly: 0.97 }] }),
      header,
      rows.map((o) => header.map((h) => (o as Record<string, Cell>)[h] ?? '')),
    );
    assert.equal(within.success, true);
    assert.deepEqual(within.failures, []);
    assert.equal(ruleOf(within, 'expression', 'a > 0').failed, 3);
    assert.equal(failing('a > 0', rows, 0.98).length, 3);
  });
});

describe('mostly', () => {
  test('a relaxed column rule passes within its fraction and lists no failures; one more failure fails it', () => {
    const cells = (bad: number) => Array.from({ length: 100 }, (_, i) => (i < bad ? '200' : '50'));
    const within = checkColumn(
      { type: 'integer', range: { min: 0, max: 120 }, mostly: { range: 0.97 } },
      cells(3),
    );
    assert.equal(within.success, true);
    assert.deepEqual(within.failures, []);
    const range = ruleOf(within, 'range');
    assert.deepEqual([range.checked, range.failed, range.mostly, range.success], [100, 3, 0.97, true]);
    const beyond = checkColumn(
      { type: 'integer', range: { min: 0, max: 120 }, mostly: { range: 0.97 } },
      cells(4),
    );
    assert.equal(beyond.success, false);
    assert.deepEqual(rowsOf(beyond, 'range'), [1, 2, 3, 4]);
    // Each rule has its own fraction: a relaxed range does not relax the type.
    const mixed = checkColumn({ type: 'integer', range: { min: 0, max: 120 }, mostly: { range: 0.5 } }, [
      '200',
      'x',
      '50',
      '50',
    ]);
    assert.deepEqual(
      mixed.failures.map((f) => f.rule),
      ['type'],
    );
    // Nullable's fraction counts every row; unique's counts non-missing values.
    assert.equal(
      checkColumn({ type: 'any', nullable: false, mostly: { nullable: 0.75 } }, ['', '1', '2', '3']).success,
      true,
    );
    assert.equal(
      checkColumn({ type: 'any', nullable: false, mostly: { nullable: 0.76 } }, ['', '1', '2', '3']).success,
      false,
    );
    assert.equal(
      checkColumn({ type: 'any', unique: true, mostly: { unique: 0.5 } }, ['a', 'a', 'b', 'c']).success,
      true,
    );
    assert.equal(
      checkColumn({ type: 'any', unique: true, mostly: { unique: 0.51 } }, ['a', 'a', 'b', 'c']).success,
      false,
    );
  });

  test('at serving, relaxed rules and dataset-wide rules are not applied to one request', () => {
    const schema = parseSchema(
      schemaOf(
        [
          { name: 'a', type: 'integer', range: { min: 0 }, mostly: { range: 0.9 }, unique: true },
          { name: 'b', type: 'integer', range: { min: 0 } },
        ],
        { table: { rows: { min: 5 } }, rules: [{ expr: 'a < b', mostly: 0.5 }] },
      ),
    );
    const v = new Validator(schema, { serving: true, environment: 'serving' });
    const bad = v.add({
      columns: ['a', 'b', 'extra'],
      rows: [
        ['-1', '5', 'x'],
        ['1', '-1', 'x'],
        ['1', '5', 'x'],
      ],
      firstRow: 1,
    });
    assert.deepEqual([...bad], [1]);
    const r = v.finish();
    assert.deepEqual(
      r.failures.map((f) => [f.row, f.column, f.rule]),
      [[2, 'b', 'range']],
    );
  });
});

describe('the report', () => {
  const schema = schemaOf(
    [
      { name: 'id', type: 'integer', unique: true },
      { name: 'age', type: 'integer', nullable: false, range: { min: 21, max: 79 } },
      { name: 'code', type: 'text', pattern: '[A-Z][0-9]+' },
      { name: 'missing_column', type: 'any' },
    ],
    { table: { rows: { max: 3 } }, rules: [{ name: 'adult', expr: 'age >= 18' }] },
  );
  const rows: Cell[][] = [
    ['1', '30', 'A1'],
    ['2', '-5', 'A2'],
    ['3', '', 'b3'],
    ['1', '90', 'C4'],
  ];

  test('has exactly the documented shape: success, rows_checked, failures of {row, column, rule, value, expected}', () => {
    const r = check(schema, ['id', 'age', 'code'], rows);
    assert.deepEqual(Object.keys(r).sort(), [
      'environment',
      'failures',
      'failures_truncated',
      'rows_checked',
      'rules',
      'success',
    ]);
    assert.equal(r.success, false);
    assert.equal(r.rows_checked, 4);
    for (const f of r.failures)
      assert.deepEqual(Object.keys(f), ['row', 'column', 'rule', 'value', 'expected']);
    // Table-level failures first, in the schema's order; then by row; within a row, the schema's order.
    assert.deepEqual(r.failures, [
      { row: null, column: 'missing_column', rule: 'required', value: null, expected: 'the column present' },
      { row: null, column: null, rule: 'row_count', value: 4, expected: '0..3' },
      { row: 1, column: 'id', rule: 'unique', value: 1, expected: 'unique' },
      { row: 2, column: 'age', rule: 'range', value: -5, expected: '21..79' },
      { row: 2, column: 'adult', rule: 'expression', value: { age: -5 }, expected: 'age >= 18' },
      { row: 3, column: 'age', rule: 'nullable', value: null, expected: 'a value (not missing)' },
      { row: 3, column: 'code', rule: 'pattern', value: 'b3', expected: 'matches [A-Z][0-9]+' },
      { row: 4, column: 'id', rule: 'unique', value: 1, expected: 'unique' },
      { row: 4, column: 'age', rule: 'range', value: 90, expected: '21..79' },
    ]);
    assert.equal(r.failures_truncated, false);
    const range = ruleOf(r, 'range', 'age');
    assert.deepEqual(range, {
      column: 'age',
      rule: 'range',
      expected: '21..79',
      mostly: 1,
      checked: 3,
      failed: 2,
      success: false,
    });
    assert.ok(JSON.parse(JSON.stringify(r)), 'the report is plain JSON');
  });

  test('max failures keeps the earliest failures by row, while counts stay exact', () => {
    const full = check(schema, ['id', 'age', 'code'], rows);
    for (const max of [1, 3, 5]) {
      const r = check(schema, ['id', 'age', 'code'], rows, { maxFailures: max });
      assert.deepEqual(r.failures, full.failures.slice(0, max), `max ${max}`);
      assert.equal(r.failures_truncated, true);
      assert.deepEqual(r.rules, full.rules);
    }
    assert.equal(check(schema, ['id', 'age', 'code'], rows, { maxFailures: 9 }).failures_truncated, false);
    // A repeated value's first occurrence is found late; a capped list still holds the earliest rows.
    const cells: Cell[] = ['A', 'B', 'C', 'C', 'C', 'C', 'B', 'A'];
    const r = checkColumn({ type: 'any', unique: true }, cells, { maxFailures: 3 });
    assert.deepEqual(rowsOf(r, 'unique'), [1, 2, 3]);
    assert.equal(ruleOf(r, 'unique').failed, 8);
    // The default keeps 1000.
    const many = new Validator(parseSchema(schemaOf([{ name: 'x', type: 'integer' }])));
    many.add({ columns: ['x'], rows: Array.from({ length: 1500 }, () => ['x']), firstRow: 1 });
    const report = many.finish();
    assert.equal(report.failures.length, 1000);
    assert.equal(report.failures.at(-1)!.row, 1000);
    assert.equal(ruleOf(report, 'type').failed, 1500);
  });

  test('rows are 1-based data rows of the file: the header is not a row', async () => {
    const file = join(REPO_ROOT, 'test/fixtures/data/orders.csv');
    const r = await validateTable(
      file,
      parseSchema(
        schemaOf([{ name: 'order_id', type: 'integer', range: { max: 1 } }], {
          table: { extra_columns: true },
        }),
      ),
      { maxFailures: 0, read: { batchRows: 7 } },
    );
    assert.equal(r.rows_checked, 40);
    // order_id is the data row number in this file.
    assert.deepEqual(
      r.failures.map((f) => f.row),
      Array.from({ length: 39 }, (_, i) => i + 2),
    );
    assert.ok(r.failures.every((f: Failure) => f.value === f.row));
  });
});

describe('formats', () => {
  test('Parquet: native integers, big integers, floats, booleans and dates, rows numbered across row groups', async () => {
    const file = join(REPO_ROOT, 'test/fixtures/data/small.parquet');
    const schema = schemaOf([
      { name: 'age', type: 'integer', range: { min: 0, max: 100 } },
      { name: 'score', type: 'float', nullable: false },
      { name: 'workclass', type: 'text', length: { max: 10 } },
      { name: 'ok', type: 'boolean', categories: [true, false] },
      { name: 'when', type: 'datetime', range: { max: '2025-01-01' } },
    ]);
    const r = await validateTable(file, parseSchema(schema), { maxFailures: 0 });
    assert.equal(r.rows_checked, 5);
    assert.deepEqual(
      r.failures.map((f) => [f.row, f.column, f.rule, f.value]),
      [
        [4, 'score', 'nullable', null],
        [5, 'age', 'range', '9007199254740993'],
        [5, 'workclass', 'length', 'naïve ,"quoted"'],
        [5, 'when', 'range', '2030-06-01T00:00:00.000Z'],
      ],
    );
    assert.equal(r.rules.find((x) => x.rule === 'type' && x.column === 'ok')!.checked, 4);
  });

  test('JSON Lines with typed values reports what the same table as CSV reports', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-schema-'));
    try {
      const csv = join(REPO_ROOT, 'test/fixtures/data/orders.csv');
      const { columns, rows } = await readAll(csv);
      const profile = profileOf(columns, rows);
      const schema = parseSchema(inferSchema(profile, { labels: ['returned'] }));
      // Typed JSON values (numbers, booleans, null), with a few broken.
      const records = rows.map((r) =>
        Object.fromEntries(columns.map((c, i) => [c, r[i] === '' ? null : r[i]])),
      );
      const typed = records.map((o) => ({
        ...o,
        order_id: Number(o.order_id),
        amount: Number(o.amount),
        quantity: Number(o.quantity),
        returned: o.returned === 'true',
      }));
      // quantity is 1..12 in the fixture; widened by 5% of the span (0.55) each side and rounded
      // outward, its range is 0..13, so 14 is the nearest value outside.
      typed[2]!.quantity = 14;
      typed[4]!.returned = 'maybe' as unknown as boolean;
      typed[6]!.order_id = 1;
      const jsonl = join(dir, 'orders.jsonl');
      await writeFile(jsonl, `${typed.map((o) => JSON.stringify(o)).join('\n')}\n`);
      const csvBroken = join(dir, 'orders.csv');
      const text = (v: unknown) => (v === null ? '' : String(v));
      await writeFile(
        csvBroken,
        `${[columns.join(','), ...typed.map((o) => columns.map((c) => text(o[c as keyof typeof o])).join(','))].join('\n')}\n`,
      );
      const fromJson = await validateTable(jsonl, schema, { maxFailures: 0 });
      const fromCsv = await validateTable(csvBroken, schema, { maxFailures: 0 });
      assert.deepEqual(
        fromJson.failures.map((f) => [f.row, f.column, f.rule, f.value]),
        [
          [1, 'order_id', 'unique', 1],
          [3, 'quantity', 'range', 14],
          [5, 'returned', 'type', 'maybe'],
          [7, 'order_id', 'unique', 1],
        ],
      );
      assert.deepEqual(fromJson, fromCsv);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A table file's header and rows, read whole. */
async function readAll(file: string): Promise<{ columns: string[]; rows: Cell[][] }> {
  let columns: string[] = [];
  const rows: Cell[][] = [];
  for await (const b of readTable(file)) {
    columns = [...b.columns];
    for (const r of b.rows) rows.push(r);
  }
  return { columns, rows };
}

/** A profile of rows given in memory. */
function profileOf(columns: string[], rows: Cell[][]): TableProfile {
  return new TableProfile().add({ columns, rows, firstRow: 1 });
}

describe('inferSchema', () => {
  test('an empty table: columns of type any, and a schema the empty table passes', () => {
    const schema = inferSchema(profileOf(['a', 'b'], []));
    assert.deepEqual(schema.columns, [
      { name: 'a', type: 'any', nullable: false },
      { name: 'b', type: 'any', nullable: false },
    ]);
    assert.deepEqual(schema.table, { rows: { min: 0 }, extra_columns: false });
    const v = new Validator(parseSchema(schema));
    v.begin(['a', 'b']);
    assert.equal(v.finish().success, true);
  });

  test('an all-missing column is of type any and nullable; a mixed column is categorical without a type rule', () => {
    const rows: Cell[][] = Array.from({ length: 30 }, (_, i) => [
      '',
      i % 3 === 0 ? 'x' : String(i % 5),
      null,
    ]);
    const schema = inferSchema(profileOf(['empty', 'mixed', 'nulls'], rows));
    assert.deepEqual(schema.columns[0], { name: 'empty', type: 'any', nullable: true });
    assert.deepEqual(schema.columns[2], { name: 'nulls', type: 'any', nullable: true });
    const mixed = schema.columns[1]!;
    assert.equal(mixed.type, 'categorical');
    assert.equal(mixed.nullable, false);
    assert.deepEqual(new Set(mixed.categories), new Set(['x', 0, 1, 2, 3, 4]));
    // Numbers among the strings: no length or pattern, which would misread the numbers.
    assert.equal(mixed.length, undefined);
    assert.equal(mixed.pattern, undefined);
    assert.equal(check(schema, ['empty', 'mixed', 'nulls'], rows).success, true);
  });

  test('huge integers keep exact bounds, and a value one past them fails', () => {
    const rows: Cell[][] = [['12345678901234567890'], ['5'], ['-9223372036854775808']];
    const schema = inferSchema(profileOf(['n'], rows));
    const n = schema.columns[0]!;
    assert.equal(n.type, 'integer');
    assert.deepEqual(n.range, { min: '-9223372036854775808', max: '12345678901234567890' });
    const r = check(schema, ['n'], [...rows, ['12345678901234567891'], ['-9223372036854775809']]);
    assert.deepEqual(rowsOf(r, 'range'), [4, 5]);
    // -2^63 (an Int64 sentinel) beside small values: the margin (5% of a span of 2^63) would carry
    // the maximum past 2^53, so it stays as observed, and the column's own rows pass.
    const sentinel: Cell[][] = [['-9223372036854775808'], ['5'], ['7']];
    const s = inferSchema(profileOf(['n'], sentinel));
    assert.deepEqual(s.columns[0]!.range, { min: '-9223372036854775808', max: 7 });
    const own = check(s, ['n'], [...sentinel, ['8'], ['-9223372036854775809']]);
    assert.deepEqual(rowsOf(own, 'range'), [4, 5]);
  });

  test('numeric ranges: the observed bounds widened by 5% of the span each side, rounded outward', () => {
    const range = (cells: string[], options = {}) =>
      inferSchema(
        profileOf(
          ['x'],
          cells.map((c) => [c]),
        ),
        options,
      ).columns[0]!.range;
    // Integers: 3..40, span 37, margin 1.85 → 1.15..41.85 → floor/ceil → 1..42.
    assert.deepEqual(range(['3', '40', '17']), { min: 1, max: 42 });
    // A non-negative minimum stays non-negative: 0..9, margin 0.45 → -0.45 → 0; 9.45 → 10.
    assert.deepEqual(range(['0', '9', '4']), { min: 0, max: 10 });
    // 2..100, margin 4.9 → -2.9 is clamped to 0 because the observed minimum was not negative.
    assert.deepEqual(range(['2', '100']), { min: 0, max: 105 });
    // A negative minimum widens below zero: -7..5, margin 0.6 → -7.6..5.6 → -8..6.
    assert.deepEqual(range(['-7', '5', '0']), { min: -8, max: 6 });
    // Floats at 6 significant digits, outward: 1.23456789..2.5, margin 0.0632716055 →
    // 1.1712962845..2.5632716055 → 1.17129..2.56328.
    assert.deepEqual(range(['1.23456789', '2.5']), { min: 1.17129, max: 2.56328 });
    // 0.02..0.96 (normalised temperatures), margin 0.047 → -0.027 → 0; 1.007 is already 6 digits.
    assert.deepEqual(range(['0.02', '0.96', '0.5']), { min: 0, max: 1.007 });
    // Large floats round at 6 significant digits too (no 1589750000.0000002): 1595000000.5..
    // 1700000000.25, margin 5249999.9875 → 1589750000.5125..1705250000.2375 → 1.58975e9..1.70526e9.
    assert.deepEqual(range(['1595000000.5', '1700000000.25']), { min: 1589750000, max: 1705260000 });
    // Negative floats: -2.5..-0.5, margin 0.1 → -2.6..-0.4.
    assert.deepEqual(range(['-2.5', '-0.5', '-1.25']), { min: -2.6, max: -0.4 });
    // A constant column has no span to widen: its value is the whole range, and passes.
    assert.deepEqual(range(['5', '5', '5']), { min: 5, max: 5 });
    assert.deepEqual(range(['0.3', '0.3']), { min: 0.3, max: 0.3 });
    // rangeMargin sets the share; 0 keeps the observed bounds.
    assert.deepEqual(range(['3', '40'], { rangeMargin: 0 }), { min: 3, max: 40 });
    assert.deepEqual(range(['3', '40'], { rangeMargin: 0.5 }), { min: 0, max: 59 });
    assert.deepEqual(range(['-3', '40'], { rangeMargin: 0.5 }), { min: -25, max: 62 });
    // The bounds are inclusive: the widened edges pass, one past them fails.
    const schema = inferSchema(
      profileOf(
        ['i', 'f'],
        [
          ['3', '1.23456789'],
          ['40', '2.5'],
        ],
      ),
    );
    const r = check(
      schema,
      ['i', 'f'],
      [
        ['1', '1.17129'],
        ['42', '2.56328'],
        ['0', '1.171289'],
        ['43', '2.563281'],
      ],
    );
    assert.deepEqual(
      r.failures.map((f) => [f.row, f.column, f.value]),
      [
        [3, 'i', 0],
        [3, 'f', 1.171289],
        [4, 'i', 43],
        [4, 'f', 2.563281],
      ],
    );
  });

  test('dates: a datetime column with its ISO minimum and no maximum (new data is later)', () => {
    const rows: Cell[][] = [['2011-01-01'], ['2012-06-30 10:00'], ['2011-05-05'], ['']];
    const schema = inferSchema(profileOf(['d'], rows));
    assert.deepEqual(schema.columns[0], {
      name: 'd',
      type: 'datetime',
      nullable: true,
      range: { min: '2011-01-01T00:00:00.000Z' },
    });
    // A millisecond past the observed maximum and years later pass; a day before the minimum fails.
    const r = check(
      schema,
      ['d'],
      [...rows, ['2012-06-30T10:00:00.001Z'], ['2030-01-01'], ['2010-12-31T23:59:59.999Z'], ['tomorrow']],
    );
    assert.deepEqual(rowsOf(r, 'range'), [7]);
    assert.deepEqual(rowsOf(r, 'type'), [8]);
  });

  test('an id column is unique, a code column gets a pattern, a label belongs to training; all from 20 values', () => {
    const rows = (n: number): Cell[][] =>
      Array.from({ length: n }, (_, i) => [
        String(1000 + i),
        `A${(i * 7) % 13}${i % 2 === 0 ? '0' : ''}`,
        `C-${String(i).padStart(4, '0')}`,
        i % 4 === 0 ? 'yes' : 'no',
      ]);
    const header = ['id', 'code', 'customer', 'label'];
    const schema = inferSchema(profileOf(header, rows(40)), { labels: ['label'] });
    const [id, code, customer, label] = schema.columns;
    // Observed 1000..1039, widened by 5% of the span (1.95) each side: 998.05..1040.95, rounded
    // outward to 998..1041.
    assert.deepEqual(id, {
      name: 'id',
      type: 'integer',
      nullable: false,
      range: { min: 998, max: 1041 },
      unique: true,
    });
    assert.equal(code!.pattern, '[A-Z][0-9]+');
    assert.equal(code!.unique, undefined, 'codes repeat');
    // `-` is a literal outside a class and must stay unescaped under the `u` flag.
    assert.equal(customer!.pattern, '[A-Z]-[0-9]{4}');
    assert.deepEqual(customer!.length, { min: 6, max: 6 });
    assert.deepEqual(label, {
      name: 'label',
      type: 'categorical',
      nullable: false,
      environments: ['training'],
      categories: ['no', 'yes'],
    });
    // The inferred schema parses, and its own rows pass.
    assert.equal(check(schema, header, rows(40)).success, true);
    const r = check(schema, header, [
      ['1042', 'a1', 'C-12', 'maybe'],
      ['1000', 'A1', 'C-0001', 'no'],
      ['1041', 'A2', 'C-0002', 'yes'],
      ['998', 'A3', 'C-0003', 'no'],
      ['997', 'A4', 'C-0004', 'no'],
    ]);
    assert.deepEqual(
      r.failures.map((f) => [f.row, f.column, f.rule]),
      [
        [1, 'id', 'range'],
        [1, 'code', 'pattern'],
        [1, 'customer', 'length'],
        [1, 'customer', 'pattern'],
        [1, 'label', 'categories'],
        [5, 'id', 'range'],
      ],
    );
    // Fewer than 20 values say too little for uniqueness or a pattern.
    const small = inferSchema(profileOf(header, rows(19)));
    assert.equal(small.columns[0]!.unique, undefined);
    assert.equal(small.columns[1]!.pattern, undefined);
    assert.equal(small.columns[3]!.environments, undefined);
  });

  test('categories are listed when rare values are rare enough, and by frequency', () => {
    const common = Array.from({ length: 2000 }, (_, i): Cell[] => [['b', 'a', 'b', 'c'][i % 4]!]);
    const schema = inferSchema(profileOf(['x'], common));
    assert.deepEqual(schema.columns[0]!.categories, ['b', 'a', 'c']);
    // Three values seen once in 2003: unseen values are likely, so no list (only the length).
    const rare = inferSchema(profileOf(['x'], [...common, ['d'], ['e'], ['f']]));
    assert.equal(rare.columns[0]!.categories, undefined);
    assert.deepEqual(rare.columns[0]!.length, { min: 1, max: 1 });
    assert.equal(
      inferSchema(profileOf(['x'], common), { maxCategories: 2 }).columns[0]!.categories,
      undefined,
    );
  });

  test('patternOf: shared shapes only', () => {
    assert.equal(patternOf(['A11', 'A12', 'A143']), '[A-Z][0-9]{2,}');
    assert.equal(patternOf(['2011/x', '2012/yy']), '[0-9]{4}\\/[a-z]+');
    assert.equal(patternOf(['ab', 'Cd']), null);
    assert.equal(patternOf(['Private', 'Self']), null, 'letters alone say nothing');
    assert.equal(patternOf(['A1', 5]), null);
    for (const p of [patternOf(['a.b-1', 'c.d-22'])!, patternOf(['(x)', '(y)'])!]) {
      assert.doesNotThrow(() => parseSchema(schemaOf([{ name: 'x', type: 'text', pattern: p }])), p);
    }
  });
});

describe('conservative inference on the repository datasets', () => {
  function flaggedRows(
    schema: Schema,
    columns: string[],
    rows: Cell[][],
  ): { rows: Set<number>; report: ValidationReport } {
    const report = check(schema, columns, rows, { batchRows: 4096 });
    return { rows: new Set(report.failures.flatMap((f) => (f.row === null ? [] : [f.row]))), report };
  }

  test('every repository dataset passes the schema inferred from it', async () => {
    for (const file of [
      'datasets/adult/adult.csv',
      'datasets/bike_sharing/hour.csv',
      'datasets/bike_sharing/day.csv',
      'datasets/german_credit/german.csv',
    ]) {
      const path = join(REPO_ROOT, file);
      const schema = parseSchema(JSON.parse(JSON.stringify(inferSchema(await profileTable(path)))));
      const report = await validateTable(path, schema);
      assert.equal(report.success, true, file);
      assert.deepEqual(report.failures, [], file);
      assert.ok(report.rules.length > schema.schema.columns.length, `${file}: ${report.rules.length} rules`);
    }
  });

  test('Adult: a schema inferred on the train split flags under 1% of the test split', async () => {
    const { columns, rows } = await readAll(join(REPO_ROOT, 'datasets/adult/adult.csv'));
    const split = columns.indexOf('split');
    const keep = columns.filter((_, i) => i !== split);
    const part = (name: string) =>
      rows.filter((r) => r[split] === name).map((r) => r.filter((_, i) => i !== split));
    const train = part('train');
    const testRows = part('test');
    assert.deepEqual([train.length, testRows.length], [32561, 16281]);
    const schema = inferSchema(profileOf(keep, train), { labels: ['income'] });
    const income = schema.columns.find((c) => c.name === 'income')!;
    assert.deepEqual(income.environments, ['training']);
    assert.equal(schema.columns.find((c) => c.name === 'age')!.type, 'integer');
    assert.ok(schema.columns.find((c) => c.name === 'workclass')!.categories!.includes('Private'));
    // The schema round-trips through JSON as a file would.
    const parsed = JSON.parse(JSON.stringify(schema)) as Schema;
    assert.equal(
      flaggedRows(parsed, keep, train).report.success,
      true,
      'the train split passes its own schema',
    );
    const { rows: flagged, report } = flaggedRows(parsed, keep, testRows);
    assert.equal(report.rows_checked, 16281);
    assert.ok(
      flagged.size / testRows.length < 0.01,
      `${flagged.size} of ${testRows.length} test rows flagged`,
    );
    // The test split's income labels carry a trailing period in the original UCI file; this copy
    // is normalised, so the label's categories hold.
    assert.ok(report.rules.find((r) => r.column === 'income' && r.rule === 'categories')!.success);
    // At serving the label must be absent, and rows without it pass the same way.
    const incomeAt = keep.indexOf('income');
    const serving = check(
      parsed,
      keep.filter((c) => c !== 'income'),
      testRows.map((r) => r.filter((_, i) => i !== incomeAt)),
      { environment: 'serving', batchRows: 4096 },
    );
    const features = new Set(
      report.failures.filter((f) => f.column !== 'income' && f.row !== null).map((f) => f.row),
    );
    assert.deepEqual(new Set(serving.failures.map((f) => f.row)), features);
  });

  test('bike sharing (hourly): interleaved halves flag under 1%; time halves flag exactly the real shift', async () => {
    const { columns, rows } = await readAll(join(REPO_ROOT, 'datasets/bike_sharing/hour.csv'));
    assert.equal(rows.length, 17379);
    const even = rows.filter((_, i) => i % 2 === 0);
    const odd = rows.filter((_, i) => i % 2 === 1);
    const interleaved = flaggedRows(inferSchema(profileOf(columns, even), { labels: ['cnt'] }), columns, odd);
    assert.ok(
      interleaved.rows.size / odd.length < 0.01,
      `${interleaved.rows.size} of ${odd.length} rows flagged`,
    );

    // Split by time, the second half is a different population, and the schema says so: `instant`
    // (the row number) lies past the first half's range by construction (1..8689, widened by 5% of
    // the span, 434.4, to 0..9124: instants 9125..17379 fail, 8255 rows); ridership grew in the
    // second year, so casual, registered and cnt exceed the first year's widened maxima. `dteday`
    // has no maximum (new data is later), and the two hours of summer 2012 hotter than any of 2011
    // (normalised temp 0.98 and 1) are within the widened 0..1.007 (0.02..0.96 ± 0.047). Every
    // other column stays within the first half's schema.
    const half = Math.floor(rows.length / 2);
    const first = inferSchema(profileOf(columns, rows.slice(0, half)), { labels: ['cnt'] });
    const rangeOf = (name: string) => first.columns.find((c) => c.name === name)!.range;
    assert.deepEqual(rangeOf('instant'), { min: 0, max: 9124 });
    assert.deepEqual(rangeOf('dteday'), { min: '2011-01-01T00:00:00.000Z' });
    assert.deepEqual(rangeOf('temp'), { min: 0, max: 1.007 });
    const byTime = flaggedRows(first, columns, rows.slice(half));
    const failed = byTime.report.rules.filter((r) => !r.success).map((r) => `${r.column} ${r.rule}`);
    assert.deepEqual(failed, ['instant range', 'casual range', 'registered range', 'cnt range']);
    const instant = byTime.report.rules.find((r) => r.column === 'instant' && r.rule === 'range')!;
    assert.deepEqual([instant.failed, instant.checked], [17379 - 9124, 8690]);
    const ridership = byTime.report.rules.find((r) => r.column === 'cnt' && r.rule === 'range')!;
    assert.ok(ridership.failed / ridership.checked > 0.03, 'growth flags several percent of the hours');
  });

  /** Rows of `test` flagged by the schema inferred from `train`, with and without the range margin. */
  function flaggedShare(columns: string[], train: Cell[][], testRows: Cell[][], labels: string[]) {
    const share = (rangeMargin?: number) => {
      const schema = inferSchema(profileOf(columns, train), { labels, rangeMargin });
      const parsed = JSON.parse(JSON.stringify(schema)) as Schema;
      assert.equal(flaggedRows(parsed, columns, train).report.success, true, 'train passes its own schema');
      const { rows, report } = flaggedRows(parsed, columns, testRows);
      assert.equal(report.rows_checked, testRows.length);
      return rows.size / testRows.length;
    };
    return { widened: share(), observed: share(0) };
  }

  test('German credit: interleaved halves flag 0.4% (2 of 500; observed bounds alone 1.8%)', async () => {
    const { columns, rows } = await readAll(join(REPO_ROOT, 'datasets/german_credit/german.csv'));
    assert.equal(rows.length, 1000);
    const even = rows.filter((_, i) => i % 2 === 0);
    const odd = rows.filter((_, i) => i % 2 === 1);
    const { widened, observed } = flaggedShare(columns, even, odd, ['class']);
    assert.equal(widened, 2 / 500, 'duration 72 months and credit amount 18424, past the widened maxima');
    assert.ok(widened < 0.01);
    assert.equal(observed, 9 / 500, 'the observed bounds alone miss the target');
  });

  test('German credit: first and second halves flag 0.4% (2 of 500; observed bounds alone 0.6%)', async () => {
    const { columns, rows } = await readAll(join(REPO_ROOT, 'datasets/german_credit/german.csv'));
    const { widened, observed } = flaggedShare(columns, rows.slice(0, 500), rows.slice(500), ['class']);
    assert.equal(widened, 2 / 500);
    assert.ok(widened < 0.01);
    assert.equal(observed, 3 / 500);
  });

  test('bike sharing (daily): interleaved halves flag 0.55% (2 of 365; observed bounds alone 3.0%)', async () => {
    const { columns, rows } = await readAll(join(REPO_ROOT, 'datasets/bike_sharing/day.csv'));
    assert.equal(rows.length, 731);
    const even = rows.filter((_, i) => i % 2 === 0);
    const odd = rows.filter((_, i) => i % 2 === 1);
    const { widened, observed } = flaggedShare(columns, even, odd, ['cnt']);
    assert.equal(widened, 2 / 365);
    assert.ok(widened < 0.01);
    assert.equal(observed, 11 / 365, 'the observed bounds alone miss the target');
  });
});
