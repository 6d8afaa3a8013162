/** Table readers: CSV (dialect detection, RFC 4180 quoting, BOM, UTF-8), JSON Lines, Parquet. */
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CsvParser } from '../src/data/formats/csv-parser.js';
import { columnNames } from '../src/data/formats/csv-reader.js';
import {
  type Cell,
  countRows,
  detectFormat,
  parquetAvailable,
  profileTable,
  type RowBatch,
  readCsv,
  readTable,
  sniffCsv,
} from '../src/data/index.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'data');
const ADULT = join(import.meta.dirname, '..', '..', 'datasets', 'adult', 'adult.csv');
const fixture = (name: string) => join(FIXTURES, name);

async function readAll(
  path: string,
  options = {},
): Promise<{ columns: readonly string[]; rows: Cell[][]; batches: RowBatch[] }> {
  const batches: RowBatch[] = [];
  for await (const b of readTable(path, options)) batches.push(b);
  return { columns: batches[0]?.columns ?? [], rows: batches.flatMap((b) => b.rows), batches };
}

function parse(text: string | Buffer[], delimiter = ','): (string | null)[][] {
  const p = new CsvParser(delimiter.charCodeAt(0));
  for (const chunk of typeof text === 'string' ? [Buffer.from(text)] : text) p.push(chunk);
  p.end();
  return p.rows;
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-formats-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('CSV parser', () => {
  test('quoted delimiters, doubled quotes, newlines inside quotes, CRLF, empty → null', () => {
    assert.deepEqual(parse('a,"b,c","say ""hi""\r\nbye"\r\n,"",x\r\n'), [
      ['a', 'b,c', 'say "hi"\r\nbye'],
      [null, null, 'x'],
    ]);
  });

  test('a field, a doubled quote and a CRLF split across chunks at every byte give the same rows', () => {
    const text = 'id,note\r\n1,"a ""b"", c\nd"\r\n2,plain é text\r\n3,\r\n';
    const whole = parse(text);
    assert.deepEqual(whole, [
      ['id', 'note'],
      ['1', 'a "b", c\nd'],
      ['2', 'plain é text'],
      ['3', null],
    ]);
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      assert.deepEqual(parse([bytes.subarray(0, cut), bytes.subarray(cut)]), whole, `cut at ${cut}`);
    }
  });

  test('blank lines are skipped; a last line without newline and a trailing delimiter count', () => {
    assert.deepEqual(parse('a,b\n\n\n1,\n2,3'), [
      ['a', 'b'],
      ['1', null],
      ['2', '3'],
    ]);
  });

  test('a quote left open fails at the end', () => {
    assert.throws(() => parse('a,"b\n'), /not closed/);
  });
});

