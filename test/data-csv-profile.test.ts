/**
 * `profileCsv` (a CSV profiled from its bytes, on one thread or split across several) against the
 * reference path, `TableProfile.add` over `readCsv`'s batches: every count, sketch and budget
 * decision the same, moments equal to rounding, and errors the same message.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type CsvOptions, type ProfileOptions, readCsv, TableProfile } from '../src/data/index.js';
import {
  MisalignedRange,
  profileCsv,
  profileSplit,
  type RangePlan,
} from '../src/data/profile/csv-profile.js';
import { REPO_ROOT } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'slipway-csv-profile-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function reference(path: string, read: CsvOptions, options: Partial<ProfileOptions>): Promise<string> {
  const profile = new TableProfile(options);
  for await (const batch of readCsv(path, read)) profile.add(batch);
  return JSON.stringify(profile);
}

async function outcome(run: () => Promise<unknown>): Promise<string> {
  try {
    return JSON.stringify(await run());
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

/**
 * Numbers equal to rounding (relative 1e-9, as the interop suite holds profiles to pandas: moments
 * from value counts, and Chan's merge of ranges, vs Welford's update per cell), everything else
 * exactly; for a column whose counts became sketches (all columns with `sketched`,
 * where budgets differ per range), only what a sketch keeps exact (missing and type counts) is
 * compared, as sketches compact in a different order per range.
 */
function assertEquivalent(actual: unknown, expected: unknown, at: string, sketched: boolean): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    const scale = Math.max(Math.abs(expected), Math.abs(actual), 1e-300);
    assert.ok(
      actual === expected || Math.abs(actual - expected) / scale <= 1e-9,
      `${at}: ${actual} vs ${expected}`,
    );
    return;
  }
  if (expected === null || typeof expected !== 'object' || actual === null || typeof actual !== 'object') {
    assert.deepEqual(actual, expected, at);
    return;
  }
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  if ('summary' in e && 'state' in e) {
    const as = a.state as Record<string, unknown>;
    const es = e.state as Record<string, unknown>;
    if (sketched || !es.exact) {
      assert.deepEqual([as.missing, as.types], [es.missing, es.types], `${at}.state`);
      return;
    }
  }
  assert.deepEqual(Object.keys(a), Object.keys(e), at);
  for (const key of Object.keys(e)) assertEquivalent(a[key], e[key], `${at}.${key}`, sketched);
}

/**
 * One thread must give the reference's profile (counts, sketches, budget decisions) with moments
 * equal to rounding; two and three threads (every file split, however small) the same, except
 * for what sketches approximate; errors the same message.
 */
async function assertSame(path: string, read: CsvOptions = {}, options: Partial<ProfileOptions> = {}) {
  const expected = await outcome(() => reference(path, read, options).then((s) => JSON.parse(s)));
  const sketched = Object.keys(options).length > 0;
  const one = await outcome(() => profileCsv(path, { read, profile: options, threads: 1 }));
  if (expected.startsWith('error: ')) assert.equal(one, expected, `${path} (one thread)`);
  // One thread makes the same budget decisions and sketches as the reference.
  else assertEquivalent(JSON.parse(one), JSON.parse(expected), `${path} (one thread)`, false);
  for (const threads of [2, 3]) {
    const split = await outcome(() =>
      profileCsv(path, { read, profile: options, threads, splitMinBytes: 0 }),
    );
    if (expected.startsWith('error: ')) assert.equal(split, expected, `${path} (${threads} threads)`);
    else assertEquivalent(JSON.parse(split), JSON.parse(expected), `${path} (${threads} threads)`, sketched);
  }
  return expected;
}

