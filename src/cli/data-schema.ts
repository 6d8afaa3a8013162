import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { openStore } from '../app.js';
import {
  Datasets,
  ENVIRONMENTS,
  type Environment,
  inferSchema,
  parseSchema,
  profileTable,
  Quarantine,
  TableProfile,
  type ValidationReport,
  validateTable,
} from '../data/index.js';
import { fileProblem, SlipwayError } from '../errors/index.js';
import { addStoreOptions, runCommand, type StoreFlags, storeSettings } from './store-flags.js';

const out = (text: string) => process.stdout.write(text);

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').filter((v) => v !== '')];
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function environment(value: string): Environment {
  if (!ENVIRONMENTS.includes(value as Environment)) {
    throw new InvalidArgumentError(`must be one of ${ENVIRONMENTS.join(', ')}`);
  }
  return value as Environment;
}

/** A file's profile, or the stored profile of a dataset version (`name@version`), its tables merged. */
async function sourceProfile(source: string, flags: StoreFlags): Promise<TableProfile> {
  if (existsSync(source) || !/^[^@/\\]+(@[^@/\\]+)?$/.test(source)) return profileTable(source);
  const store = await openStore(storeSettings(flags));
  try {
    const version = await new Datasets(store.db, store.artifacts).show(source);
    const tables = Object.values((version.profile ?? {}) as Record<string, unknown>);
    if (tables.length === 0) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `dataset version ${version.ref} has no profiled tables`,
      );
    }
    const [first, ...rest] = tables.map((t) => TableProfile.fromJSON(t));
    for (const t of rest) first!.merge(t);
    return first!;
  } finally {
    await store.close();
  }
}

function printReport(report: ValidationReport, source: string): void {
  const failed = report.rules.filter((r) => !r.success);
  out(
    `${report.success ? 'PASSED' : 'FAILED'}: ${source}, ${report.rows_checked} rows (${report.environment}), ` +
      `${report.rules.length - failed.length} of ${report.rules.length} rules passed\n`,
  );
  for (const r of failed) {
    const where = r.column === null ? 'table' : r.column;
    const mostly = r.mostly < 1 ? ` (mostly ${r.mostly})` : '';
    out(`  FAIL ${where}: ${r.rule} ${r.expected}${mostly}: ${r.failed} of ${r.checked} failed\n`);
    const examples = report.failures.filter((f) => f.rule === r.rule && f.column === r.column).slice(0, 5);
    for (const f of examples) {
      out(`       ${f.row === null ? '' : `row ${f.row}: `}${JSON.stringify(f.value)}\n`);
    }
  }
  const relaxed = report.rules.filter((r) => r.success && r.failed > 0);
  for (const r of relaxed) {
    out(
      `  pass ${r.column ?? 'table'}: ${r.rule} ${r.expected}: ${r.failed} of ${r.checked} failed, within mostly ${r.mostly}\n`,
    );
  }
}

/** `slipway data schema infer` and `slipway data validate`. */
export function registerSchemaCommands(data: Command): void {
  const schema = data
    .command('schema')
    .description('Schemas: what each column may hold, inferred from data and edited by hand');
  addStoreOptions(
    schema
      .command('infer')
      .description('Write an editable schema inferred from a table file or a dataset version (name@version)')
      .argument('<source>', 'a table file, or a dataset version whose stored profile is used')
      .requiredOption('-o, --output <file>', 'where to write schema.json (- for stdout)')
      .option(
        '--label <column>',
        'a label column: required in training, absent at serving (repeatable)',
        collect,
        [],
      )
      .option('--max-categories <n>', 'most categories a column may list', nonNegative, 100)
      .option(
        '--range-margin <share>',
        'share of the observed span added to each side of numeric ranges',
        (v: string) => {
          const x = Number(v);
          if (!(x >= 0 && x <= 10)) throw new InvalidArgumentError('must be a number from 0 to 10');
          return x;
        },
        0.05,
      ),
  ).action(
    (
      source: string,
      flags: StoreFlags & { output: string; label: string[]; maxCategories: number; rangeMargin: number },
    ) =>
      runCommand(async () => {
        const profile = await sourceProfile(source, flags);
        const missing = flags.label.filter((l) => !profile.get(l));
        if (missing.length > 0) {
          throw new SlipwayError(
            'SLIPWAY_ERR_BAD_REQUEST',
            `--label: no column ${missing.map((m) => `'${m}'`).join(', ')} in ${source}`,
          );
        }
        const inferred = inferSchema(profile, {
          labels: flags.label,
          maxCategories: flags.maxCategories,
          rangeMargin: flags.rangeMargin,
        });
        const text = `${JSON.stringify(inferred, null, 2)}\n`;
        if (flags.output === '-') return void out(text);
        await writeFile(flags.output, text);
        out(`wrote ${flags.output}: ${inferred.columns.length} columns from ${profile.rows} rows\n`);
      }),
  );

  data
    .command('validate')
    .description('Check every row of a table file against a schema; exit code 1 when a rule fails')
    .argument('<file>', 'the table file (CSV, JSON Lines, Parquet)')
    .requiredOption('--schema <file>', 'the schema (schema.json)')
    .option('--json', 'print the report as JSON')
    .option(
      '--env <environment>',
      `the environment the data is for (${ENVIRONMENTS.join(', ')})`,
      environment,
      'training',
    )
    .option(
      '--max-failures <n>',
      'failures listed in the report; 0 lists all (counts are always exact)',
      nonNegative,
      1000,
    )
    .action(
      (file: string, flags: { schema: string; json?: boolean; env: Environment; maxFailures: number }) =>
        runCommand(async () => {
          let json: unknown;
          try {
            json = JSON.parse(await readFile(flags.schema, 'utf8'));
          } catch (err) {
            throw new SlipwayError(
              'SLIPWAY_ERR_BAD_REQUEST',
              `--schema ${flags.schema}: ${fileProblem(err)}`,
            );
          }
          const report = await validateTable(file, parseSchema(json), {
            environment: flags.env,
            maxFailures: flags.maxFailures,
          });
          if (flags.json) out(`${JSON.stringify(report, null, 2)}\n`);
          else printReport(report, file);
          if (!report.success) process.exitCode = 1;
        }),
    );
}

