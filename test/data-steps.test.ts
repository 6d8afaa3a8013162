/** Cleaning steps: spec checks, each step's fit and transform, pipelines, the fitted format, batch = records. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type Cell,
  csvField,
  FittedSteps,
  fitSteps,
  parseStepsSpec,
  type RowBatch,
  readTable,
  type StepValue,
  writeCsv,
} from '../src/data/index.js';
import { SlipwayError } from '../src/errors/index.js';
import { REPO_ROOT } from './helpers.js';

const ADULT = join(REPO_ROOT, 'datasets/adult/adult.csv');

/** A table as a re-openable source, in batches of `size` rows (several batches exercise streaming). */
function table(columns: string[], rows: Cell[][], size = 2) {
  return async function* (): AsyncGenerator<RowBatch> {
    for (let i = 0; i < rows.length; i += size) {
      yield { columns, rows: rows.slice(i, i + size).map((r) => [...r]), firstRow: i + 1 };
    }
  };
}

/** One column's values after fitting `steps` on `values` and transforming them back (batch path). */
async function run(steps: unknown[], values: Cell[], column = 'x'): Promise<StepValue[]> {
  const fitted = await fitSteps(
    { steps },
    table(
      [column],
      values.map((v) => [v]),
    ),
  );
  const out: StepValue[] = [];
  for await (const b of fitted.transformTable(
    table(
      [column],
      values.map((v) => [v]),
    )(),
  )) {
    const i = b.columns.indexOf(column);
    for (const r of b.rows) out.push(r[i] as StepValue);
  }
  return out;
}

async function rejects(p: Promise<unknown> | (() => unknown), pattern: RegExp): Promise<void> {
  await assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (err: unknown) => {
      assert.ok(err instanceof SlipwayError, `expected a SlipwayError, got ${err}`);
      assert.equal(err.code, 'SLIPWAY_ERR_BAD_REQUEST');
      assert.match(err.message, pattern);
      return true;
    },
  );
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b));

