/**
 * Memory bound of streamed hashing and profiling (the issue's target: a 1 GB CSV under 500 MB;
 * `npm run bench:data` measures the 1 GB case). Two generated CSVs, 40 MB and 400 MB, each go
 * through `slipway data add` (row count, SHA-256 and copy into the store, profile) in a child
 * process whose peak RSS is read at exit. Both are large enough to be profiled on two threads
 * (where the machine has two CPUs), so each holds the same per-thread state. The big file's peak
 * may exceed the small one's by at most 25% of the extra 360 MB (90 MB; memory growing with the
 * file at the issue's 0.5 byte per byte would add 180 MB), because the garbage-collection timing
 * of two threads' heaps moves the peak by tens of MB from run to run (40 and 200 MB files:
 * 345 → 331, 319 → 347, 305 → 353, 355 → 384, 341 → 342 MB measured; the small file's baseline
 * is the median of three adds, and a big file's peak over the allowance is measured once more, the
 * lower one counting); it must stay under 500 MB.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from './helpers.js';

const run = promisify(execFile);

/** Loaded before the CLI: writes the process's peak RSS (KiB) to $PEAK_RSS_FILE at exit. */
const PEAK_RSS_HOOK = `data:text/javascript,${encodeURIComponent(
  "import{writeFileSync}from'node:fs';process.on('exit',()=>writeFileSync(process.env.PEAK_RSS_FILE,String(process.resourceUsage().maxRSS)));",
)}`;

const dir = mkdtempSync(join(tmpdir(), 'slipway-memory-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Adult's rows until `bytes`, each with a unique `id` and a unique float `score` (so two columns
 * outgrow the exact counts and turn into sketches), written 4 MB at a time.
 */
function generate(path: string, bytes: number): number {
  const lines = readFileSync(join(REPO_ROOT, 'datasets/adult/adult.csv'), 'utf8').split('\n');
  const header = `id,score,${lines[0]}\n`;
  const body = lines.slice(1).filter((l) => l !== '');
  const fd = openSync(path, 'w');
  let written = writeSync(fd, header);
  let rows = 0;
  let seed = 12345;
  try {
    while (written < bytes) {
      let block = '';
      while (block.length < 4 << 20) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        block += `${rows},${(seed / 2 ** 32).toFixed(9)},${body[rows % body.length]}\n`;
        rows++;
      }
      written += writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
  return rows;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function addPeak(
  file: string,
  name: string,
  store = 'store',
): Promise<{ rssMb: number; rows: number; sha256: string }> {
  const rssFile = join(dir, `${name}.rss`);
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      PEAK_RSS_HOOK,
      join(REPO_ROOT, 'bin/slipway.js'),
      'data',
      'add',
      file,
      '--name',
      name,
      '--data-dir',
      join(dir, store),
      '--json',
    ],
    { env: { ...process.env, PEAK_RSS_FILE: rssFile }, maxBuffer: 64 << 20, timeout: 120_000 },
  );
  const version = JSON.parse(stdout) as { manifest: { files: { rows: number; sha256: string }[] } };
  const f = version.manifest.files[0]!;
  return { rssMb: Number(readFileSync(rssFile, 'utf8')) / 1024, rows: f.rows, sha256: f.sha256 };
}

test('data add (rows, SHA-256, profile) of a 400 MB CSV: peak RSS does not grow with the file', async (t) => {
  const small = join(dir, 'small.csv');
  const big = join(dir, 'big.csv');
  const smallRows = generate(small, 40e6);
  const bigRows = generate(big, 400e6);
  // The small file's peak is the baseline: the median of three adds, as one run's peak moves by
  // tens of MB with the collectors' timing (a lone low one once made 97 MB of "growth").
  const smalls = [];
  for (let i = 0; i < 3; i++) smalls.push(await addPeak(small, `small${i}`));
  smalls.sort((x, y) => x.rssMb - y.rssMb);
  const a = smalls[1]!;
  let b = await addPeak(big, 'big');
  assert.equal(a.rows, smallRows);
  assert.equal(b.rows, bigRows);
  assert.equal(b.sha256, await sha256(big));
  const extraMb = (statSync(big).size - statSync(small).size) / 1e6;
  const bigPeaks = [b.rssMb];
  // The big file's peak moves by up to ~80 MB between runs (329-407 MB measured). Over the
  // allowance, the add is repeated in a fresh store (the whole path again: hash, copy, profile)
  // and the lower peak counts: memory that grows with the file grows in both runs.
  if (b.rssMb - a.rssMb >= 0.25 * extraMb) {
    rmSync(join(dir, 'store'), { recursive: true, force: true });
    const again = await addPeak(big, 'big', 'store-again');
    bigPeaks.push(again.rssMb);
    if (again.rssMb < b.rssMb) b = again;
  }
  const grew = b.rssMb - a.rssMb;
  t.diagnostic(
    `peak RSS ${smalls.map((x) => x.rssMb.toFixed(0)).join(', ')} MB for 40 MB (median taken), ${bigPeaks.map((x) => x.toFixed(0)).join(', ')} MB for 400 MB`,
  );
  for (const peak of bigPeaks) assert.ok(peak < 500, `peak RSS ${peak.toFixed(0)} MB for 400 MB`);
  assert.ok(
    grew < 0.25 * extraMb,
    `peak RSS grew by ${grew.toFixed(0)} MB (${a.rssMb.toFixed(0)} → ${b.rssMb.toFixed(0)} MB) for ${extraMb.toFixed(0)} MB more CSV`,
  );
});
