import { type Command, InvalidArgumentError } from 'commander';
import { openStore } from '../app.js';
import {
  Datasets,
  type DatasetVersion,
  type ManifestFile,
  profileTable,
  shortDigest,
  type TableFormat,
  TableProfile,
  type TableProfileJson,
} from '../data/index.js';
import { registerQuarantineCommands, registerSchemaCommands } from './data-schema.js';
import { registerStepCommands } from './data-steps.js';
import { addStoreOptions, cliActor, runCommand, type StoreFlags, storeSettings } from './store-flags.js';

const out = (text: string) => process.stdout.write(text);

/** Columns padded to their widest cell; numbers (right-aligned) are marked by the caller. */
function table(rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .map((l) => `${l}\n`)
    .join('');
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  for (; v >= 1024 && u < units.length - 1; u++) v /= 1024;
  return `${v.toFixed(1)} ${units[u]}`;
}

const count = (n: number | null) => (n === null ? '-' : n.toLocaleString('en-US'));
const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
const tagText = (tags: Record<string, string>) =>
  Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** A progress bar on stderr when it is a terminal (redrawn at most 10 times a second); nothing otherwise. */
function progressBar(
  label: string,
  showBytes = true,
): { update: (done: number, total: number) => void; done: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let drawn = false;
  const draw = (done: number, total: number) => {
    const width = 30;
    const f = total > 0 ? Math.min(1, done / total) : 1;
    const fill = Math.round(f * width);
    process.stderr.write(
      `\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(f * 100).toFixed(0).padStart(3)}%${showBytes ? ` ${bytes(done)}/${bytes(total)}` : ''}\x1b[K`,
    );
    drawn = true;
  };
  return {
    update(done, total) {
      const t = Date.now();
      if (t - last < 100 && done < total) return;
      last = t;
      draw(done, total);
    },
    done() {
      if (drawn) process.stderr.write('\n');
    },
  };
}

/**
 * A stored profile as the CLI prints it: per file, the columns' headline statistics (the full,
 * mergeable state stays in the store; `data profile <file> --json` prints a file's whole summary).
 */
function compactProfile(profile: unknown): unknown {
  if (profile === null || typeof profile !== 'object') return profile ?? null;
  const out: Record<string, unknown> = {};
  for (const [file, json] of Object.entries(profile as Record<string, TableProfileJson>)) {
    const s = TableProfile.fromJSON(json).summary();
    out[file] = {
      rows: s.rows,
      columns: s.columns.map((c) => ({
        name: c.name,
        type: c.type,
        count: c.count,
        missing: c.missing,
        distinct: c.distinct,
        ...(c.min !== undefined ? { min: c.min, max: c.max } : {}),
        ...(c.mean !== undefined ? { mean: c.mean, std: c.std } : {}),
      })),
    };
  }
  return out;
}

function forDisplay<T extends { profile: unknown }>(v: T): T {
  return { ...v, profile: compactProfile(v.profile) };
}

function collectTag(value: string, previous: Record<string, string>): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`${JSON.stringify(value)} must be key=value`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}

/** Runs `fn` on the store's datasets and closes the store. */
async function withDatasets(flags: StoreFlags, fn: (datasets: Datasets) => Promise<void>): Promise<void> {
  const store = await openStore(storeSettings(flags));
  try {
    // Every version stores the profile of each of its table files: the reference distributions
    // validation and drift monitoring compare with.
    const profiler = async (files: { path: string; local: string; format: TableFormat }[]) => {
      const profiles: Record<string, unknown> = {};
      for (const f of files) {
        profiles[f.path] = (await profileTable(f.local, { read: { format: f.format } })).toJSON();
      }
      return profiles;
    };
    await fn(new Datasets(store.db, store.artifacts, { profiler }));
  } finally {
    await store.close();
  }
}

function fileRows(files: readonly ManifestFile[]): string[][] {
  return [
    ['PATH', 'FORMAT', 'ROWS', 'SIZE', 'SHA256'],
    ...files.map((f) => [f.path, f.format ?? '-', count(f.rows), bytes(f.size), shortDigest(f.sha256)]),
  ];
}

function summary(v: DatasetVersion): string {
  const n = v.manifest.files.length;
  return `${n} file${n === 1 ? '' : 's'}, ${count(v.rows)} rows, ${bytes(v.size)}`;
}