describe('steps spec', () => {
  const cases: [unknown, RegExp][] = [
    [
      {
        steps: [
          { step: 'trim', columns: ['a'] },
          { step: 'impute', columns: ['a'], strategy: 'avg' },
        ],
      },
      /^steps\[1\]\.strategy must be one of mean, median, most_frequent, constant \(got "avg"\)$/,
    ],
    [
      { steps: [{ step: 'scale', columns: ['a'] }] },
      /^steps\[0\]\.step must be one of impute, clip, standardize/,
    ],
    [
      { steps: [{ step: 'standardize', columns: ['a'], with_means: false }] },
      /^steps\[0\]\.with_means is not a parameter of standardize \(its parameters: columns, with_mean, with_std\)$/,
    ],
    [{ steps: [{ step: 'standardize', columns: [] }] }, /^steps\[0\]\.columns must be a non-empty array/],
    [
      { steps: [{ step: 'standardize', columns: ['a', 'a'] }] },
      /^steps\[0\]\.columns\[1\]: column 'a' is listed twice$/,
    ],
    [
      { steps: [{ step: 'standardize', columns: ['a', 3] }] },
      /^steps\[0\]\.columns\[1\] must be a non-empty string$/,
    ],
    [
      { steps: [{ step: 'impute', columns: ['a'], strategy: 'constant' }] },
      /^steps\[0\]\.fill_value must be/,
    ],
    [
      { steps: [{ step: 'impute', columns: ['a'], strategy: 'mean', fill_value: 1 }] },
      /^steps\[0\]\.fill_value is only for strategy constant$/,
    ],
    [{ steps: [{ step: 'clip', columns: ['a'] }] }, /^steps\[0\] needs a lower bound/],
    [
      { steps: [{ step: 'clip', columns: ['a'], min: 3, max: 1 }] },
      /^steps\[0\]\.min must be ≤ steps\[0\]\.max$/,
    ],
    [
      { steps: [{ step: 'clip', columns: ['a'], min: 0, lower_quantile: 0.1 }] },
      /give min or lower_quantile, not both/,
    ],
    [
      { steps: [{ step: 'clip', columns: ['a'], upper_quantile: 1.5 }] },
      /^steps\[0\]\.upper_quantile must be between 0 and 1$/,
    ],
    [
      { steps: [{ step: 'min_max_scale', columns: ['a'], feature_range: [1, 1] }] },
      /^steps\[0\]\.feature_range must be \[min, max\]/,
    ],
    [
      { steps: [{ step: 'log', columns: ['a'], function: 'log10' }] },
      /^steps\[0\]\.function must be one of log1p, log/,
    ],
    [
      { steps: [{ step: 'one_hot', columns: ['a'], categories: { b: ['x'] } }] },
      /^steps\[0\]\.categories\.b: 'b' is not one of steps\[0\]\.columns$/,
    ],
    [
      { steps: [{ step: 'ordinal', columns: ['a'], categories: { a: ['x', 'x'] } }] },
      /^steps\[0\]\.categories\.a\[1\]: "x" is listed twice$/,
    ],
    [
      { steps: [{ step: 'ordinal', columns: ['a'], unknown_value: 'none' }] },
      /^steps\[0\]\.unknown_value must be a finite number or null$/,
    ],
    [
      { steps: [{ step: 'coerce', columns: ['a'], to: 'int' }] },
      /^steps\[0\]\.to must be one of integer, float, boolean, string, datetime/,
    ],
    [{ steps: [], remainder: 'keep' }, /^remainder must be one of passthrough, drop/],
    [{ steps: {} }, /^steps must be an array/],
    [{ steps: [], extra: 1 }, /^extra is not a field of a steps spec/],
    [[], /must be an object/],
    [{ steps: [null] }, /^steps\[0\] must be an object$/],
  ];
  for (const [spec, pattern] of cases) {
    test(`rejects ${JSON.stringify(spec)}`, () => rejects(() => parseStepsSpec(spec), pattern));
  }

  test('fills defaults', () => {
    const s = parseStepsSpec({
      steps: [
        { step: 'standardize', columns: ['a'] },
        { step: 'min_max_scale', columns: ['a'] },
        { step: 'log', columns: ['a'] },
        { step: 'one_hot', columns: ['b'] },
        { step: 'ordinal', columns: ['b'] },
        { step: 'coerce', columns: ['a'], to: 'float' },
        { step: 'drop_duplicates' },
      ],
    });
    assert.equal(s.remainder, 'passthrough');
    assert.deepEqual(s.steps, [
      { step: 'standardize', columns: ['a'], with_mean: true, with_std: true },
      { step: 'min_max_scale', columns: ['a'], feature_range: [0, 1], clip: false },
      { step: 'log', columns: ['a'], function: 'log1p', invalid: 'error' },
      { step: 'one_hot', columns: ['b'], separator: '=' },
      { step: 'ordinal', columns: ['b'], unknown_value: -1, missing_value: null },
      { step: 'coerce', columns: ['a'], to: 'float', errors: 'error' },
      { step: 'drop_duplicates' },
    ]);
  });

  test('a column no table has is named at fit', () =>
    rejects(
      fitSteps(
        {
          steps: [
            { step: 'trim', columns: ['b'] },
            { step: 'standardize', columns: ['a', 'c'] },
          ],
        },
        table(['a', 'b'], [[1, 'x']]),
      ),
      /^steps\[1\]\.columns: 'c' is not a column here \(columns: a, b\)$/,
    ));
});

describe('impute', () => {
  test('mean, median and most frequent learn from the values present; constant fills its value', async () => {
    assert.deepEqual(
      await run([{ step: 'impute', columns: ['x'], strategy: 'mean' }], [1, null, '2', 'NA', 6]),
      [1, 3, 2, 3, 6],
    );
    assert.deepEqual(
      await run([{ step: 'impute', columns: ['x'], strategy: 'median' }], [1, '', 2, 10, 4]),
      [1, 3, 2, 10, 4],
    );
    // Ties go to the smallest value, as scikit-learn's SimpleImputer.
    assert.deepEqual(
      await run(
        [{ step: 'impute', columns: ['x'], strategy: 'most_frequent' }],
        ['b', 'a', null, 'b', 'a', 'c'],
      ),
      ['b', 'a', 'a', 'b', 'a', 'c'],
    );
    assert.deepEqual(
      await run(
        [{ step: 'impute', columns: ['x'], strategy: 'constant', fill_value: 'missing' }],
        ['b', null, 'nan'],
      ),
      ['b', 'missing', 'missing'],
    );
  });

  test("a median is numpy's: the mean of the two middle values", async () => {
    const a = 4.280020856511935;
    const b = 64.56031144208907;
    // Interpolating b - (b - a) / 2 would give 34.4201661493005.
    const out = await run([{ step: 'impute', columns: ['x'], strategy: 'median' }], [b, null, 100, a, -1]);
    assert.equal(out[1], (a + b) / 2);
    assert.equal(out[1], 34.420166149300506);
  });

  test('the learned value and its count are stored', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'impute', columns: ['x'], strategy: 'median' }] },
      table(['x'], [[3], [null], [1], [2]]),
    );
    assert.deepEqual((f.toJSON().steps[0] as unknown as { fitted: unknown }).fitted, {
      x: { value: 2, n: 3, exact: true },
    });
  });

  test('an all-missing column cannot be learned from, but a constant fills it', async () => {
    await rejects(
      run([{ step: 'impute', columns: ['x'], strategy: 'mean' }], [null, '', 'NA']),
      /^column 'x' has no values for steps\[0\] impute to learn from \(every cell is missing\)$/,
    );
    await rejects(
      run([{ step: 'impute', columns: ['x'], strategy: 'most_frequent' }], [null, null]),
      /column 'x' has no values for steps\[0\] impute/,
    );
    assert.deepEqual(
      await run([{ step: 'impute', columns: ['x'], strategy: 'constant', fill_value: 0 }], [null, 'NA']),
      [0, 0],
    );
  });

  test('a mean of text is an error naming the row and column', () =>
    rejects(
      run([{ step: 'impute', columns: ['x'], strategy: 'mean' }], [1, 2, 'abc']),
      /^row 3, column 'x': "abc" is not a number \(steps\[0\] impute\)$/,
    ));
});

