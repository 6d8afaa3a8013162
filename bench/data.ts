/**
 * `npm run bench:data [-- --quick]`: profiling and validation throughput on UCI Adult replicated
 * to a million rows, Slipway against pandas and Great Expectations on the same file, in one run.
 *
 * Cases, each a fresh process per repetition that times itself after its imports and reports its
 * own peak RSS:
 *   - slipway-profile: `profileTable(file)` then `summary()` (every statistic of `slipway data
 *     profile`) as it runs by default: the file cut in two byte ranges, one profiled on a worker
 *     thread, the two merged,
 *   - slipway-profile-1t: the same on one thread (`profileCsv(file, { threads: 1 })`),
 *   - pandas-profile: `read_csv` + `describe(include='all')` + `value_counts()` of every column
 *     (bench/data/pandas_profile.py),
 *   - slipway-validate: `validateTable` against the schema `inferSchema` writes for Adult,
 *   - ge-validate: `read_csv` + Great Expectations validating the same rules
 *     (bench/data/ge_validate.py),
 *   - memory (once, not repeated): `slipway data add` and `slipway data profile` of Adult
 *     replicated past 1 GB, with their peak RSS (the bound is 500 MB).
 * Repetitions are interleaved (every case, then the next repetition) and the medians printed.
 *
 * The data files are built once under bench/.out/data. The Python peers run in bench/.venv-data,
 * which is created from bench/data/requirements.txt (PyPI) when missing or stale.
 *
 * Flags: --quick, --runs N, --rows N, --cases slipway-profile,pandas-profile,slipway-validate,
 * ge-validate,memory, --big-bytes N.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { inferSchema, parseSchema, profileTable, validateTable } from '../src/data/index.js';
import { profileCsv } from '../src/data/profile/csv-profile.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'bench', '.out');
const DATA = join(OUT, 'data');
const ADULT = join(ROOT, 'datasets', 'adult', 'adult.csv');
const VENV = join(ROOT, 'bench', '.venv-data');
const REQUIREMENTS = join(ROOT, 'bench', 'data', 'requirements.txt');
const PYTHON = join(VENV, 'bin', 'python');
const SELF = fileURLToPath(import.meta.url);
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** Written to a file by a child node process at exit: its peak RSS in KiB (see `peakRssImport`). */
const PEAK_RSS_HOOK = `import{writeFileSync}from'node:fs';process.on('exit',()=>{if(process.env.BENCH_RSS_FILE)writeFileSync(process.env.BENCH_RSS_FILE,String(process.resourceUsage().maxRSS))});`;
export const peakRssImport = `data:text/javascript,${encodeURIComponent(PEAK_RSS_HOOK)}`;

type CaseName =
  | 'slipway-profile'
  | 'slipway-profile-1t'
  | 'pandas-profile'
  | 'slipway-validate'
  | 'ge-validate';
const CASES: CaseName[] = [
  'slipway-profile',
  'slipway-profile-1t',
  'pandas-profile',
  'slipway-validate',
  'ge-validate',
];

