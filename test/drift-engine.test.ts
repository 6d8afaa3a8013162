/**
 * The drift engine against Evidently 0.7.23 and scipy (fixtures written by
 * test/fixtures/drift/make_fixtures.py): every test of the engine's own catalogue on column
 * pairs that exercise its branches, scipy's ks_2samp on each of its paths, the default test at the
 * 1000-row and 5/2-value boundaries, Evidently's binning, and a whole table typed and tested as
 * DataDriftPreset does — scores within 1e-6 relative, decisions equal.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { TableProfile } from '../src/data/index.js';
import {
  analyzeDrift,
  binnedShares,
  type ColumnSummary,
  compareProfiles,
  type DriftColumn,
  defaultTestName,
  expand,
  type StatTest,
  statTests,
  summarize,
} from '../src/monitoring/index.js';
import { REPO_ROOT } from './helpers.js';

const FIXTURES = join(REPO_ROOT, 'test/fixtures/drift');
const load = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

type FixtureColumn =
  | { kind: 'numerical'; values: number[]; counts: number[] }
  | { kind: 'categorical'; values: (string | number | boolean)[] };

function summaryOf(c: FixtureColumn): ColumnSummary {
  if (c.kind === 'categorical') return summarize({ kind: 'categorical', values: c.values });
  const n = c.counts.reduce((a, b) => a + b, 0);
  return {
    kind: 'numerical',
    values: Float64Array.from(c.values),
    counts: Float64Array.from(c.counts),
    n,
    integer: false,
  };
}

/** Relative difference at most 1e-6 (exact for zeros and infinities). */
function close(actual: number, expected: number, what: string): void {
  if (expected === 0 || !Number.isFinite(expected)) {
    assert.equal(actual, expected, what);
    return;
  }
  const rel = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(rel <= 1e-6, `${what}: ${actual} vs ${expected} (relative ${rel.toExponential(2)})`);
}

test("the registry holds Evidently's 18 per-column tests with its column types and default thresholds", () => {
  const catalogue = load('catalogue.json') as { name: string; kinds: string[]; defaultThreshold: number }[];
  assert.equal(catalogue.length, 18);
  assert.deepEqual([...statTests.keys()].sort(), catalogue.map((t) => t.name).sort());
  for (const want of catalogue) {
    const t = statTests.get(want.name) as StatTest;
    assert.deepEqual([...t.kinds].sort(), want.kinds, `${want.name} kinds`);
    assert.equal(t.defaultThreshold, want.defaultThreshold, `${want.name} threshold`);
  }
});

describe('drift tests equal Evidently 0.7.23', () => {
  const { cases } = load('stattests.json') as {
    cases: {
      label: string;
      reference: FixtureColumn;
      current: FixtureColumn;
      expected: Record<string, { score: number; drifted: boolean; threshold: number }>;
    }[];
  };
  for (const c of cases) {
    for (const [name, want] of Object.entries(c.expected)) {
      test(`${name}: ${c.label}`, () => {
        const t = statTests.get(name) as StatTest;
        assert.ok(t, `registered: ${name}`);
        assert.equal(t.defaultThreshold, want.threshold);
        const ref = summaryOf(c.reference);
        const cur = summaryOf(c.current);
        const viaValues = t.run(expand(ref), expand(cur), t.defaultThreshold);
        close(viaValues.score, want.score, `${name} score`);
        assert.equal(viaValues.drifted, want.drifted, `${name} decision`);
        if ('runSummary' in t) {
          const viaCounts = (t as StatTest & { runSummary: typeof t.run }).runSummary(
            ref as unknown as DriftColumn,
            cur as unknown as DriftColumn,
            t.defaultThreshold,
          );
          assert.equal(viaCounts.score, viaValues.score, 'counts and values give the same score');
        }
      });
    }
  }

  test('the decision compares as Evidently does: p ≤ threshold for ks, p < threshold for chisquare and z, ≥ for distances', () => {
    const a: DriftColumn = { kind: 'numerical', values: Float64Array.from([1, 2, 3, 4]) };
    const ks = statTests.get('ks') as StatTest;
    const p = ks.run(a, a, 0.05).score;
    assert.equal(p, 1);
    assert.equal(ks.run(a, a, 1).drifted, true);
    const cats: DriftColumn = { kind: 'categorical', values: ['a', 'b', 'c', 'a'] };
    assert.equal((statTests.get('chisquare') as StatTest).run(cats, cats, 1).drifted, false);
    assert.equal((statTests.get('z') as StatTest).run(cats, cats, 1).drifted, false);
    const js = statTests.get('jensenshannon') as StatTest;
    const shifted: DriftColumn = { kind: 'categorical', values: ['a', 'a', 'a', 'b'] };
    const score = js.run(cats, shifted, 0.1).score;
    assert.equal(js.run(cats, shifted, score).drifted, true);
    const w = statTests.get('wasserstein') as StatTest;
    const b: DriftColumn = { kind: 'numerical', values: Float64Array.from([2, 3, 4, 5]) };
    const ws = w.run(a, b, 0.1).score;
    assert.equal(w.run(a, b, ws).drifted, true);
  });
});