describe('clip', () => {
  test('fixed bounds, and bounds fitted as quantiles', async () => {
    assert.deepEqual(await run([{ step: 'clip', columns: ['x'], min: 0, max: 3 }], [-1, 2, 5, null]), [
      0,
      2,
      3,
      null,
    ]);
    assert.deepEqual(await run([{ step: 'clip', columns: ['x'], max: 3 }], [-1, 5]), [-1, 3]);
    // pandas: Series([1,2,3,4,5]).quantile(0.25) = 2, .quantile(0.9) = 4.6
    assert.deepEqual(
      await run(
        [{ step: 'clip', columns: ['x'], lower_quantile: 0.25, upper_quantile: 0.9 }],
        [1, 2, 3, 4, 5],
      ),
      [2, 2, 3, 4, 4.6],
    );
  });
});

describe('standardize', () => {
  test('z-score with the population standard deviation (ddof 0), missing stays missing', async () => {
    const out = await run([{ step: 'standardize', columns: ['x'] }], [1, 2, null, 3, 4]);
    const scale = Math.sqrt(1.25);
    assert.deepEqual(out, [(1 - 2.5) / scale, (2 - 2.5) / scale, null, (3 - 2.5) / scale, (4 - 2.5) / scale]);
  });

  test('a constant column keeps scale 1, so it becomes 0', async () => {
    assert.deepEqual(await run([{ step: 'standardize', columns: ['x'] }], [7, 7, 7]), [0, 0, 0]);
    const f = await fitSteps(
      { steps: [{ step: 'standardize', columns: ['x'] }] },
      table(['x'], [[0.1], [0.1], [0.1]]),
    );
    assert.equal((f.toJSON().steps[0] as unknown as { fitted: { x: { scale: number } } }).fitted.x.scale, 1);
  });

  test('with_mean and with_std', async () => {
    const scale = Math.sqrt(1.25);
    assert.deepEqual(await run([{ step: 'standardize', columns: ['x'], with_mean: false }], [1, 4, 2, 3]), [
      1 / scale,
      4 / scale,
      2 / scale,
      3 / scale,
    ]);
    assert.deepEqual(
      await run([{ step: 'standardize', columns: ['x'], with_std: false }], [1, 4, 2, 3]),
      [-1.5, 1.5, -0.5, 0.5],
    );
  });

  test('booleans are 1 and 0; infinities cannot be learned from', async () => {
    assert.deepEqual(
      await run([{ step: 'standardize', columns: ['x'] }], [true, false, 'true', 'False']),
      [1, -1, 1, -1],
    );
    await rejects(
      run([{ step: 'standardize', columns: ['x'] }], [1, 'inf', 2]),
      /^column 'x' holds infinite values, which steps\[0\] standardize cannot learn from/,
    );
  });
});

describe('min_max_scale', () => {
  test('to feature_range as x·scale + min; values beyond the fitted range go beyond it unless clipped', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'min_max_scale', columns: ['x'], feature_range: [-1, 1] }] },
      table(['x'], [[0], [5], [10]]),
    );
    const out = f.transformRecords([{ x: 0 }, { x: 5 }, { x: 10 }, { x: 20 }, { x: null }]).map((r) => r.x);
    assert.deepEqual(out, [-1, 0, 1, 3, null]);
    const clipped = await fitSteps(
      { steps: [{ step: 'min_max_scale', columns: ['x'], clip: true }] },
      table(['x'], [[0], [5], [10]]),
    );
    assert.deepEqual(
      clipped.transformRecords([{ x: 20 }, { x: -3 }]).map((r) => r.x),
      [1, 0],
    );
  });

  test('a constant column scales by 1 and becomes the range minimum', async () => {
    assert.deepEqual(await run([{ step: 'min_max_scale', columns: ['x'] }], [4, 4]), [0, 0]);
    assert.deepEqual(
      await run([{ step: 'min_max_scale', columns: ['x'], feature_range: [2, 3] }], [4, 4]),
      [2, 2],
    );
  });
});

