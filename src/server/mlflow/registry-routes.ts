/**
 * MLflow's model-registry REST routes (mlflow/protos/model_registry.proto) over the Slipway
 * registry: a version registered through MLflow is a Slipway version like any other. Paths are
 * relative to the MLflow prefix (`/api/2.0/mlflow`); errors are thrown as SlipwayError and
 * formatted by the MLflow plugin's handler.
 */
import type { FastifyInstance } from 'fastify';
import { SlipwayError } from '../../errors/index.js';
import {
  type ModelVersion,
  parseFilter,
  parseOrderBy,
  type RegisteredModel,
  type Registry,
  STAGES,
} from '../../registry/index.js';
import { maxItems, TRACKING_LIMITS } from '../../tracking/index.js';
import { int, keyValues, type Message, required, str, strings } from './mlflow-json.js';
import { ANY, I, KV_LIST, mlflowRoutes, nextPageJson, S, STR_LIST } from './mlflow-route.js';

export interface MlflowRegistryDeps {
  registry: Registry;
  /**
   * The artifact folder holding a model version's files, from `source` as the client sends it
   * (`models:/m-…` in 3.x, `runs:/<run>/<path>`, `mlflow-artifacts:/…`) and the logged model id.
   */
  resolveSource(source: string, modelId?: string): Promise<string>;
  /**
   * The run a 3.x logged model was logged from (its `source_run_id`). The client registers
   * `models:/m-…` without a run id, and MLflow's server takes the version's run from here.
   */
  loggedModelRun(modelId: string): Promise<string | null>;
}

/** MLflow's ModelVersion message. */
export function modelVersionJson(v: ModelVersion) {
  return {
    name: v.name,
    version: String(v.version),
    creation_timestamp: v.createdMs,
    last_updated_timestamp: v.updatedMs,
    user_id: v.creator,
    current_stage: v.stage,
    description: v.description,
    source: v.source,
    ...(v.runId === null ? {} : { run_id: v.runId }),
    status: v.status,
    ...(v.status === 'FAILED_REGISTRATION' ? { status_message: 'the files could not be stored' } : {}),
    tags: Object.entries(v.tags).map(([key, value]) => ({ key, value })),
    ...(v.runLink === null ? {} : { run_link: v.runLink }),
    aliases: v.aliases,
    ...(v.loggedModelId === null ? {} : { model_id: v.loggedModelId }),
    model_metrics: Object.entries(v.metrics).map(([key, value]) => ({
      key,
      value,
      timestamp: v.createdMs,
      step: 0,
    })),
  };
}

/** MLflow's RegisteredModel message; `latest` is the latest READY version per stage. */
export function registeredModelJson(m: RegisteredModel, latest: ModelVersion[]) {
  return {
    name: m.name,
    creation_timestamp: m.createdMs,
    last_updated_timestamp: m.updatedMs,
    user_id: m.creator,
    description: m.description,
    latest_versions: latest.map(modelVersionJson),
    tags: Object.entries(m.tags).map(([key, value]) => ({ key, value })),
    aliases: Object.entries(m.aliases).map(([alias, version]) => ({ alias, version: String(version) })),
  };
}

/** The highest READY version in each stage, in stage order. */
function latestPerStage(versions: ModelVersion[]): ModelVersion[] {
  const best = new Map<string, ModelVersion>();
  for (const v of versions) {
    if (v.status !== 'READY') continue;
    const cur = best.get(v.stage);
    if (!cur || v.version > cur.version) best.set(v.stage, v);
  }
  return STAGES.flatMap((s) => (best.has(s) ? [best.get(s)!] : []));
}

/** A 3.x logged model as a source: `models:/m-<32 hex>[/<path>]`. */
const LOGGED_MODEL_SOURCE = /^models:\/(m-[0-9a-f]{32})(?:\/|$)/;

/** A registered version as a source: `models:/<name>/<version>` or `models:/<name>@<alias>`. */
const REGISTERED_SOURCE =
  /^models:\/(?!m-[0-9a-f]{32}(?:\/|$))([A-Za-z0-9][A-Za-z0-9_.-]*)(?:\/(\d+)|@([A-Za-z0-9_-]+))\/?$/;

function versionOf(msg: Message): number {
  const raw = typeof msg.version === 'number' ? String(msg.version) : required(msg, 'version');
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `version: '${raw}' is not a version number`);
  }
  return Number(raw);
}

/** The request's `tags` list as the registry's key → value record; at most 1000 tags, as the tracking routes. */
function tagsOf(msg: Message): Record<string, string> {
  const tags = maxItems(keyValues(msg, 'tags'), TRACKING_LIMITS.listItems, 'tags');
  return Object.fromEntries(tags.map((t) => [t.key, t.value]));
}

