/** Column profiles: statistics against hand-computed values, type inference, sketches, merging and the stored format. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sortedCounts } from '../src/data/profile/distribution.js';
import {
  type ColumnSummary,
  FrequentItems,
  HyperLogLog,
  KllSketch,
  MISSING_TOKENS,
  profileTable,
  TableProfile,
  type TableSummary,
} from '../src/data/profile/index.js';
import type { Cell, RowBatch } from '../src/data/table.js';

function batch(columns: string[], rows: Cell[][], firstRow = 1): RowBatch {
  return { columns, rows, firstRow };
}

/** One column profiled from its cells. */
function column(cells: Cell[], options = {}): ColumnSummary {
  return new TableProfile(options)
    .add(
      batch(
        ['x'],
        cells.map((c) => [c]),
      ),
    )
    .summary().columns[0];
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deep equality where numbers may differ by a relative 1e-12 (floating-point order of operations). */
function assertClose(actual: unknown, expected: unknown, path = '$', relative = 1e-12): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (Number.isNaN(expected)) {
      assert.ok(Number.isNaN(actual), path);
      return;
    }
    const tol = relative * Math.max(1, Math.abs(expected));
    assert.ok(Math.abs(actual - expected) <= tol, `${path}: ${actual} vs ${expected}`);
    return;
  }
  if (expected && typeof expected === 'object') {
    assert.equal(typeof actual, 'object', path);
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    assert.deepEqual(Object.keys(a).sort(), Object.keys(e).sort(), path);
    for (const k of Object.keys(e)) assertClose(a[k], e[k], `${path}.${k}`, relative);
    return;
  }
  assert.equal(actual, expected, path);
}

describe('column statistics', () => {
  test('numbers from CSV strings match hand-computed values', () => {
    const s = column(['1', '2', '3', '4', null, ''], { histogramBins: 4, topValues: 3 });
    assert.equal(s.type, 'integer');
    assert.equal(s.count, 4);
    assert.equal(s.missing, 2);
    assert.equal(s.distinct, 4);
    assert.equal(s.min, 1);
    assert.equal(s.max, 4);
    assert.equal(s.mean, 2.5);
    // Σ(x−2.5)² = 5: sample variance 5/3, population 5/4.
    assert.equal(s.std, Math.sqrt(5 / 3));
    assert.equal(s.stdPopulation, Math.sqrt(5 / 4));
    // Linear interpolation at (n−1)·q: q=.25 → 0.75 between 1 and 2; q=.01 → 0.03.
    // numpy's interpolation gives 3.8499999999999996 at .95, hence the tolerance.
    assertClose(s.quantiles, {
      '0.01': 1.03,
      '0.05': 1.15,
      '0.25': 1.75,
      '0.5': 2.5,
      '0.75': 3.25,
      '0.95': 3.85,
      '0.99': 3.97,
    });
    assert.equal(s.quantilesExact, true);
    assert.deepEqual(s.histogram, { edges: [1, 1.75, 2.5, 3.25, 4], counts: [1, 1, 1, 1], exact: true });
    assert.deepEqual(s.top, [
      { value: 1, count: 1 },
      { value: 2, count: 1 },
      { value: 3, count: 1 },
    ]);
    assert.equal(s.topExact, true);
  });

  test('floats: exponents, repeated values, top values by frequency', () => {
    const s = column(['1e-5', '0.5', '0.5', '-2.25', '.5', '3'], { histogramBins: 2 });
    assert.equal(s.type, 'float');
    assert.equal(s.count, 6);
    assert.equal(s.distinct, 4);
    assert.equal(s.min, -2.25);
    assert.equal(s.max, 3);
    const xs = [1e-5, 0.5, 0.5, -2.25, 0.5, 3];
    const mean = xs.reduce((a, b) => a + b) / 6;
    assert.ok(Math.abs((s.mean as number) - mean) < 1e-15);
    const ss = xs.reduce((a, x) => a + (x - mean) ** 2, 0);
    assert.ok(Math.abs((s.std as number) - Math.sqrt(ss / 5)) < 1e-15);
    // Sorted: −2.25, 1e−5, .5, .5, .5, 3; median = .5.
    assert.equal(s.quantiles?.['0.5'], 0.5);
    assert.deepEqual(s.top[0], { value: 0.5, count: 3 });
    // Edges −2.25, 0.375, 3; the last bin is closed.
    assert.deepEqual(s.histogram?.counts, [2, 4]);
  });

  test('a constant column has zero spread and one bin around the value', () => {
    const s = column([7, 7, 7], { histogramBins: 2 });
    assert.equal(s.std, 0);
    assert.deepEqual(s.histogram, { edges: [6.5, 7, 7.5], counts: [0, 3], exact: true });
    const one = column([7]);
    assert.ok(Number.isNaN(one.std as number), 'the sample std of one value is undefined, as in pandas');
    assert.equal(one.stdPopulation, 0);
  });

  test('strings: lengths and top values with ties broken by value', () => {
    const s = column(['b', 'a', 'b', 'ccc', null]);
    assert.equal(s.type, 'categorical');
    assert.deepEqual(s.length, { min: 1, max: 3, mean: 1.5 });
    assert.deepEqual(s.top, [
      { value: 'b', count: 2 },
      { value: 'a', count: 1 },
      { value: 'ccc', count: 1 },
    ]);
    assert.equal(s.mean, undefined);
  });
});