describe('log', () => {
  test('log1p (default) and log', async () => {
    assert.deepEqual(await run([{ step: 'log', columns: ['x'] }], [0, Math.E - 1, null, -0.5]), [
      0,
      Math.log1p(Math.E - 1),
      null,
      Math.log1p(-0.5),
    ]);
    assert.deepEqual(await run([{ step: 'log', columns: ['x'], function: 'log' }], [1, 100]), [
      0,
      Math.log(100),
    ]);
  });

  test('values outside the domain are an error, or missing when asked', async () => {
    await rejects(
      run([{ step: 'log', columns: ['x'], function: 'log' }], [1, 0]),
      /^row 2, column 'x': 0 is outside log's domain \(x > 0\)/,
    );
    await rejects(
      run([{ step: 'log', columns: ['x'] }], [1, -1]),
      /^row 2, column 'x': -1 is outside log1p's domain \(x > -1\)/,
    );
    assert.deepEqual(
      await run([{ step: 'log', columns: ['x'], function: 'log', invalid: 'missing' }], [1, 0, -2]),
      [0, null, null],
    );
  });
});

describe('one_hot', () => {
  test('sorted categories as <column>=<value>; unknown and missing are all zeros', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'one_hot', columns: ['c'] }] },
      table(
        ['n', 'c'],
        [
          [1, 'b'],
          [2, 'a'],
          [3, null],
          [4, 'b'],
        ],
      ),
    );
    assert.deepEqual(f.outputColumns, ['n', 'c=a', 'c=b']);
    assert.deepEqual(f.transformRecords([{ n: 1, c: 'a' }, { n: 2, c: 'b' }, { n: 3, c: 'zzz' }, { n: 4 }]), [
      { n: 1, 'c=a': 1, 'c=b': 0 },
      { n: 2, 'c=a': 0, 'c=b': 1 },
      { n: 3, 'c=a': 0, 'c=b': 0 },
      { n: 4, 'c=a': 0, 'c=b': 0 },
    ]);
  });

  test('numbers are categories by value ("13" and 13 are one); separator and fixed categories', async () => {
    const f = await fitSteps(
      {
        steps: [{ step: 'one_hot', columns: ['n', 'c'], separator: '_', categories: { c: ['z', 'y'] } }],
        remainder: 'drop',
      },
      table(
        ['n', 'c'],
        [
          ['13', 'y'],
          ['9', 'y'],
          [' 13', 'x'],
        ],
      ),
    );
    assert.deepEqual(f.outputColumns, ['n_9', 'n_13', 'c_z', 'c_y']);
    assert.deepEqual(f.transformRecords([{ n: 13, c: 'y' }]), [{ n_9: 0, n_13: 1, c_z: 0, c_y: 1 }]);
  });

  test('a category written as text matches the number a cell reads as, and the other way round', async () => {
    const f = await fitSteps(
      {
        steps: [
          { step: 'one_hot', columns: ['n'], categories: { n: ['13', '9'] } },
          { step: 'coerce', columns: ['m'], to: 'string' },
          { step: 'ordinal', columns: ['m'], categories: { m: [2, 1] } },
        ],
      },
      table(['n', 'm'], [[13, 1]]),
    );
    assert.deepEqual(
      f.transformRecords([
        { n: 13, m: 1 },
        { n: '9', m: '2' },
        { n: 'x', m: 3 },
      ]),
      [
        { 'n=13': 1, 'n=9': 0, m: 1 },
        { 'n=13': 0, 'n=9': 1, m: 0 },
        { 'n=13': 0, 'n=9': 0, m: -1 },
      ],
    );
  });

  test('an output name that collides with a column is refused', () =>
    rejects(
      fitSteps({ steps: [{ step: 'one_hot', columns: ['c'] }] }, table(['c', 'c=a'], [['a', 1]])),
      /^steps\[0\]: output column 'c=a' would collide with another column/,
    ));
});

describe('ordinal', () => {
  test('codes in sorted order; unknown is -1 by default; missing stays missing', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'ordinal', columns: ['c'] }] },
      table(['c'], [['b'], ['a'], [null], ['c']]),
    );
    assert.deepEqual(
      f.transformRecords([{ c: 'a' }, { c: 'c' }, { c: 'new' }, { c: null }]).map((r) => r.c),
      [0, 2, -1, null],
    );
  });

  test('fixed categories keep their order; unknown_value and missing_value', async () => {
    const f = await fitSteps(
      {
        steps: [
          {
            step: 'ordinal',
            columns: ['c'],
            categories: { c: ['low', 'mid', 'high'] },
            unknown_value: null,
            missing_value: -2,
          },
        ],
      },
      table(['c'], [['mid']]),
    );
    assert.deepEqual(
      f.transformRecords([{ c: 'high' }, { c: 'low' }, { c: 'huge' }, {}]).map((r) => r.c),
      [2, 0, null, -2],
    );
  });
});