describe('CSV reader', () => {
  test('adult.csv: comma and header detected, every row read with 16 columns', async () => {
    assert.deepEqual(await sniffCsv(ADULT), { delimiter: ',', header: true });
    const { columns, rows, batches } = await readAll(ADULT, { batchRows: 10_000 });
    assert.equal(columns.length, 16);
    assert.equal(columns[0], 'age');
    assert.equal(columns[15], 'split');
    assert.equal(rows.length, 48_842);
    assert.deepEqual(rows[0]!.slice(0, 4), ['39', 'State-gov', '77516', 'Bachelors']);
    assert.deepEqual(
      batches.map((b) => b.firstRow),
      [1, 10_001, 20_001, 30_001, 40_001],
    );
    assert.ok(rows.every((r) => r.length === 16));
  });

  test('semicolon with quoted fields, CRLF and decimal commas', async () => {
    const path = fixture('quoted-semicolon.csv');
    assert.deepEqual(await sniffCsv(path), { delimiter: ';', header: true });
    const { columns, rows } = await readAll(path);
    assert.deepEqual(columns, ['name', 'amount', 'note']);
    assert.deepEqual(rows, [
      ['Smith; J', '1,5', 'said "hi"\r\nthen left'],
      ['Doe', null, 'plain'],
    ]);
  });

  test('a BOM is dropped and tabs detected', async () => {
    const { columns, rows } = await readAll(fixture('bom-tab.tsv'));
    assert.deepEqual(columns, ['id', 'city']);
    assert.deepEqual(rows, [
      ['1', 'Zürich'],
      ['2', 'München'],
    ]);
  });

  test('a numeric first row is data: columns are named column_1…', async () => {
    const path = fixture('headerless-pipe.csv');
    assert.deepEqual(await sniffCsv(path), { delimiter: '|', header: false });
    const { columns, rows } = await readAll(path);
    assert.deepEqual(columns, ['column_1', 'column_2', 'column_3']);
    assert.deepEqual(rows, [
      ['1', '2', '3'],
      ['4', '5', '6'],
    ]);
  });

  test('an all-text file whose first row repeats in the data has no header; options override', async () => {
    const path = join(dir, 'words.csv');
    await writeFile(path, 'red,small\nblue,large\nred,small\n');
    assert.deepEqual(await sniffCsv(path), { delimiter: ',', header: false });
    const { columns, rows } = await readAll(path, { header: true });
    assert.deepEqual(columns, ['red', 'small']);
    assert.equal(rows.length, 2);
  });

  test("duplicate and empty header names are made unique, as pandas' read_csv names them", async () => {
    const path = join(dir, 'dupes.csv');
    await writeFile(path, 'a,a,,b\nx,y,z,w\n');
    const { columns } = await readAll(path, { header: true });
    assert.deepEqual(columns, ['a', 'a.1', 'Unnamed: 2', 'b']);
    // A name the header already holds is skipped, and named columns are named first.
    assert.deepEqual(columnNames(['a', 'a', 'a.1']), ['a', 'a.2', 'a.1']);
    assert.deepEqual(columnNames(['b', 'b.1', 'b', 'b.1', 'b']), ['b', 'b.1', 'b.2', 'b.1.1', 'b.3']);
    assert.deepEqual(columnNames([null, 'Unnamed: 0']), ['Unnamed: 0.1', 'Unnamed: 0']);
  });

  test("a header with an empty name is still a header, as pandas' to_csv writes its index column", async () => {
    const path = join(dir, 'indexed.csv');
    await writeFile(path, ',age,city\n0,41,paris\n1,37,rome\n');
    assert.deepEqual(await sniffCsv(path), { delimiter: ',', header: true });
    const { columns, rows } = await readAll(path);
    assert.deepEqual(columns, ['Unnamed: 0', 'age', 'city']);
    assert.deepEqual(rows[0], ['0', '41', 'paris']);
    await writeFile(path, 'a,,b\n1,2,3\n');
    assert.deepEqual((await readAll(path)).columns, ['a', 'Unnamed: 1', 'b']);
    await writeFile(path, ',color,size\n0,red,small\n1,blue,large\n');
    assert.deepEqual((await readAll(path)).columns, ['Unnamed: 0', 'color', 'size']);
    // A first row of nothing but empty cells is not a header, nor is an empty cell where a file
    // without a header misses a value (pandas' to_csv(header=False) of a NaN).
    for (const text of [
      ',,\n1,2,3\n',
      ',Paris\n34.0,Rome\n22.0,Oslo\n',
      ',,setosa\n5.1,3.5,setosa\n4.9,3.0,setosa\n',
    ]) {
      await writeFile(path, text);
      assert.deepEqual(await sniffCsv(path), { delimiter: ',', header: false }, text);
    }
  });

  test('a line of only spaces and tabs is blank, as pandas skips it; quoted spaces are a value', async () => {
    const path = join(dir, 'spaces.csv');
    await writeFile(path, 'x,y\n1,a\n  \n2,b\n \t \n3,c\n');
    assert.deepEqual((await readAll(path)).rows, [
      ['1', 'a'],
      ['2', 'b'],
      ['3', 'c'],
    ]);
    await writeFile(path, 'x\n1\n  \n2\n"  "\n   ');
    assert.deepEqual((await readAll(path)).rows, [['1'], ['2'], ['  ']]);
    const profile = await profileTable(path);
    assert.equal(profile.rows, 3);
  });

  test('short rows are padded with null; a long row fails naming the row', async () => {
    const path = join(dir, 'ragged.csv');
    await writeFile(path, 'a,b,c\n1,2\n1,2,3,4\n');
    await assert.rejects(readAll(path), /data row 2: 4 fields, but the header has 3/);
    await writeFile(path, 'a,b,c\n1,2\n');
    assert.deepEqual((await readAll(path)).rows, [['1', '2', null]]);
  });

  test('invalid UTF-8 fails naming the byte offset and the row', async () => {
    await assert.rejects(readAll(fixture('invalid-utf8.csv')), (err: Error) => {
      assert.match(err.message, /invalid UTF-8 at byte offset 22 \(data row 3\)/);
      return true;
    });
  });

  test('a character split across 1 MiB reads is not taken for invalid UTF-8', async () => {
    const path = join(dir, 'multibyte.csv');
    const row = 'ü€😀,1\n'; // 2-, 3- and 4-byte characters at every alignment
    await writeFile(path, `word,flag\n${row.repeat(Math.ceil((3 << 20) / Buffer.byteLength(row)))}`);
    let n = 0;
    for await (const b of readCsv(path)) {
      for (const r of b.rows) assert.equal(r[0], 'ü€😀');
      n += b.rows.length;
    }
    assert.ok(n > 200_000);
  });

  test('an empty file and a header-only file give one empty batch with the columns', async () => {
    const path = join(dir, 'header-only.csv');
    await writeFile(path, 'a,b\n');
    const { columns, rows } = await readAll(path);
    assert.deepEqual(columns, ['a', 'b']);
    assert.equal(rows.length, 0);
    await writeFile(path, '');
    assert.deepEqual((await readAll(path)).rows, []);
  });

  test('a ~200 MB file streams with bounded memory and reports progress', async (t) => {
    const path = join(dir, 'big.csv');
    const fh = await open(path, 'w');
    let written = 0;
    let i = 0;
    while (written < 200 << 20) {
      const lines: string[] = [];
      for (let k = 0; k < 50_000; k++, i++) {
        lines.push(`${i},${(i * 0.37).toFixed(3)},"name, ${i % 997}",cat_${i % 7},2024-01-${(i % 28) + 1}\n`);
      }
      const buf = Buffer.from(
        i === 50_000 ? `id,value,name,category,day\n${lines.join('')}` : lines.join(''),
      );
      await fh.write(buf);
      written += buf.length;
    }
    await fh.close();
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    let rows = 0;
    let lastProgress = 0;
    for await (const b of readCsv(path, {
      onProgress: (read, total) => {
        lastProgress = read / total;
      },
    })) {
      rows += b.rows.length;
      if (rows % 65_536 < b.rows.length) peak = Math.max(peak, process.memoryUsage().rss);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.equal(rows, i);
    assert.equal(lastProgress, 1);
    const growthMb = (peak - base) / 2 ** 20;
    t.diagnostic(`${rows} rows, ${(written / 2 ** 20).toFixed(0)} MB: rss +${growthMb.toFixed(0)} MB`);
    assert.ok(
      growthMb < 200,
      `rss grew by ${growthMb.toFixed(0)} MB reading ${(written / 2 ** 20).toFixed(0)} MB`,
    );
  });
});

describe('JSON Lines reader', () => {
  test('columns are the union of keys in order of first appearance, even a late key', async () => {
    const { columns, rows } = await readAll(fixture('events.jsonl'), { batchRows: 2 });
    assert.deepEqual(columns, ['id', 'name', 'tags', 'late']);
    assert.deepEqual(rows, [
      [1, 'a', null, null],
      [2, null, '["x","y"]', null],
      [3, null, null, true],
    ]);
  });

  test('a bad line fails naming the line', async () => {
    await assert.rejects(readAll(fixture('bad.jsonl')), /bad\.jsonl: line 2: not JSON/);
    const path = join(dir, 'array.jsonl');
    await writeFile(path, '{"a":1}\n[1,2]\n');
    await assert.rejects(readAll(path), /line 2: a JSON object is expected/);
  });
});

describe('Parquet reader', () => {
  test('a file written by pandas/pyarrow (snappy, two row groups) reads with its types', async (t) => {
    if (!(await parquetAvailable())) return t.skip('the hyparquet package is not installed');
    const { columns, rows, batches } = await readAll(fixture('small.parquet'), { batchRows: 2 });
    assert.deepEqual(columns, ['age', 'score', 'workclass', 'ok', 'when']);
    assert.deepEqual(
      batches.map((b) => [b.firstRow, b.rows.length]),
      [
        [1, 2],
        [3, 1],
        [4, 2],
      ],
    );
    assert.deepEqual(rows[0]!.slice(0, 4), [39, 0.5, 'State-gov', true]);
    assert.deepEqual(rows[2]!.slice(0, 4), [null, 3, null, true]);
    assert.equal(rows[4]![0], 2n ** 53n + 1n);
    assert.equal(rows[4]![2], 'naïve ,"quoted"');
    assert.ok(rows[1]![4] instanceof Date);
    assert.equal((rows[1]![4] as Date).toISOString(), '2024-02-03T04:05:06.000Z');
    assert.equal(rows[2]![4], null);
  });
});

describe('format detection', () => {
  test('by extension, then by content', async () => {
    assert.equal(await detectFormat(ADULT), 'csv');
    assert.equal(await detectFormat(fixture('events.jsonl')), 'jsonl');
    assert.equal(await detectFormat(fixture('small.parquet')), 'parquet');
    const copy = async (from: string, name: string) => {
      const to = join(dir, name);
      await writeFile(to, await (await import('node:fs/promises')).readFile(from));
      return to;
    };
    assert.equal(await detectFormat(await copy(fixture('small.parquet'), 'p.bin')), 'parquet');
    assert.equal(await detectFormat(await copy(fixture('events.jsonl'), 'e.data')), 'jsonl');
    assert.equal(await detectFormat(await copy(fixture('bom-tab.tsv'), 'b.data')), 'csv');
    assert.equal(await countRows(join(dir, 'e.data')), 3);
  });
});