describe('type inference', () => {
  test('an empty table and an all-missing column are empty', () => {
    const none = new TableProfile().add(batch(['a'], [])).summary();
    assert.equal(none.rows, 0);
    assert.equal(none.columns[0].type, 'empty');
    assert.equal(none.columns[0].count, 0);
    const s = column([null, '', 'NA', 'NaN', 'null', Number.NaN]);
    assert.equal(s.type, 'empty');
    assert.equal(s.missing, 6);
    assert.equal(s.distinct, 0);
    assert.equal(s.min, undefined);
  });

  test("pandas' default missing tokens are missing, and only those", () => {
    const s = column([...MISSING_TOKENS]);
    assert.equal(s.missing, MISSING_TOKENS.size);
    assert.equal(s.type, 'empty');
    const near = column(['1.5', '-1', '-2.5e3', '#1', 'N', 'none', ' NA', 'NA ']);
    assert.equal(near.missing, 0);
    assert.deepEqual(near.typeCounts, {
      integer: 1,
      float: 2,
      infinite: 0,
      boolean: 0,
      datetime: 0,
      string: 5,
    });
  });

  test('numbers padded with blanks are numbers, as pandas reads them; other values keep their blanks', () => {
    const s = column([' 39', '40 ', '\t41\t']);
    assert.equal(s.type, 'integer');
    assert.equal(s.mean, 40);
    assert.equal(column([' 1.5', '2']).type, 'float');
    assert.deepEqual(
      column(['x ', ' x']).top.map((t) => t.value),
      [' x', 'x '],
    );
    assert.equal(column([' true', 'false']).type, 'categorical');
    assert.equal(column([' ', '  ']).type, 'categorical');
  });

  test('booleans are only true/false; yes/no stay categorical, 0/1 integer', () => {
    assert.equal(column(['true', 'False', 'TRUE', true]).type, 'boolean');
    assert.deepEqual(column(['true', 'False', 'TRUE', true]).top[0], { value: true, count: 3 });
    assert.equal(column(['yes', 'no', 'yes']).type, 'categorical');
    assert.equal(column(['0', '1', '1']).type, 'integer');
    assert.equal(column(['true', '1']).type, 'categorical');
  });

  test('integers beyond 2^53 keep exact bounds', () => {
    const s = column(['9007199254740993', '-123456789012345678901234567890', '5', 12n]);
    assert.equal(s.type, 'integer');
    assert.equal(s.max, '9007199254740993');
    assert.equal(s.min, '-123456789012345678901234567890');
    assert.equal(s.distinct, 4);
    // Moments of big integers are over their nearest doubles.
    const mean = (Number(-123456789012345678901234567890n) + Number(9007199254740993n) + 17) / 4;
    assertClose(s.mean, mean, '$', 1e-15);
    // 2^53 + 1 and 2^53 are different integers even though they are the same double.
    assert.equal(column(['9007199254740993', '9007199254740992']).distinct, 2);
  });

  test('infinities make a float column and stay out of moments; NaN is missing', () => {
    const s = column(['1', 'inf', '-Infinity', '2', 'nan', Number.POSITIVE_INFINITY]);
    assert.equal(s.type, 'float');
    assert.equal(s.count, 5);
    assert.equal(s.missing, 1);
    assert.equal(s.typeCounts.infinite, 3);
    assert.equal(s.mean, 1.5);
    assert.equal(s.max, 2);
  });

  test('ISO dates and date-times are datetimes, read as UTC when unzoned', () => {
    const s = column(['2011-01-01', '2011-01-03T12:00:00Z', '2011-01-02 00:00', '2011-01-02T01:00:00+01:00']);
    assert.equal(s.type, 'datetime');
    assert.equal(s.min, '2011-01-01T00:00:00.000Z');
    assert.equal(s.max, '2011-01-03T12:00:00.000Z');
    assert.equal(s.quantiles?.['0.5'], '2011-01-02T00:00:00.000Z');
    assert.equal(column([new Date('2020-05-01T00:00:00Z'), '2020-05-02']).type, 'datetime');
    assert.equal(column(['2011-02-30', '2011-01-01']).type, 'categorical', 'February 30th is not a date');
    assert.equal(column(['0050-03-01']).min, '0050-03-01T00:00:00.000Z');
    assert.equal(column(['2011-01-01T24:00']).type, 'categorical');
  });

  test('a mixed column degrades to a string column and shows the mix', () => {
    const s = column(['1', '2', 'x', '2.5', null]);
    assert.equal(s.type, 'categorical');
    assert.deepEqual(s.typeCounts, { integer: 2, float: 1, infinite: 0, boolean: 0, datetime: 0, string: 1 });
    assert.equal(s.mean, undefined);
    assert.equal(s.distinct, 4);
    assert.equal(column(['2011-01-01', '3']).type, 'categorical');
    assert.equal(column(['1', '2.5', '3']).type, 'float');
  });

  test('categorical versus text: distinct values, their ratio and length', () => {
    const few = Array.from({ length: 100 }, (_, i) => `c${i % 10}`);
    assert.equal(column(few).type, 'categorical');
    const unique = Array.from({ length: 100 }, (_, i) => `name ${i}`);
    assert.equal(column(unique).type, 'text', 'more than one distinct value per two values');
    assert.equal(column(unique.slice(0, 10)).type, 'categorical', 'under 20 values the ratio does not apply');
    const long = Array.from({ length: 100 }, (_, i) => `${'word '.repeat(12)}${i % 3}`);
    assert.equal(column(long).type, 'text', 'mean length over 50');
    const many = Array.from({ length: 5000 }, (_, i) => `c${i % 1001}`);
    assert.equal(column(many).type, 'text', 'over 1000 distinct values');
  });
});