/** The tag change of a set-tag request (models and versions alike); a null value deletes. */
function setTag(msg: Message): { tags: Record<string, string | null> } {
  return { tags: { [required(msg, 'key')]: str(msg, 'value') ?? '' } };
}

function deleteTag(msg: Message): { tags: Record<string, string | null> } {
  return { tags: { [required(msg, 'key')]: null } };
}

const SEARCH = { filter: S, max_results: I, order_by: STR_LIST, page_token: S };

function bool(msg: Message, field: string): boolean {
  const v = msg[field];
  return v === true || v === 'true' || v === 'True';
}

/**
 * The registry routes, for the MLflow plugin to register inside its prefix.
 *
 * @example
 *   mlflowPlugin({
 *     tracking,
 *     artifacts,
 *     registryRoutes: mlflowRegistryRoutes({ registry, resolveSource, loggedModelRun }),
 *   });
 */
export function mlflowRegistryRoutes(deps: MlflowRegistryDeps): (app: FastifyInstance) => Promise<void> {
  const { registry } = deps;

  const modelWithLatest = async (m: RegisteredModel) => {
    const { versions } = await registry.searchVersions({
      conditions: [{ kind: 'attribute', key: 'name', comparator: '=', value: m.name }],
      maxResults: 200_000,
    });
    return registeredModelJson(m, latestPerStage(versions));
  };

  return async (app) => {
    const { read, write } = mlflowRoutes(app);
    // ------------------------------------------------------------ registered models

    write(
      'POST',
      '/registered-models/create',
      { name: S, tags: KV_LIST, description: S },
      async (msg, req) => {
        const m = await registry.createModel(
          {
            name: required(msg, 'name'),
            description: str(msg, 'description'),
            tags: tagsOf(msg),
          },
          req.principal.name,
        );
        return { registered_model: registeredModelJson(m, []) };
      },
    );

    read('GET', '/registered-models/get', { name: S }, async (msg) => ({
      registered_model: await modelWithLatest(await registry.getModel(required(msg, 'name'))),
    }));

    write('POST', '/registered-models/rename', { name: S, new_name: S }, async (msg, req) => {
      const m = await registry.renameModel(
        required(msg, 'name'),
        required(msg, 'new_name'),
        req.principal.name,
      );
      return { registered_model: await modelWithLatest(m) };
    });

    write('PATCH', '/registered-models/update', { name: S, description: S }, async (msg, req) => {
      const name = required(msg, 'name');
      const description = str(msg, 'description');
      const m = await registry.updateModel(name, { description: description ?? '' }, req.principal.name);
      return { registered_model: await modelWithLatest(m) };
    });

    write('DELETE', '/registered-models/delete', { name: S }, async (msg, req) => {
      await registry.deleteModel(required(msg, 'name'), req.principal.name);
      return {};
    });

    read('GET', '/registered-models/search', SEARCH, async (msg) => {
      const r = await registry.searchModels({
        conditions: parseFilter(str(msg, 'filter'), 'models'),
        orderBy: parseOrderBy(strings(msg, 'order_by'), 'models'),
        maxResults: int(msg, 'max_results') ?? 100,
        pageToken: str(msg, 'page_token'),
      });
      const names = r.models.map((m) => m.name);
      const { versions } = names.length
        ? await registry.searchVersions({
            conditions: [{ kind: 'attribute', key: 'name', comparator: 'IN', value: names }],
            maxResults: 200_000,
          })
        : { versions: [] };
      return {
        registered_models: r.models.map((m) =>
          registeredModelJson(m, latestPerStage(versions.filter((v) => v.name === m.name))),
        ),
        ...nextPageJson(r.nextPageToken),
      };
    });

    // The client tries POST, then GET.
    const latestVersions = async (msg: Message) => ({
      model_versions: (await registry.latestVersions(required(msg, 'name'), strings(msg, 'stages'))).map(
        modelVersionJson,
      ),
    });
    read('POST', '/registered-models/get-latest-versions', { name: S, stages: STR_LIST }, latestVersions);
    read('GET', '/registered-models/get-latest-versions', { name: S, stages: STR_LIST }, latestVersions);

    write('POST', '/registered-models/set-tag', { name: S, key: S, value: S }, async (msg, req) => {
      await registry.updateModel(required(msg, 'name'), setTag(msg), req.principal.name);
      return {};
    });

    write('DELETE', '/registered-models/delete-tag', { name: S, key: S }, async (msg, req) => {
      await registry.updateModel(required(msg, 'name'), deleteTag(msg), req.principal.name);
      return {};
    });

    // ------------------------------------------------------------ aliases

    write('POST', '/registered-models/alias', { name: S, alias: S, version: ANY }, async (msg, req) => {
      await registry.setAlias(
        required(msg, 'name'),
        required(msg, 'alias'),
        versionOf(msg),
        req.principal.name,
      );
      return {};
    });

    read('GET', '/registered-models/alias', { name: S, alias: S }, async (msg) => ({
      model_version: modelVersionJson(
        await registry.getVersionByAlias(required(msg, 'name'), required(msg, 'alias')),
      ),
    }));

    write('DELETE', '/registered-models/alias', { name: S, alias: S }, async (msg, req) => {
      await registry.deleteAlias(required(msg, 'name'), required(msg, 'alias'), req.principal.name);
      return {};
    });

    // ------------------------------------------------------------ model versions

    write(
      'POST',
      '/model-versions/create',
      { name: S, source: S, run_id: S, tags: KV_LIST, run_link: S, description: S, model_id: S },
      async (msg, req) => {
        const name = required(msg, 'name');
        const source = required(msg, 'source');
        let modelId = str(msg, 'model_id') || undefined;
        let runId = str(msg, 'run_id') || undefined;
        let folder: string;
        const registered = REGISTERED_SOURCE.exec(source);
        if (registered) {
          // models:/<name>/<version> or models:/<name>@<alias> (copy_model_version): that
          // version's own files, and its lineage unless the request gives one.
          const [, srcName, srcVersion, srcAlias] = registered;
          const src = srcAlias
            ? await registry.getVersionByAlias(srcName!, srcAlias)
            : await registry.getVersion(srcName!, Number(srcVersion));
          folder = src.artifactPath;
          modelId ??= src.loggedModelId ?? undefined;
          runId ??= src.runId ?? undefined;
        } else {
          folder = await deps.resolveSource(source, modelId);
          // As MLflow's server: a version from a logged model belongs to the run that logged it.
          const logged = modelId ?? LOGGED_MODEL_SOURCE.exec(source)?.[1];
          if (runId === undefined && logged !== undefined) {
            runId = (await deps.loggedModelRun(logged)) ?? undefined;
          }
        }
        const v = await registry.createVersion(
          {
            name,
            content: { folder },
            source,
            runId,
            runLink: str(msg, 'run_link') || undefined,
            loggedModelId: modelId,
            description: str(msg, 'description'),
            tags: tagsOf(msg),
          },
          req.principal.name,
        );
        return { model_version: modelVersionJson(v) };
      },
    );

    read('GET', '/model-versions/get', { name: S, version: S }, async (msg) => ({
      model_version: modelVersionJson(await registry.getVersion(required(msg, 'name'), versionOf(msg))),
    }));

    write('PATCH', '/model-versions/update', { name: S, version: ANY, description: S }, async (msg, req) => {
      const v = await registry.updateVersion(
        required(msg, 'name'),
        versionOf(msg),
        { description: str(msg, 'description') ?? '' },
        req.principal.name,
      );
      return { model_version: modelVersionJson(v) };
    });

    write(
      'POST',
      '/model-versions/transition-stage',
      { name: S, version: ANY, stage: S, archive_existing_versions: ANY },
      async (msg, req) => {
        const v = await registry.transitionStage(
          required(msg, 'name'),
          versionOf(msg),
          required(msg, 'stage'),
          bool(msg, 'archive_existing_versions'),
          req.principal.name,
        );
        return { model_version: modelVersionJson(v) };
      },
    );

    write('DELETE', '/model-versions/delete', { name: S, version: ANY }, async (msg, req) => {
      await registry.deleteVersion(required(msg, 'name'), versionOf(msg), req.principal.name);
      return {};
    });

    read('GET', '/model-versions/search', SEARCH, async (msg) => {
      const r = await registry.searchVersions({
        conditions: parseFilter(str(msg, 'filter'), 'versions'),
        orderBy: parseOrderBy(strings(msg, 'order_by'), 'versions'),
        maxResults: int(msg, 'max_results') ?? 10_000,
        pageToken: str(msg, 'page_token'),
      });
      return {
        model_versions: r.versions.map(modelVersionJson),
        ...nextPageJson(r.nextPageToken),
      };
    });

    read('GET', '/model-versions/get-download-uri', { name: S, version: S }, async (msg) => {
      const v = await registry.getVersion(required(msg, 'name'), versionOf(msg));
      // The version's own immutable folder, served by the artifact proxy.
      return { artifact_uri: `mlflow-artifacts:/${v.artifactPath}` };
    });

    write(
      'POST',
      '/model-versions/set-tag',
      { name: S, version: ANY, key: S, value: S },
      async (msg, req) => {
        await registry.updateVersion(required(msg, 'name'), versionOf(msg), setTag(msg), req.principal.name);
        return {};
      },
    );

    write('DELETE', '/model-versions/delete-tag', { name: S, version: ANY, key: S }, async (msg, req) => {
      await registry.updateVersion(required(msg, 'name'), versionOf(msg), deleteTag(msg), req.principal.name);
      return {};
    });
  };
}