/** `slipway data quarantine list|export`: rows serving set aside in `quarantine` mode. */
export function registerQuarantineCommands(data: Command): void {
  const q = data
    .command('quarantine')
    .description('Request rows set aside by models in quarantine mode, with why');
  addStoreOptions(
    q
      .command('list')
      .description('List quarantined rows, newest first (without --model: counts per model and version)')
      .option('--model <name>', 'only this model')
      .option('--version <n>', 'only this version (with --model)')
      .option('--limit <n>', 'rows to list', nonNegative, 20)
      .option('--json', 'print JSON'),
  ).action((flags: StoreFlags & { model?: string; version?: string; limit: number; json?: boolean }) =>
    runCommand(async () => {
      const store = await openStore(storeSettings(flags));
      try {
        const quarantine = new Quarantine(store.db);
        if (flags.model === undefined) {
          const counts = await quarantine.counts();
          if (flags.json) return void out(`${JSON.stringify(counts, null, 2)}\n`);
          if (counts.length === 0) return void out('no quarantined rows\n');
          for (const c of counts) out(`${c.model}  version ${c.version}  ${c.rows} rows\n`);
          return;
        }
        const rows = await quarantine.list({
          model: flags.model,
          version: flags.version,
          limit: flags.limit,
        });
        if (flags.json) return void out(`${JSON.stringify(rows, null, 2)}\n`);
        for (const r of rows) {
          const why = (r.problems as { field: string | null; rule: string; expected: string }[])
            .map((p) => `${p.field ?? 'table'} ${p.rule} (expected ${p.expected})`)
            .join('; ');
          out(
            `${new Date(r.createdMs).toISOString()}  ${r.model}@${r.version}  ${r.requestId ?? '-'} row ${r.row}: ${why}\n  ${JSON.stringify(r.record)}\n`,
          );
        }
      } finally {
        await store.close();
      }
    }),
  );
  addStoreOptions(
    q
      .command('export')
      .description(
        'Write quarantined rows as JSON Lines (the record, plus _model, _version, _request_id, _row, _problems)',
      )
      .requiredOption('--model <name>', 'the model')
      .option('--version <n>', 'only this version')
      .requiredOption('-o, --output <file>', 'the .jsonl file to write (- for stdout)')
      .option('--limit <n>', 'most rows to export', nonNegative, 1_000_000),
  ).action((flags: StoreFlags & { model: string; version?: string; output: string; limit: number }) =>
    runCommand(async () => {
      const store = await openStore(storeSettings(flags));
      try {
        const rows = await new Quarantine(store.db).list({
          model: flags.model,
          version: flags.version,
          limit: flags.limit,
        });
        const text = rows
          .reverse()
          .map((r) =>
            JSON.stringify({
              ...r.record,
              _model: r.model,
              _version: r.version,
              _request_id: r.requestId ?? null,
              _row: r.row,
              _time: new Date(r.createdMs).toISOString(),
              _problems: r.problems,
            }),
          )
          .join('\n');
        if (flags.output === '-') return void out(text === '' ? '' : `${text}\n`);
        await writeFile(flags.output, text === '' ? '' : `${text}\n`);
        out(`wrote ${rows.length} rows to ${flags.output}\n`);
      } finally {
        await store.close();
      }
    }),
  );
}