/** Rows of a mixed table: a float, an integer with missing values, a categorical and a date. */
function syntheticRows(n: number, seed: number): Cell[][] {
  const r = random(seed);
  return Array.from({ length: n }, (_, i) => [
    String(((r() - 0.3) * 1000).toFixed(3)),
    r() < 0.1 ? null : String(Math.floor(r() * 50)),
    ['red', 'green', 'blue', 'amber'][Math.floor(r() * r() * 4)],
    `2020-01-${String(1 + (i % 28)).padStart(2, '0')}`,
  ]);
}
const SYNTHETIC = ['f', 'i', 'c', 'd'];

function profileOf(rows: Cell[][], chunks: number, options = {}): TableProfile[] {
  const size = Math.ceil(rows.length / chunks);
  return Array.from({ length: chunks }, (_, k) => {
    const p = new TableProfile(options);
    const part = rows.slice(k * size, (k + 1) * size);
    for (let i = 0; i < part.length; i += 100)
      p.add(batch(SYNTHETIC, part.slice(i, i + 100), k * size + i + 1));
    return p;
  });
}

describe('merging', () => {
  test('exact mode: merged chunks equal the profile of the concatenation for every statistic', () => {
    const rows = syntheticRows(3000, 1);
    const [whole] = profileOf(rows, 1);
    const parts = profileOf(rows, 7);
    const merged = parts.slice(1).reduce((a, b) => a.merge(b), parts[0]);
    assert.equal(merged.rows, 3000);
    const s = merged.summary();
    assert.equal(s.columns[0].quantilesExact, true);
    assertClose(s, whole.summary());
    // Merge order does not matter either.
    const reversed = profileOf(rows, 7).reverse();
    assertClose(
      reversed
        .slice(1)
        .reduce((a, b) => a.merge(b), reversed[0])
        .summary(),
      whole.summary(),
    );
  });

  test('a merge that crosses the exact bound switches to sketches with exact counts and moments', () => {
    const r = random(2);
    const rows: Cell[][] = Array.from({ length: 4000 }, () => [r() * 100, `k${Math.floor(r() * 500)}`]);
    const options = { exactLimit: 1500 };
    const a = new TableProfile(options).add(batch(['x', 'k'], rows.slice(0, 1000)));
    const b = new TableProfile(options).add(batch(['x', 'k'], rows.slice(1000)));
    assert.equal(a.summary().columns[0].distinctExact, true);
    const whole = new TableProfile(options).add(batch(['x', 'k'], rows)).summary();
    const merged = a.merge(b).summary();
    const [x, k] = merged.columns;
    assert.equal(x.distinctExact, false);
    assert.equal(x.count, 4000);
    assertClose(
      [x.mean, x.std, x.min, x.max],
      [whole.columns[0].mean, whole.columns[0].std, whole.columns[0].min, whole.columns[0].max],
    );
    assert.ok(Math.abs(x.distinct - 4000) / 4000 < 0.05, `distinct ${x.distinct}`);
    // The categorical column stays exact: 500 keys are under the bound.
    assert.deepEqual(k, whole.columns[1]);
  });

  test('sketch mode: merged chunks agree with the whole within the sketch errors', () => {
    const n = 40_000;
    const r = random(3);
    const values = Array.from({ length: n }, () => r() * r() * 1e6);
    const rows: Cell[][] = values.map((v, i) => [v, i % 10 === 0 ? 'hot' : `cold${i}`]);
    const options = { exactLimit: 1000 };
    const whole = new TableProfile(options).add(batch(['v', 's'], rows));
    const parts = [0, 1, 2, 3, 4].map((k) =>
      new TableProfile(options).add(batch(['v', 's'], rows.slice((k * n) / 5, ((k + 1) * n) / 5))),
    );
    const merged = parts.slice(1).reduce((a, b) => a.merge(b), parts[0]);
    const sorted = [...values].sort((a, b) => a - b);
    const rankOf = (x: number) => sorted.filter((v) => v <= x).length / n;
    for (const s of [whole.summary(), merged.summary()]) {
      const [v, str] = s.columns;
      assert.equal(v.quantilesExact, false);
      for (const [q, x] of Object.entries(v.quantiles ?? {})) {
        assert.ok(Math.abs(rankOf(x as number) - Number(q)) <= 0.0165, `q${q}: rank ${rankOf(x as number)}`);
      }
      assert.ok(Math.abs(v.distinct - n) / n < 0.05, `distinct ${v.distinct}`);
      assert.equal(
        v.histogram?.counts.reduce((a, b) => a + b),
        n,
      );
      // The 10% heavy hitter is found; its estimate is a lower bound within the reported error.
      assert.equal(str.top[0].value, 'hot');
      assert.ok(str.top[0].count <= 4000 && 4000 <= str.top[0].count + (str.topMaxError ?? 0));
      assert.ok((str.topMaxError ?? 0) <= n / 1025);
    }
    // Register-wise maximum: the merged distinct estimate is exactly the whole's.
    assert.equal(merged.summary().columns[0].distinct, whole.summary().columns[0].distinct);
  });

  test('columns absent from one side count as missing in its rows', () => {
    const a = new TableProfile().add(batch(['x'], [['1'], ['2']]));
    const b = new TableProfile().add(batch(['y'], [['a'], ['b'], ['c']]));
    const s = a.merge(b).summary();
    assert.equal(s.rows, 5);
    assert.deepEqual(
      s.columns.map((c) => [c.name, c.count, c.missing]),
      [
        ['x', 2, 3],
        ['y', 3, 2],
      ],
    );
    const p = new TableProfile().add(batch(['x'], [['1']])).add(batch(['x', 'z'], [['2', 'q']]));
    assert.deepEqual(
      p.summary().columns.map((c) => [c.name, c.count, c.missing]),
      [
        ['x', 2, 0],
        ['z', 1, 1],
      ],
    );
  });

  test("a table's exact counts stay within their memory budget: the widest column is sketched first", () => {
    const rows: Cell[][] = Array.from({ length: 3000 }, (_, i) => [
      `id-${i}`,
      i % 7,
      i % 2 === 0 ? 'a' : 'b',
    ]);
    const options = { exactBytes: 200_000 };
    const p = new TableProfile(options);
    for (let i = 0; i < rows.length; i += 500) p.add(batch(['id', 'n', 'c'], rows.slice(i, i + 500)));
    const [id, n, c] = p.summary().columns;
    assert.equal(id.distinctExact, false);
    assert.ok(Math.abs(id.distinct - 3000) < 3000 * 0.05);
    assert.equal(n.distinctExact, true);
    assert.equal(c.distinctExact, true);
    assert.equal(n.quantiles?.['0.5'], 3);
    // Merging two budgets' worth of exact columns sketches the heaviest one too.
    const a = new TableProfile(options).add(batch(['id', 'n'], rows.slice(0, 1000)));
    const b = new TableProfile(options).add(batch(['id', 'n'], rows.slice(1000, 2000)));
    assert.equal(a.summary().columns[0].distinctExact, true);
    const merged = a.merge(b).summary();
    assert.deepEqual(
      merged.columns.map((col) => col.distinctExact),
      [false, true],
    );
    assert.equal(merged.columns[0].count, 2000);
  });

  test('a profile merged with itself doubles every count', () => {
    for (const options of [{}, { exactLimit: 50 }]) {
      const rows = syntheticRows(300, 9);
      const twice = profileOf([...rows, ...rows], 1, options)[0].summary();
      const self = profileOf(rows, 1, options)[0];
      const s = self.merge(self).summary();
      assert.equal(s.rows, 600);
      assertClose(
        s.columns.map((c) => [c.count, c.missing, c.mean, c.std, c.distinct]),
        twice.columns.map((c) => [c.count, c.missing, c.mean, c.std, c.distinct]),
      );
    }
  });

  test('options must be positive integers', () => {
    for (const bad of [{ exactLimit: 0 }, { histogramBins: 1.5 }, { kllK: 2 }, { topValues: -1 }]) {
      assert.throws(
        () => new TableProfile(bad),
        (err: Error & { code?: string }) =>
          err.code === 'SLIPWAY_ERR_BAD_REQUEST' && err.message.includes(Object.keys(bad)[0]),
      );
    }
  });

  test('profiles with different sketch options refuse to merge', () => {
    assert.throws(
      () => new TableProfile({ kllK: 100 }).merge(new TableProfile()),
      (err: Error & { code?: string }) => err.code === 'SLIPWAY_ERR_BAD_REQUEST',
    );
  });
});