describe('coerce', () => {
  const coerce = (to: string, values: Cell[], errors = 'missing') =>
    run([{ step: 'coerce', columns: ['x'], to, errors }], values);

  test('to each type; cells that do not convert become missing with errors: missing', async () => {
    assert.deepEqual(await coerce('integer', ['3', 3.5, true, 'x', null]), [3, null, 1, null, null]);
    assert.deepEqual(await coerce('float', ['3.25', false, 'x']), [3.25, 0, null]);
    assert.deepEqual(await coerce('boolean', ['yes', 'N', 0, 1, 2, 'TRUE', 'maybe']), [
      true,
      false,
      false,
      true,
      null,
      true,
      null,
    ]);
    assert.deepEqual(await coerce('string', [3, 0.1, true, 'a']), ['3', '0.1', 'true', 'a']);
    assert.deepEqual(await coerce('datetime', ['2011-01-31', '2011-01-31 08:00:00+02:00', '2011-02-30', 5]), [
      '2011-01-31T00:00:00.000Z',
      '2011-01-31T06:00:00.000Z',
      null,
      null,
    ]);
  });

  test('an error by default, naming the row, column and step', () =>
    rejects(
      run([{ step: 'coerce', columns: ['x'], to: 'integer' }], [1, 2, 2.5]),
      /^row 3, column 'x': 2\.5 is not an integer \(steps\[0\] coerce; set "errors": "missing"/,
    ));
});

describe('trim and lowercase', () => {
  test('change text only; an empty result is missing', async () => {
    assert.deepEqual(await run([{ step: 'trim', columns: ['x'] }], ['  a b ', '   ', ' 39', 'c']), [
      'a b',
      null,
      39,
      'c',
    ]);
    assert.deepEqual(
      await run(
        [
          { step: 'trim', columns: ['x'] },
          { step: 'lowercase', columns: ['x'] },
        ],
        [' Private ', 'ÄB', 5, null],
      ),
      ['private', 'äb', 5, null],
    );
  });

  test('category counts see the cleaned text', async () => {
    const f = await fitSteps(
      {
        steps: [
          { step: 'trim', columns: ['c'] },
          { step: 'lowercase', columns: ['c'] },
          { step: 'one_hot', columns: ['c'] },
        ],
      },
      table(['c'], [[' A'], ['a '], ['B']]),
    );
    assert.deepEqual(f.outputColumns, ['c=a', 'c=b']);
  });
});

describe('drop_duplicates', () => {
  const rows: Cell[][] = [
    [1, 'a'],
    ['1', 'a'],
    [1, 'b'],
    [1, 'a'],
    [2, null],
    [2, 'NA'],
  ];

  test('drops later copies across batches in a table; fitting sees each row once', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'drop_duplicates' }, { step: 'standardize', columns: ['n'], with_std: false }] },
      table(['n', 'c'], rows),
    );
    // Distinct rows: (1,a) (1,b) (2,missing): mean of n is 4/3.
    assert.ok(
      close((f.toJSON().steps[1] as unknown as { fitted: { n: { mean: number } } }).fitted.n.mean, 4 / 3),
    );
    const kept: Cell[][] = [];
    for await (const b of f.transformTable(table(['n', 'c'], rows, 1)())) kept.push(...b.rows);
    assert.deepEqual(
      kept.map((r) => r[1]),
      ['a', 'b', null],
    );
  });

  test('values that would spell the same text stay different rows; it names no output column', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'drop_duplicates' }, { step: 'trim', columns: ['a'] }], remainder: 'drop' },
      table(['a', 'b'], [['x'], ['y']]),
    );
    assert.deepEqual(f.outputColumns, ['a']);
    assert.deepEqual(f.inputColumns, ['a']);
    const out = f.transformBatch({
      columns: ['a', 'b'],
      rows: [
        ['a\u0001sb', 'c'],
        ['a', 'b\u0001sc'],
        ['s1:x', 'y'],
        ['x', 's1:y'],
        ['s1:x', 'y'],
      ],
      firstRow: 1,
    });
    assert.deepEqual(out.rows, [['a\u0001sb'], ['a'], ['s1:x'], ['x']]);
  });

  test('a subset of columns decides; the records path keeps every record', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'drop_duplicates', columns: ['n'] }] },
      table(['n', 'c'], rows),
    );
    assert.equal(f.transformBatch({ columns: ['n', 'c'], rows, firstRow: 1 }).rows.length, 2);
    assert.equal(f.transformRecords(rows.map(([n, c]) => ({ n, c }))).length, rows.length);
  });
});