describe('ks equals scipy ks_2samp on each path (exact, n1 = n2, asymptotic)', () => {
  const ks = statTests.get('ks') as StatTest;
  for (const c of load('stattests.json').ks as {
    reference: FixtureColumn;
    current: FixtureColumn;
    pvalue: number;
  }[]) {
    const ref = summaryOf(c.reference);
    const cur = summaryOf(c.current);
    test(`n1 = ${ref.n}, n2 = ${cur.n}`, () => {
      close(ks.run(expand(ref), expand(cur), 0.05).score, c.pvalue, 'p-value');
    });
  }
});

describe("Evidently's default test", () => {
  for (const d of load('defaults.json') as {
    kind: 'num' | 'cat';
    referenceLength: number;
    distinct: number;
    test: string;
  }[]) {
    const kind = d.kind === 'num' ? 'numerical' : 'categorical';
    test(`${kind}, reference ${d.referenceLength} rows, ${d.distinct} values → ${d.test}`, () => {
      assert.equal(defaultTestName(kind, d.referenceLength, d.distinct), d.test);
    });
  }

  test('the engine counts the reference without its missing values, and values of both tables', async () => {
    // 1001 rows of which 1 is missing: Evidently drops NaN first, so the reference has 1000 values → ks.
    const rows = (n: number, missingEvery = 0) =>
      Array.from({ length: n }, (_, i) => [missingEvery && i === 0 ? '' : String((i % 7) + 0.5)]);
    const ref = new TableProfile({ exactLimit: 1e9, exactBytes: 1e12 }).add({
      columns: ['x'],
      rows: rows(1001, 1),
      firstRow: 1,
    });
    const cur = new TableProfile({ exactLimit: 1e9, exactBytes: 1e12 }).add({
      columns: ['x'],
      rows: rows(50),
      firstRow: 1,
    });
    const { report } = await compareProfiles(ref, cur);
    assert.equal(report.columns.x.test, 'ks');
    const full = new TableProfile({ exactLimit: 1e9, exactBytes: 1e12 }).add({
      columns: ['x'],
      rows: rows(1001),
      firstRow: 1,
    });
    assert.equal((await compareProfiles(full, cur)).report.columns.x.test, 'wasserstein');
  });
});

describe("Evidently's binning (get_binned_data)", () => {
  for (const b of load('binning.json') as {
    label: string;
    reference: FixtureColumn;
    current: FixtureColumn;
    refShares: number[];
    curShares: number[];
  }[]) {
    test(b.label, () => {
      const [r, c] = binnedShares(summaryOf(b.reference), summaryOf(b.current), true);
      // Per-value keys come out in another order than Python's set; compare as sorted multisets.
      const sorted = (x: ArrayLike<number>) => Array.from(x).sort((p, q) => p - q);
      assert.equal(r.length, b.refShares.length, 'bins');
      const [rs, cs, ers, ecs] = [sorted(r), sorted(c), sorted(b.refShares), sorted(b.curShares)];
      for (let i = 0; i < rs.length; i++) {
        close(rs[i], ers[i], `reference share ${i}`);
        close(cs[i], ecs[i], `current share ${i}`);
      }
    });
  }

  test('integer columns get bins at least 1 wide, as numpy widens them', () => {
    // 21 distinct integers over a span of 20 and 2^22 values: Sturges asks for width 20/23 < 1.
    const counts = new Float64Array(21).fill(2 ** 22 / 21);
    const values = Float64Array.from({ length: 21 }, (_, i) => i);
    const s: ColumnSummary = { kind: 'numerical', values, counts, n: 2 ** 22, integer: true };
    assert.equal(binnedShares(s, s, false)[0].length, 20);
    assert.equal(binnedShares({ ...s, integer: false }, { ...s, integer: false }, false)[0].length, 24);
  });
});