/** `slipway data add|list|show|get|diff`: dataset versions, straight on the store (no server needed). */
export function registerDataCommands(program: Command): void {
  const data = program
    .command('data')
    .description('Dataset versions (add, list, show, get, diff), profiles, schemas and validation');
  registerSchemaCommands(data);
  registerQuarantineCommands(data);
  registerStepCommands(data);

  data
    .command('profile')
    .description(
      'Profile a table file (CSV, JSON Lines, Parquet): types, counts, missing, distinct, moments, quantiles, top values',
    )
    .argument('<file>', 'the table file')
    .option('--json', 'print the whole profile summary as JSON')
    .option(
      '--threads <n>',
      'threads to profile a CSV of 32 MiB or more on (default: two when there are two CPUs or more)',
    )
    .action((file: string, flags: { json?: boolean; threads?: string }) =>
      runCommand(async () => {
        const threads = flags.threads === undefined ? undefined : Number(flags.threads);
        if (threads !== undefined && (!Number.isSafeInteger(threads) || threads < 1)) {
          throw new InvalidArgumentError('--threads must be a positive integer');
        }
        const summary = (await profileTable(file, threads === undefined ? {} : { threads })).summary();
        if (flags.json) return void out(`${JSON.stringify(summary, null, 2)}\n`);
        const rows = [['COLUMN', 'TYPE', 'COUNT', 'MISSING', 'DISTINCT', 'MIN', 'MAX', 'MEAN', 'STD']];
        const num = (v: number | string | undefined) =>
          v === undefined ? '-' : typeof v === 'number' ? String(Number(v.toPrecision(6))) : v;
        for (const c of summary.columns) {
          rows.push([
            c.name,
            c.type,
            String(c.count),
            String(c.missing),
            `${c.distinct}${c.distinctExact ? '' : '~'}`,
            num(c.min),
            num(c.max),
            num(c.mean),
            num(c.std),
          ]);
        }
        out(`${summary.rows} rows\n${table(rows, new Set([2, 3, 4, 5, 6, 7, 8]))}`);
      }),
    );

  addStoreOptions(
    data
      .command('add')
      .description('Add a file or folder as an immutable, content-addressed version of a dataset')
      .argument('<path>', 'a table file (CSV, JSON Lines, Parquet) or a folder')
      .requiredOption('--name <name>', 'dataset name')
      .option('--tag <key=value>', 'tag the version (repeatable)', collectTag, {})
      .option('--json', 'print the version as JSON'),
  ).action(
    (path: string, flags: StoreFlags & { name: string; tag: Record<string, string>; json?: boolean }) =>
      runCommand(() =>
        withDatasets(flags, async (datasets) => {
          // Tables are read twice (rows, then bytes): a byte count would show twice the file's size.
          const bar = progressBar(`adding ${path}`, false);
          let v: DatasetVersion & { created: boolean };
          try {
            v = await datasets.add(
              path,
              { name: flags.name, tags: flags.tag, onProgress: bar.update },
              cliActor(),
            );
          } finally {
            bar.done();
          }
          if (flags.json) return void out(`${JSON.stringify(forDisplay(v), null, 2)}\n`);
          out(
            v.created
              ? `added ${v.ref} (${shortDigest(v.digest)}): ${summary(v)}\n`
              : `unchanged: ${v.ref} (${shortDigest(v.digest)}) already holds this content\n`,
          );
        }),
      ),
  );

  addStoreOptions(
    data
      .command('list')
      .description('List datasets, or the versions of one')
      .argument('[name]', 'a dataset: list its versions')
      .option('--json', 'print JSON'),
  ).action((name: string | undefined, flags: StoreFlags & { json?: boolean }) =>
    runCommand(() =>
      withDatasets(flags, async (datasets) => {
        if (name) {
          const versions = await datasets.versions(name);
          if (flags.json) return void out(`${JSON.stringify(versions.map(forDisplay), null, 2)}\n`);
          out(
            table(
              [
                ['VERSION', 'DIGEST', 'FILES', 'ROWS', 'SIZE', 'CREATED', 'CREATOR', 'TAGS'],
                ...versions.map((v) => [
                  v.ref,
                  shortDigest(v.digest),
                  String(v.manifest.files.length),
                  count(v.rows),
                  bytes(v.size),
                  when(v.createdMs),
                  v.creator,
                  tagText(v.tags),
                ]),
              ],
              new Set([2, 3, 4]),
            ),
          );
          return;
        }
        const sets = await datasets.list();
        if (flags.json) return void out(`${JSON.stringify(sets, null, 2)}\n`);
        if (sets.length === 0) return void out('no datasets yet: slipway data add <file|dir> --name N\n');
        out(
          table(
            [
              ['NAME', 'VERSIONS', 'LATEST', 'DIGEST', 'FILES', 'ROWS', 'SIZE', 'CREATED'],
              ...sets.map((s) => [
                s.name,
                String(s.versions),
                s.latest ? String(s.latest.number) : '-',
                s.latest ? shortDigest(s.latest.digest) : '-',
                s.latest ? String(s.latest.manifest.files.length) : '-',
                s.latest ? count(s.latest.rows) : '-',
                s.latest ? bytes(s.latest.size) : '-',
                s.latest ? when(s.latest.createdMs) : '-',
              ]),
            ],
            new Set([1, 2, 4, 5, 6]),
          ),
        );
      }),
    ),
  );

  addStoreOptions(
    data
      .command('show')
      .description('Show a version and its files')
      .argument('<ref>', 'name, name@number or name@<digest prefix>')
      .option('--json', 'print JSON'),
  ).action((ref: string, flags: StoreFlags & { json?: boolean }) =>
    runCommand(() =>
      withDatasets(flags, async (datasets) => {
        const v = await datasets.show(ref);
        if (flags.json) return void out(`${JSON.stringify(forDisplay(v), null, 2)}\n`);
        out(
          `${v.ref}\n` +
            `  digest   ${v.digest}\n` +
            `  created  ${when(v.createdMs)} by ${v.creator}\n` +
            `  content  ${summary(v)}\n` +
            (Object.keys(v.tags).length ? `  tags     ${tagText(v.tags)}\n` : '') +
            `  profile  ${v.profile === null ? 'none' : 'stored'}\n\n`,
        );
        out(table(fileRows(v.manifest.files), new Set([2, 3])));
      }),
    ),
  );

  addStoreOptions(
    data
      .command('get')
      .description("Write a version's files into a folder, each verified against its SHA-256")
      .argument('<ref>', 'name@number or name@<digest prefix>')
      .requiredOption('-o, --output <dir>', 'folder to write into (created if missing)'),
  ).action((ref: string, flags: StoreFlags & { output: string }) =>
    runCommand(() =>
      withDatasets(flags, async (datasets) => {
        const bar = progressBar(`getting ${ref}`);
        let written: string[];
        try {
          written = await datasets.get(ref, flags.output, bar.update);
        } finally {
          bar.done();
        }
        const v = await datasets.show(ref);
        out(
          `wrote ${written.length} file${written.length === 1 ? '' : 's'} of ${v.ref} to ${flags.output}\n`,
        );
      }),
    ),
  );

  addStoreOptions(
    data
      .command('diff')
      .description('Files added, removed and changed between two versions')
      .argument('<from>', 'name@version')
      .argument('<to>', 'name@version')
      .option('--json', 'print JSON'),
  ).action((from: string, to: string, flags: StoreFlags & { json?: boolean }) =>
    runCommand(() =>
      withDatasets(flags, async (datasets) => {
        const d = await datasets.diff(from, to);
        if (flags.json) {
          const { from: a, to: b, profiles, ...rest } = d;
          const compact = { from: compactProfile(profiles.from), to: compactProfile(profiles.to) };
          return void out(
            `${JSON.stringify({ from: a.ref, to: b.ref, ...rest, profiles: compact }, null, 2)}\n`,
          );
        }
        out(`${d.from.ref} → ${d.to.ref}\n`);
        for (const f of d.added) out(`+ ${f.path}  (${count(f.rows)} rows, ${bytes(f.size)})\n`);
        for (const f of d.removed) out(`- ${f.path}  (${count(f.rows)} rows, ${bytes(f.size)})\n`);
        for (const c of d.changed) {
          const cols = [...c.columnsAdded.map((x) => `+${x}`), ...c.columnsRemoved.map((x) => `-${x}`)];
          out(
            `~ ${c.path}  (rows ${count(c.from.rows)} → ${count(c.to.rows)}, ${bytes(c.from.size)} → ${bytes(c.to.size)}${cols.length ? `; columns ${cols.join(' ')}` : ''})\n`,
          );
        }
        out(
          `${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed, ${d.unchanged} unchanged\n`,
        );
      }),
    ),
  );
}