describe('fitting as a pipeline', () => {
  test('each step learns from the output of the steps before it', async () => {
    const f = await fitSteps(
      {
        steps: [
          { step: 'impute', columns: ['x'], strategy: 'constant', fill_value: 10 },
          { step: 'standardize', columns: ['x'] },
        ],
      },
      table(['x'], [[0], [null], [null], [10]]),
    );
    const p = (
      f.toJSON().steps[1] as unknown as { fitted: { x: { mean: number; scale: number; n: number } } }
    ).fitted.x;
    assert.equal(p.n, 4);
    assert.ok(close(p.mean, 7.5));
    assert.ok(close(p.scale, Math.sqrt(18.75)));
  });

  test('a step reading a column an earlier learning step changes takes another pass', async () => {
    let opened = 0;
    const source = table(
      ['c', 'n'],
      [
        ['a', 1],
        ['b', 2],
        ['a', 3],
        [null, null],
      ],
    );
    const spec = {
      steps: [
        { step: 'impute', columns: ['n'], strategy: 'mean' },
        { step: 'one_hot', columns: ['c'] },
        { step: 'standardize', columns: ['n', 'c=a'] },
      ],
    };
    const f = await fitSteps(spec, () => {
      opened++;
      return source();
    });
    assert.equal(opened, 2);
    const fitted = (f.toJSON().steps[2] as unknown as { fitted: Record<string, { mean: number }> }).fitted;
    assert.ok(close(fitted.n.mean, 2));
    assert.ok(close(fitted['c=a'].mean, 0.5));
    await rejects(
      fitSteps(spec, source()),
      /need more than one pass over the data: pass a function that re-opens/,
    );
  });

  test('a step after a one-hot may name its outputs; a name that never appears is an error', () =>
    rejects(
      fitSteps(
        {
          steps: [
            { step: 'one_hot', columns: ['c'] },
            { step: 'standardize', columns: ['c=zz'] },
          ],
        },
        table(['c'], [['a']]),
      ),
      /^steps\[1\]\.columns: 'c=zz' is not a column here \(columns: c=a\)$/,
    ));

  test('past 50 000 distinct values a median comes from the sketch, flagged inexact; moments stay exact', async () => {
    const n = 120_000;
    // A permutation of 0..n-1 (7919 is prime to n), so the exact median is (n - 1) / 2.
    const source = async function* (): AsyncGenerator<RowBatch> {
      for (let start = 0; start < n; start += 8192) {
        const rows: Cell[][] = [];
        for (let i = start; i < Math.min(n, start + 8192); i++) rows.push([(i * 7919) % n, null]);
        yield { columns: ['x', 'y'], rows, firstRow: start + 1 };
      }
    };
    const f = await fitSteps(
      {
        steps: [
          { step: 'impute', columns: ['x'], strategy: 'median' },
          { step: 'standardize', columns: ['x'] },
          { step: 'impute', columns: ['y'], strategy: 'constant', fill_value: 0 },
        ],
      },
      source,
    );
    const json = f.toJSON().steps as unknown as {
      fitted: Record<string, Record<string, number | boolean>>;
    }[];
    const median = json[0].fitted.x;
    assert.equal(median.exact, false);
    assert.ok(Math.abs((median.value as number) - (n - 1) / 2) < 0.0165 * n, String(median.value));
    assert.ok(close(json[1].fitted.x.mean as number, (n - 1) / 2));
    assert.ok(close(json[1].fitted.x.scale as number, Math.sqrt((n * n - 1) / 12)));
  });

  test('remainder drop keeps only the columns steps name', async () => {
    const f = await fitSteps(
      { steps: [{ step: 'standardize', columns: ['b'] }], remainder: 'drop' },
      table(
        ['a', 'b', 'label'],
        [
          [1, 2, 'x'],
          [3, 4, 'y'],
        ],
      ),
    );
    assert.deepEqual(f.outputColumns, ['b']);
    assert.deepEqual(f.inputColumns, ['b']);
    assert.deepEqual(f.transformRecords([{ b: 3, label: 'ignored' }]), [{ b: 0 }]);
  });
});