describe('distributions and frequencies for drift tests', () => {
  test('sorted counts: integers (packed with their positions) and other numbers agree', () => {
    const ints = [5, -3, 7, 5, 0, -0, 2 ** 40, -(2 ** 40), 7, 1];
    const counts = ints.map((_, i) => i + 1);
    const expected = new Map<number, number>();
    for (let i = 0; i < ints.length; i++) {
      const v = ints[i]! + 0; // -0 and 0 are one value
      expected.set(v, (expected.get(v) ?? 0) + counts[i]!);
    }
    const order = [...expected.keys()].sort((a, b) => a - b);
    const packed = sortedCounts(Float64Array.from(ints), Float64Array.from(counts));
    assert.deepEqual([...packed.values], order);
    assert.deepEqual(
      [...packed.counts],
      order.map((v) => expected.get(v)),
    );
    // One fraction sends the same values through the search path: the same answer.
    const mixed = sortedCounts(Float64Array.from([...ints, 0.5]), Float64Array.from([...counts, 1]));
    const at = [...mixed.values].indexOf(0.5);
    // (-0 and 0 are one value; which of the two stands for it does not matter.)
    assert.deepEqual(
      [...mixed.values.slice(0, at), ...mixed.values.slice(at + 1)].map((v) => v + 0),
      order,
    );
    assert.deepEqual(
      [...mixed.counts.slice(0, at), ...mixed.counts.slice(at + 1)],
      order.map((v) => expected.get(v)),
    );
    // Too large to carry a position: searched, still right.
    const big = sortedCounts(Float64Array.from([2 ** 52, 3, 2 ** 52]), Float64Array.from([1, 2, 3]));
    assert.deepEqual([...big.values], [3, 2 ** 52]);
    assert.deepEqual([...big.counts], [2, 4]);
  });

  test('exact: ranks and quantiles of the values', () => {
    const p = new TableProfile().add(
      batch(
        ['x', 'c'],
        [
          [1, 'a'],
          [2, 'b'],
          [2, 'a'],
          [5, 'a'],
          [null, null],
        ],
      ),
    );
    const d = p.get('x')?.distribution();
    assert.ok(d);
    assert.equal(d.exact, true);
    assert.equal(d.n, 4);
    assert.deepEqual(
      [0, 1, 2, 3, 5, 6].map((x) => d.rank(x)),
      [0, 1, 3, 3, 4, 4],
    );
    assert.deepEqual(
      [1, 2, 5].map((x) => d.rank(x, false)),
      [0, 1, 3],
    );
    // Sorted 1, 2, 2, 5: q=.5 → position 1.5 → 2; q=.9 → 2.7 → 2 + .7·3.
    assert.equal(d.quantile(0.5), 2);
    assert.ok(Math.abs(d.quantile(0.9) - 4.1) < 1e-12);
    assert.equal(p.get('c')?.distribution(), null);
    assert.deepEqual(p.get('c')?.frequencies(), {
      exact: true,
      maxError: 0,
      counts: [
        ['a', 3],
        ['b', 1],
      ],
    });
    assert.deepEqual(p.columnNames, ['x', 'c']);
    assert.equal(p.get('nope'), undefined);
    const dates = new TableProfile()
      .add(batch(['d'], [['2020-01-01'], ['2020-01-03']]))
      .get('d')
      ?.distribution();
    assert.equal(dates?.quantile(0.5), Date.UTC(2020, 0, 2));
  });

  test('sketched: ranks within the KLL error, frequencies within their bound', () => {
    const n = 20_000;
    const rows: Cell[][] = Array.from({ length: n }, (_, i) => [
      (i * 7919) % n,
      i % 4 === 0 ? 'hot' : `v${i}`,
    ]);
    const p = new TableProfile({ exactLimit: 100 }).add(batch(['x', 'c'], rows));
    const d = p.get('x')?.distribution();
    assert.ok(d);
    assert.equal(d.exact, false);
    for (const x of [1000, 5000, 10_000, 19_000])
      assert.ok(Math.abs(d.rank(x) - (x + 1)) <= 0.0165 * n, `rank ${x}`);
    const f = p.get('c')?.frequencies();
    assert.equal(f?.exact, false);
    const hot = f?.counts.find(([k]) => k === 'hot')?.[1] ?? 0;
    assert.ok(hot <= 5000 && 5000 <= hot + (f?.maxError ?? 0));
  });
});