/** Awkward cells: missing tokens, padded and signed numbers, huge integers, dates, unicode, quotes. */
const TOKENS = [
  'NA',
  'null',
  'nan',
  '-nan',
  '#N/A',
  'N/A',
  'None',
  '1.#IND',
  ' 39',
  '39 ',
  '\t7',
  '007',
  '-0',
  '+5',
  '1.5',
  '.5',
  '5.',
  '1e5',
  '1E-3',
  '1e400',
  '-1e400',
  'inf',
  '-Infinity',
  'TRUE',
  'False',
  'yes',
  '2011-01-31',
  '2011-02-30',
  '2011-01-31T08:00',
  '2011-01-31 08:00:00.5Z',
  '2011-01-31T08:00+02:00',
  '0099-01-01',
  '123456789012345678901234',
  '-98765432109876543210',
  '9007199254740993',
  'héllo',
  '日本語',
  '😀',
  ' x ',
  'x"y',
  'multi\nline, "q" é\r\n',
];

/** A deterministic CSV of `rows` rows in seven columns (numbers, categories, unique ids, dates, a mix). */
function generate(name: string, rows: number, seed: number, newline: string, multiline: number): string {
  let s = seed;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const cell = (kind: number): string => {
    const r = rand();
    switch (kind) {
      case 0:
        return r < 0.9 ? String(Math.floor(rand() * 2001) - 1000) : pick(TOKENS);
      case 1:
        return r < 0.9 ? String((rand() - 0.5) * 1000) : pick(TOKENS);
      case 2:
        return r < 0.95 ? pick(['a', 'b', 'Private', 'Self-emp', 'héllo', '']) : pick(TOKENS);
      case 3:
        return `u${Math.floor(rand() * 1e9)}`;
      case 4:
        return r < 0.95 ? `2020-0${1 + Math.floor(rand() * 9)}-1${Math.floor(rand() * 9)}` : pick(TOKENS);
      default:
        return r < multiline ? TOKENS[TOKENS.length - 1]! : pick(TOKENS);
    }
  };
  const quote = (v: string) => (/[",\r\n]/.test(v) || rand() < 0.1 ? `"${v.replaceAll('"', '""')}"` : v);
  const lines = ['c0,c1,c2,c3,c4,c5,c6'];
  for (let i = 0; i < rows; i++) {
    let cells = [0, 1, 2, 3, 4, 5, 6].map(cell);
    if (rand() < 0.01) cells = cells.slice(0, 1 + Math.floor(rand() * 7)); // a short row
    if (rand() < 0.003) lines.push(''); // a blank line
    lines.push(cells.map(quote).join(','));
  }
  const path = join(dir, name);
  writeFileSync(path, lines.join(newline) + (rand() < 0.5 ? newline : ''));
  return path;
}

describe('profileCsv equals TableProfile.add over readCsv', () => {
  test('the repository datasets', async () => {
    for (const file of ['adult/adult.csv', 'bike_sharing/hour.csv', 'german_credit/german.csv']) {
      const json = await assertSame(join(REPO_ROOT, 'datasets', file));
      assert.ok(json.startsWith('{"format":"slipway.profile"'));
    }
    // Sketched columns (exact bound 50) and a budget spent every few batches.
    await assertSame(join(REPO_ROOT, 'datasets/adult/adult.csv'), { batchRows: 5000 }, { exactLimit: 50 });
    await assertSame(
      join(REPO_ROOT, 'datasets/adult/adult.csv'),
      { batchRows: 1000 },
      { exactBytes: 100_000 },
    );
    await assertSame(join(REPO_ROOT, 'datasets/adult/adult.csv'), { header: false, delimiter: ',' });
  });

  test('generated files over several reads: quoted newlines across reads, CR, CRLF, short rows, sketches, budgets', async () => {
    const a = generate('lf.csv', 30_000, 1, '\n', 0.3);
    const b = generate('crlf.csv', 20_000, 2, '\r\n', 0.05);
    const c = generate('cr.csv', 20_000, 3, '\r', 0.05);
    for (const path of [a, b, c]) await assertSame(path);
    await assertSame(a, {}, { exactLimit: 1000 });
    await assertSame(b, { batchRows: 777 }, { exactBytes: 300_000 });
    await assertSame(c, { batchRows: 100 }, { exactLimit: 50, exactBytes: 50_000 });
    const profile = await profileCsv(a, { threads: 2, splitMinBytes: 0 });
    assert.equal(profile.rows, 30_000);
    assert.equal(profile.get('c3')!.summary().distinctExact, true);
  });

  test('small files: quirks, empty, header only, BOM, no header, and the same errors', async () => {
    const write = (name: string, text: string | Buffer) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    await assertSame(write('quirks.csv', 'a,b\r\n1,2\r\n,\r\n"",""\r\n"a""b",x"y\r\n"q"tail,3'));
    await assertSame(write('quirks2.csv', 'a,b\r\n1,2\r\n,\r\n"",""\r\n'), { header: false, delimiter: ',' });
    await assertSame(write('empty.csv', ''));
    await assertSame(write('header.csv', 'a,b\n'));
    await assertSame(write('bom.csv', '\uFEFFa;b\n1;2\n'));
    await assertSame(write('noheader.csv', '1,2\n3,4\n'));
    const errors = [
      await assertSame(write('unclosed.csv', 'a,b\n1,"x\n2,3\n')),
      await assertSame(write('long.csv', 'a,b\n1,2\n3,4,5\n')),
      await assertSame(write('utf8.csv', Buffer.from([0x61, 0x2c, 0x62, 0x0a, 0x31, 0x2c, 0xff, 0x0a]))),
    ];
    // Over several reads: a BOM, invalid UTF-8 late in the file, a character cut at its end.
    const rows = Array.from({ length: 120_000 }, (_, i) => `${i},héllo${i % 7},${(i * 0.37) % 1}`);
    const text = Buffer.from(`a,b,c\n${rows.join('\n')}`);
    await assertSame(write('bom-big.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text])));
    const late = await assertSame(
      write(
        'late.csv',
        Buffer.concat([text.subarray(0, 2_500_000), Buffer.from([0xff]), text.subarray(2_500_000)]),
      ),
    );
    assert.match(late, /invalid UTF-8 at byte offset 2500000 \(data row \d+\)/);
    const cut = await assertSame(write('cut.csv', Buffer.concat([text, Buffer.from('\n1,\xc3', 'latin1')])));
    assert.match(cut, /invalid UTF-8 at byte offset \d+ \(data row 120001\)/);
    assert.match(errors[0]!, /data row 1: a quoted field is not closed/);
    assert.match(errors[1]!, /data row 2: 3 fields, but the header has 2/);
    assert.match(errors[2]!, /invalid UTF-8 at byte offset 6 \(data row 1\)/);
  });
});

describe('profileCsv split across threads', () => {
  const text = 'a,b\n1,"x\ny"\n2,z\n3,"w"\n';
  const plan = (): RangePlan => ({
    read: {},
    profile: {},
    delimiter: ',',
    header: true,
    start: 0,
    end: Number.POSITIVE_INFINITY,
  });

  test('ranges cut at row ends are merged in file order', async () => {
    const path = join(dir, 'split.csv');
    writeFileSync(path, text);
    const row2 = text.indexOf('2,z');
    const progress: number[] = [];
    const profile = await profileSplit(
      path,
      { ...plan(), read: { onProgress: (done, total) => progress.push(done / total) } },
      [row2, text.indexOf('3,')],
    );
    assert.equal(profile.rows, 3);
    assert.equal(progress.at(-1), 1, 'progress ends at the whole file');
    assert.deepEqual(profile.get('a')!.summary().mean, 2);
    assert.deepEqual(profile.get('b')!.summary().distinct, 3);
    assert.deepEqual(JSON.stringify(profile), JSON.stringify(await profileCsv(path, { threads: 1 })));
  });

  test('a cut inside a quoted field is caught, and profileCsv falls back to one pass', async () => {
    const path = join(dir, 'split-quoted.csv');
    writeFileSync(path, text);
    const inside = text.indexOf('y"');
    await assert.rejects(profileSplit(path, plan(), [inside]), MisalignedRange);
    const whole = await profileCsv(path, { threads: 1 });
    for (const threads of [2, 3, 4]) {
      const split = await profileCsv(path, { threads, splitMinBytes: 0 });
      assertEquivalent(
        JSON.parse(JSON.stringify(split)),
        JSON.parse(JSON.stringify(whole)),
        `${threads}`,
        false,
      );
    }
  });
});