describe('fitted steps', () => {
  const spec = {
    steps: [
      { step: 'impute', columns: ['n'], strategy: 'median' },
      { step: 'clip', columns: ['n'], upper_quantile: 0.75 },
      { step: 'one_hot', columns: ['c'] },
      { step: 'ordinal', columns: ['d'] },
      { step: 'min_max_scale', columns: ['n'] },
    ],
  };
  const rows: Cell[][] = [
    [1, 'a', 'x'],
    [null, 'b', 'y'],
    [5, 'a', 'x'],
    [9, null, 'z'],
  ];

  test('serialize to JSON and load back to the same transform', async () => {
    const f = await fitSteps(spec, table(['n', 'c', 'd'], rows), { fittedOn: 'test@1' });
    const json = JSON.parse(JSON.stringify(f));
    assert.equal(json.format, 'slipway.steps');
    assert.equal(json.version, 1);
    assert.equal(json.fitted_on, 'test@1');
    assert.equal(json.rows, 4);
    assert.deepEqual(json.columns, ['n', 'c', 'd']);
    assert.deepEqual(json.output_columns, ['n', 'c=a', 'c=b', 'd']);
    assert.deepEqual(json.steps[3].fitted, { d: { categories: ['x', 'y', 'z'] } });
    const g = FittedSteps.fromJSON(json);
    assert.deepEqual(JSON.parse(JSON.stringify(g)), json);
    const records = [{ n: 3, c: 'b', d: 'y' }, { n: 100, c: 'q' }, {}];
    assert.deepEqual(g.transformRecords(records), f.transformRecords(records));
  });

  test('a malformed fitted file is refused, naming the field', async () => {
    const json = JSON.parse(JSON.stringify(await fitSteps(spec, table(['n', 'c', 'd'], rows))));
    const broken = structuredClone(json);
    broken.steps[4].fitted.n.scale = 'big';
    await rejects(
      () => FittedSteps.fromJSON(broken),
      /^steps\[4\]\.fitted\.n\.scale must be a finite number$/,
    );
    const unfitted = structuredClone(json);
    delete unfitted.steps[0].fitted;
    await rejects(
      () => FittedSteps.fromJSON(unfitted),
      /^steps\[0\]\.fitted must be an object .*: the step is not fitted$/,
    );
    const extra = structuredClone(json);
    extra.steps[4].fitted.c = extra.steps[4].fitted.n;
    await rejects(
      () => FittedSteps.fromJSON(extra),
      /^steps\[4\]\.fitted\.c: not a column this step learns$/,
    );
    const edited = structuredClone(json);
    edited.output_columns.pop();
    await rejects(() => FittedSteps.fromJSON(edited), /^output_columns does not match/);
    await rejects(() => FittedSteps.fromJSON(spec), /^not fitted steps: expected "format": "slipway.steps"/);
  });

  test('records: text and JSON forms of a value are the same; bad records are errors with their row', async () => {
    const f = await fitSteps(spec, table(['n', 'c', 'd'], rows));
    assert.deepEqual(
      f.transformRecords([{ n: '5', c: 'a', d: 'x' }]),
      f.transformRecords([{ n: 5, c: 'a', d: 'x' }]),
    );
    await rejects(() => f.transformRecords([{ n: 1 }, 'x']), /^row 2: a record must be an object/);
    await rejects(
      () => f.transformRecords([{ n: { v: 1 } }]),
      /^row 1, column 'n': an object is not a cell value$/,
    );
    const columnar = f.transformRecordsColumnar([
      { n: 5, c: 'a', d: 'x' },
      { n: 1, c: 'b', d: 'q' },
    ]);
    assert.deepEqual(columnar.columns, ['n', 'c=a', 'c=b', 'd']);
    assert.deepEqual(columnar.values, [
      [f.transformRecords([{ n: 5 }])[0].n, 0],
      [1, 0],
      [0, 1],
      [0, -1],
    ]);
  });

  test('batch errors name the row of the file', async () => {
    const f = await fitSteps({ steps: [{ step: 'standardize', columns: ['n'] }] }, table(['n'], [[1], [2]]));
    await rejects(async () => {
      for await (const _ of f.transformTable(table(['n'], [[1], [2], [3], ['x']], 2)()));
    }, /^row 4, column 'n': "x" is not a number \(steps\[0\] standardize\)$/);
  });
});