describe('stored format', () => {
  test('JSON round trip keeps every statistic and the ability to merge', () => {
    for (const options of [{}, { exactLimit: 200 }]) {
      const rows = syntheticRows(2000, 4);
      rows.push(['1e400', '123456789012345678901234567890', null, '2020-02-01']);
      const [a, b] = profileOf(rows, 2, options);
      const restored = TableProfile.fromJSON(JSON.parse(JSON.stringify(a)));
      assert.deepEqual(restored.summary(), a.summary());
      assert.deepEqual(JSON.parse(JSON.stringify(restored)), JSON.parse(JSON.stringify(a)));
      const direct = profileOf(rows, 2, options);
      assert.deepEqual(restored.merge(b).summary(), direct[0].merge(direct[1]).summary());
    }
  });

  test('a profile sent to another thread comes back the very profile: counts in insertion order, sketches, big integers', () => {
    for (const options of [{}, { exactLimit: 200 }]) {
      const rows = syntheticRows(2000, 7);
      rows.push(['1e400', '123456789012345678901234567890', null, '2020-02-01']);
      const [a, b] = profileOf(rows, 2, options);
      const { message, buffers } = a.toTransfer();
      // As postMessage copies it, the counts' buffers moved rather than copied.
      const received = structuredClone(message, { transfer: buffers });
      assert.ok(buffers.every((buffer) => buffer.byteLength === 0));
      const restored = TableProfile.fromTransfer(received);
      assert.deepEqual(restored.summary(), a.summary());
      assert.deepEqual(restored.toTransfer().message, a.toTransfer().message);
      const direct = profileOf(rows, 2, options);
      assert.deepEqual(restored.merge(b).summary(), direct[0].merge(direct[1]).summary());
    }
    const { message } = profileOf(syntheticRows(50, 8), 1)[0].toTransfer();
    const exact = message.columns.find((c) => c.keys)!;
    for (const bad of [
      { ...message, columns: [{ ...exact, counts: new Float64Array(exact.keys!.length + 1) }] },
      { ...message, columns: [{ ...exact, state: { ...exact.state, exact: null } }] },
    ]) {
      assert.throws(
        () => TableProfile.fromTransfer(bad),
        (err: Error & { code?: string }) => err.code === 'SLIPWAY_ERR_BAD_REQUEST',
      );
    }
  });

  test('the format is named and versioned, and its states are independent of batch order', () => {
    const rows = syntheticRows(500, 5);
    const json = JSON.parse(JSON.stringify(profileOf(rows, 1)[0]));
    assert.equal(json.format, 'slipway.profile');
    assert.equal(json.version, 1);
    assert.deepEqual(json.options, {
      exactLimit: 50000,
      kllK: 200,
      frequentCapacity: 1024,
      histogramBins: 20,
      topValues: 10,
      exactBytes: 134217728,
    });
    assert.deepEqual(Object.keys(json.columns[0]), ['name', 'summary', 'state']);
    const shuffled = JSON.parse(JSON.stringify(profileOf([...rows].reverse(), 1)[0]));
    for (let c = 0; c < 4; c++)
      assert.deepEqual(shuffled.columns[c].state.exact, json.columns[c].state.exact);
    const big = JSON.parse(
      JSON.stringify(new TableProfile().add(batch(['x'], [['123456789012345678901234567890']]))),
    );
    assert.deepEqual(big.columns[0].state.exact, [[{ int: '123456789012345678901234567890' }, 1]]);
    for (const bad of [
      { ...json, version: 2 },
      { ...json, format: 'other' },
      null,
      { ...json, columns: undefined },
      { ...json, columns: [{ name: 'f', summary: {} }] },
      { ...json, columns: [{ name: 'f', state: { ...json.columns[0].state, exact: null } }] },
      { ...json, options: { ...json.options, kllK: 0 } },
    ]) {
      assert.throws(
        () => TableProfile.fromJSON(bad),
        (err: Error & { code?: string }) => err.code === 'SLIPWAY_ERR_BAD_REQUEST',
      );
    }
  });
});

