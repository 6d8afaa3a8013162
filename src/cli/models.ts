import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Command, Option } from 'commander';
import { openStore, type Store } from '../app.js';
import { Datasets, FittedSteps, parseSchema, shortDigest } from '../data/index.js';
import { fileProblem, SlipwayError } from '../errors/index.js';
import {
  type ModelVersion,
  parseMetricPairs,
  parseTagPairs,
  type RegisteredModel,
  Registry,
  type SignatureTensor,
} from '../registry/index.js';
import { addStoreOptions, cliActor, runCommand, type StoreFlags, storeSettings } from './store-flags.js';

/** `cli:<os user>`, the actor the audit log records for changes made here. */
function actor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return cliActor();
  }
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Opens the store named by the flags, runs `fn` with a registry over it, closes the store. */
async function withRegistry<T>(
  flags: StoreFlags,
  fn: (registry: Registry, store: Store) => Promise<T>,
): Promise<T> {
  // `slipway models list | head -1` closes the pipe early: that is not a failure.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const settings = storeSettings(flags);
  const store = await openStore(settings);
  try {
    const datasets = new Datasets(store.db, store.artifacts);
    const registry = new Registry(store.db, store.artifacts, {
      servingAlias: settings.servingAlias,
      datasetExists: (ref) => datasets.exists(ref),
    });
    return await fn(registry, store);
  } finally {
    await store.close();
  }
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const when = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
const short = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const tensors = (list: SignatureTensor[]) =>
  list.map((t) => `${t.name} ${t.datatype} [${t.shape.join(',')}]`).join(', ');
const pairs = (o: Record<string, string | number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
const aliasText = (aliases: Record<string, number>) =>
  Object.entries(aliases)
    .map(([a, v]) => `${a}=v${v}`)
    .join(' ');

/**
 * Where a version's data came from: each training and evaluation dataset version with its digest
 * and size, the schema and fitted steps it carries, and what the steps were fitted on.
 */
async function lineage(v: ModelVersion, store: Store): Promise<[string, string][]> {
  const datasets = new Datasets(store.db, store.artifacts);
  const describe = async (d: ModelVersion['trainingData'][number]): Promise<string> => {
    if (d.uri) return d.ref;
    try {
      const ds = await datasets.show(d.ref);
      const files = ds.manifest.files.length;
      return `${ds.ref} (sha256 ${shortDigest(ds.digest)}, ${ds.rows.toLocaleString('en-US')} rows, ${files} file${files === 1 ? '' : 's'}, added ${when(ds.createdMs)})`;
    } catch {
      return `${d.ref} (not in this store)`;
    }
  };
  const rows: [string, string][] = [];
  for (const d of v.trainingData) rows.push(['training data', await describe(d)]);
  for (const d of v.evaluationData) rows.push(['evaluation data', await describe(d)]);
  const files = await store.artifacts.filesUnder(v.artifactPath);
  const has = (name: string) => files.some((f) => f.path === `${v.artifactPath}/${name}`);
  if (has('schema.json')) rows.push(['schema', 'schema.json (checked on every request)']);
  if (has('steps.json')) {
    const got = await store.artifacts.get(`${v.artifactPath}/steps.json`);
    let fittedOn = '';
    if (got) {
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(c as Buffer);
      try {
        const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { fitted_on?: string };
        if (json.fitted_on) fittedOn = `, fitted on ${json.fitted_on}`;
      } catch {
        fittedOn = ', not valid JSON';
      }
    }
    rows.push(['cleaning steps', `steps.json${fittedOn}`]);
  }
  return rows;
}

function versionDetails(v: ModelVersion, lineageRows: [string, string][] = []): string {
  const rows: [string, string][] = [
    ['status', `${v.status}${v.stage === 'None' ? '' : ` (stage ${v.stage})`}`],
    ['created', `${when(v.createdMs)} by ${v.creator}`],
    ['source', v.source],
  ];
  if (v.description) rows.push(['description', v.description]);
  if (v.modelFile) {
    rows.push([
      'file',
      `${v.modelFile.path}  ${v.modelFile.size.toLocaleString('en-US')} bytes  sha256 ${v.modelFile.sha256}`,
    ]);
  } else rows.push(['file', 'no ONNX file (not servable)']);
  if (v.signature) {
    rows.push(['inputs', tensors(v.signature.inputs)]);
    rows.push(['outputs', tensors(v.signature.outputs)]);
  }
  if (Object.keys(v.metrics).length) rows.push(['metrics', pairs(v.metrics)]);
  if (Object.keys(v.tags).length) rows.push(['tags', pairs(v.tags)]);
  if (v.aliases.length) rows.push(['aliases', v.aliases.join(', ')]);
  if (v.runId) rows.push(['run', v.runId]);
  if (v.loggedModelId) rows.push(['logged model', v.loggedModelId]);
  if (lineageRows.length > 0) rows.push(...lineageRows);
  else {
    if (v.trainingData.length) rows.push(['training data', v.trainingData.map((d) => d.ref).join(', ')]);
    if (v.evaluationData.length)
      rows.push(['evaluation data', v.evaluationData.map((d) => d.ref).join(', ')]);
  }
  return formatTable(rows.map(([k, val]) => [`  ${k}`, val]));
}

function modelDetails(m: RegisteredModel): string {
  const rows: [string, string][] = [
    ['created', `${when(m.createdMs)} by ${m.creator}`],
    ['updated', when(m.updatedMs)],
    ['versions', `${m.versionCount}${m.latestVersion === null ? '' : ` (latest v${m.latestVersion})`}`],
    ['aliases', aliasText(m.aliases) || 'none'],
  ];
  if (m.description) rows.push(['description', m.description]);
  if (Object.keys(m.tags).length) rows.push(['tags', pairs(m.tags)]);
  return formatTable(rows.map(([k, val]) => [`  ${k}`, val]));
}

function versionRows(versions: ModelVersion[]): string {
  return formatTable([
    ['VERSION', 'STATUS', 'ALIASES', 'CREATED', 'BY', 'SHA256', 'METRICS'],
    ...versions.map((v) => [
      String(v.version),
      v.status,
      v.aliases.join(',') || '-',
      when(v.createdMs),
      v.creator,
      v.modelFile ? v.modelFile.sha256.slice(0, 12) : '-',
      pairs(v.metrics) || '-',
    ]),
  ]);
}

function parseVersion(raw: string, field = 'version'): number {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${field}: '${raw}' is not a version number`);
  }
  return Number(raw);
}

interface PushFlags extends StoreFlags {
  name: string;
  alias: string[];
  metric: string[];
  tag: string[];
  description?: string;
  trainData: string[];
  evalData: string[];
  source?: string;
  runId?: string;
  servingConfig?: string;
  schema?: string;
  steps?: string;
}

/** Reads a JSON file named by a flag, checked by `check` (which throws naming the field). */
async function jsonFlag(flag: string, path: string, check: (json: unknown) => unknown): Promise<unknown> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
    check(json);
  } catch (err) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${flag} ${path}: ${fileProblem(err)}`);
  }
  return json;
}

