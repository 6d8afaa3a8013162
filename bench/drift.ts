/**
 * `npm run bench:drift [-- --runs N --scales 1,5,20 --quick]`: Slipway's drift engine against
 * Evidently's DataDriftPreset (0.7.23, interop/.venv-drift) on the same CSV files, in one run.
 *
 * Files (built once under bench/.out/drift): the reference is UCI Adult (48 842 rows, the `split`
 * column dropped) replicated ×k; the current is Adult's test rows (16 281) replicated ×k with an
 * injected shift (age + 3 on every third row). At ×20 the reference has 976 840 rows. Both tools
 * choose Evidently's defaults (large reference: wasserstein and jensenshannon).
 *
 * Each repetition is a fresh process timing itself after its imports — reading both files plus
 * the whole comparison — and reporting its peak RSS and CPU seconds: `node dist/bench/drift/
 * run-slipway.js` and `interop/evidently_drift.py --time`. Repetitions alternate between the two;
 * medians are printed, with the speed ratio (wall clock, and CPU seconds — on a shared machine the
 * wall clock of either side also counts time spent waiting for a core), whether every column's decision (and the verdict)
 * is identical, and the largest relative score difference.
 */
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const OUT = join(ROOT, 'bench/.out/drift');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}
const quick = process.argv.includes('--quick');
const runs = Number(arg('runs', quick ? '1' : '3'));
const scales = arg('scales', quick ? '1,5' : '1,5,20')
  .split(',')
  .map(Number);

interface Run {
  seconds: number;
  cpu_seconds: number;
  max_rss_mb: number;
  report: {
    dataset_drift: boolean;
    drift_share: number;
    columns: Record<string, { test: string; score: number; drifted: boolean }>;
  };
}

async function writeLines(path: string, header: string, lines: string[], times: number): Promise<void> {
  if (existsSync(path)) return;
  const tmp = `${path}.tmp`;
  const out = createWriteStream(tmp);
  out.write(`${header}\n`);
  for (let k = 0; k < times; k++) {
    const chunk = `${lines.join('\n')}\n`;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  renameSync(tmp, path);
}

/** Adult without its `split` column; the test rows with age + 3 on every third row. */
async function files(scale: number): Promise<{ reference: string; current: string; rows: [number, number] }> {
  mkdirSync(OUT, { recursive: true });
  const [header, ...rows] = readFileSync(join(ROOT, 'datasets/adult/adult.csv'), 'utf8')
    .trimEnd()
    .split('\n');
  const strip = (line: string) => line.slice(0, line.lastIndexOf(','));
  const all = rows.map(strip);
  const test = rows.filter((l) => l.endsWith(',test')).map(strip);
  const shifted = test.map((line, i) => {
    if (i % 3 !== 0) return line;
    const comma = line.indexOf(',');
    return `${Number(line.slice(0, comma)) + 3}${line.slice(comma)}`;
  });
  const reference = join(OUT, `adult-x${scale}.csv`);
  const current = join(OUT, `adult-test-shifted-x${scale}.csv`);
  await writeLines(reference, strip(header), all, scale);
  await writeLines(current, strip(header), shifted, scale);
  return { reference, current, rows: [all.length * scale, shifted.length * scale] };
}

function run(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
  // evidently_drift.py prints the report itself with its timings beside it.
  return out.report ? out : { ...out, report: out };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const python = spawnSync('bash', [join(ROOT, 'interop/drift-venv.sh')], { encoding: 'utf8' })
  .stdout.trim()
  .split('\n')
  .at(-1) as string;
console.log(
  `bench:drift — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${runs} run(s) per case`,
);
const rowsOut: string[] = [];
for (const scale of scales) {
  const f = await files(scale);
  const ours: Run[] = [];
  const theirs: Run[] = [];
  for (let i = 0; i < runs; i++) {
    ours.push(run(process.execPath, [join(ROOT, 'dist/bench/drift/run-slipway.js'), f.reference, f.current]));
    theirs.push(run(python, [join(ROOT, 'interop/evidently_drift.py'), f.reference, f.current, '--time']));
  }
  const a = ours[0].report;
  const b = theirs[0].report;
  let same = a.dataset_drift === b.dataset_drift;
  let maxRel = 0;
  for (const [name, c] of Object.entries(b.columns)) {
    const o = a.columns[name];
    if (!o || o.drifted !== c.drifted || o.test !== c.test) same = false;
    if (o && c.score !== 0) maxRel = Math.max(maxRel, Math.abs(o.score - c.score) / Math.abs(c.score));
  }
  const s = median(ours.map((r) => r.seconds));
  const e = median(theirs.map((r) => r.seconds));
  const sc = median(ours.map((r) => r.cpu_seconds));
  const ec = median(theirs.map((r) => r.cpu_seconds));
  const line = [
    `×${scale}`.padEnd(5),
    `${f.rows[0]} + ${f.rows[1]} rows`.padEnd(22),
    `slipway ${s.toFixed(2)} s (cpu ${sc.toFixed(2)} s, peak ${median(ours.map((r) => r.max_rss_mb)).toFixed(0)} MB)`,
    `evidently ${e.toFixed(2)} s (cpu ${ec.toFixed(2)} s, peak ${median(theirs.map((r) => r.max_rss_mb)).toFixed(0)} MB)`,
    `${(e / s).toFixed(1)}× faster (cpu ${(ec / sc).toFixed(1)}×)`,
    `decisions ${same ? 'identical' : 'DIFFER'} (${Object.keys(b.columns).length} columns, dataset drift ${b.dataset_drift}), max score diff ${maxRel.toExponential(1)}`,
  ].join(' | ');
  console.log(line);
  rowsOut.push(line);
  if (!same) process.exitCode = 1;
}