describe('sketches', () => {
  test('KLL rank error stays within 1.65% on 200 000 values, alone and merged from 50 parts', () => {
    const n = 200_000;
    const r = random(6);
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const whole = new KllSketch();
    for (const x of order) whole.update(x);
    const merged = new KllSketch();
    for (let p = 0; p < 50; p++) {
      const part = new KllSketch(200, p + 1);
      for (let i = p * 4000; i < (p + 1) * 4000; i++) part.update(order[i]);
      merged.merge(part);
    }
    for (const s of [whole, merged]) {
      assert.equal(s.n, n);
      const retained = s.levels.reduce((a, l) => a + l.length, 0);
      assert.ok(retained < 1000, `retained ${retained}`);
      for (let q = 0.01; q < 1; q += 0.01) {
        // Value x has rank x+1 among 0..n−1.
        assert.ok(Math.abs((s.quantile(q) + 1) / n - q) <= 0.0165, `q ${q}: ${s.quantile(q)}`);
      }
      assert.ok(Math.abs(s.rank(n / 2) / n - 0.5) <= 0.0165);
    }
  });

  test('KLL weighted updates equal repeated updates in weight and accuracy', () => {
    const weighted = new KllSketch();
    const repeated = new KllSketch();
    const r = random(8);
    let n = 0;
    const values: [number, number][] = [];
    for (let v = 0; v < 2000; v++) {
      const count = 1 + Math.floor(r() * 100);
      values.push([v, count]);
      n += count;
      weighted.updateWeighted(v, count);
      for (let i = 0; i < count; i++) repeated.update(v);
    }
    const trueRank = (x: number) => values.filter(([v]) => v <= x).reduce((a, [, c]) => a + c, 0) / n;
    for (const s of [weighted, repeated]) {
      assert.equal(s.n, n);
      const total = s.levels.reduce((a, l, h) => a + l.length * 2 ** h, 0);
      assert.equal(total, n, 'weights add up to the count');
      for (let q = 0.05; q < 1; q += 0.05) {
        assert.ok(Math.abs(trueRank(s.quantile(q)) - q) <= 0.0165 + 100 / n, `q ${q}`);
      }
    }
    const self = KllSketch.fromJSON(weighted.toJSON());
    self.merge(self);
    assert.equal(self.n, 2 * n);
  });

  test('HyperLogLog: near exact when small, within 3 standard errors (4.9%) when large', () => {
    const empty = new HyperLogLog();
    assert.equal(empty.estimate(), 0);
    const small = new HyperLogLog();
    for (let i = 0; i < 100; i++) small.add(`v${i % 50}`);
    assert.ok(Math.abs(small.estimate() - 50) <= 1, `small ${small.estimate()}`);
    for (const n of [10_000, 300_000]) {
      const h = new HyperLogLog();
      for (let i = 0; i < n; i++) h.add(`item-${i}`);
      assert.ok(Math.abs(h.estimate() - n) / n <= 0.049, `${n}: ${h.estimate()}`);
      assert.deepEqual(HyperLogLog.fromJSON(h.toJSON()).registers, h.registers);
    }
  });

  test('Misra–Gries counts are lower bounds within maxError ≤ n/(k+1)', () => {
    const f = new FrequentItems<string>(10);
    const truth = new Map<string, number>();
    const r = random(7);
    for (let i = 0; i < 10_000; i++) {
      const key = r() < 0.3 ? 'a' : r() < 0.3 ? 'b' : `x${Math.floor(r() * 500)}`;
      truth.set(key, (truth.get(key) ?? 0) + 1);
      f.add(key);
    }
    assert.ok(f.maxError <= 10_000 / 11);
    for (const [key, est] of f.counts) {
      const t = truth.get(key) ?? 0;
      assert.ok(est <= t && t <= est + f.maxError, `${key}: ${est} vs ${t}`);
    }
    assert.deepEqual(
      f.top(2).map(([k]) => k),
      ['a', 'b'],
    );
  });
});

