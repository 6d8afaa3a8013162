import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { openStore } from '../app.js';
import {
  Datasets,
  FittedSteps,
  fitSteps,
  isFittedStepsJson,
  type RowBatch,
  readTable,
  writeCsv,
} from '../data/index.js';
import { fileProblem, SlipwayError } from '../errors/index.js';
import { addStoreOptions, runCommand, type StoreFlags, storeSettings } from './store-flags.js';

const out = (text: string) => process.stdout.write(text);

const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};

interface SourceFlags extends StoreFlags {
  table?: string;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Runs `fn` on a local table file: the file itself, or — for `name@version` — the version's table
 * fetched (and verified) into a temporary folder, removed afterwards. `label` is what the fitted
 * steps record as `fitted_on`.
 */
async function withTable<T>(
  source: string,
  flags: SourceFlags,
  fn: (path: string, label: string) => Promise<T>,
): Promise<T> {
  if (await isFile(source)) return fn(source, source);
  if (!source.includes('@')) {
    return bad(`${source}: no such file (a dataset version is written name@number or name@latest)`);
  }
  const store = await openStore(storeSettings(flags));
  const dir = await mkdtemp(join(tmpdir(), 'slipway-steps-'));
  try {
    const datasets = new Datasets(store.db, store.artifacts);
    const v = await datasets.show(source);
    const tables = v.manifest.files.filter((f) => f.format !== null);
    let file = tables[0];
    if (flags.table !== undefined) {
      file = tables.find((f) => f.path === flags.table) as (typeof tables)[number];
      if (!file)
        bad(`${v.ref} has no table '${flags.table}' (tables: ${tables.map((f) => f.path).join(', ')})`);
    } else if (tables.length !== 1) {
      bad(
        tables.length === 0
          ? `${v.ref} holds no table file`
          : `${v.ref} holds ${tables.length} tables (${tables.map((f) => f.path).join(', ')}): choose one with --table`,
      );
    }
    await datasets.get(v.ref, dir);
    const label = tables.length === 1 ? v.ref : `${v.ref}:${file.path}`;
    return await fn(join(dir, ...file.path.split('/')), label);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await store.close();
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return bad(`${path}: ${fileProblem(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    return bad(`${path}: not JSON (${(err as Error).message})`);
  }
}

/** Wraps an error from a spec or fitted file so the message names the file. */
async function naming<T>(file: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SlipwayError)
      throw new SlipwayError(err.code, `${file}: ${err.message}`, { cause: err });
    throw err;
  }
}

async function fitFile(specFile: string, spec: unknown, path: string, label: string): Promise<FittedSteps> {
  return naming(specFile, () => fitSteps(spec, () => readTable(path), { fittedOn: label }));
}

async function writeFitted(path: string, fitted: FittedSteps): Promise<void> {
  await writeFile(path, `${JSON.stringify(fitted, null, 2)}\n`);
}

/**
 * Warns on stderr about columns the steps read that a table lacks (they are written as missing);
 * a table with none of them is an error, as it is surely not the table the steps were fitted for.
 */
async function* warnAbsent(
  batches: AsyncIterable<RowBatch>,
  fitted: FittedSteps,
  source: string,
): AsyncGenerator<RowBatch> {
  let checked = false;
  for await (const b of batches) {
    if (!checked) {
      checked = true;
      const absent = fitted.absentColumns(b.columns);
      if (absent.length > 0 && absent.length === fitted.absentColumns([]).length) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `${source} has none of the columns the steps read (${absent.join(', ')}); its columns are ${b.columns.join(', ')}`,
        );
      }
      if (absent.length > 0) {
        process.stderr.write(
          `warning: ${source} lacks column${absent.length === 1 ? '' : 's'} ${absent.join(', ')}: read as missing\n`,
        );
      }
    }
    yield b;
  }
}

/**
 * `slipway data fit` and `slipway data transform`: cleaning steps fitted on a table file or a
 * dataset version and run over a file, through the same transform the serving path runs.
 * Registered on the `data` command group.
 */
export function registerStepCommands(data: Command): void {
  addStoreOptions(
    data
      .command('fit')
      .description(
        'Fit cleaning steps (impute, scale, encode, …) on a table file or a dataset version; write the fitted steps as JSON',
      )
      .argument('<source>', 'a table file (CSV, JSON Lines, Parquet), or a dataset version name@number')
      .requiredOption('--steps <file>', 'the steps spec (JSON; see docs/data-steps.md)')
      .requiredOption('-o, --output <file>', 'where to write the fitted steps')
      .option('--table <path>', 'the table to fit on, when the dataset version holds several'),
  ).action((source: string, flags: SourceFlags & { steps: string; output: string }) =>
    runCommand(async () => {
      const spec = await readJson(flags.steps);
      if (isFittedStepsJson(spec)) {
        bad(`${flags.steps} already holds fitted steps; fit takes a steps spec ({"steps": [...]})`);
      }
      const fitted = await withTable(source, flags, (path, label) => fitFile(flags.steps, spec, path, label));
      await writeFitted(flags.output, fitted);
      out(
        `fitted ${fitted.steps.length} step${fitted.steps.length === 1 ? '' : 's'} on ${fitted.fittedOn} (${fitted.rows} rows): ` +
          `${fitted.columns.length} columns → ${fitted.outputColumns.length}; wrote ${flags.output}\n`,
      );
    }),
  );

  addStoreOptions(
    data
      .command('transform')
      .description(
        'Run fitted cleaning steps over a table file (or dataset version) and write the result as CSV',
      )
      .argument('<source>', 'a table file (CSV, JSON Lines, Parquet), or a dataset version name@number')
      .requiredOption('--steps <file>', 'fitted steps (from `slipway data fit`), or a steps spec with --fit')
      .requiredOption('-o, --output <file>', 'the CSV file to write')
      .option('--fit', 'the steps file is a spec: fit it on this same table first')
      .option('--save-fitted <file>', 'with --fit, also write the fitted steps here')
      .option('--table <path>', 'the table to transform, when the dataset version holds several'),
  ).action(
    (
      source: string,
      flags: SourceFlags & { steps: string; output: string; fit?: boolean; saveFitted?: string },
    ) =>
      runCommand(async () => {
        const json = await readJson(flags.steps);
        const fittedFile = isFittedStepsJson(json);
        if (fittedFile && flags.fit) bad(`${flags.steps} is already fitted; drop --fit to apply it as it is`);
        if (!fittedFile && !flags.fit) {
          bad(
            `${flags.steps} is a steps spec, not fitted steps: fit it first (slipway data fit <file|dataset@version> --steps ${flags.steps} -o fitted.json), or pass --fit to fit it on ${source}`,
          );
        }
        if (flags.saveFitted !== undefined && !flags.fit) bad('--save-fitted goes with --fit');
        await withTable(source, flags, async (path, label) => {
          const fitted = fittedFile
            ? await naming(flags.steps, () => FittedSteps.fromJSON(json))
            : await fitFile(flags.steps, json, path, label);
          if (flags.saveFitted !== undefined) await writeFitted(flags.saveFitted, fitted);
          const written = await writeCsv(
            flags.output,
            fitted.transformTable(warnAbsent(readTable(path), fitted, source)),
            {
              columns: fitted.outputColumns,
            },
          );
          out(`wrote ${written.rows} rows × ${fitted.outputColumns.length} columns to ${flags.output}\n`);
        });
      }),
  );
}
