import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PayloadSegments, readPayload, removeSegmentsBefore } from '../src/monitoring/payload-segments.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 1, 7, 30);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-segments-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytes = (n: number, seed: number) =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

test('a payload given as sections is written as one, in order, without being joined first', async () => {
  const folder = join(dir, 'sections');
  const segments = new PayloadSegments(folder, () => T0);
  const parts = [bytes(100, 5), bytes(3, 6), bytes(0, 7), bytes(5000, 8)];
  const [whole, sectioned, after] = segments.append([bytes(10, 9), parts, [bytes(7, 10)]]);
  segments.close();
  assert.deepEqual(
    [whole, sectioned, after].map((r) => [r!.offset, r!.length]),
    [
      [0, 10],
      [10, 5103],
      [5113, 7],
    ],
  );
  assert.deepEqual(await readPayload(folder, sectioned!), Buffer.concat(parts));
  assert.deepEqual(await readPayload(folder, after!), bytes(7, 10));
});

test('payloads append to one file per hour and read back byte for byte', async () => {
  const folder = join(dir, 'append');
  let now = T0;
  const segments = new PayloadSegments(folder, () => now);
  const first = segments.append([bytes(1000, 1), bytes(24, 2)]);
  const second = segments.append([bytes(4096, 3)]);
  assert.deepEqual(
    [...first, ...second].map((r) => [r.offset, r.length]),
    [
      [0, 1000],
      [1000, 24],
      [1024, 4096],
    ],
  );
  assert.match(first[0]!.file, /^20261201T07-[0-9a-f]{8}\.seg$/);
  assert.equal(new Set([...first, ...second].map((r) => r.file)).size, 1);
  now = T0 + HOUR;
  const next = segments.append([bytes(10, 4)]);
  assert.match(next[0]!.file, /^20261201T08-/);
  assert.equal(next[0]!.offset, 0, 'a new hour starts a new file');
  segments.close();

  for (const [ref, seed] of [
    [first[0]!, 1],
    [first[1]!, 2],
    [second[0]!, 3],
    [next[0]!, 4],
  ] as const) {
    const got = await readPayload(folder, ref);
    assert.ok(got?.equals(bytes(ref.length, seed)), `${ref.file}@${ref.offset}`);
  }
  assert.equal(segments.append([]).length, 0);
});

test('two writers on one folder keep to their own files', () => {
  const folder = join(dir, 'two');
  const a = new PayloadSegments(folder, () => T0);
  const b = new PayloadSegments(folder, () => T0);
  const [ra] = a.append([bytes(8, 1)]);
  const [rb] = b.append([bytes(8, 2)]);
  assert.notEqual(ra!.file, rb!.file);
  assert.equal(rb!.offset, 0);
  a.close();
  b.close();
});

test('retention removes the files of hours that ended by the cutoff, and only those', async () => {
  const folder = join(dir, 'retention');
  for (const at of [T0 - 2 * HOUR, T0 - HOUR, T0]) {
    const s = new PayloadSegments(folder, () => at);
    s.append([bytes(16, 0)]);
    s.close();
  }
  // The cutoff falls inside 06:xx: the 05:00 hour has ended, 06:00 and 07:00 have not.
  assert.equal(await removeSegmentsBefore(folder, T0 - HOUR + 60_000), 1);
  assert.deepEqual((await readdir(folder)).map((f) => f.slice(0, 11)).sort(), ['20261201T06', '20261201T07']);
  // At the end of 07:00 every file has ended.
  assert.equal(await removeSegmentsBefore(folder, Date.UTC(2026, 11, 1, 8)), 2);
  assert.deepEqual(await readdir(folder), []);
  assert.equal(await removeSegmentsBefore(join(dir, 'never-made'), T0), 0);
});

test('a missing file reads as gone; a short one or a foreign name is an error', async () => {
  const folder = join(dir, 'broken');
  const s = new PayloadSegments(folder, () => T0);
  const [ref] = s.append([bytes(100, 5)]);
  s.close();
  assert.equal(await readPayload(folder, { ...ref!, file: '20261201T07-00000000.seg' }), undefined);
  await truncate(join(folder, ref!.file), 60);
  await assert.rejects(readPayload(folder, ref!), /ends at 60 bytes, before the 100 bytes at 0/);
  await assert.rejects(readPayload(folder, { ...ref!, file: '../slipway.db' }), /not a payload segment/);
});

test('bytes left in a file by an append that failed part-way do not shift the next payloads', async () => {
  const folder = join(dir, 'partial');
  const s = new PayloadSegments(folder, () => T0);
  const [a] = s.append([bytes(50, 6)]);
  // What a write that failed after some bytes leaves behind: bytes no row names.
  await appendFile(join(folder, a!.file), bytes(13, 9));
  const [b] = s.append([bytes(70, 7)]);
  s.close();
  assert.equal(b!.offset, 63);
  assert.ok((await readPayload(folder, a!))?.equals(bytes(50, 6)));
  assert.ok((await readPayload(folder, b!))?.equals(bytes(70, 7)));
});