describe('Adult census data', () => {
  // The file has no quoted fields, so a plain split reads it as a CSV reader would.
  const lines = readFileSync(new URL('../../datasets/adult/adult.csv', import.meta.url), 'utf8')
    .trim()
    .split('\n');
  const columns = lines[0].split(',');
  const rows: Cell[][] = lines.slice(1).map((l) => l.split(',').map((c) => (c === '' ? null : c)));

  function profile(from: number, to: number): TableProfile {
    const p = new TableProfile();
    for (let i = from; i < to; i += 8192) p.add(batch(columns, rows.slice(i, Math.min(to, i + 8192)), i + 1));
    return p;
  }

  test('types and counts, and two halves merge into the whole', () => {
    const whole = profile(0, rows.length).summary();
    const byName = (s: TableSummary, name: string) => s.columns.find((c) => c.name === name) as ColumnSummary;
    assert.equal(whole.rows, 48_842);
    const age = byName(whole, 'age');
    assert.equal(age.type, 'integer');
    assert.deepEqual([age.min, age.max, age.distinct], [17, 90, 74]);
    const workclass = byName(whole, 'workclass');
    assert.equal(workclass.type, 'categorical');
    assert.deepEqual([workclass.count, workclass.missing], [46_043, 2_799]);
    assert.deepEqual(workclass.top[0], { value: 'Private', count: 33_906 });
    assert.equal(byName(whole, 'fnlwgt').distinct, 28_523);
    assert.equal(byName(whole, 'fnlwgt').quantilesExact, true);
    assert.deepEqual(
      byName(whole, 'income').top.map((t) => t.value),
      ['<=50K', '<=50K.', '>50K', '>50K.'].filter((v) =>
        byName(whole, 'income').top.some((t) => t.value === v),
      ),
    );
    const half = Math.floor(rows.length / 2);
    assertClose(profile(0, half).merge(profile(half, rows.length)).summary(), whole);
  });

  test('profileTable streams the file through the CSV reader to the same profile', async () => {
    const adult = fileURLToPath(new URL('../../datasets/adult/adult.csv', import.meta.url));
    const streamed = await profileTable(adult, { read: { batchRows: 5000 } });
    assertClose(streamed.summary(), profile(0, rows.length).summary());
  });
});
