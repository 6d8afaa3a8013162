/**
 * `slipway drift` end to end through bin/slipway.js: the JSON shape the issue gives (and the same
 * numbers as Evidently's DataDriftPreset on the fixture), the text table, overrides from flags,
 * exit codes (0; 1 with --fail-on-drift on dataset drift; 1 with `error:` on a bad flag), and an
 * HTML report that is one self-contained file with one chart per column.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from './helpers.js';

const exec = promisify(execFile);
const REF = join(REPO_ROOT, 'test/fixtures/drift/engine/ref.csv');
const CUR = join(REPO_ROOT, 'test/fixtures/drift/engine/cur.csv');

async function slipway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [join(REPO_ROOT, 'bin/slipway.js'), ...args], {
      cwd: REPO_ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('slipway drift', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-drift-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('--json prints the issue shape with Evidently numbers; exit 0 despite drift', async () => {
    const r = await slipway(['drift', '--reference', REF, '--current', CUR, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(report), ['dataset_drift', 'drift_share', 'columns']);
    const want = JSON.parse(
      await readFile(join(REPO_ROOT, 'test/fixtures/drift/engine/evidently.json'), 'utf8'),
    );
    assert.equal(report.dataset_drift, want.dataset_drift);
    assert.equal(report.drift_share, want.drift_share);
    for (const [name, c] of Object.entries(report.columns) as [string, Record<string, unknown>][]) {
      assert.deepEqual(Object.keys(c), ['type', 'test', 'score', 'threshold', 'drifted']);
      assert.equal(c.test, want.columns[name].test, name);
      assert.equal(c.drifted, want.columns[name].drifted, name);
      const w = want.columns[name].score as number;
      assert.ok(
        w === 0 ? c.score === 0 : Math.abs((c.score as number) - w) / w <= 1e-6,
        `${name}: ${c.score} vs ${w}`,
      );
    }
  });

  test("a mixed column is counted by its cells' text, as pandas keeps an object column", async () => {
    // '1' and '1.0' are one number but two categories of pandas' object column (Evidently:
    // chisquare 1.522997974471264e-08, drifted). Lines of spaces are blank, as pandas skips them.
    const ref = join(dir, 'mixed-ref.csv');
    const cur = join(dir, 'mixed-cur.csv');
    await writeFile(ref, `t\n${'1\n'.repeat(50)}   \n${'1.0\n'.repeat(50)}${'word\n'.repeat(5)}`);
    await writeFile(cur, `t\n${'1\n'.repeat(80)}${'1.0\n'.repeat(20)}\t\n${'word\n'.repeat(5)}`);
    const r = await slipway(['drift', '--reference', ref, '--current', cur, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const t = JSON.parse(r.stdout).columns.t;
    assert.deepEqual([t.type, t.test, t.drifted], ['categorical', 'chisquare', true]);
    assert.ok(Math.abs(t.score - 1.522997974471264e-8) / 1.522997974471264e-8 <= 1e-6, String(t.score));
  });

  test('integers past 2^53 stay exact; a uint64 column is left out, as Evidently leaves it', async () => {
    // Evidently on the same files: t chisquare 6.082173590744406e-26, x 7.005401231684793e-07, no u.
    const big = 2n ** 53n;
    const row = (t: bigint, i: number, x: number) => `${t},${2n ** 63n + BigInt(i)},${x}\n`;
    const ref = join(dir, 'big-ref.csv');
    const cur = join(dir, 'big-cur.csv');
    let a = 't,u,x\n';
    let b = 't,u,x\n';
    for (let i = 0; i < 100; i++) {
      a += row(big + BigInt(i % 4), i, i % 7);
      b += row(big + (i % 3 ? 0n : 1n), i, i % 5);
    }
    await writeFile(ref, a);
    await writeFile(cur, b);
    const r = await slipway(['drift', '--reference', ref, '--current', cur, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { columns } = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(columns).sort(), ['t', 'x']);
    assert.equal(columns.t.test, 'chisquare');
    assert.ok(
      Math.abs(columns.t.score - 6.082173590744406e-26) / 6.082173590744406e-26 <= 1e-6,
      String(columns.t.score),
    );
    const text = await slipway(['drift', '--reference', ref, '--current', cur]);
    assert.match(text.stdout, /skipped u: integers past 2\^63-1 \(a pandas uint64 column/);
  });

  test('the text table names each column, its test and decision, then the verdict', async () => {
    const r = await slipway(['drift', '--reference', REF, '--current', CUR]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^column\s+type\s+test\s+score\s+threshold\s+drift$/);
    assert.match(r.stdout, /\ncity\s+categorical\s+chisquare\s+\S+\s+0\.05\s+DRIFT\n/);
    assert.match(r.stdout, /\ngrade\s+numerical\s+ks\s+0\.8\d+\s+0\.05\s+ok\n/);
    assert.match(
      lines.at(-1) as string,
      /^5 of 10 columns drifted \(share 0\.5000, threshold 0\.5\): dataset drift$/,
    );
  });

  test('--test/--threshold per column and for all, --drift-share, --fail-on-drift', async () => {
    const r = await slipway([
      'drift',
      '--reference',
      REF,
      '--current',
      CUR,
      '--json',
      '--test',
      'psi',
      '--test',
      'income=wasserstein',
      '--threshold',
      'income=0.25',
      '--drift-share',
      '0.9',
      '--fail-on-drift',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.columns.income.test, 'wasserstein');
    assert.equal(report.columns.income.threshold, 0.25);
    assert.equal(report.columns.city.test, 'psi');
    assert.equal(report.dataset_drift, report.drift_share >= 0.9);
    const failing = await slipway(['drift', '--reference', REF, '--current', CUR, '--fail-on-drift']);
    assert.equal(failing.code, 1);
    assert.match(failing.stdout, /dataset drift\n/);
    const same = await slipway(['drift', '--reference', REF, '--current', REF, '--fail-on-drift', '--json']);
    assert.equal(same.code, 0);
    assert.equal(JSON.parse(same.stdout).dataset_drift, false);
  });

  test('a bad flag or a test that does not fit the column is an error naming it', async () => {
    const bad = await slipway(['drift', '--reference', REF, '--current', CUR, '--test', 'city=nope']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: --test city=nope: no drift test 'nope'/);
    const kind = await slipway(['drift', '--reference', REF, '--current', CUR, '--test', 'city=ks']);
    assert.equal(kind.code, 1);
    assert.match(kind.stderr, /^error: column 'city' is categorical: test 'ks' takes numerical columns/);
    const negative = await slipway(['drift', '--reference', REF, '--current', CUR, '--threshold', 'age=-1']);
    assert.equal(negative.code, 1);
    assert.match(negative.stderr, /^error: --threshold age=-1: not a number of at least 0/);
    const share = await slipway(['drift', '--reference', REF, '--current', CUR, '--drift-share', '2']);
    assert.notEqual(share.code, 0);
    assert.match(share.stderr, /drift-share/);
    const missing = await slipway(['drift', '--reference', join(dir, 'nope.csv'), '--current', CUR]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: --reference .*nope\.csv: no such file/);
    const header = join(dir, 'header-only.csv');
    await writeFile(header, `${(await readFile(REF, 'utf8')).split('\n')[0]}\n`);
    const nothing = await slipway(['drift', '--reference', REF, '--current', header, '--fail-on-drift']);
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /^error: no column could be compared/);
    const folder = await slipway(['drift', '--reference', REF, '--current', dir]);
    assert.equal(folder.code, 1);
    assert.match(folder.stderr, /^error: --current .*: not a file/);
  });

  test('--html writes one self-contained file with one chart per column', async () => {
    const html = join(dir, 'report.html');
    const r = await slipway(['drift', '--reference', REF, '--current', CUR, '--json', '--html', html]);
    assert.equal(r.code, 0, r.stderr);
    const page = await readFile(html, 'utf8');
    const columns = Object.keys(JSON.parse(r.stdout).columns);
    assert.equal((page.match(/<svg /g) ?? []).length, columns.length);
    for (const name of columns) assert.ok(page.includes(`<title>${name} distribution</title>`), name);
    assert.doesNotMatch(page, /<script|<link|@import|@font-face|url\(|src=|https?:\/\//i);
    assert.match(page, /Dataset drift: 5 of 10 columns drifted/);
    assert.match(page, /<td>city<\/a><\/td>|city<\/a><\/td><td>categorical<\/td><td>chisquare<\/td>/);
  });
});