describe('a table typed and tested as DataDriftPreset does', () => {
  test('engine fixture: every column kind, missing values, a small reference', async () => {
    const want = load('engine/evidently.json');
    const { report, skipped } = await analyzeDrift(
      join(FIXTURES, 'engine/ref.csv'),
      join(FIXTURES, 'engine/cur.csv'),
    );
    assert.deepEqual(Object.keys(report.columns).sort(), Object.keys(want.columns).sort());
    for (const [name, w] of Object.entries(want.columns) as [string, Record<string, unknown>][]) {
      const got = report.columns[name];
      assert.equal(got.type, w.type, `${name} type`);
      assert.equal(got.test, w.test, `${name} test`);
      assert.equal(got.threshold, w.threshold, `${name} threshold`);
      close(got.score, w.score as number, `${name} score`);
      assert.equal(got.drifted, w.drifted, `${name} decision`);
    }
    assert.equal(report.dataset_drift, want.dataset_drift);
    close(report.drift_share, want.drift_share, 'drift share');
    assert.deepEqual(skipped, []);
  });

  test('overrides: a test and threshold per column, a test for all, a test that does not fit the type is refused', async () => {
    const ref = join(FIXTURES, 'engine/ref.csv');
    const cur = join(FIXTURES, 'engine/cur.csv');
    const { report } = await analyzeDrift(ref, cur, {
      test: 'psi',
      columns: { income: { test: 'wasserstein', threshold: 0.5 }, city: { threshold: 0.9 } },
    });
    assert.equal(report.columns.income.test, 'wasserstein');
    assert.equal(report.columns.income.threshold, 0.5);
    assert.equal(report.columns.city.test, 'psi');
    assert.equal(report.columns.city.threshold, 0.9);
    assert.equal(report.columns.city.drifted, report.columns.city.score >= 0.9);
    assert.equal(report.columns.age.test, 'psi');
    assert.equal(report.columns.age.threshold, 0.1);
    await assert.rejects(
      analyzeDrift(ref, cur, { columns: { city: { test: 'ks' } } }),
      /city.*categorical.*'ks'/,
    );
    await assert.rejects(analyzeDrift(ref, cur, { columns: { nope: { test: 'ks' } } }), /no column 'nope'/);
    await assert.rejects(analyzeDrift(ref, cur, { test: 'nope' }), /no drift test 'nope'/);
  });

  test('drift share: dataset drift at or above it', async () => {
    const ref = join(FIXTURES, 'engine/ref.csv');
    const cur = join(FIXTURES, 'engine/cur.csv');
    const base = (await analyzeDrift(ref, cur)).report;
    assert.equal((await analyzeDrift(ref, cur, { driftShare: base.drift_share })).report.dataset_drift, true);
    assert.equal(
      (await analyzeDrift(ref, cur, { driftShare: base.drift_share + 0.01 })).report.dataset_drift,
      false,
    );
  });

  test('all-missing and booleans-with-missing columns are left out, named with the reason', async () => {
    const profile = (rows: string[][]) =>
      new TableProfile({ exactLimit: 1e9, exactBytes: 1e12 }).add({
        columns: ['empty', 'flag', 'x'],
        rows,
        firstRow: 1,
      });
    const rows = Array.from({ length: 30 }, (_, i) => [
      '',
      i % 5 === 0 ? '' : String(i % 2 === 0),
      String(i),
    ]);
    const { report, skipped } = await compareProfiles(profile(rows), profile(rows));
    assert.deepEqual(Object.keys(report.columns), ['x']);
    assert.deepEqual(
      skipped.map((s) => s.name),
      ['empty', 'flag'],
    );
  });
});
