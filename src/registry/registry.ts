import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { type ArtifactFile, type ArtifactRepository, REGISTRY_ROOT } from '../artifacts/index.js';
import { SlipwayError } from '../errors/index.js';
import { resolveModelConfig } from '../inference/index.js';
import { type Database, fromJson, now, toJson } from '../store/index.js';
import {
  CARD_SECTION_MAX_CHARS,
  type CardFacts,
  type CardSectionKey,
  type CardSections,
  emptySections,
  type ModelCard,
  renderCardHtml,
  renderCardMarkdown,
  sectionKey,
} from './model-card.js';
import {
  checkAlias,
  checkListLength,
  checkMetrics,
  checkModelName,
  checkNoNul,
  checkTagCount,
  checkTagKey,
  checkTags,
  checkVersion,
  type DatasetRef,
  parseDatasetRef,
} from './names.js';
import { type ModelSignature, readOnnxSignature } from './onnx-signature.js';
import type { RegistryTables } from './registry-migrations.js';
import {
  type AliasInfo,
  type AliasMove,
  type AuditEntry,
  type AuditQuery,
  type CreateVersionInput,
  type DatasetUsage,
  type ModelUpdate,
  type ModelVersion,
  type RegisteredModel,
  type RegistryOptions,
  type RegistryServingCatalog,
  type SearchOptions,
  type ServingVersion,
  type ServingView,
  STAGES,
  type Stage,
  type VersionStatus,
  type VersionUpdate,
} from './registry-types.js';
import { conditionsMatcher, decodePageToken, encodePageToken, type SearchOrder } from './search.js';

type K = Kysely<RegistryTables>;
type ModelRow = RegistryTables['registry_models'];
type VersionRow = RegistryTables['registry_versions'];

/** An audit entry written inside a transaction, before its sequence number is known. */
interface PendingEntry extends Omit<AuditEntry, 'seq' | 'atMs'> {
  /** Also recorded in the alias history. */
  aliasMove?: { modelId: string; fromVersion: number | null; toVersion: number | null };
  /** Filled in at commit. */
  seq?: number;
  atMs?: number;
}

interface Writer {
  k: K;
  /** Adds an audit entry to the transaction; its `seq` is known once `write` returns. */
  record(entry: PendingEntry): PendingEntry;
}

const MAX_RESULTS = 1000;
const SIGNATURE_CACHE = 256;

const notFoundModel = (name: string) =>
  new SlipwayError('SLIPWAY_ERR_RESOURCE_NOT_FOUND', `registered model '${name}' does not exist`);
const notFoundVersion = (name: string, version: number) =>
  new SlipwayError(
    'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
    `version ${version} of registered model '${name}' does not exist`,
  );
const notFoundAlias = (name: string, alias: string) =>
  new SlipwayError('SLIPWAY_ERR_RESOURCE_NOT_FOUND', `registered model '${name}' has no alias '${alias}'`);

function bad(message: string): never {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
}

function optionalText(value: string | undefined, field: string, max: number): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' || value.length > max)
    bad(`${field}: must be a string of at most ${max} characters`);
  return checkNoNul(value, field);
}

/** A tag change (`null` deletes the tag), checked as `checkTags` checks new tags. */
function checkTagChanges(tags: Record<string, string | null> | undefined): Record<string, string | null> {
  checkTagCount(tags, 'tags');
  for (const [k, v] of Object.entries(tags ?? {})) {
    checkTagKey(k, 'tags');
    if (v !== null) checkTags({ [k]: v });
  }
  return tags ?? {};
}

function description(value: string | undefined, field = 'description'): string {
  return optionalText(value, field, 50_000) ?? '';
}

/** Actors are names recorded as given, cut to the column's width. */
function actorName(actor: string): string {
  const a = String(actor ?? '')
    .replaceAll('\0', '')
    .trim();
  return (a === '' ? 'anonymous' : a).slice(0, 256);
}

export function canonicalStage(stage: string): Stage {
  const s = STAGES.find((x) => x.toLowerCase() === String(stage).toLowerCase());
  if (!s) bad(`stage: ${JSON.stringify(stage)} must be one of ${STAGES.join(', ')}`);
  return s;
}

/**
 * The model registry: registered models, immutable numbered versions with their own copy of
 * the model's files, aliases with a history of every move, model cards and an audit log of
 * every change. One instance per process over the shared database; replicas learn of each
 * other's changes with `changesSince`.
 *
 * @example
 *   const registry = new Registry(db, artifacts);
 *   const v = await registry.createVersion(
 *     { name: 'adult', content: { file: bytes }, createModel: true, metrics: { auc: 0.91 } },
 *     'cli:ana',
 *   );
 *   await registry.setAlias('adult', 'champion', v.version, 'cli:ana');
 *   (await registry.servingView('adult')).aliases.champion; // v.version
 */
export class Registry {
  private readonly db: K;
  private readonly listeners = new Set<(change: AuditEntry) => void>();
  private readonly signatures = new Map<string, ModelSignature>();
  readonly servingAlias: string;
  private readonly datasetExists: RegistryOptions['datasetExists'];

  constructor(
    private readonly database: Database,
    private readonly artifacts: ArtifactRepository,
    options: RegistryOptions = {},
  ) {
    this.db = database.as<RegistryTables>();
    this.servingAlias = options.servingAlias ?? 'champion';
    this.datasetExists = options.datasetExists;
  }

  // ---------------------------------------------------------------- registered models

  async createModel(
    input: { name: string; description?: string; tags?: Record<string, string> },
    actor: string,
  ): Promise<RegisteredModel> {
    const name = checkModelName(input.name);
    const desc = description(input.description);
    const tags = checkTags(input.tags);
    const who = actorName(actor);
    await this.write(async (w) => {
      const inserted = await this.insertModel(w, name, desc, tags, who);
      if (!inserted) {
        throw new SlipwayError('SLIPWAY_ERR_ALREADY_EXISTS', `registered model '${name}' already exists`);
      }
    });
    return this.getModel(name);
  }

  async getModel(name: string): Promise<RegisteredModel> {
    return (await this.toModels([await this.modelRow(this.db, name)]))[0]!;
  }

