import { stat, writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { fileProblem } from '../errors/index.js';
import {
  analyzeDrift,
  type ColumnOverride,
  DEFAULT_DRIFT_SHARE,
  type DriftAnalysis,
  renderDriftHtml,
  statTests,
} from '../monitoring/drift/index.js';
import { settle } from './settle.js';
import { runCommand } from './store-flags.js';

interface DriftFlags {
  reference: string;
  current: string;
  json?: boolean;
  html?: string;
  test: string[];
  threshold: string[];
  driftShare?: number;
  failOnDrift?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function probability(value: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x < 0 || x > 1) {
    throw new InvalidArgumentError('expected a number from 0 to 1');
  }
  return x;
}

/** `col=value` pairs (or a bare value for every column) into overrides. */
function overrides(flags: DriftFlags): { all: ColumnOverride; columns: Record<string, ColumnOverride> } {
  const all: ColumnOverride = {};
  const columns: Record<string, ColumnOverride> = {};
  const put = (item: string, field: 'test' | 'threshold', flag: string) => {
    const at = item.lastIndexOf('=');
    const column = at < 0 ? null : item.slice(0, at);
    const raw = at < 0 ? item : item.slice(at + 1);
    let value: string | number = raw;
    if (field === 'threshold') {
      value = Number(raw);
      // A p-value or a distance: never below 0, as the drift API and config.json hold too.
      if (raw.trim() === '' || !Number.isFinite(value) || value < 0)
        throw new Error(`${flag} ${item}: not a number of at least 0`);
    } else if (!statTests.has(raw)) {
      throw new Error(`${flag} ${item}: no drift test '${raw}' (known: ${[...statTests.keys()].join(', ')})`);
    }
    if (column !== null && !columns[column]) columns[column] = {};
    const target = column === null ? all : columns[column];
    (target as Record<string, unknown>)[field] = value;
  };
  for (const t of flags.test) put(t, 'test', '--test');
  for (const t of flags.threshold) put(t, 'threshold', '--threshold');
  return { all, columns };
}

function formatScore(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  return Math.abs(x) < 1e-4 ? x.toExponential(3) : x.toFixed(4);
}

function text(analysis: DriftAnalysis, driftShare: number): string {
  const rows = [['column', 'type', 'test', 'score', 'threshold', 'drift']];
  for (const c of analysis.columns) {
    const d = c.drift;
    rows.push([
      c.name,
      d.type,
      d.test,
      formatScore(d.score),
      String(d.threshold),
      d.drifted ? 'DRIFT' : 'ok',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) =>
    r
      .map((cell, i) => (i === 3 || i === 4 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
  const { report } = analysis;
  const drifted = analysis.columns.filter((c) => c.drift.drifted).length;
  lines.push('');
  lines.push(
    `${drifted} of ${analysis.columns.length} columns drifted (share ${report.drift_share.toFixed(4)}, threshold ${driftShare}): ` +
      (report.dataset_drift ? 'dataset drift' : 'no dataset drift'),
  );
  for (const s of analysis.skipped) lines.push(`skipped ${s.name}: ${s.reason}`);
  return `${lines.join('\n')}\n`;
}

/**
 * `slipway drift --reference ref.csv --current cur.csv [--json] [--html report.html]`: Evidently's
 * DataDriftPreset offline on two files. Exit code 0, or 1 with --fail-on-drift when the dataset
 * drifts (and 1 on an error, with `error: …` on stderr).
 */
export function registerDriftCommand(program: Command): void {
  program
    .command('drift')
    .description(
      "Compare a current table with a reference column by column with Evidently's drift tests and defaults (CSV, JSON Lines, Parquet)",
    )
    .requiredOption('--reference <file>', 'the reference table (e.g. the training data)')
    .requiredOption('--current <file>', 'the current table')
    .option(
      '--json',
      'print {"dataset_drift", "drift_share", "columns": {name: {type, test, score, threshold, drifted}}}',
    )
    .option('--html <file>', 'also write a self-contained HTML report with a distribution chart per column')
    .option(
      '--test <col=name>',
      `a column's test (repeatable; a bare name sets every column): ${[...statTests.keys()].join(', ')}`,
      collect,
      [],
    )
    .option(
      '--threshold <col=x>',
      "a column's threshold (repeatable; a bare number sets every column)",
      collect,
      [],
    )
    .option(
      '--drift-share <x>',
      `dataset drift when at least this share of columns drift (default ${DEFAULT_DRIFT_SHARE})`,
      probability,
    )
    .option('--fail-on-drift', 'exit with code 1 when the dataset drifts (for CI)')
    .action((flags: DriftFlags) =>
      runCommand(async () => {
        const { all, columns } = overrides(flags);
        const driftShare = flags.driftShare ?? DEFAULT_DRIFT_SHARE;
        // A file that cannot be read is named by its flag, not only by the system's message.
        for (const [flag, path] of [
          ['--reference', flags.reference],
          ['--current', flags.current],
        ] as const) {
          const s = await stat(path).catch((err: NodeJS.ErrnoException) => err);
          if (s instanceof Error) throw new Error(`${flag} ${path}: ${fileProblem(s)}`);
          if (!s.isFile()) throw new Error(`${flag} ${path}: not a file`);
        }
        const analysis = await analyzeDrift(flags.reference, flags.current, {
          driftShare,
          test: all.test,
          threshold: all.threshold,
          columns,
        });
        // Nothing compared is no evidence of no drift: a gate (--fail-on-drift) must not pass on it.
        if (Object.keys(analysis.report.columns).length === 0) {
          throw new Error(
            `no column could be compared: the columns --current shares with --reference are empty or all missing (NaN) in one of them (${flags.current}, ${flags.reference})`,
          );
        }
        if (flags.html) {
          await writeFile(
            flags.html,
            renderDriftHtml(analysis, { reference: flags.reference, current: flags.current, driftShare }),
          );
        }
        process.stdout.write(
          flags.json ? `${JSON.stringify(analysis.report)}\n` : text(analysis, driftShare),
        );
        if (flags.failOnDrift && analysis.report.dataset_drift) process.exitCode = 1;
      }),
    );
}

/**
 * `slipway drift` on its own: the entry point calls this for the drift command, so it loads the
 * drift engine and table readers only — not the server, the store or ONNX Runtime (a third of a
 * second less on every run).
 */
export async function driftMain(argv: string[]): Promise<void> {
  const program = new Command('slipway');
  registerDriftCommand(program);
  await program.parseAsync(argv);
  await settle();
}