/**
 * `slipway models push|list|show|versions|alias|card`: the registry straight on the store
 * (SQLite under --data-dir, or --database-url), no server needed. Changes are recorded in the
 * audit log as `cli:<os user>`; a failure prints its message on stderr and exits 1.
 */
export function registerModelCommands(program: Command): void {
  const models = program
    .command('models')
    .description('The model registry: push, list, show, alias, model cards');

  addStoreOptions(
    models
      .command('push')
      .description('Register an ONNX file as the next version of a model (registering the model if new)')
      .argument('<file>', 'the .onnx file')
      .requiredOption('--name <name>', 'registered model name')
      .option('--alias <alias>', 'point this alias at the new version (repeatable)', collect, [])
      .option('--metric <name=value>', 'a metric of the version (repeatable)', collect, [])
      .option('--tag <key=value>', 'a tag of the version (repeatable)', collect, [])
      .option('--description <text>', 'what this version is')
      .option('--train-data <ref>', 'training data: dataset@version or a URI (repeatable)', collect, [])
      .option('--eval-data <ref>', 'evaluation data: dataset@version or a URI (repeatable)', collect, [])
      .option('--source <uri>', 'where the model came from (default: the file)')
      .option('--run-id <id>', 'the MLflow run that produced it')
      .option(
        '--serving-config <file>',
        'serving settings (a Triton-style config.json) stored with the version',
      )
      .option('--schema <file>', 'a schema (slipway data schema infer) every request is checked against')
      .option('--steps <file>', 'fitted cleaning steps (slipway data fit) run before the model'),
  ).action((file: string, flags: PushFlags) =>
    runCommand(async () => {
      // Flags are checked before anything is read or stored.
      const metrics = parseMetricPairs(flags.metric, '--metric');
      const tags = parseTagPairs(flags.tag, '--tag');
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${file}: ${fileProblem(err)}`);
      }
      let config: Record<string, unknown> | undefined;
      if (flags.servingConfig) {
        try {
          config = JSON.parse(await readFile(flags.servingConfig, 'utf8')) as Record<string, unknown>;
        } catch (err) {
          throw new SlipwayError(
            'SLIPWAY_ERR_BAD_REQUEST',
            `--serving-config ${flags.servingConfig}: ${(err as Error).message}`,
          );
        }
      }
      const jsonFiles: Record<string, unknown> = {};
      if (flags.schema) jsonFiles['schema.json'] = await jsonFlag('--schema', flags.schema, parseSchema);
      if (flags.steps) jsonFiles['steps.json'] = await jsonFlag('--steps', flags.steps, FittedSteps.fromJSON);
      await withRegistry(flags, async (registry) => {
        const before = await registry.getModel(flags.name).catch(() => undefined);
        const v = await registry.createVersion(
          {
            name: flags.name,
            content: { file: bytes, fileName: basename(file) },
            createModel: true,
            description: flags.description,
            metrics,
            tags,
            trainingData: flags.trainData,
            evaluationData: flags.evalData,
            source: flags.source ?? pathToFileURL(resolve(file)).href,
            runId: flags.runId,
            aliases: flags.alias,
            config,
            jsonFiles,
          },
          actor(),
        );
        out(`${before ? 'Registered' : 'Registered new model'} ${v.name} version ${v.version}`);
        out(versionDetails(v));
        for (const alias of flags.alias) {
          const was = before?.aliases[alias];
          out(`  ${alias} → v${v.version}${was === undefined ? '' : ` (was v${was})`}`);
        }
      });
    }),
  );

  addStoreOptions(
    models.command('list').description('List registered models').option('--json', 'print JSON'),
  ).action((flags: StoreFlags & { json?: boolean }) =>
    runCommand(() =>
      withRegistry(flags, async (registry) => {
        const all: RegisteredModel[] = [];
        let token: string | undefined;
        do {
          const page = await registry.searchModels({ maxResults: 1000, pageToken: token });
          all.push(...page.models);
          token = page.nextPageToken ?? undefined;
        } while (token);
        if (flags.json) return out(JSON.stringify(all, null, 2));
        if (all.length === 0) return out('No registered models.');
        out(
          formatTable([
            ['NAME', 'VERSIONS', 'LATEST', 'ALIASES', 'UPDATED', 'DESCRIPTION'],
            ...all.map((m) => [
              m.name,
              String(m.versionCount),
              m.latestVersion === null ? '-' : String(m.latestVersion),
              aliasText(m.aliases) || '-',
              when(m.updatedMs),
              short(m.description.replace(/\s+/g, ' '), 60),
            ]),
          ]),
        );
      }),
    ),
  );

  addStoreOptions(
    models
      .command('show')
      .description('Show a registered model, or one of its versions')
      .argument('<name>')
      .option('--version <n>', 'show this version (or an alias: --version champion)')
      .option('--json', 'print JSON'),
  ).action((name: string, flags: StoreFlags & { version?: string; json?: boolean }) =>
    runCommand(() =>
      withRegistry(flags, async (registry, store) => {
        if (flags.version !== undefined) {
          const v = /^\d+$/.test(flags.version)
            ? await registry.getVersion(name, parseVersion(flags.version, '--version'))
            : await registry.getVersionByAlias(name, flags.version);
          if (flags.json) return out(JSON.stringify(v, null, 2));
          out(`${v.name} version ${v.version}`);
          return out(versionDetails(v, await lineage(v, store)));
        }
        const m = await registry.getModel(name);
        const { versions } = await registry.listVersions(name, { maxResults: 1000 });
        if (flags.json) return out(JSON.stringify({ ...m, versions }, null, 2));
        out(m.name);
        out(modelDetails(m));
        if (versions.length) out(`\n${versionRows(versions)}`);
      }),
    ),
  );

  addStoreOptions(
    models
      .command('versions')
      .description("List a model's versions, newest first")
      .argument('<name>')
      .option('--json', 'print JSON'),
  ).action((name: string, flags: StoreFlags & { json?: boolean }) =>
    runCommand(() =>
      withRegistry(flags, async (registry) => {
        const { versions } = await registry.listVersions(name, { maxResults: 1000 });
        if (flags.json) return out(JSON.stringify(versions, null, 2));
        if (versions.length === 0) return out(`${name} has no versions yet.`);
        out(versionRows(versions));
      }),
    ),
  );

  addStoreOptions(
    models
      .command('alias')
      .description('Point an alias at a version (set or move it), delete it, or show its history')
      .argument('<name>')
      .argument('<alias>')
      .argument('[version]')
      .option('--delete', 'delete the alias')
      .option('--history', 'show every move of the alias'),
  ).action(
    (
      name: string,
      alias: string,
      version: string | undefined,
      flags: StoreFlags & { delete?: boolean; history?: boolean },
    ) =>
      runCommand(() =>
        withRegistry(flags, async (registry) => {
          if (flags.history) {
            const moves = await registry.aliasHistory(name, alias);
            if (moves.length === 0) return out(`${name}@${alias} has never been set.`);
            return out(
              formatTable([
                ['WHEN', 'FROM', 'TO', 'BY'],
                ...moves.map((m) => [
                  when(m.atMs),
                  m.fromVersion === null ? '-' : `v${m.fromVersion}`,
                  m.toVersion === null ? '(deleted)' : `v${m.toVersion}`,
                  m.actor,
                ]),
              ]),
            );
          }
          if (flags.delete) {
            if (version !== undefined) {
              throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'version: --delete takes no version');
            }
            const m = await registry.deleteAlias(name, alias, actor());
            return out(`Deleted ${name}@${alias} (was v${m.fromVersion})`);
          }
          if (version === undefined) {
            const v = await registry.getVersionByAlias(name, alias);
            return out(`${name}@${alias} → v${v.version}`);
          }
          const m = await registry.setAlias(name, alias, parseVersion(version), actor());
          if (m.fromVersion === m.toVersion) return out(`${name}@${alias} already → v${m.toVersion}`);
          out(
            m.fromVersion === null
              ? `${name}@${alias} → v${m.toVersion}`
              : `${name}@${alias} → v${m.toVersion} (was v${m.fromVersion})`,
          );
        }),
      ),
  );

  addStoreOptions(
    models
      .command('card')
      .description('Print the model card, or edit its sections with --set section=text')
      .argument('<name>')
      .addOption(
        new Option('--format <format>', 'md, html or json').choices(['md', 'html', 'json']).default('md'),
      )
      .option(
        '--set <section=text>',
        'write a section: model_details, intended_use, factors, metrics, evaluation_data, training_data, quantitative_analyses, ethical_considerations, caveats_and_recommendations (repeatable)',
        collect,
        [],
      ),
  ).action((name: string, flags: StoreFlags & { format: 'md' | 'html' | 'json'; set: string[] }) =>
    runCommand(() =>
      withRegistry(flags, async (registry) => {
        if (flags.set.length) {
          const sections: Record<string, string> = {};
          for (const s of flags.set) {
            const i = s.indexOf('=');
            if (i <= 0)
              throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `--set: "${s}" must be section=text`);
            sections[s.slice(0, i)] = s.slice(i + 1);
          }
          await registry.updateCard(name, sections, actor());
        }
        if (flags.format === 'json') return out(JSON.stringify(await registry.getCard(name), null, 2));
        out(await registry.renderCard(name, flags.format === 'html' ? 'html' : 'markdown'));
      }),
    ),
  );
}