  async updateModel(name: string, update: ModelUpdate, actor: string): Promise<RegisteredModel> {
    const desc = update.description === undefined ? undefined : description(update.description);
    const tags = checkTagChanges(update.tags);
    const who = actorName(actor);
    await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      const at = now();
      let changed = false;
      if (desc !== undefined && desc !== m.description) {
        await w.k.updateTable('registry_models').set({ description: desc }).where('id', '=', m.id).execute();
        w.record({ ...modelEntry(who, 'model.update', m.name), details: { description: desc } });
        changed = true;
      }
      for (const [key, value] of Object.entries(tags)) {
        if (value === null) {
          const r = await w.k
            .deleteFrom('registry_model_tags')
            .where('model_id', '=', m.id)
            .where('key', '=', key)
            .executeTakeFirst();
          if (Number(r.numDeletedRows) === 0) continue;
          w.record({ ...modelEntry(who, 'model.tag.delete', m.name), details: { key } });
        } else {
          await w.k
            .insertInto('registry_model_tags')
            .values({ model_id: m.id, key, value })
            .onConflict((oc) => oc.columns(['model_id', 'key']).doUpdateSet({ value }))
            .execute();
          w.record({ ...modelEntry(who, 'model.tag.set', m.name), details: { key, value } });
        }
        changed = true;
      }
      if (changed)
        await w.k.updateTable('registry_models').set({ updated_ms: at }).where('id', '=', m.id).execute();
    });
    return this.getModel(name);
  }

  /**
   * Renames a model. Its versions' folders move to `registry/<new name>/<n>` (links, no bytes
   * copied), so the old name is free for a new model.
   */
  async renameModel(name: string, newName: string, actor: string): Promise<RegisteredModel> {
    const to = checkModelName(newName, 'new_name');
    const who = actorName(actor);
    const model = await this.modelRow(this.db, name);
    if (to === name) return this.getModel(name);
    const taken = await this.db
      .selectFrom('registry_models')
      .select('id')
      .where('name', '=', to)
      .executeTakeFirst();
    if (taken)
      throw new SlipwayError('SLIPWAY_ERR_ALREADY_EXISTS', `registered model '${to}' already exists`);
    const versions = await this.db
      .selectFrom('registry_versions')
      .select(['version', 'artifact_path'])
      .where('model_id', '=', model.id)
      .execute();
    const moved: { version: number; from: string; to: string }[] = [];
    try {
      for (const v of versions) {
        const dest = `${REGISTRY_ROOT}/${to}/${v.version}`;
        await this.copyFolder(v.artifact_path, dest);
        moved.push({ version: v.version, from: v.artifact_path, to: dest });
      }
      await this.write(async (w) => {
        const m = await this.lockModel(w.k, name);
        if (m.id !== model.id) throw notFoundModel(name);
        const clash = await w.k
          .selectFrom('registry_models')
          .select('id')
          .where('name', '=', to)
          .executeTakeFirst();
        if (clash)
          throw new SlipwayError('SLIPWAY_ERR_ALREADY_EXISTS', `registered model '${to}' already exists`);
        await w.k
          .updateTable('registry_models')
          .set({ name: to, updated_ms: now() })
          .where('id', '=', m.id)
          .execute();
        for (const mv of moved) {
          await w.k
            .updateTable('registry_versions')
            .set({ artifact_path: mv.to })
            .where('model_id', '=', m.id)
            .where('version', '=', mv.version)
            .execute();
        }
        w.record({ ...modelEntry(who, 'model.rename', to), details: { from: name, to } });
      });
    } catch (err) {
      await Promise.all(moved.map((mv) => this.deleteFolder(mv.to).catch(() => undefined)));
      throw err;
    }
    await Promise.all(moved.map((mv) => this.deleteFolder(mv.from).catch(() => undefined)));
    return this.getModel(to);
  }

  /** Deletes a model with its versions, aliases, tags and card; the audit log and alias history stay. */
  async deleteModel(name: string, actor: string): Promise<void> {
    const who = actorName(actor);
    const folders = await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      const versions = await w.k
        .selectFrom('registry_versions')
        .select(['version', 'artifact_path'])
        .where('model_id', '=', m.id)
        .execute();
      const aliases = await w.k
        .selectFrom('registry_aliases')
        .selectAll()
        .where('model_id', '=', m.id)
        .execute();
      for (const a of aliases) {
        w.record({
          ...aliasEntry(who, 'alias.delete', m.name, a.alias, a.version),
          details: { from: a.version, to: null, reason: 'model deleted' },
          aliasMove: { modelId: m.id, fromVersion: a.version, toVersion: null },
        });
      }
      await w.k.deleteFrom('registry_aliases').where('model_id', '=', m.id).execute();
      await w.k.deleteFrom('registry_models').where('id', '=', m.id).execute();
      w.record({ ...modelEntry(who, 'model.delete', m.name), details: { versions: versions.length } });
      return versions.map((v) => v.artifact_path);
    });
    await Promise.all(folders.map((f) => this.deleteFolder(f).catch(() => undefined)));
  }

  /** Models matching every condition (see `parseFilter`), ordered (name ascending by default). */
  async searchModels(
    options: SearchOptions = {},
  ): Promise<{ models: RegisteredModel[]; nextPageToken: string | null }> {
    const limit = pageSize(options.maxResults, 100);
    const offset = decodePageToken(options.pageToken);
    const conditions = options.conditions ?? [];
    let q = this.db.selectFrom('registry_models').selectAll();
    const exact = conditions.find((c) => c.kind === 'attribute' && c.key === 'name' && c.comparator === '=');
    if (exact) q = q.where('name', '=', String(exact.value));
    const models = await this.toModels(await q.execute());
    const matches = conditionsMatcher(conditions);
    const matching = models.filter((m) =>
      matches((kind, key) => {
        if (kind === 'tag') return Object.hasOwn(m.tags, key) ? m.tags[key] : undefined;
        if (key === 'name') return m.name;
        if (key === 'creation_timestamp') return m.createdMs;
        if (key === 'last_updated_timestamp') return m.updatedMs;
        return undefined;
      }),
    );
    const order = [...(options.orderBy ?? []), { key: 'name', descending: false }];
    const { items, nextPageToken } = sortedPage(matching, order, modelSortKey, offset, limit);
    return { models: items, nextPageToken };
  }

  // ---------------------------------------------------------------- versions

  /**
   * Registers a new version: stores the ONNX file (or links the folder's files) under
   * `registry/<name>/<n>/`, reads the signature from the ONNX graph, and numbers it one past the
   * highest number the model ever had. Safe under concurrent creates from many processes.
   * Throws SLIPWAY_ERR_BAD_REQUEST (naming the file) for a file ONNX Runtime cannot load.
   */
  async createVersion(input: CreateVersionInput, actor: string): Promise<ModelVersion> {
    const name = checkModelName(input.name);
    const who = actorName(actor);
    const desc = description(input.description);
    const tags = checkTags(input.tags);
    const metrics = checkMetrics(input.metrics);
    const runId = optionalText(input.runId, 'run_id', 64);
    const runLink = optionalText(input.runLink, 'run_link', 4096);
    const loggedModelId = optionalText(input.loggedModelId, 'model_id', 64);
    checkListLength(input.trainingData, 'training_data');
    checkListLength(input.evaluationData, 'evaluation_data');
    checkListLength(input.aliases, 'alias');
    const training = (input.trainingData ?? []).map((r) => parseDatasetRef(r, 'training_data'));
    const evaluation = (input.evaluationData ?? []).map((r) => parseDatasetRef(r, 'evaluation_data'));
    const aliases = [...new Set((input.aliases ?? []).map((a) => checkAlias(a)))];
    await this.checkDatasets(training, 'training_data');
    await this.checkDatasets(evaluation, 'evaluation_data');
    // Everything that can be refused is refused before the body is read: an uploader should not
    // send a whole file to learn that the model name or an alias was wrong.
    if ('file' in input.content && input.content.fileName !== undefined) {
      checkNoNul(input.content.fileName, 'file_name');
    }
    const folder = 'folder' in input.content ? input.content.folder.replace(/\/+$/, '') : '';
    const source =
      input.source ?? ('file' in input.content ? `upload:${input.content.fileName ?? 'model.onnx'}` : folder);
    if (source.length > 4096) bad('source: must be at most 4096 characters');
    checkNoNul(source, 'source');
    if (input.config !== undefined) {
      if (typeof input.config !== 'object' || input.config === null || Array.isArray(input.config)) {
        bad('config: must be a JSON object of serving settings (config.json fields)');
      }
      resolveModelConfig(name, input.config);
    }
    if (!input.createModel) await this.modelRow(this.db, name);

    // The bytes go to the blob store and are checked before any row is written.
    let files: { rel: string; sha256: string; size: number }[];
    let modelFile: { rel: string; sha256: string; size: number } | undefined;
    if ('file' in input.content) {
      const fileName = input.content.fileName ?? 'model.onnx';
      const blob = await this.artifacts.blobs.put(input.content.file);
      if (blob.size === 0) bad(`file '${fileName}' is empty`);
      modelFile = { rel: 'model.onnx', sha256: blob.sha256, size: blob.size };
      files = [modelFile];
    } else {
      const under = await this.artifacts.filesUnder(folder);
      if (under.length === 0) bad(`source: the artifact folder '${folder}' holds no files`);
      files = under.map((f) => ({ rel: f.path.slice(folder.length + 1), sha256: f.sha256, size: f.size }));
      modelFile = pickModelFile(files);
    }
    if (input.config !== undefined) {
      const blob = await this.artifacts.blobs.put(Buffer.from(`${JSON.stringify(input.config, null, 2)}\n`));
      files = [...files.filter((f) => f.rel !== 'config.json'), { rel: 'config.json', ...blob }];
    }
    for (const [rel, value] of Object.entries(input.jsonFiles ?? {})) {
      if (!/^[a-z][a-z0-9_-]*\.json$/.test(rel) || rel === 'config.json') {
        bad(`jsonFiles: '${rel}' must be a file name like schema.json (config.json goes in config)`);
      }
      const blob = await this.artifacts.blobs.put(Buffer.from(`${JSON.stringify(value, null, 2)}\n`));
      files = [...files.filter((f) => f.rel !== rel), { rel, ...blob }];
    }
    const signature = modelFile
      ? await this.signatureOf(
          modelFile.sha256,
          'file' in input.content ? (input.content.fileName ?? 'model.onnx') : modelFile.rel,
        )
      : null;

    await this.artifacts.checkBlobs(files);

    // One transaction: the number, the version, its own files (linked: no bytes copied), the
    // audit entry and the aliases commit together, so no reader sees a version without files.
    const created = await this.write(async (w) => {
      if (input.createModel) await this.insertModel(w, name, '', {}, who);
      const m = await this.lockModel(w.k, name);
      const next = await w.k
        .updateTable('registry_models')
        .set({ last_version: sql`last_version + 1`, updated_ms: now() })
        .where('id', '=', m.id)
        .returning('last_version')
        .executeTakeFirstOrThrow();
      const version = next.last_version;
      const at = now();
      const artifactPath = `${REGISTRY_ROOT}/${m.name}/${version}`;
      await w.k
        .insertInto('registry_versions')
        .values({
          model_id: m.id,
          version,
          status: 'READY',
          description: desc,
          creator: who,
          created_ms: at,
          updated_ms: at,
          source,
          run_id: runId,
          run_link: runLink,
          logged_model_id: loggedModelId,
          stage: 'None',
          artifact_path: artifactPath,
          model_file: modelFile?.rel ?? null,
          model_sha256: modelFile?.sha256 ?? null,
          model_size: modelFile?.size ?? null,
          signature: signature ? toJson(signature) : null,
          metrics: toJson(metrics),
        })
        .execute();
      const tagRows = Object.entries(tags).map(([key, value]) => ({ model_id: m.id, version, key, value }));
      for (const part of chunks(tagRows))
        await w.k.insertInto('registry_version_tags').values(part).execute();
      const dsRows = [
        ...training.map((d, i) => datasetRow(m.id, version, 'training', i, d)),
        ...evaluation.map((d, i) => datasetRow(m.id, version, 'evaluation', i, d)),
      ];
      for (const part of chunks(dsRows))
        await w.k.insertInto('registry_version_datasets').values(part).execute();
      await this.artifacts.replaceFolder(w.k, artifactPath, files);
      w.record({
        ...versionEntry(who, 'version.create', m.name, version),
        details: {
          source,
          sha256: modelFile?.sha256 ?? null,
          size: modelFile?.size ?? null,
          runId,
          loggedModelId,
          metrics,
          tags,
          trainingData: training.map((d) => d.ref),
          evaluationData: evaluation.map((d) => d.ref),
        },
      });
      for (const alias of aliases) await this.moveAlias(w, m, alias, version, who);
      return { modelName: m.name, version };
    });
    return this.getVersion(created.modelName, created.version);
  }

  async getVersion(name: string, version: number): Promise<ModelVersion> {
    const v = checkVersion(version);
    const m = await this.modelRow(this.db, name);
    const row = await this.versionRow(this.db, m, v);
    return (await this.toVersions([row], new Map([[m.id, m.name]])))[0]!;
  }

  async getVersionByAlias(name: string, alias: string): Promise<ModelVersion> {
    checkNoNul(alias, 'alias');
    const m = await this.modelRow(this.db, name);
    const version = await this.aliasVersion(this.db, m, alias);
    if (version === undefined) throw notFoundAlias(m.name, alias);
    return this.getVersion(name, version);
  }

  /** A model's versions, newest first. */
  async listVersions(
    name: string,
    options: { maxResults?: number; pageToken?: string } = {},
  ): Promise<{ versions: ModelVersion[]; nextPageToken: string | null }> {
    await this.modelRow(this.db, name);
    return this.searchVersions({
      ...options,
      conditions: [{ kind: 'attribute', key: 'name', comparator: '=', value: name }],
      orderBy: [{ key: 'version_number', descending: true }],
    });
  }

  /** Versions matching every condition; by default ordered by name, then newest version first. */
  async searchVersions(
    options: SearchOptions = {},
  ): Promise<{ versions: ModelVersion[]; nextPageToken: string | null }> {
    const limit = pageSize(options.maxResults, MAX_RESULTS, 200_000);
    const offset = decodePageToken(options.pageToken);
    const conditions = options.conditions ?? [];
    const names = new Map<string, string>();
    let mq = this.db.selectFrom('registry_models').select(['id', 'name']);
    const exactName = conditions.find(
      (c) => c.kind === 'attribute' && c.key === 'name' && c.comparator === '=',
    );
    if (exactName) mq = mq.where('name', '=', String(exactName.value));
    for (const r of await mq.execute()) names.set(r.id, r.name);
    if (names.size === 0) return { versions: [], nextPageToken: null };
    let q = this.db.selectFrom('registry_versions').selectAll();
    if (exactName) q = q.where('model_id', 'in', [...names.keys()]);
    const exactRun = conditions.find(
      (c) => c.kind === 'attribute' && c.key === 'run_id' && c.comparator === '=',
    );
    if (exactRun) q = q.where('run_id', '=', String(exactRun.value));
    const rows = (await q.execute()).filter((r) => names.has(r.model_id));
    const versions = await this.toVersions(rows, names);
    const matches = conditionsMatcher(conditions);
    const matching = versions.filter((v) =>
      matches((kind, key) => {
        if (kind === 'tag') return Object.hasOwn(v.tags, key) ? v.tags[key] : undefined;
        switch (key) {
          case 'name':
            return v.name;
          case 'run_id':
            return v.runId ?? undefined;
          case 'source_path':
            return v.source;
          case 'model_id':
            return v.loggedModelId ?? undefined;
          case 'version_number':
            return v.version;
          case 'creation_timestamp':
            return v.createdMs;
          case 'last_updated_timestamp':
            return v.updatedMs;
          default:
            return undefined;
        }
      }),
    );
    const order = [
      ...(options.orderBy ?? []),
      { key: 'name', descending: false },
      { key: 'version_number', descending: true },
    ];
    const { items, nextPageToken } = sortedPage(matching, order, versionSortKey, offset, limit);
    return { versions: items, nextPageToken };
  }

  async updateVersion(
    name: string,
    version: number,
    update: VersionUpdate,
    actor: string,
  ): Promise<ModelVersion> {
    const v = checkVersion(version);
    const desc = update.description === undefined ? undefined : description(update.description);
    const tags = checkTagChanges(update.tags);
    const who = actorName(actor);
    await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      const row = await this.versionRow(w.k, m, v);
      let changed = false;
      if (desc !== undefined && desc !== row.description) {
        await w.k
          .updateTable('registry_versions')
          .set({ description: desc })
          .where('model_id', '=', m.id)
          .where('version', '=', v)
          .execute();
        w.record({ ...versionEntry(who, 'version.update', m.name, v), details: { description: desc } });
        changed = true;
      }
      for (const [key, value] of Object.entries(tags)) {
        if (value === null) {
          const r = await w.k
            .deleteFrom('registry_version_tags')
            .where('model_id', '=', m.id)
            .where('version', '=', v)
            .where('key', '=', key)
            .executeTakeFirst();
          if (Number(r.numDeletedRows) === 0) continue;
          w.record({ ...versionEntry(who, 'version.tag.delete', m.name, v), details: { key } });
        } else {
          await w.k
            .insertInto('registry_version_tags')
            .values({ model_id: m.id, version: v, key, value })
            .onConflict((oc) => oc.columns(['model_id', 'version', 'key']).doUpdateSet({ value }))
            .execute();
          w.record({ ...versionEntry(who, 'version.tag.set', m.name, v), details: { key, value } });
        }
        changed = true;
      }
      if (changed) {
        await w.k
          .updateTable('registry_versions')
          .set({ updated_ms: now() })
          .where('model_id', '=', m.id)
          .where('version', '=', v)
          .execute();
      }
    });
    return this.getVersion(name, v);
  }

  /**
   * MLflow's stage transition (deprecated there, kept for its clients). With
   * `archiveExisting`, other versions in Staging or Production move to Archived.
   */
  async transitionStage(
    name: string,
    version: number,
    stage: string,
    archiveExisting: boolean,
    actor: string,
  ): Promise<ModelVersion> {
    const v = checkVersion(version);
    const to = canonicalStage(stage);
    const who = actorName(actor);
    await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      const row = await this.versionRow(w.k, m, v);
      const at = now();
      if (archiveExisting && (to === 'Staging' || to === 'Production')) {
        const others = await w.k
          .selectFrom('registry_versions')
          .select('version')
          .where('model_id', '=', m.id)
          .where('stage', '=', to)
          .where('version', '!=', v)
          .execute();
        for (const o of others) {
          await w.k
            .updateTable('registry_versions')
            .set({ stage: 'Archived', updated_ms: at })
            .where('model_id', '=', m.id)
            .where('version', '=', o.version)
            .execute();
          w.record({
            ...versionEntry(who, 'version.stage', m.name, o.version),
            details: { from: to, to: 'Archived' },
          });
        }
      }
      await w.k
        .updateTable('registry_versions')
        .set({ stage: to, updated_ms: at })
        .where('model_id', '=', m.id)
        .where('version', '=', v)
        .execute();
      w.record({ ...versionEntry(who, 'version.stage', m.name, v), details: { from: row.stage, to } });
    });
    return this.getVersion(name, v);
  }

  /** The highest READY version in each stage asked for (every stage when none is given). */
  async latestVersions(name: string, stages?: readonly string[]): Promise<ModelVersion[]> {
    const m = await this.modelRow(this.db, name);
    const wanted = stages?.length ? stages.map(canonicalStage) : [...STAGES];
    const rows = await this.db
      .selectFrom('registry_versions')
      .selectAll()
      .where('model_id', '=', m.id)
      .where('status', '=', 'READY')
      .execute();
    const best = new Map<string, VersionRow>();
    for (const r of rows) {
      const cur = best.get(r.stage);
      if (!cur || r.version > cur.version) best.set(r.stage, r);
    }
    const picked = wanted.flatMap((s) => (best.has(s) ? [best.get(s)!] : []));
    return this.toVersions(picked, new Map([[m.id, m.name]]));
  }

  /** Deletes a version and its files; aliases pointing at it are deleted (and recorded). */
  async deleteVersion(name: string, version: number, actor: string): Promise<void> {
    const v = checkVersion(version);
    const who = actorName(actor);
    const folder = await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      const row = await this.versionRow(w.k, m, v);
      const aliases = await w.k
        .selectFrom('registry_aliases')
        .select('alias')
        .where('model_id', '=', m.id)
        .where('version', '=', v)
        .execute();
      for (const a of aliases) {
        w.record({
          ...aliasEntry(who, 'alias.delete', m.name, a.alias, v),
          details: { from: v, to: null, reason: 'version deleted' },
          aliasMove: { modelId: m.id, fromVersion: v, toVersion: null },
        });
      }
      await w.k
        .deleteFrom('registry_aliases')
        .where('model_id', '=', m.id)
        .where('version', '=', v)
        .execute();
      await w.k
        .deleteFrom('registry_versions')
        .where('model_id', '=', m.id)
        .where('version', '=', v)
        .execute();
      await w.k.updateTable('registry_models').set({ updated_ms: now() }).where('id', '=', m.id).execute();
      w.record({
        ...versionEntry(who, 'version.delete', m.name, v),
        details: { sha256: row.model_sha256, source: row.source },
      });
      return row.artifact_path;
    });
    await this.deleteFolder(folder).catch(() => undefined);
  }

  // ---------------------------------------------------------------- aliases

  /** Points `alias` at `version` (creating or moving it) in one transaction; the move is kept in the history. */
  async setAlias(name: string, alias: string, version: number, actor: string): Promise<AliasMove> {
    const a = checkAlias(alias);
    const v = checkVersion(version);
    const who = actorName(actor);
    const { move, entry } = await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      return this.moveAlias(w, m, a, v, who);
    });
    return entry ? { ...move, seq: entry.seq!, atMs: entry.atMs! } : move;
  }

  async deleteAlias(name: string, alias: string, actor: string): Promise<AliasMove> {
    checkNoNul(alias, 'alias');
    const who = actorName(actor);
    const { move, entry } = await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      const from = await this.aliasVersion(w.k, m, alias);
      if (from === undefined) throw notFoundAlias(m.name, alias);
      await w.k
        .deleteFrom('registry_aliases')
        .where('model_id', '=', m.id)
        .where('alias', '=', alias)
        .execute();
      const entry = w.record({
        ...aliasEntry(who, 'alias.delete', m.name, alias, from),
        details: { from, to: null },
        aliasMove: { modelId: m.id, fromVersion: from, toVersion: null },
      });
      const move: AliasMove = {
        seq: 0,
        model: m.name,
        alias,
        fromVersion: from,
        toVersion: null,
        actor: who,
        atMs: 0,
      };
      return { move, entry };
    });
    return { ...move, seq: entry.seq!, atMs: entry.atMs! };
  }

  async listAliases(name: string): Promise<AliasInfo[]> {
    const m = await this.modelRow(this.db, name);
    const rows = await this.db
      .selectFrom('registry_aliases')
      .selectAll()
      .where('model_id', '=', m.id)
      .orderBy('alias')
      .execute();
    return rows.map((r) => ({
      alias: r.alias,
      version: r.version,
      updatedMs: r.updated_ms,
      updatedBy: r.updated_by,
    }));
  }

  /** Every move of the model's aliases (or one alias), newest first. */
  async aliasHistory(name: string, alias?: string): Promise<AliasMove[]> {
    if (alias !== undefined) checkNoNul(alias, 'alias');
    const m = await this.modelRow(this.db, name);
    let q = this.db.selectFrom('registry_alias_history').selectAll().where('model_id', '=', m.id);
    if (alias !== undefined) q = q.where('alias', '=', alias);
    const rows = await q.orderBy('seq', 'desc').execute();
    return rows.map((r) => ({
      seq: r.seq,
      model: r.model_name,
      alias: r.alias,
      fromVersion: r.from_version,
      toVersion: r.to_version,
      actor: r.actor,
      atMs: r.at_ms,
    }));
  }

  // ---------------------------------------------------------------- model card

  async getCard(name: string): Promise<ModelCard> {
    const m = await this.modelRow(this.db, name);
    const model = (await this.toModels([m]))[0]!;
    const { versions } = await this.searchVersions({
      conditions: [{ kind: 'attribute', key: 'name', comparator: '=', value: m.name }],
      orderBy: [{ key: 'version_number', descending: false }],
      maxResults: 200_000,
    });
    const ready = versions.filter((v) => v.status === 'READY');
    const served = model.aliases[this.servingAlias] ?? model.latestVersion;
    const sigVersion = ready.find((v) => v.version === served);
    const facts: CardFacts = {
      name: model.name,
      description: model.description,
      creator: model.creator,
      createdMs: model.createdMs,
      updatedMs: model.updatedMs,
      tags: model.tags,
      aliases: model.aliases,
      versions: ready.map((v) => ({
        version: v.version,
        status: v.status,
        createdMs: v.createdMs,
        creator: v.creator,
        description: v.description,
        source: v.source,
        runId: v.runId,
        sha256: v.modelFile?.sha256 ?? null,
        metrics: v.metrics,
        trainingData: v.trainingData.map((d) => d.ref),
        evaluationData: v.evaluationData.map((d) => d.ref),
        aliases: v.aliases,
      })),
      signature: sigVersion?.signature ? { version: sigVersion.version, ...sigVersion.signature } : null,
    };
    return {
      name: m.name,
      sections: { ...emptySections(), ...fromJson<Partial<CardSections>>(m.card, {}) },
      updatedMs: m.card_updated_ms,
      updatedBy: m.card_updated_by,
      facts,
    };
  }

  /**
   * Edits the card section by section (`intendedUse`, `intended_use` or `intended-use`); with
   * `replace`, sections not given become empty.
   */
  async updateCard(
    name: string,
    sections: Record<string, string>,
    actor: string,
    options: { replace?: boolean } = {},
  ): Promise<ModelCard> {
    const given = new Map<CardSectionKey, string>();
    for (const [raw, text] of Object.entries(sections)) {
      const key = sectionKey(raw);
      if (typeof text !== 'string' || text.length > CARD_SECTION_MAX_CHARS) {
        bad(`sections.${key}: must be a string of at most ${CARD_SECTION_MAX_CHARS} characters`);
      }
      given.set(key, checkNoNul(text, `sections.${key}`));
    }
    const who = actorName(actor);
    await this.write(async (w) => {
      const m = await this.lockModel(w.k, name);
      const current: CardSections = { ...emptySections(), ...fromJson<Partial<CardSections>>(m.card, {}) };
      const next: CardSections = options.replace ? emptySections() : { ...current };
      for (const [k, text] of given) next[k] = text;
      const changed = (Object.keys(next) as CardSectionKey[]).filter((k) => next[k] !== current[k]);
      if (changed.length === 0) return;
      await w.k
        .updateTable('registry_models')
        .set({ card: toJson(next), card_updated_ms: now(), card_updated_by: who })
        .where('id', '=', m.id)
        .execute();
      w.record({
        actor: who,
        action: 'card.update',
        target: `card:${m.name}`,
        model: m.name,
        version: null,
        alias: null,
        details: { sections: changed },
      });
    });
    return this.getCard(name);
  }

  async renderCard(name: string, format: 'markdown' | 'html'): Promise<string> {
    const card = await this.getCard(name);
    return format === 'html' ? renderCardHtml(card) : renderCardMarkdown(card);
  }

  // ---------------------------------------------------------------- audit and changes

  /** Audit entries, newest first; `next` continues the listing (as `beforeSeq`). */
  async auditLog(query: AuditQuery = {}): Promise<{ entries: AuditEntry[]; next: number | null }> {
    const limit = pageSize(query.limit, 100);
    for (const f of ['model', 'actor', 'action'] as const) {
      if (query[f] !== undefined) checkNoNul(query[f], f);
    }
    let q = this.db.selectFrom('registry_audit').selectAll();
    if (query.model !== undefined) q = q.where('model_name', '=', query.model);
    if (query.actor !== undefined) q = q.where('actor', '=', query.actor);
    if (query.action !== undefined) {
      if (query.action.endsWith('.*')) {
        const prefix = query.action.slice(0, -1);
        q = q.where(sql`substr(action, 1, ${prefix.length})`, '=', prefix);
      } else q = q.where('action', '=', query.action);
    }
    if (query.sinceMs !== undefined) q = q.where('at_ms', '>=', query.sinceMs);
    if (query.untilMs !== undefined) q = q.where('at_ms', '<', query.untilMs);
    if (query.beforeSeq !== undefined) q = q.where('seq', '<', query.beforeSeq);
    const rows = await q
      .orderBy('seq', 'desc')
      .limit(limit + 1)
      .execute();
    const entries = rows.slice(0, limit).map(toAuditEntry);
    return { entries, next: rows.length > limit ? entries[entries.length - 1]!.seq : null };
  }

  /**
   * Changes after `cursor`, oldest first, for replicas that poll: start from
   * `latestChangeSeq()` and pass back the returned cursor. Changes become visible in sequence
   * order (writers hold the sequence row until they commit), so no change is skipped.
   */
  async changesSince(cursor: number, limit = 1000): Promise<{ changes: AuditEntry[]; cursor: number }> {
    const rows = await this.db
      .selectFrom('registry_audit')
      .selectAll()
      .where('seq', '>', cursor)
      .orderBy('seq', 'asc')
      .limit(pageSize(limit, 1000, 10_000))
      .execute();
    const changes = rows.map(toAuditEntry);
    return { changes, cursor: changes.length ? changes[changes.length - 1]!.seq : cursor };
  }

  /** The sequence number of the last change: one cheap read. */
  async latestChangeSeq(): Promise<number> {
    const row = await this.db
      .selectFrom('registry_state')
      .select('change_seq')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return row.change_seq;
  }

  /** Calls `listener` after each committed change made through this instance. Returns an unsubscribe. */
  onChange(listener: (change: AuditEntry) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  // ---------------------------------------------------------------- serving and lineage

  /** Names of models with at least one READY version that holds an ONNX file. */
  async servableModels(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('registry_models as m')
      .innerJoin('registry_versions as v', 'v.model_id', 'm.id')
      .select('m.name')
      .where('v.status', '=', 'READY')
      .where('v.model_file', 'is not', null)
      .groupBy('m.name')
      .orderBy('m.name')
      .execute();
    return rows.map((r) => r.name);
  }

  /** The READY versions of a model with their local ONNX files, and its alias → version map. */
  async servingView(name: string): Promise<ServingView> {
    const m = await this.modelRow(this.db, name);
    const [rows, aliases] = await Promise.all([
      this.db
        .selectFrom('registry_versions')
        .selectAll()
        .where('model_id', '=', m.id)
        .where('status', '=', 'READY')
        .where('model_file', 'is not', null)
        .orderBy('version')
        .execute(),
      this.db
        .selectFrom('registry_aliases')
        .select(['alias', 'version'])
        .where('model_id', '=', m.id)
        .execute(),
    ]);
    const aliasMap = Object.fromEntries(aliases.map((a) => [a.alias, a.version]));
    const versions: ServingVersion[] = rows.map((r) => ({
      version: r.version,
      file: () => this.artifacts.localPath(`${r.artifact_path}/${r.model_file}`),
      extras: async () => {
        const [schema, steps] = await Promise.all([
          this.readJson(`${r.artifact_path}/schema.json`),
          this.readJson(`${r.artifact_path}/steps.json`),
        ]);
        return { ...(schema === undefined ? {} : { schema }), ...(steps === undefined ? {} : { steps }) };
      },
      sha256: r.model_sha256!,
      size: Number(r.model_size),
      signature: fromJson<ModelSignature | null>(r.signature, null),
    }));
    const view: ServingView = { name: m.name, aliases: aliasMap, versions };
    const target = aliasMap[this.servingAlias] ?? rows[rows.length - 1]?.version;
    const targetRow = rows.find((r) => r.version === target);
    if (targetRow) {
      const config = await this.readJson(`${targetRow.artifact_path}/config.json`);
      if (config !== undefined) view.config = config;
    }
    return view;
  }

  /**
   * This registry as serving's catalog.
   *
   * @example
   *   const source = new RegistryModelSource(registry.servingCatalog(), settings.servingAlias);
   */
  servingCatalog(): RegistryServingCatalog {
    return {
      modelNames: () => this.servableModels(),
      view: async (name) => {
        try {
          return await this.servingView(name);
        } catch (err) {
          if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_RESOURCE_NOT_FOUND') return undefined;
          throw err;
        }
      },
      onChange: (listener) =>
        this.onChange((c) => {
          for (const n of changedModels(c)) listener(n);
        }),
      changesSince: async (cursor) => {
        const latest = await this.latestChangeSeq();
        if (cursor >= latest) return { names: [], cursor: latest };
        const names = new Set<string>();
        let at = cursor;
        for (;;) {
          const page = await this.changesSince(at, 1000);
          for (const c of page.changes) for (const n of changedModels(c)) names.add(n);
          at = page.cursor;
          if (page.changes.length < 1000) break;
        }
        return { names: [...names], cursor: at };
      },
    };
  }

  /** Versions trained or evaluated on a dataset (any version of it when `version` is absent). */
  async datasetUsage(dataset: { name?: string; version?: string; uri?: string }): Promise<DatasetUsage[]> {
    let q = this.db
      .selectFrom('registry_version_datasets as d')
      .innerJoin('registry_models as m', 'm.id', 'd.model_id')
      .select(['m.name', 'd.version', 'd.role', 'd.ref', 'd.dataset_name', 'd.dataset_version', 'd.uri']);
    if (dataset.name !== undefined) q = q.where('d.dataset_name', '=', dataset.name);
    if (dataset.version !== undefined) q = q.where('d.dataset_version', '=', dataset.version);
    if (dataset.uri !== undefined) q = q.where('d.uri', '=', dataset.uri);
    const rows = await q.orderBy('m.name').orderBy('d.version').execute();
    return rows.map((r) => ({
      model: r.name,
      version: r.version,
      role: r.role as 'training' | 'evaluation',
      dataset: { ref: r.ref, name: r.dataset_name, version: r.dataset_version, uri: r.uri },
    }));
  }

  // ---------------------------------------------------------------- internals

  /**
   * Runs `fn` in one transaction and appends its audit entries with consecutive sequence
   * numbers. The sequence row is updated last on PostgreSQL and held until commit, so entries
   * commit in sequence order; on SQLite a no-op update first takes the write lock, so a
   * transaction from another process waits (busy_timeout) instead of failing on upgrade.
   */
  private async write<T>(fn: (w: Writer) => Promise<T>): Promise<T> {
    const pending: PendingEntry[] = [];
    const committed: AuditEntry[] = [];
    const result = await this.database.transaction(async (trx) => {
      const k = trx as unknown as K;
      if (this.database.dialect === 'sqlite') {
        await k
          .updateTable('registry_state')
          .set({ change_seq: sql`change_seq` })
          .where('id', '=', 1)
          .execute();
      }
      const r = await fn({
        k,
        record: (e) => {
          pending.push(e);
          return e;
        },
      });
      if (pending.length) {
        const row = await k
          .updateTable('registry_state')
          .set({ change_seq: sql`change_seq + ${pending.length}` })
          .where('id', '=', 1)
          .returning('change_seq')
          .executeTakeFirstOrThrow();
        let seq = Number(row.change_seq) - pending.length;
        const at = now();
        for (const e of pending) {
          seq++;
          e.seq = seq;
          e.atMs = at;
          committed.push({
            seq,
            atMs: at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            model: e.model,
            version: e.version,
            alias: e.alias,
            details: e.details,
          });
        }
        await k
          .insertInto('registry_audit')
          .values(
            committed.map((c) => ({
              seq: c.seq,
              at_ms: c.atMs,
              actor: c.actor,
              action: c.action,
              target: c.target,
              model_name: c.model,
              version: c.version,
              alias: c.alias,
              details: toJson(c.details),
            })),
          )
          .execute();
        const moves = pending.flatMap((e, i) =>
          e.aliasMove
            ? [
                {
                  seq: committed[i]!.seq,
                  model_id: e.aliasMove.modelId,
                  model_name: e.model ?? '',
                  alias: e.alias ?? '',
                  from_version: e.aliasMove.fromVersion,
                  to_version: e.aliasMove.toVersion,
                  actor: e.actor,
                  at_ms: at,
                },
              ]
            : [],
        );
        if (moves.length) await k.insertInto('registry_alias_history').values(moves).execute();
      }
      return r;
    });
    for (const c of committed) {
      for (const l of this.listeners) {
        try {
          l(c);
        } catch {
          // A listener's failure is its own; the change is committed.
        }
      }
    }
    return result;
  }

  private async insertModel(
    w: Writer,
    name: string,
    desc: string,
    tags: Record<string, string>,
    who: string,
  ): Promise<boolean> {
    const at = now();
    const id = randomUUID();
    const r = await w.k
      .insertInto('registry_models')
      .values({
        id,
        name,
        description: desc,
        creator: who,
        created_ms: at,
        updated_ms: at,
        last_version: 0,
        card: '{}',
        card_updated_ms: null,
        card_updated_by: null,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return false;
    const rows = Object.entries(tags).map(([key, value]) => ({ model_id: id, key, value }));
    for (const part of chunks(rows)) await w.k.insertInto('registry_model_tags').values(part).execute();
    w.record({ ...modelEntry(who, 'model.create', name), details: { description: desc, tags } });
    return true;
  }

  private async checkDatasets(refs: readonly DatasetRef[], field: string): Promise<void> {
    if (!this.datasetExists) return;
    for (const r of refs) {
      if (r.name === null) continue;
      let exists: boolean;
      try {
        exists = await this.datasetExists(r.ref);
      } catch (err) {
        // A reference the dataset store reads its own way (a version it cannot parse, a digest
        // prefix matching several versions): its 400, named by the field.
        if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_BAD_REQUEST')
          bad(`${field}: ${err.message}`);
        throw err;
      }
      if (!exists) {
        bad(
          `${field}: dataset '${r.ref}' is not in this store (\`slipway data list\` shows those that are); name data kept elsewhere by URI`,
        );
      }
    }
  }

  private async modelRow(k: K, name: string): Promise<ModelRow> {
    // No model has such a name, and PostgreSQL would refuse to compare it.
    if (name.includes('\0')) throw notFoundModel(name);
    const row = await k.selectFrom('registry_models').selectAll().where('name', '=', name).executeTakeFirst();
    if (!row) throw notFoundModel(name);
    return row;
  }

  /** The model's row, locked until commit on PostgreSQL (SQLite's write lock already serializes). */
  private async lockModel(k: K, name: string): Promise<ModelRow> {
    if (name.includes('\0')) throw notFoundModel(name);
    let q = k.selectFrom('registry_models').selectAll().where('name', '=', name);
    if (this.database.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw notFoundModel(name);
    return row;
  }

  private async versionRow(k: K, m: ModelRow, version: number): Promise<VersionRow> {
    const row = await k
      .selectFrom('registry_versions')
      .selectAll()
      .where('model_id', '=', m.id)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row) throw notFoundVersion(m.name, version);
    return row;
  }

  private async aliasVersion(k: K, m: ModelRow, alias: string): Promise<number | undefined> {
    const row = await k
      .selectFrom('registry_aliases')
      .select('version')
      .where('model_id', '=', m.id)
      .where('alias', '=', alias)
      .executeTakeFirst();
    return row?.version;
  }

  /** Sets the alias inside `w`; `entry` is absent when it already pointed at `version`. */
  private async moveAlias(
    w: Writer,
    m: ModelRow,
    alias: string,
    version: number,
    who: string,
  ): Promise<{ move: AliasMove; entry?: PendingEntry }> {
    const target = await this.versionRow(w.k, m, version);
    if (target.status !== 'READY') {
      throw new SlipwayError(
        'SLIPWAY_ERR_INVALID_STATE',
        `version ${version} of registered model '${m.name}' is ${target.status}; aliases point at READY versions`,
      );
    }
    const from = (await this.aliasVersion(w.k, m, alias)) ?? null;
    const at = now();
    const move: AliasMove = {
      seq: 0,
      model: m.name,
      alias,
      fromVersion: from,
      toVersion: version,
      actor: who,
      atMs: at,
    };
    if (from === version) return { move };
    await w.k
      .insertInto('registry_aliases')
      .values({ model_id: m.id, alias, version, updated_ms: at, updated_by: who })
      .onConflict((oc) =>
        oc.columns(['model_id', 'alias']).doUpdateSet({ version, updated_ms: at, updated_by: who }),
      )
      .execute();
    const entry = w.record({
      ...aliasEntry(who, 'alias.set', m.name, alias, version),
      details: { from, to: version },
      aliasMove: { modelId: m.id, fromVersion: from, toVersion: version },
    });
    return { move, entry };
  }

  private aliasesOf(modelIds: string[]) {
    return inChunks(modelIds, (part) =>
      this.db
        .selectFrom('registry_aliases')
        .select(['model_id', 'alias', 'version'])
        .where('model_id', 'in', part)
        .execute(),
    );
  }

  private async toModels(rows: ModelRow[]): Promise<RegisteredModel[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.id);
    const [tags, aliases, stats] = await Promise.all([
      inChunks(ids, (part) =>
        this.db.selectFrom('registry_model_tags').selectAll().where('model_id', 'in', part).execute(),
      ),
      this.aliasesOf(ids),
      inChunks(ids, (part) =>
        this.db
          .selectFrom('registry_versions')
          .select(['model_id', sql<number>`max(version)`.as('latest'), sql<number>`count(*)`.as('n')])
          .where('model_id', 'in', part)
          .where('status', '=', 'READY')
          .groupBy('model_id')
          .execute(),
      ),
    ]);
    const tagsBy = groupBy(tags, (t) => t.model_id);
    const aliasesBy = groupBy(aliases, (a) => a.model_id);
    const statsBy = new Map(stats.map((s) => [s.model_id, s]));
    return rows.map((r) => ({
      name: r.name,
      description: r.description,
      tags: Object.fromEntries((tagsBy.get(r.id) ?? []).map((t) => [t.key, t.value])),
      creator: r.creator,
      createdMs: r.created_ms,
      updatedMs: r.updated_ms,
      latestVersion: statsBy.has(r.id) ? Number(statsBy.get(r.id)!.latest) : null,
      versionCount: statsBy.has(r.id) ? Number(statsBy.get(r.id)!.n) : 0,
      aliases: Object.fromEntries(
        (aliasesBy.get(r.id) ?? [])
          .sort((a, b) => a.alias.localeCompare(b.alias))
          .map((a) => [a.alias, a.version]),
      ),
    }));
  }

  private async toVersions(rows: VersionRow[], names: Map<string, string>): Promise<ModelVersion[]> {
    if (rows.length === 0) return [];
    const ids = [...new Set(rows.map((r) => r.model_id))];
    const [tags, aliases, datasets] = await Promise.all([
      inChunks(ids, (part) =>
        this.db.selectFrom('registry_version_tags').selectAll().where('model_id', 'in', part).execute(),
      ),
      this.aliasesOf(ids),
      inChunks(ids, (part) =>
        this.db
          .selectFrom('registry_version_datasets')
          .selectAll()
          .where('model_id', 'in', part)
          .orderBy('position')
          .execute(),
      ),
    ]);
    const key = (id: string, v: number) => `${id}\n${v}`;
    const tagsBy = groupBy(tags, (t) => key(t.model_id, t.version));
    const aliasesBy = groupBy(aliases, (a) => key(a.model_id, a.version));
    const dsBy = groupBy(datasets, (d) => key(d.model_id, d.version));
    return rows.map((r) => {
      const k = key(r.model_id, r.version);
      const ds = dsBy.get(k) ?? [];
      const ref = (d: (typeof ds)[number]): DatasetRef => ({
        ref: d.ref,
        name: d.dataset_name,
        version: d.dataset_version,
        uri: d.uri,
      });
      return {
        name: names.get(r.model_id)!,
        version: r.version,
        status: r.status as VersionStatus,
        description: r.description,
        tags: Object.fromEntries((tagsBy.get(k) ?? []).map((t) => [t.key, t.value])),
        metrics: fromJson<Record<string, number>>(r.metrics, {}),
        source: r.source,
        runId: r.run_id,
        runLink: r.run_link,
        loggedModelId: r.logged_model_id,
        stage: r.stage as Stage,
        artifactPath: r.artifact_path,
        modelFile:
          r.model_file && r.model_sha256
            ? {
                path: `${r.artifact_path}/${r.model_file}`,
                sha256: r.model_sha256,
                size: Number(r.model_size),
              }
            : null,
        signature: fromJson<ModelSignature | null>(r.signature, null),
        trainingData: ds.filter((d) => d.role === 'training').map(ref),
        evaluationData: ds.filter((d) => d.role === 'evaluation').map(ref),
        aliases: (aliasesBy.get(k) ?? []).map((a) => a.alias).sort(),
        creator: r.creator,
        createdMs: r.created_ms,
        updatedMs: r.updated_ms,
      };
    });
  }

  /** Signatures by content digest: the same bytes always have the same graph. */
  private async signatureOf(sha256: string, label: string): Promise<ModelSignature> {
    const cached = this.signatures.get(sha256);
    if (cached) return cached;
    const sig = await readOnnxSignature(await this.artifacts.blobs.localPath(sha256), label);
    if (this.signatures.size >= SIGNATURE_CACHE) this.signatures.delete(this.signatures.keys().next().value!);
    this.signatures.set(sha256, sig);
    return sig;
  }

  private async readJson(path: string): Promise<unknown> {
    const got = await this.artifacts.get(path);
    if (!got) return undefined;
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  private async copyFolder(from: string, to: string): Promise<ArtifactFile[]> {
    const files = await this.artifacts.filesUnder(from);
    const out: ArtifactFile[] = [];
    for (const f of files)
      out.push(await this.artifacts.link(`${to}/${f.path.slice(from.length + 1)}`, f.sha256, f.size));
    return out;
  }

  private async deleteFolder(folder: string): Promise<void> {
    for (const f of await this.artifacts.filesUnder(folder)) await this.artifacts.delete(f.path);
  }
}

function modelEntry(actor: string, action: string, model: string): Omit<PendingEntry, 'details'> {
  return { actor, action, target: `model:${model}`, model, version: null, alias: null };
}

function versionEntry(
  actor: string,
  action: string,
  model: string,
  version: number,
): Omit<PendingEntry, 'details'> {
  return { actor, action, target: `version:${model}/${version}`, model, version, alias: null };
}

function aliasEntry(
  actor: string,
  action: string,
  model: string,
  alias: string,
  version: number,
): Omit<PendingEntry, 'details'> {
  return { actor, action, target: `alias:${model}@${alias}`, model, version, alias };
}

/** The models a change concerns: both names for a rename. */
function changedModels(c: AuditEntry): string[] {
  if (c.model === null) return [];
  if (c.action === 'model.rename' && typeof c.details.from === 'string') return [c.details.from, c.model];
  return [c.model];
}

function toAuditEntry(r: RegistryTables['registry_audit']): AuditEntry {
  return {
    seq: Number(r.seq),
    atMs: Number(r.at_ms),
    actor: r.actor,
    action: r.action,
    target: r.target,
    model: r.model_name,
    version: r.version,
    alias: r.alias,
    details: fromJson<Record<string, unknown>>(r.details, {}),
  };
}

function datasetRow(
  modelId: string,
  version: number,
  role: 'training' | 'evaluation',
  position: number,
  d: DatasetRef,
) {
  return {
    model_id: modelId,
    version,
    role,
    position,
    ref: d.ref,
    dataset_name: d.name,
    dataset_version: d.version,
    uri: d.uri,
  };
}

/** `model.onnx` at the top of the folder, else the only `.onnx` file at the top. */
function pickModelFile<T extends { rel: string }>(files: T[]): T | undefined {
  const top = files.filter((f) => !f.rel.includes('/') && f.rel.toLowerCase().endsWith('.onnx'));
  return top.find((f) => f.rel === 'model.onnx') ?? (top.length === 1 ? top[0] : undefined);
}

/**
 * Rows or ids in parts small enough for one statement: SQLite binds at most 32766 variables
 * (999 in builds before 3.32), and a row of a few columns times a long list exceeds that.
 */
function chunks<T>(items: readonly T[], size = 200): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function inChunks<T>(ids: readonly string[], query: (part: string[]) => Promise<T[]>): Promise<T[]> {
  const out: T[] = [];
  // One push a row: spreading a part of 100,000+ rows into push() overflows the stack.
  for (const part of chunks(ids, 500)) for (const row of await query(part)) out.push(row);
  return out;
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  }
  return m;
}

function pageSize(value: number | undefined, fallback: number, max = MAX_RESULTS): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max)
    bad(`max_results: must be an integer from 1 to ${max}`);
  return value;
}

/** `items` sorted by `order` (in place), then the page at `offset` and the token of the next one. */
function sortedPage<T>(
  items: T[],
  order: readonly SearchOrder[],
  sortKey: (item: T, key: string) => string | number,
  offset: number,
  limit: number,
): { items: T[]; nextPageToken: string | null } {
  items.sort((a, b) => {
    for (const o of order) {
      const x = sortKey(a, o.key);
      const y = sortKey(b, o.key);
      if (x !== y) return (x < y ? -1 : 1) * (o.descending ? -1 : 1);
    }
    return 0;
  });
  return {
    items: items.slice(offset, offset + limit),
    nextPageToken: offset + limit < items.length ? encodePageToken(offset + limit) : null,
  };
}

function modelSortKey(m: RegisteredModel, key: string): string | number {
  if (key === 'creation_timestamp') return m.createdMs;
  if (key === 'last_updated_timestamp') return m.updatedMs;
  return m.name;
}

function versionSortKey(v: ModelVersion, key: string): string | number {
  if (key === 'version_number') return v.version;
  if (key === 'creation_timestamp') return v.createdMs;
  if (key === 'last_updated_timestamp') return v.updatedMs;
  return v.name;
}