describe('Adult: batch and records paths', () => {
  test('produce bit-identical values on every row of datasets/adult/adult.csv', async () => {
    const spec = {
      steps: [
        { step: 'trim', columns: ['workclass', 'occupation', 'native_country'] },
        { step: 'impute', columns: ['workclass', 'occupation', 'native_country'], strategy: 'most_frequent' },
        { step: 'impute', columns: ['age'], strategy: 'median' },
        { step: 'clip', columns: ['hours_per_week'], lower_quantile: 0.01, upper_quantile: 0.99 },
        { step: 'log', columns: ['capital_gain', 'capital_loss'] },
        { step: 'min_max_scale', columns: ['capital_gain', 'capital_loss'] },
        { step: 'standardize', columns: ['age', 'fnlwgt', 'education_num', 'hours_per_week'] },
        { step: 'one_hot', columns: ['workclass', 'marital_status', 'race', 'sex'] },
        { step: 'ordinal', columns: ['education', 'occupation', 'native_country'] },
        { step: 'coerce', columns: ['income'], to: 'string' },
      ],
    };
    const fitted = await fitSteps(spec, () => readTable(ADULT), { fittedOn: 'adult.csv' });
    let rows = 0;
    let columns: readonly string[] = [];
    for await (const batch of readTable(ADULT, { batchRows: 5000 })) {
      const out = fitted.transformBatch(batch);
      columns = batch.columns;
      // What a serving client sends: JSON numbers for numbers, strings otherwise, absent when empty.
      const records = batch.rows.map((r) => {
        const rec: Record<string, unknown> = {};
        batch.columns.forEach((c, i) => {
          const cell = r[i];
          if (cell === null) return;
          rec[c] = /^-?\d+(\.\d+)?$/.test(cell as string) ? Number(cell) : cell;
        });
        return rec;
      });
      const served = fitted.transformRecords(records);
      assert.deepEqual(out.columns, fitted.outputColumns);
      for (let i = 0; i < out.rows.length; i++) {
        for (let j = 0; j < out.columns.length; j++) {
          const a = out.rows[i][j];
          const b = served[i][out.columns[j]];
          if (!Object.is(a, b))
            assert.fail(`row ${batch.firstRow + i}, ${out.columns[j]}: batch ${a}, records ${b}`);
        }
      }
      rows += out.rows.length;
    }
    assert.equal(rows, 48842);
    assert.equal(fitted.rows, 48842);
    assert.equal(columns.length, 16);
    assert.ok(fitted.outputColumns.includes('workclass=Private'));
    assert.ok(fitted.outputColumns.includes('sex=Male'));
  });
});

describe('CSV writer', () => {
  test('quotes per RFC 4180, prints shortest round-trip numbers, writes missing as empty', async () => {
    assert.equal(csvField('a,b'), '"a,b"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
    assert.equal(csvField('two\nlines'), '"two\nlines"');
    assert.equal(csvField(' padded'), '" padded"');
    assert.equal(csvField('a;b'), 'a;b');
    assert.equal(csvField('a;b', ';'), '"a;b"');
    assert.equal(csvField(null), '');
    assert.equal(csvField(Number.NaN), '');
    assert.equal(csvField(0.1 + 0.2), '0.30000000000000004');
    assert.equal(csvField(true), 'true');
    assert.equal(csvField(12345678901234567890n), '12345678901234567890');
    assert.equal(csvField(new Date(Date.UTC(2011, 0, 31))), '2011-01-31T00:00:00.000Z');
  });

  test('streams batches to a file that reads back to the same values', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-csv-'));
    try {
      const path = join(dir, 'out.csv');
      const numbers = Array.from(
        { length: 1000 },
        (_, i) => (i % 7 === 0 ? -1 : 1) * Math.random() * 10 ** ((i % 40) - 20),
      );
      const rows: Cell[][] = numbers.map((x, i) => [x, i % 5 === 0 ? null : `v,"${i}"`, i % 2 === 0]);
      const source = table(['x', 'text, quoted', 'flag'], rows, 300);
      const written = await writeCsv(path, source());
      assert.deepEqual(written, { rows: 1000, columns: ['x', 'text, quoted', 'flag'] });
      const back: Cell[][] = [];
      let header: readonly string[] = [];
      for await (const b of readTable(path)) {
        header = b.columns;
        back.push(...b.rows);
      }
      assert.deepEqual(header, ['x', 'text, quoted', 'flag']);
      assert.equal(back.length, 1000);
      back.forEach((r, i) => {
        assert.equal(Number(r[0]), numbers[i]);
        assert.equal(r[1], i % 5 === 0 ? null : `v,"${i}"`);
        assert.equal(r[2], i % 2 === 0 ? 'true' : 'false');
      });
      // A table without rows still gets its header.
      const empty = join(dir, 'empty.csv');
      await writeCsv(empty, table(['a'], [])(), { columns: ['a', 'b'] });
      assert.equal(await readFile(empty, 'utf8'), 'a,b\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a failing stream leaves no file behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-csv-'));
    try {
      const path = join(dir, 'out.csv');
      await writeFile(join(dir, 'keep.txt'), 'x');
      async function* failing(): AsyncGenerator<RowBatch> {
        yield { columns: ['a'], rows: [[1]], firstRow: 1 };
        throw new Error('reader failed');
      }
      await assert.rejects(writeCsv(path, failing()), /reader failed/);
      await assert.rejects(readFile(path), /ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