interface Measure {
  rows: number;
  seconds: number;
  cpu_seconds: number;
  peak_rss_mb: number;
  [k: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Children: `node dist/bench/data.js --child <what> <file> [schema]` prints one JSON line.

async function child(what: string, file: string, extra?: string): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let result: Record<string, unknown>;
  if (what === 'profile' || what === 'profile-1t') {
    const profile = what === 'profile' ? await profileTable(file) : await profileCsv(file, { threads: 1 });
    const summary = profile.summary();
    result = { rows: profile.rows, columns: summary.columns.length };
  } else if (what === 'validate') {
    const report = await validateTable(file, parseSchema(JSON.parse(readFileSync(extra!, 'utf8'))));
    result = {
      rows: report.rows_checked,
      success: report.success,
      rules: report.rules.length,
      failures: report.failures.length,
    };
  } else {
    throw new Error(`unknown child ${what}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(
    `${JSON.stringify({
      ...result,
      seconds,
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
}

// ---------------------------------------------------------------------------------------------
// Inputs: the replicated data file, the Python venv, the rules.

/** Adult's data rows repeated in order until `rows` rows (the header once), built once. */
async function replicated(rows: number, name: string): Promise<string> {
  const path = join(DATA, name);
  if (existsSync(path)) return path;
  mkdirSync(DATA, { recursive: true });
  const lines = readFileSync(ADULT, 'utf8').split('\n');
  const header = lines[0]!;
  const body = lines.slice(1).filter((l) => l !== '');
  const temp = `${path}.partial`;
  const out = createWriteStream(temp);
  let failed: Error | undefined;
  out.on('error', (err) => {
    failed = err;
  });
  const write = (s: string) =>
    new Promise<void>((ok) => (out.write(s) || failed ? ok() : out.once('drain', ok)));
  await write(`${header}\n`);
  let n = 0;
  while (n < rows) {
    const take = Math.min(body.length, rows - n);
    // ~5 MB at a time.
    await write(`${body.slice(0, take).join('\n')}\n`);
    n += take;
  }
  await new Promise<void>((ok) => out.end(() => ok()));
  if (failed) throw failed;
  renameSync(temp, path);
  log(`built ${path} (${rows} rows, ${(statSync(path).size / 1e6).toFixed(0)} MB)`);
  return path;
}

function python311(): string {
  for (const cmd of ['python3.11', 'python3']) {
    const r = spawnSync(cmd, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
      encoding: 'utf8',
    });
    if (r.status === 0 && r.stdout.trim() === '3.11') return cmd;
  }
  throw new Error('Python 3.11 is needed for the pandas and Great Expectations peers (python3.11 on PATH)');
}

/** bench/.venv-data from bench/data/requirements.txt, rebuilt when the requirements change. */
function ensureVenv(): void {
  const want = createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
  const stamp = join(VENV, '.requirements-sha256');
  if (existsSync(PYTHON) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  log(`creating ${VENV} (pip install -r bench/data/requirements.txt, a few minutes)`);
  rmSync(VENV, { recursive: true, force: true });
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
  };
  run(python311(), ['-m', 'venv', VENV]);
  run(PYTHON, ['-m', 'pip', 'install', '--quiet', '--upgrade', 'pip']);
  run(PYTHON, [
    '-m',
    'pip',
    'install',
    '--quiet',
    '--index-url',
    'https://pypi.org/simple',
    '-r',
    REQUIREMENTS,
  ]);
  writeFileSync(stamp, want);
}

// ---------------------------------------------------------------------------------------------

function runJson(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Measure {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr.slice(-2000)}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Measure;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '–';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      rows: { type: 'string', default: '1000000' },
      cases: { type: 'string', default: [...CASES, 'memory'].join(',') },
      'big-bytes': { type: 'string', default: String(1e9) },
    },
  });
  const quick = values.quick === true;
  const runs = Number(values.runs ?? (quick ? 1 : 5));
  const rows = Number(values.rows);
  const wanted = new Set(values.cases.split(','));
  const file = await replicated(rows, `adult-${rows}.csv`);
  const needPython = wanted.has('pandas-profile') || wanted.has('ge-validate');
  if (needPython) ensureVenv();

  // The rules both validators check: the schema Slipway infers from Adult (types, required,
  // ranges, category sets, the column set), written for Slipway and translated for GE.
  const schemaFile = join(DATA, 'adult.schema.json');
  const rulesFile = join(DATA, 'adult.rules.json');
  const schema = inferSchema(await profileTable(ADULT));
  writeFileSync(schemaFile, JSON.stringify(schema, null, 2));
  writeFileSync(rulesFile, JSON.stringify(rulesFromSchema(schema), null, 2));
  const cases = CASES.filter((c) => wanted.has(c));

  const command: Record<CaseName, () => Measure> = {
    'slipway-profile': () => runJson(process.execPath, [SELF, '--child', 'profile', file]),
    'slipway-profile-1t': () => runJson(process.execPath, [SELF, '--child', 'profile-1t', file]),
    'pandas-profile': () => runJson(PYTHON, [join(ROOT, 'bench', 'data', 'pandas_profile.py'), file]),
    'slipway-validate': () => runJson(process.execPath, [SELF, '--child', 'validate', file, schemaFile]),
    'ge-validate': () => runJson(PYTHON, [join(ROOT, 'bench', 'data', 'ge_validate.py'), file, rulesFile]),
  };
  const results = Object.fromEntries(cases.map((c) => [c, [] as Measure[]])) as Record<CaseName, Measure[]>;
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? cases : [...cases].reverse();
    for (const c of order) {
      const m = command[c]();
      results[c].push(m);
      log(
        `run ${run + 1}/${runs} ${c}: ${m.seconds.toFixed(2)} s, ${fmt(m.rows / m.seconds)} rows/s, cpu ${m.cpu_seconds.toFixed(2)} s, peak rss ${fmt(m.peak_rss_mb)} MB`,
      );
      if (m.rows !== rows) throw new Error(`${c} read ${m.rows} rows, expected ${rows}`);
    }
  }

  const lines = [
    `Data benchmark: Adult replicated to ${fmt(rows)} rows (${(statSync(file).size / 1e6).toFixed(0)} MB CSV), ${runs} interleaved run(s), medians`,
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
    '',
    '| case | rows/s | seconds | CPU seconds | rows per CPU-second | peak RSS MB |',
    '|---|--:|--:|--:|--:|--:|',
  ];
  const med: Partial<
    Record<CaseName, { rate: number; seconds: number; cpu: number; perCpu: number; rss: number }>
  > = {};
  for (const c of cases) {
    const ms = results[c];
    const seconds = median(ms.map((m) => m.seconds));
    med[c] = {
      seconds,
      rate: median(ms.map((m) => m.rows / m.seconds)),
      cpu: median(ms.map((m) => m.cpu_seconds)),
      // Steadier than wall time when other work shares the machine (every thread's CPU counts).
      perCpu: median(ms.map((m) => m.rows / m.cpu_seconds)),
      rss: Math.max(...ms.map((m) => m.peak_rss_mb)),
    };
    lines.push(
      `| ${c} | ${fmt(med[c]!.rate)} | ${seconds.toFixed(2)} | ${med[c]!.cpu.toFixed(2)} | ${fmt(med[c]!.perCpu)} | ${fmt(med[c]!.rss)} |`,
    );
  }
  lines.push('');
  const ratio = (a: CaseName, b: CaseName, key: 'rate' | 'perCpu' = 'rate') =>
    med[a] && med[b] ? `${(med[a]![key] / med[b]![key]).toFixed(2)}×` : '–';
  lines.push(
    `Slipway / pandas, profiling rows/s: ${ratio('slipway-profile', 'pandas-profile')} (default: two threads), ${ratio('slipway-profile-1t', 'pandas-profile')} (one thread); rows per CPU-second: ${ratio('slipway-profile', 'pandas-profile', 'perCpu')}`,
  );
  lines.push(
    `Slipway / Great Expectations, validation rows/s: ${ratio('slipway-validate', 'ge-validate')}; rows per CPU-second: ${ratio('slipway-validate', 'ge-validate', 'perCpu')}`,
  );
  if (results['ge-validate']?.length) {
    const g = results['ge-validate'][0]!;
    lines.push(`GE: ${g.expectations} expectations, success ${g.success}, unexpected values ${g.unexpected}`);
  }
  if (results['slipway-validate']?.length) {
    const s = results['slipway-validate'][0]!;
    lines.push(`Slipway: ${s.rules} rules, success ${s.success}, failures reported ${s.failures}`);
  }

  const json: Record<string, unknown> = { rows, runs, results, medians: med };
  if (wanted.has('memory')) {
    const big = await replicated(
      Math.ceil(Number(values['big-bytes']) / (statSync(ADULT).size / 48842)),
      'adult-1gb.csv',
    );
    const memory = measureMemory(big);
    json.memory = memory;
    lines.push('');
    lines.push(`Memory, ${(statSync(big).size / 1e9).toFixed(2)} GB CSV (${fmt(memory.rows)} rows):`);
    lines.push('| command | seconds | peak RSS MB |');
    lines.push('|---|--:|--:|');
    for (const m of memory.commands)
      lines.push(`| ${m.command} | ${m.seconds.toFixed(1)} | ${fmt(m.peak_rss_mb)} |`);
  }
  const report = lines.join('\n');
  process.stdout.write(`${report}\n`);
  mkdirSync(OUT, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(OUT, `data-${stamp}.json`), JSON.stringify(json, null, 2));
  writeFileSync(join(OUT, `data-${stamp}.md`), `${report}\n`);
}

/** `slipway data add` (row count, hash and store, profile) and `slipway data profile --json` of a big file. */
function measureMemory(file: string): {
  rows: number;
  commands: { command: string; seconds: number; peak_rss_mb: number }[];
} {
  const dir = mkdtempSync(join(tmpdir(), 'bench-data-'));
  const commands: { command: string; seconds: number; peak_rss_mb: number }[] = [];
  let rows = 0;
  try {
    const cli = (label: string, args: string[]) => {
      const rssFile = join(dir, 'rss');
      const t0 = performance.now();
      const r = spawnSync(
        process.execPath,
        ['--import', peakRssImport, join(ROOT, 'bin', 'slipway.js'), ...args],
        {
          cwd: ROOT,
          encoding: 'utf8',
          env: { ...process.env, BENCH_RSS_FILE: rssFile },
          maxBuffer: 64 << 20,
        },
      );
      const seconds = (performance.now() - t0) / 1000;
      if (r.status !== 0)
        throw new Error(`slipway ${args.join(' ')}: exit ${r.status}\n${r.stderr.slice(-2000)}`);
      const peak = Number(readFileSync(rssFile, 'utf8')) / 1024;
      commands.push({ command: label, seconds, peak_rss_mb: peak });
      log(`memory: ${label}: ${seconds.toFixed(1)} s, peak rss ${fmt(peak)} MB`);
      return r.stdout;
    };
    const profile = JSON.parse(
      cli('slipway data profile <file> --json', ['data', 'profile', file, '--json']),
    );
    rows = profile.rows;
    cli('slipway data add <file>', [
      'data',
      'add',
      file,
      '--name',
      'big',
      '--data-dir',
      join(dir, 'store'),
      '--json',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, commands };
}

interface SchemaLike {
  columns: {
    name: string;
    type: string;
    nullable?: boolean;
    range?: { min?: number | string; max?: number | string };
    categories?: (string | number | boolean)[];
    length?: { min?: number; max?: number };
    pattern?: string;
    unique?: boolean;
    mostly?: Record<string, number>;
  }[];
  table?: { rows?: { min?: number; max?: number } };
}

/** The schema's rules in the peer's terms (bench/data/ge_validate.py turns them into expectations). */
function rulesFromSchema(schema: SchemaLike): unknown {
  return {
    columns: schema.columns.map((c) => c.name),
    rows: schema.table?.rows,
    rules: schema.columns.map((c) => {
      const rule: Record<string, unknown> = {
        column: c.name,
        type: c.type === 'integer' || c.type === 'float' ? c.type : 'string',
        nullable: c.nullable ?? true,
      };
      if (c.range) Object.assign(rule, { min: c.range.min, max: c.range.max });
      if (c.categories) rule.values = c.categories;
      if (c.length) rule.length = c.length;
      if (c.pattern) rule.pattern = c.pattern;
      if (c.unique) rule.unique = true;
      if (c.mostly) rule.mostly = c.mostly;
      return rule;
    }),
  };
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  child(argv[1]!, argv[2]!, argv[3]).catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
