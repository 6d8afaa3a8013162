import { randomUUID } from 'node:crypto';
import { type Expression, type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import {
  type ArtifactEntry,
  type ArtifactRepository,
  confinePath,
  isRegistryPath,
  joinPath,
  REGISTRY_ROOT,
} from '../artifacts/index.js';
import { SlipwayError } from '../errors/index.js';
import type { Database } from '../store/index.js';
import { randomRunName } from './run-names.js';
import {
  EXPERIMENT_GRAMMAR,
  LOGGED_MODEL_GRAMMAR,
  pageToken,
  parseFilter,
  parseOrderBy,
  parsePageToken,
  RUN_GRAMMAR,
} from './search-filter.js';
import { loggedModelColumn, SearchSql } from './search-sql.js';
import { DEFAULT_EXPERIMENT_ID, type TrackingTables } from './tracking-migrations.js';
import {
  ARTIFACT_URI_SCHEME,
  artifactUri,
  type CreateLoggedModelRequest,
  type CreateRunRequest,
  type DatasetInput,
  type Experiment,
  type KeyValue,
  type LifecycleStage,
  LOGGED_MODEL_STATUSES,
  type LoggedModel,
  type LoggedModelStatus,
  type Metric,
  type Page,
  RUN_STATUSES,
  type Run,
  type RunInfo,
  type RunStatus,
  type SearchExperimentsRequest,
  type SearchLoggedModelsRequest,
  type SearchRunsRequest,
  type UpdateRunRequest,
  type ViewType,
} from './tracking-types.js';
import {
  bad,
  LIMITS,
  maxItems,
  maxLength,
  parseExperimentId,
  validateBatchLimits,
  validateExperimentName,
  validateExperimentTag,
  validateMaxResults,
  validateMetric,
  validateParam,
  validateRunId,
  validateTag,
} from './validate.js';

type Db = Kysely<TrackingTables>;
type ExperimentRow = TrackingTables['tracking_experiments'];
type RunRow = TrackingTables['tracking_runs'];
type LoggedModelRow = TrackingTables['tracking_logged_models'];
type MetricRow = TrackingTables['tracking_metrics'];

const RUN_NAME_TAG = 'mlflow.runName';
const LOG_MODEL_HISTORY_TAG = 'mlflow.log-model.history';
const DATASET_CONTEXT_TAG = 'mlflow.data.context';
const LOGGED_MODEL_ID = /^m-[0-9a-f]{32}$/;
// IN lists stay well below SQLite's and PostgreSQL's bound-parameter limits.
const IN_CHUNK = 500;

export interface LogBatchRequest {
  metrics?: Metric[];
  params?: KeyValue[];
  tags?: KeyValue[];
}

/** A listing of a run's or logged model's artifacts, paths relative to its artifact root. */
export interface ArtifactListing {
  rootUri: string;
  files: ArtifactEntry[];
}

/**
 * Experiments, runs, params, metrics, tags and 3.x logged models, kept in the shared `Database`
 * with MLflow's semantics (what the MLflow server accepts, refuses and returns), for the MLflow
 * transport and for the registry, which resolves model-version sources through it.
 *
 * Writes of one request are one transaction: a `logBatch` of 1000 metrics is one multi-row
 * insert, one upsert of the latest values and one commit.
 *
 * @example
 *   const tracking = new Tracking(db, artifacts);
 *   const expId = await tracking.createExperiment('churn');
 *   const run = await tracking.createRun({ experimentId: expId, userId: 'ana', runName: 'baseline' });
 *   await tracking.logBatch(run.info.runId, { metrics: [{ key: 'loss', value: 0.3, timestamp: Date.now(), step: 1 }] });
 *   const page = await tracking.searchRuns({ experimentIds: [expId], filter: 'metrics.loss < 0.5' });
 */
export class Tracking {
  private readonly db: Db;
  private readonly search: SearchSql;

  constructor(
    database: Database,
    readonly artifacts: ArtifactRepository,
  ) {
    this.db = database.as<TrackingTables>();
    this.search = new SearchSql(database.dialect);
  }

  // ---------------------------------------------------------------------------------------------
  // Experiments

  /** Creates an experiment and returns its id; a taken name is SLIPWAY_ERR_ALREADY_EXISTS. */
  async createExperiment(
    name: string,
    options: { artifactLocation?: string; tags?: KeyValue[] } = {},
  ): Promise<string> {
    validateExperimentName(name);
    const tags = maxItems(options.tags, LIMITS.listItems, 'tags').map((t, i) =>
      validateExperimentTag(t, `tags[${i}].`),
    );
    const location = options.artifactLocation
      ? parseArtifactUri(options.artifactLocation, 'artifact_location')
      : undefined;
    // Runs writing into the registry's folder would overwrite or pose as registered versions.
    if (location !== undefined && isRegistryPath(location)) {
      throw bad(
        `artifact_location '${options.artifactLocation}' is inside the model registry's folder (${REGISTRY_ROOT}/); choose another folder`,
      );
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (trx) => {
          const taken = await trx
            .selectFrom('tracking_experiments')
            .select('experiment_id')
            .where('name', '=', name)
            .executeTakeFirst();
          if (taken) throw experimentExists(name);
          const max = await trx
            .selectFrom('tracking_experiments')
            .select((eb) => eb.fn.max('experiment_id').as('max'))
            .executeTakeFirst();
          const id = Number(max?.max ?? 0) + 1;
          const now = Date.now();
          await trx
            .insertInto('tracking_experiments')
            .values({
              experiment_id: id,
              name,
              artifact_path: location ?? String(id),
              lifecycle_stage: 'active',
              creation_time: now,
              last_update_time: now,
            })
            .execute();
          if (tags.length > 0) {
            await trx
              .insertInto('tracking_experiment_tags')
              .values(dedupe(tags).map((t) => ({ experiment_id: id, key: t.key, value: t.value })))
              .execute();
          }
          return String(id);
        });
      } catch (err) {
        // Two replicas creating at once on PostgreSQL: the loser of the id or the name race retries.
        if (!isUniqueViolation(err) || attempt >= 5) throw err;
        const again = await this.db
          .selectFrom('tracking_experiments')
          .select('experiment_id')
          .where('name', '=', name)
          .executeTakeFirst();
        if (again) throw experimentExists(name);
      }
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    const row = await this.experimentRow(this.db, experimentId);
    return (await this.experimentsWithTags([row]))[0]!;
  }

  /** Active or deleted; SLIPWAY_ERR_RESOURCE_NOT_FOUND when no experiment has the name. */
  async getExperimentByName(name: string): Promise<Experiment> {
    const row = await this.db
      .selectFrom('tracking_experiments')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) {
      throw new SlipwayError(
        'SLIPWAY_ERR_RESOURCE_NOT_FOUND',
        `Could not find experiment with name '${name}'`,
      );
    }
    return (await this.experimentsWithTags([row]))[0]!;
  }

  async searchExperiments(req: SearchExperimentsRequest = {}): Promise<Page<Experiment>> {
    const max = validateMaxResults(req.maxResults, LIMITS.searchDefaultResults);
    const clauses = parseFilter(req.filter, EXPERIMENT_GRAMMAR);
    maxItems(req.orderBy, LIMITS.orderByTerms, 'order_by');
    const orders = (req.orderBy?.length ? req.orderBy : ['creation_time DESC', 'experiment_id ASC']).map(
      (o) => parseOrderBy(o, EXPERIMENT_GRAMMAR),
    );
    const offset = parsePageToken(req.pageToken);
    let q = this.db
      .selectFrom('tracking_experiments as e')
      .selectAll('e')
      .where('e.lifecycle_stage', 'in', stagesOf(req.viewType));
    for (const c of clauses) q = q.where(this.search.experimentClause(c));
    const seen = new Set<string>();
    for (const o of orders) {
      if (o.type !== 'attribute') throw bad(`order_by: experiments can only be ordered by attributes`);
      if (seen.has(o.key)) throw bad(`order_by contains duplicate fields: ${req.orderBy?.join(', ')}`);
      seen.add(o.key);
      q = q.orderBy(sql.ref(`e.${o.key}`), o.ascending ? 'asc' : 'desc');
    }
    if (!seen.has('experiment_id')) q = q.orderBy('e.experiment_id', 'desc');
    const rows = await q
      .limit(max + 1)
      .offset(offset)
      .execute();
    return page(await this.experimentsWithTags(rows.slice(0, max)), rows.length > max, offset + max);
  }

  async renameExperiment(experimentId: string, newName: string): Promise<void> {
    validateExperimentName(newName, 'new_name');
    await this.db.transaction().execute(async (trx) => {
      const row = await this.experimentRow(trx, experimentId);
      if (row.lifecycle_stage !== 'active') {
        throw new SlipwayError('SLIPWAY_ERR_INVALID_STATE', `Cannot rename a non-active experiment.`);
      }
      const taken = await trx
        .selectFrom('tracking_experiments')
        .select('experiment_id')
        .where('name', '=', newName)
        .where('experiment_id', '!=', row.experiment_id)
        .executeTakeFirst();
      if (taken) throw experimentExists(newName);
      await trx
        .updateTable('tracking_experiments')
        .set({ name: newName, last_update_time: Date.now() })
        .where('experiment_id', '=', row.experiment_id)
        .execute();
    });
  }

  /** Marks the experiment and all of its runs deleted (restorable), as MLflow does. */
  async deleteExperiment(experimentId: string): Promise<void> {
    await this.setExperimentStage(experimentId, 'deleted');
  }

  async restoreExperiment(experimentId: string): Promise<void> {
    await this.setExperimentStage(experimentId, 'active');
  }

  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    const tag = validateExperimentTag({ key, value });
    await this.db.transaction().execute(async (trx) => {
      const row = await this.activeExperiment(trx, experimentId);
      await trx
        .insertInto('tracking_experiment_tags')
        .values({ experiment_id: row.experiment_id, key: tag.key, value: tag.value })
        .onConflict((oc) => oc.columns(['experiment_id', 'key']).doUpdateSet({ value: tag.value }))
        .execute();
    });
  }

  async deleteExperimentTag(experimentId: string, key: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await this.activeExperiment(trx, experimentId);
      const res = await trx
        .deleteFrom('tracking_experiment_tags')
        .where('experiment_id', '=', row.experiment_id)
        .where('key', '=', key)
        .executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) {
        throw notFound(`No tag with name: ${key} in experiment with id ${experimentId}`);
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Runs

  async createRun(req: CreateRunRequest): Promise<Run> {
    const tags = dedupe(
      maxItems(req.tags, LIMITS.listItems, 'tags').map((t, i) => validateTag(t, `tags[${i}].`)),
    );
    const nameTag = tags.find((t) => t.key === RUN_NAME_TAG)?.value;
    if (req.runName && nameTag && req.runName !== nameTag) {
      throw bad(
        `Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='${req.runName}', mlflow.runName='${nameTag}').`,
      );
    }
    const runName = maxLength(req.runName || nameTag || randomRunName(), LIMITS.runNameLength, 'run_name');
    maxLength(req.userId, LIMITS.userIdLength, 'user_id');
    if (!nameTag) tags.push({ key: RUN_NAME_TAG, value: runName });
    const runId = randomUUID().replaceAll('-', '');
    const startTime = req.startTime ?? Date.now();
    return this.db.transaction().execute(async (trx) => {
      const exp = await this.experimentRow(trx, req.experimentId || DEFAULT_EXPERIMENT_ID);
      if (exp.lifecycle_stage !== 'active') {
        throw new SlipwayError(
          'SLIPWAY_ERR_INVALID_STATE',
          `The experiment ${exp.experiment_id} must be in the 'active' state. Current state is ${exp.lifecycle_stage}.`,
        );
      }
      const row: RunRow = {
        run_id: runId,
        experiment_id: exp.experiment_id,
        name: runName,
        user_id: req.userId,
        status: 'RUNNING',
        start_time: startTime,
        end_time: null,
        lifecycle_stage: 'active',
        deleted_time: null,
        artifact_path: joinPath(exp.artifact_path, runId, 'artifacts'),
      };
      await trx.insertInto('tracking_runs').values(row).execute();
      await trx
        .insertInto('tracking_run_tags')
        .values(tags.map((t) => ({ run_id: runId, key: t.key, value: t.value })))
        .execute();
      return {
        info: runInfoOf(row),
        data: { metrics: [], params: [], tags },
        inputs: { datasetInputs: [], modelInputs: [] },
        outputs: { modelOutputs: [] },
      };
    });
  }

  async getRun(runId: string): Promise<Run> {
    const row = await this.runRow(this.db, runId);
    return (await this.runsWithData([row]))[0]!;
  }

  async updateRun(runId: string, req: UpdateRunRequest): Promise<RunInfo> {
    maxLength(req.runName, LIMITS.runNameLength, 'run_name');
    if (req.status !== undefined && !RUN_STATUSES.includes(req.status)) {
      throw bad(`status '${req.status}' is not one of ${RUN_STATUSES.join(', ')}`);
    }
    return this.db.transaction().execute(async (trx) => {
      const row = await this.activeRun(trx, runId);
      const next: RunRow = {
        ...row,
        status: req.status ?? row.status,
        end_time: req.endTime ?? row.end_time,
        name: req.runName || row.name,
      };
      await trx
        .updateTable('tracking_runs')
        .set({ status: next.status, end_time: next.end_time, name: next.name })
        .where('run_id', '=', row.run_id)
        .execute();
      if (req.runName) await this.upsertRunTags(trx, row.run_id, [{ key: RUN_NAME_TAG, value: req.runName }]);
      return runInfoOf(next);
    });
  }

  async deleteRun(runId: string): Promise<void> {
    await this.setRunStage(runId, 'deleted');
  }

  async restoreRun(runId: string): Promise<void> {
    await this.setRunStage(runId, 'active');
  }

  /**
   * Runs of the given experiments matching MLflow's filter grammar, ordered by `orderBy` clauses
   * (nulls last), then start time descending and run id; `maxResults` per page (default 1000).
   */
  async searchRuns(req: SearchRunsRequest): Promise<Page<Run>> {
    const max = validateMaxResults(req.maxResults, LIMITS.searchDefaultResults);
    const experimentIds = maxItems(req.experimentIds, LIMITS.listItems, 'experiment_ids').map((id, i) =>
      parseExperimentId(id, `experiment_ids[${i}]`),
    );
    const clauses = parseFilter(req.filter, RUN_GRAMMAR);
    const orders = maxItems(req.orderBy, LIMITS.orderByTerms, 'order_by').map((o) =>
      parseOrderBy(o, RUN_GRAMMAR),
    );
    const offset = parsePageToken(req.pageToken);
    if (experimentIds.length === 0) return { items: [] };
    let q = this.db
      .selectFrom('tracking_runs as r')
      .selectAll('r')
      .where('r.experiment_id', 'in', experimentIds)
      .where('r.lifecycle_stage', 'in', stagesOf(req.runViewType));
    for (const c of clauses) q = q.where(this.search.runClause(c));
    const seen = new Set<string>();
    for (const o of orders) {
      const id = `${o.type}.${o.key}`;
      if (seen.has(id)) throw bad(`order_by contains duplicate fields: ${req.orderBy?.join(', ')}`);
      seen.add(id);
      const { nullsLast, value } = this.search.runOrderExpr(o);
      q = q.orderBy(nullsLast, 'asc').orderBy(value, o.ascending ? 'asc' : 'desc');
    }
    if (!seen.has('attribute.start_time')) q = q.orderBy('r.start_time', 'desc');
    const rows = await q
      .orderBy('r.run_id', 'asc')
      .limit(max + 1)
      .offset(offset)
      .execute();
    return page(await this.runsWithData(rows.slice(0, max)), rows.length > max, offset + max);
  }

  async logParam(runId: string, key: string, value: string): Promise<void> {
    await this.logBatch(runId, { params: [{ key, value }] });
  }

  async logMetric(runId: string, metric: Metric): Promise<void> {
    await this.logBatch(runId, { metrics: [metric] });
  }

  /**
   * Logs metrics, params and tags in one transaction, with MLflow's limits (1000 metrics, 100
   * params, 100 tags). A param logged again with another value fails the whole batch; the same
   * metric point logged twice is stored once; tags overwrite.
   */
  async logBatch(runId: string, batch: LogBatchRequest): Promise<void> {
    validateRunId(runId);
    const rawMetrics = batch.metrics ?? [];
    const rawParams = batch.params ?? [];
    const rawTags = batch.tags ?? [];
    validateBatchLimits(rawMetrics.length, rawParams.length, rawTags.length);
    const one = rawMetrics.length + rawParams.length + rawTags.length === 1;
    const metrics = rawMetrics.map((m, i) => validateMetric(m, one ? '' : `metrics[${i}].`));
    const params = rawParams.map((p, i) => validateParam(p, one ? '' : `params[${i}].`));
    const tags = dedupe(rawTags.map((t, i) => validateTag(t, one ? '' : `tags[${i}].`)));
    const keys = new Set<string>();
    const dupes = new Set<string>();
    for (const p of params) (keys.has(p.key) ? dupes : keys).add(p.key);
    if (dupes.size > 0) {
      throw bad(
        `Duplicate parameter keys have been submitted: ${[...dupes].join(', ')}. Please ensure the request contains only one param value per param key.`,
      );
    }
    await this.db.transaction().execute(async (trx) => {
      const run = await this.activeRun(trx, runId);
      if (params.length > 0) await this.insertParams(trx, run.run_id, params);
      if (metrics.length > 0) await this.insertMetrics(trx, run.run_id, metrics);
      if (tags.length > 0) {
        await this.upsertRunTags(trx, run.run_id, tags);
        const name = tags.find((t) => t.key === RUN_NAME_TAG);
        if (name) {
          maxLength(name.value, LIMITS.runNameLength, `tag ${RUN_NAME_TAG}`);
          await trx
            .updateTable('tracking_runs')
            .set({ name: name.value })
            .where('run_id', '=', run.run_id)
            .execute();
        }
      }
    });
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.logBatch(runId, { tags: [{ key, value }] });
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const run = await this.activeRun(trx, runId);
      const res = await trx
        .deleteFrom('tracking_run_tags')
        .where('run_id', '=', run.run_id)
        .where('key', '=', key)
        .executeTakeFirst();
      if (Number(res.numDeletedRows) === 0)
        throw notFound(`No tag with name: ${key} in run with id ${runId}`);
    });
  }

  /** Every logged value of one metric, by timestamp, step and value; paged when `maxResults` is given. */
  async getMetricHistory(
    runId: string,
    key: string,
    options: { maxResults?: number; pageToken?: string } = {},
  ): Promise<Page<Metric>> {
    await this.runRow(this.db, runId);
    const offset = parsePageToken(options.pageToken);
    let q = this.db
      .selectFrom('tracking_metrics')
      .selectAll()
      .where('run_id', '=', runId)
      .where('key', '=', key)
      .orderBy('timestamp_ms')
      .orderBy('step')
      .orderBy('value');
    const max = options.maxResults;
    if (max !== undefined) {
      if (!Number.isInteger(max) || max < 1)
        throw bad(`max_results ${max} is invalid: it must be a positive integer`);
      q = q.limit(max + 1).offset(offset);
    } else if (offset > 0) {
      // SQLite takes OFFSET only after a LIMIT.
      q = q.limit(Number.MAX_SAFE_INTEGER).offset(offset);
    }
    const rows = await q.execute();
    const items = (max === undefined ? rows : rows.slice(0, max)).map((r) => ({ ...metricOf(r), runId }));
    return page(items, max !== undefined && rows.length > max, offset + (max ?? 0));
  }

  /** Datasets (with their input tags) and logged models a run used. */
  async logInputs(
    runId: string,
    inputs: { datasets?: DatasetInput[]; models?: { modelId: string }[] },
  ): Promise<void> {
    validateRunId(runId);
    const datasets = new Map<string, DatasetInput>();
    maxItems(inputs.models, LIMITS.listItems, 'models');
    maxItems(inputs.datasets, LIMITS.listItems, 'datasets').forEach((d, i) => {
      const ds = d.dataset;
      if (!ds || typeof ds.name !== 'string' || ds.name === '')
        throw bad(`datasets[${i}].dataset.name is required`);
      if (typeof ds.digest !== 'string' || ds.digest === '')
        throw bad(`datasets[${i}].dataset.digest is required`);
      maxLength(ds.name, LIMITS.datasetNameLength, `datasets[${i}].dataset.name`);
      maxLength(ds.digest, LIMITS.datasetDigestLength, `datasets[${i}].dataset.digest`);
      maxLength(ds.sourceType, LIMITS.datasetSourceTypeLength, `datasets[${i}].dataset.source_type`);
      maxLength(ds.source, Number.POSITIVE_INFINITY, `datasets[${i}].dataset.source`);
      maxLength(ds.schema, Number.POSITIVE_INFINITY, `datasets[${i}].dataset.schema`);
      maxLength(ds.profile, Number.POSITIVE_INFINITY, `datasets[${i}].dataset.profile`);
      for (const t of d.tags ?? [])
        maxLength(`${t.key}${t.value}`, Number.POSITIVE_INFINITY, `datasets[${i}].tags`);
      const context = (d.tags ?? []).find((t) => t.key === DATASET_CONTEXT_TAG)?.value;
      maxLength(context, LIMITS.datasetNameLength, `datasets[${i}].tags.${DATASET_CONTEXT_TAG}`);
      const k = `${ds.name}\0${ds.digest}`;
      if (!datasets.has(k)) datasets.set(k, d);
    });
    await this.db.transaction().execute(async (trx) => {
      const run = await this.activeRun(trx, runId);
      if (datasets.size > 0) {
        await trx
          .insertInto('tracking_run_datasets')
          .values(
            [...datasets.values()].map((d) => ({
              run_id: run.run_id,
              name: d.dataset.name,
              digest: d.dataset.digest,
              source_type: d.dataset.sourceType ?? '',
              source: d.dataset.source ?? '',
              schema: d.dataset.schema ?? null,
              profile: d.dataset.profile ?? null,
              context: (d.tags ?? []).find((t) => t.key === DATASET_CONTEXT_TAG)?.value ?? null,
              tags: JSON.stringify(d.tags ?? []),
            })),
          )
          .onConflict((oc) => oc.columns(['run_id', 'name', 'digest']).doNothing())
          .execute();
      }
      await this.insertRunModels(
        trx,
        run.run_id,
        'input',
        (inputs.models ?? []).map((m) => ({ ...m, step: 0 })),
      );
    });
  }

  /** Logged models a run produced (3.x `log_model` records its model here). */
  async logOutputs(runId: string, models: { modelId: string; step?: number }[]): Promise<void> {
    validateRunId(runId);
    maxItems(models, LIMITS.listItems, 'models');
    await this.db.transaction().execute(async (trx) => {
      const run = await this.activeRun(trx, runId);
      await this.insertRunModels(trx, run.run_id, 'output', models);
    });
  }

  /**
   * `runs/log-model` (2.x clients): appends the model's MLmodel dict to the run's model history
   * tag. As MLflow's server, the whole history must fit in one tag value (8000 characters): a
   * log-model past that is refused, naming model_json, rather than growing the tag without bound.
   */
  async logModelHistory(runId: string, modelJson: string): Promise<void> {
    validateRunId(runId);
    maxLength(modelJson, LIMITS.tagValueLength, 'model_json');
    // JSON.stringify recurses: a model nested thousands of levels deep would overflow the stack.
    if (jsonDepth(modelJson) > LIMITS.modelJsonDepth) {
      throw bad(`model_json nests deeper than ${LIMITS.modelJsonDepth} levels`);
    }
    let model: unknown;
    try {
      model = JSON.parse(modelJson);
    } catch {
      throw bad(`model_json is not valid JSON`);
    }
    if (typeof model !== 'object' || model === null || Array.isArray(model)) {
      throw bad(`model_json must be a JSON object (the model's MLmodel as a dict)`);
    }
    const entry = JSON.stringify(model);
    await this.db.transaction().execute(async (trx) => {
      const run = await this.activeRun(trx, runId);
      const prev = await trx
        .selectFrom('tracking_run_tags')
        .select('value')
        .where('run_id', '=', run.run_id)
        .where('key', '=', LOG_MODEL_HISTORY_TAG)
        .executeTakeFirst();
      let value = `[${entry}]`;
      if (prev) {
        let history: unknown;
        try {
          history = JSON.parse(prev.value);
        } catch {
          history = undefined;
        }
        if (!Array.isArray(history)) {
          throw bad(
            `tag ${LOG_MODEL_HISTORY_TAG} of run ${runId} is not a JSON list, so model_json cannot be appended to it; delete the tag or set it to '[]'`,
          );
        }
        // Appended as text: the earlier entries are kept as stored, never re-serialized.
        if (history.length > 0) value = `${prev.value.slice(0, prev.value.lastIndexOf(']'))},${entry}]`;
      }
      if (value.length > LIMITS.tagValueLength) {
        throw bad(
          `model_json cannot be recorded: the run's model history (tag ${LOG_MODEL_HISTORY_TAG}) would be ${value.length} characters, over the tag value limit of ${LIMITS.tagValueLength}`,
        );
      }
      await this.upsertRunTags(trx, run.run_id, [{ key: LOG_MODEL_HISTORY_TAG, value }]);
    });
  }

  /** A run's artifacts under `path` (relative to its artifact root), for `artifacts/list`. */
  async listRunArtifacts(runId: string, path = ''): Promise<ArtifactListing> {
    const run = await this.runRow(this.db, runId);
    return this.listUnder(run.artifact_path, path);
  }

  // ---------------------------------------------------------------------------------------------
  // Logged models (MLflow 3.x)

  async createLoggedModel(req: CreateLoggedModelRequest): Promise<LoggedModel> {
    const params = dedupe(
      maxItems(req.params, LIMITS.listItems, 'params').map((p, i) => keyValue(p, `params[${i}].`)),
    );
    const tags = dedupe(
      maxItems(req.tags, LIMITS.listItems, 'tags').map((t, i) => keyValue(t, `tags[${i}].`)),
    );
    maxLength(req.name, LIMITS.loggedModelNameLength, 'name');
    maxLength(req.modelType, LIMITS.loggedModelNameLength, 'model_type');
    if (req.sourceRunId) validateRunId(req.sourceRunId, 'source_run_id');
    maxLength(req.sourceRunId, 32, 'source_run_id');
    const modelId = `m-${randomUUID().replaceAll('-', '')}`;
    return this.db.transaction().execute(async (trx) => {
      const exp = await this.experimentRow(trx, req.experimentId);
      if (exp.lifecycle_stage !== 'active') {
        throw new SlipwayError(
          'SLIPWAY_ERR_INVALID_STATE',
          `The experiment ${exp.experiment_id} must be in the 'active' state. Current state is ${exp.lifecycle_stage}.`,
        );
      }
      const now = Date.now();
      const row: LoggedModelRow = {
        model_id: modelId,
        experiment_id: exp.experiment_id,
        name: req.name || randomRunName(),
        artifact_path: joinPath(exp.artifact_path, 'models', modelId, 'artifacts'),
        creation_ms: now,
        last_updated_ms: now,
        status: 'LOGGED_MODEL_PENDING',
        status_message: null,
        model_type: req.modelType || null,
        source_run_id: req.sourceRunId || null,
        lifecycle_stage: 'active',
      };
      await trx.insertInto('tracking_logged_models').values(row).execute();
      if (params.length > 0) {
        await trx
          .insertInto('tracking_logged_model_params')
          .values(params.map((p) => ({ model_id: modelId, ...p })))
          .execute();
      }
      if (tags.length > 0) {
        await trx
          .insertInto('tracking_logged_model_tags')
          .values(tags.map((t) => ({ model_id: modelId, ...t })))
          .execute();
      }
      return (await this.loggedModelsWithData(trx, [row]))[0]!;
    });
  }

  /** A logged model; a deleted one only with `allowDeleted`. */
  async getLoggedModel(modelId: string, options: { allowDeleted?: boolean } = {}): Promise<LoggedModel> {
    const row = await this.loggedModelRow(this.db, modelId, options.allowDeleted);
    return (await this.loggedModelsWithData(this.db, [row]))[0]!;
  }

  /** Sets the upload outcome: LOGGED_MODEL_READY once every file is in, or LOGGED_MODEL_UPLOAD_FAILED. */
  async finalizeLoggedModel(modelId: string, status: LoggedModelStatus): Promise<LoggedModel> {
    if (!LOGGED_MODEL_STATUSES.includes(status)) {
      throw bad(`status '${status}' is not one of ${LOGGED_MODEL_STATUSES.join(', ')}`);
    }
    return this.db.transaction().execute(async (trx) => {
      const row = await this.loggedModelRow(trx, modelId);
      const next = { ...row, status, last_updated_ms: Date.now() };
      await trx
        .updateTable('tracking_logged_models')
        .set({ status, last_updated_ms: next.last_updated_ms })
        .where('model_id', '=', modelId)
        .execute();
      return (await this.loggedModelsWithData(trx, [next]))[0]!;
    });
  }

  async deleteLoggedModel(modelId: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await this.loggedModelRow(trx, modelId);
      await trx
        .updateTable('tracking_logged_models')
        .set({ lifecycle_stage: 'deleted', last_updated_ms: Date.now() })
        .where('model_id', '=', modelId)
        .execute();
    });
  }

  async setLoggedModelTags(modelId: string, tags: KeyValue[]): Promise<LoggedModel> {
    const rows = dedupe(maxItems(tags, LIMITS.listItems, 'tags').map((t, i) => keyValue(t, `tags[${i}].`)));
    return this.db.transaction().execute(async (trx) => {
      const row = await this.loggedModelRow(trx, modelId);
      if (rows.length > 0) {
        await trx
          .insertInto('tracking_logged_model_tags')
          .values(rows.map((t) => ({ model_id: modelId, ...t })))
          .onConflict((oc) =>
            oc.columns(['model_id', 'key']).doUpdateSet({ value: (eb) => eb.ref('excluded.value') }),
          )
          .execute();
      }
      return (await this.loggedModelsWithData(trx, [row]))[0]!;
    });
  }

  async deleteLoggedModelTag(modelId: string, key: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await this.loggedModelRow(trx, modelId);
      const res = await trx
        .deleteFrom('tracking_logged_model_tags')
        .where('model_id', '=', modelId)
        .where('key', '=', key)
        .executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) {
        throw notFound(`No tag with key '${key}' found for model with ID '${modelId}'.`);
      }
    });
  }

  /** Params are immutable, as a run's are: the same value again is a no-op, another value a 400. */
  async logLoggedModelParams(modelId: string, params: KeyValue[]): Promise<void> {
    const rows = maxItems(params, LIMITS.listItems, 'params').map((p, i) => keyValue(p, `params[${i}].`));
    await this.db.transaction().execute(async (trx) => {
      await this.loggedModelRow(trx, modelId);
      if (rows.length === 0) return;
      await trx
        .insertInto('tracking_logged_model_params')
        .values(dedupe(rows).map((p) => ({ model_id: modelId, ...p })))
        .onConflict((oc) => oc.columns(['model_id', 'key']).doNothing())
        .execute();
      const stored = await trx
        .selectFrom('tracking_logged_model_params')
        .select(['key', 'value'])
        .where('model_id', '=', modelId)
        .where(
          'key',
          'in',
          rows.map((p) => p.key),
        )
        .execute();
      const conflicts = conflictsOf(rows, stored);
      if (conflicts)
        throw bad(`Changing param values is not allowed. ${conflicts} for logged model '${modelId}'.`);
    });
  }

  async searchLoggedModels(req: SearchLoggedModelsRequest): Promise<Page<LoggedModel>> {
    const max = validateMaxResults(req.maxResults, LIMITS.loggedModelsDefaultResults);
    const experimentIds = maxItems(req.experimentIds, LIMITS.listItems, 'experiment_ids').map((id, i) =>
      parseExperimentId(id, `experiment_ids[${i}]`),
    );
    const clauses = parseFilter(req.filter, LOGGED_MODEL_GRAMMAR);
    const offset = parsePageToken(req.pageToken);
    const datasets = maxItems(req.datasets, LIMITS.searchDatasets, 'datasets');
    datasets.forEach((d, i) => {
      if (!d.datasetName) throw bad(`datasets[${i}].dataset_name must be specified`);
    });
    if (experimentIds.length === 0) return { items: [] };
    const datasetMatch = (alias: string): RawBuilder<SqlBool> | undefined =>
      datasets.length === 0
        ? undefined
        : sql<SqlBool>`(${sql.join(
            datasets.map((d) =>
              d.datasetDigest
                ? sql`(${sql.ref(`${alias}.dataset_name`)} = ${d.datasetName} and ${sql.ref(`${alias}.dataset_digest`)} = ${d.datasetDigest})`
                : sql`${sql.ref(`${alias}.dataset_name`)} = ${d.datasetName}`,
            ),
            sql` or `,
          )})`;
    let q = this.db
      .selectFrom('tracking_logged_models as m')
      .selectAll('m')
      .where('m.experiment_id', 'in', experimentIds)
      .where('m.lifecycle_stage', '!=', 'deleted');
    let metricFilter = false;
    for (const c of clauses) {
      if (c.type === 'metric') metricFilter = true;
      q = q.where(this.search.loggedModelClause(c, datasetMatch('mm')));
    }
    const anyDataset = datasetMatch('mm');
    if (anyDataset && !metricFilter) {
      q = q.where(
        sql<SqlBool>`exists (select 1 from tracking_logged_model_metrics mm where mm.model_id = m.model_id and ${anyDataset})`,
      );
    }
    let byCreation = false;
    let byId = false;
    for (const o of maxItems(req.orderBy, LIMITS.orderByTerms, 'order_by')) {
      const dir = o.ascending === false ? 'desc' : 'asc';
      const field = o.fieldName ?? '';
      let value: Expression<unknown>;
      if (field.startsWith('metrics.')) {
        const key = field.slice('metrics.'.length);
        const extra = [
          o.datasetName ? sql` and mm.dataset_name = ${o.datasetName}` : sql``,
          o.datasetDigest ? sql` and mm.dataset_digest = ${o.datasetDigest}` : sql``,
        ];
        value = sql`(select mm.value from tracking_logged_model_metrics mm where mm.model_id = m.model_id and mm.key = ${key}${extra[0]}${extra[1]} order by mm.timestamp_ms desc, mm.step desc, mm.run_id asc limit 1)`;
      } else {
        const column = loggedModelColumn(field, 'order_by field_name');
        if (column === 'creation_ms') byCreation = true;
        if (column === 'model_id') byId = true;
        value = sql.ref(`m.${column}`);
      }
      q = q.orderBy(sql`case when ${value} is null then 1 else 0 end`, 'asc').orderBy(value, dir);
    }
    if (!byCreation) q = q.orderBy('m.creation_ms', 'desc');
    if (!byId) q = q.orderBy('m.model_id', 'asc');
    const rows = await q
      .limit(max + 1)
      .offset(offset)
      .execute();
    return page(
      await this.loggedModelsWithData(this.db, rows.slice(0, max)),
      rows.length > max,
      offset + max,
    );
  }

  /** A logged model's artifacts under `path` (relative to its artifact root). */
  async listLoggedModelArtifacts(modelId: string, path = ''): Promise<ArtifactListing> {
    const row = await this.loggedModelRow(this.db, modelId);
    return this.listUnder(row.artifact_path, path);
  }

  // ---------------------------------------------------------------------------------------------
  // Model sources, for the registry

  /**
   * The artifact-repository folder a model-version source names:
   * `models:/m-<id>[/sub]` → the logged model's artifacts; `runs:/<run_id>/<path>` → the run's;
   * `mlflow-artifacts:/<path>` → `<path>`. Anything else is SLIPWAY_ERR_BAD_REQUEST naming `source`.
   *
   * @example
   *   await tracking.resolveModelSource('runs:/0123…/model'); // '1/0123…/artifacts/model'
   */
  async resolveModelSource(source: string, modelId?: string): Promise<string> {
    const folder = await this.sourceFolder(source, modelId);
    if (holdsVersions(folder)) {
      throw bad(
        `source '${source}' names a folder that holds other model versions' files (the artifact root, ${REGISTRY_ROOT}/ or ${REGISTRY_ROOT}/<name>/): register from a run's artifacts, a logged model or one version (models:/<name>/<version>)`,
      );
    }
    return folder;
  }

  private async sourceFolder(source: string, modelId?: string): Promise<string> {
    if (typeof source !== 'string' || source === '') {
      if (modelId) return (await this.loggedModelRow(this.db, modelId)).artifact_path;
      throw bad(`source is required`);
    }
    if (source.startsWith('models:/')) {
      const [id = '', ...rest] = source.slice('models:/'.length).split('/');
      if (!LOGGED_MODEL_ID.test(id)) {
        throw bad(
          `source '${source}' is not a logged model URI (models:/m-<32 hex>); register from the logged model, its run or its artifact URI`,
        );
      }
      if (modelId && modelId !== id)
        throw bad(`source '${source}' names another logged model than model_id '${modelId}'`);
      const row = await this.loggedModelRow(this.db, id);
      return joinPath(row.artifact_path, confinePath(rest.join('/'), 'source'));
    }
    if (source.startsWith('runs:/')) {
      const [runId = '', ...rest] = source.slice('runs:/'.length).split('/');
      if (runId === '') throw bad(`source '${source}' does not name a run (runs:/<run_id>/<path>)`);
      const run = await this.runRow(this.db, runId);
      return joinPath(run.artifact_path, confinePath(rest.join('/'), 'source'));
    }
    if (source.startsWith(ARTIFACT_URI_SCHEME)) return parseArtifactUri(source, 'source');
    throw bad(
      `source '${source}' is not a models:/m-<id>, runs:/<run_id>/<path> or mlflow-artifacts:/<path> URI`,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private async experimentRow(db: Db, experimentId: string): Promise<ExperimentRow> {
    const id = parseExperimentId(experimentId);
    const row = await db
      .selectFrom('tracking_experiments')
      .selectAll()
      .where('experiment_id', '=', id)
      .executeTakeFirst();
    if (!row) throw notFound(`No Experiment with id=${id} exists`);
    return row;
  }

  private async activeExperiment(db: Db, experimentId: string): Promise<ExperimentRow> {
    const row = await this.experimentRow(db, experimentId);
    if (row.lifecycle_stage !== 'active') {
      throw new SlipwayError(
        'SLIPWAY_ERR_INVALID_STATE',
        `The experiment ${row.experiment_id} must be in the 'active' state. Current state is ${row.lifecycle_stage}.`,
      );
    }
    return row;
  }

  private async setExperimentStage(experimentId: string, stage: LifecycleStage): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await this.experimentRow(trx, experimentId);
      const expected = stage === 'deleted' ? 'active' : 'deleted';
      if (row.lifecycle_stage !== expected) {
        throw new SlipwayError(
          'SLIPWAY_ERR_INVALID_STATE',
          `Experiment ${row.experiment_id} is ${row.lifecycle_stage}, not ${expected}`,
        );
      }
      if (stage === 'deleted' && String(row.experiment_id) === DEFAULT_EXPERIMENT_ID) {
        throw bad(`The default experiment (id ${DEFAULT_EXPERIMENT_ID}) cannot be deleted`);
      }
      const now = Date.now();
      await trx
        .updateTable('tracking_experiments')
        .set({ lifecycle_stage: stage, last_update_time: now })
        .where('experiment_id', '=', row.experiment_id)
        .execute();
      await trx
        .updateTable('tracking_runs')
        .set({ lifecycle_stage: stage, deleted_time: stage === 'deleted' ? now : null })
        .where('experiment_id', '=', row.experiment_id)
        .execute();
    });
  }

  private async runRow(db: Db, runId: string): Promise<RunRow> {
    if (typeof runId !== 'string' || runId === '') throw bad(`run_id is required`);
    const row = await db
      .selectFrom('tracking_runs')
      .selectAll()
      .where('run_id', '=', runId)
      .executeTakeFirst();
    if (!row) throw notFound(`Run with id=${runId} not found`);
    return row;
  }

  private async activeRun(db: Db, runId: string): Promise<RunRow> {
    const row = await this.runRow(db, runId);
    if (row.lifecycle_stage !== 'active') {
      throw new SlipwayError(
        'SLIPWAY_ERR_INVALID_STATE',
        `The run ${runId} must be in the 'active' state. Current state is ${row.lifecycle_stage}.`,
      );
    }
    return row;
  }

  private async setRunStage(runId: string, stage: LifecycleStage): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const row = await this.runRow(trx, runId);
      await trx
        .updateTable('tracking_runs')
        .set({ lifecycle_stage: stage, deleted_time: stage === 'deleted' ? Date.now() : null })
        .where('run_id', '=', row.run_id)
        .execute();
    });
  }

  private async loggedModelRow(db: Db, modelId: string, allowDeleted = false): Promise<LoggedModelRow> {
    const row = await db
      .selectFrom('tracking_logged_models')
      .selectAll()
      .where('model_id', '=', modelId)
      .executeTakeFirst();
    if (!row || (row.lifecycle_stage === 'deleted' && !allowDeleted)) {
      throw notFound(`Logged model with ID '${modelId}' not found.`);
    }
    return row;
  }

  private async insertParams(trx: Db, runId: string, params: KeyValue[]): Promise<void> {
    await trx
      .insertInto('tracking_params')
      .values(params.map((p) => ({ run_id: runId, key: p.key, value: p.value })))
      .onConflict((oc) => oc.columns(['run_id', 'key']).doNothing())
      .execute();
    // Read back what is stored: an earlier value under the same key means the batch changes a param.
    const stored = await trx
      .selectFrom('tracking_params')
      .select(['key', 'value'])
      .where('run_id', '=', runId)
      .where(
        'key',
        'in',
        params.map((p) => p.key),
      )
      .execute();
    const conflicts = conflictsOf(params, stored);
    if (conflicts) throw bad(`Changing param values is not allowed. ${conflicts} for run ID='${runId}'.`);
  }

  private async insertMetrics(trx: Db, runId: string, metrics: Metric[]): Promise<void> {
    const rows: MetricRow[] = metrics.map((m) => {
      const isNan = Number.isNaN(m.value);
      return {
        run_id: runId,
        key: m.key,
        step: m.step,
        timestamp_ms: m.timestamp,
        // SQL databases hold no infinities in every dialect: MLflow stores ±max double instead.
        value: isNan ? 0 : Math.max(-Number.MAX_VALUE, Math.min(Number.MAX_VALUE, m.value)),
        is_nan: isNan ? 1 : 0,
      };
    });
    for (let i = 0; i < rows.length; i += 1000) {
      await trx
        .insertInto('tracking_metrics')
        .values(rows.slice(i, i + 1000))
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
    // The newest point per key in this batch, then one upsert that keeps whichever is newer.
    const latest = new Map<string, MetricRow>();
    for (const r of rows) {
      const cur = latest.get(r.key);
      if (!cur || newer(r, cur)) latest.set(r.key, r);
    }
    await trx
      .insertInto('tracking_latest_metrics')
      .values([...latest.values()])
      .onConflict((oc) =>
        oc
          .columns(['run_id', 'key'])
          .doUpdateSet({
            step: (eb) => eb.ref('excluded.step'),
            timestamp_ms: (eb) => eb.ref('excluded.timestamp_ms'),
            value: (eb) => eb.ref('excluded.value'),
            is_nan: (eb) => eb.ref('excluded.is_nan'),
          })
          .where(
            sql<SqlBool>`(excluded.step > tracking_latest_metrics.step or (excluded.step = tracking_latest_metrics.step and (excluded.timestamp_ms > tracking_latest_metrics.timestamp_ms or (excluded.timestamp_ms = tracking_latest_metrics.timestamp_ms and excluded.value > tracking_latest_metrics.value))))`,
          ),
      )
      .execute();
    const forModels = metrics.flatMap((m, i) =>
      m.modelId
        ? [
            {
              model_id: m.modelId,
              key: m.key,
              step: m.step,
              timestamp_ms: m.timestamp,
              run_id: runId,
              value: rows[i]!.value,
              is_nan: rows[i]!.is_nan,
              dataset_name: m.datasetName || null,
              dataset_digest: m.datasetDigest || null,
            },
          ]
        : [],
    );
    if (forModels.length > 0) {
      await trx
        .insertInto('tracking_logged_model_metrics')
        .values(forModels)
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  }

  private async upsertRunTags(trx: Db, runId: string, tags: KeyValue[]): Promise<void> {
    await trx
      .insertInto('tracking_run_tags')
      .values(tags.map((t) => ({ run_id: runId, key: t.key, value: t.value })))
      .onConflict((oc) =>
        oc.columns(['run_id', 'key']).doUpdateSet({ value: (eb) => eb.ref('excluded.value') }),
      )
      .execute();
  }

  private async insertRunModels(
    trx: Db,
    runId: string,
    direction: 'input' | 'output',
    models: { modelId: string; step?: number }[],
  ): Promise<void> {
    const rows = models.map((m, i) => {
      if (typeof m.modelId !== 'string' || m.modelId === '') throw bad(`models[${i}].model_id is required`);
      maxLength(m.modelId, LIMITS.modelIdLength, `models[${i}].model_id`);
      return { run_id: runId, direction, model_id: m.modelId, step: m.step ?? 0 };
    });
    if (rows.length === 0) return;
    await trx
      .insertInto('tracking_run_models')
      .values(rows)
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  private async experimentsWithTags(rows: ExperimentRow[]): Promise<Experiment[]> {
    const tags = await this.childRows(
      'tracking_experiment_tags',
      'experiment_id',
      rows.map((r) => r.experiment_id),
    );
    return rows.map((r) => ({
      experimentId: String(r.experiment_id),
      name: r.name,
      artifactLocation: artifactUri(r.artifact_path),
      lifecycleStage: r.lifecycle_stage as LifecycleStage,
      creationTime: r.creation_time,
      lastUpdateTime: r.last_update_time,
      tags: (tags.get(r.experiment_id) ?? []).map(keyValueOf),
    }));
  }

  private async runsWithData(rows: RunRow[]): Promise<Run[]> {
    const ids = rows.map((r) => r.run_id);
    const [metrics, params, tags, datasets, models] = await Promise.all([
      this.childRows('tracking_latest_metrics', 'run_id', ids),
      this.childRows('tracking_params', 'run_id', ids),
      this.childRows('tracking_run_tags', 'run_id', ids),
      this.childRows('tracking_run_datasets', 'run_id', ids),
      this.childRows('tracking_run_models', 'run_id', ids),
    ]);
    return rows.map((r) => ({
      info: runInfoOf(r),
      data: {
        metrics: (metrics.get(r.run_id) ?? []).map(metricOf),
        params: (params.get(r.run_id) ?? []).map(keyValueOf),
        tags: (tags.get(r.run_id) ?? []).map(keyValueOf),
      },
      inputs: {
        datasetInputs: (datasets.get(r.run_id) ?? []).map((d) => ({
          dataset: {
            name: d.name,
            digest: d.digest,
            sourceType: d.source_type,
            source: d.source,
            ...(d.schema === null ? {} : { schema: d.schema }),
            ...(d.profile === null ? {} : { profile: d.profile }),
          },
          tags: JSON.parse(d.tags) as KeyValue[],
        })),
        modelInputs: (models.get(r.run_id) ?? [])
          .filter((m) => m.direction === 'input')
          .map((m) => ({ modelId: m.model_id })),
      },
      outputs: {
        modelOutputs: (models.get(r.run_id) ?? [])
          .filter((m) => m.direction === 'output')
          .map((m) => ({ modelId: m.model_id, step: m.step })),
      },
    }));
  }

  private async loggedModelsWithData(db: Db, rows: LoggedModelRow[]): Promise<LoggedModel[]> {
    const ids = rows.map((r) => r.model_id);
    const [tags, params, metrics] = await Promise.all([
      this.childRows('tracking_logged_model_tags', 'model_id', ids, db),
      this.childRows('tracking_logged_model_params', 'model_id', ids, db),
      this.childRows('tracking_logged_model_metrics', 'model_id', ids, db),
    ]);
    return rows.map((r) => ({
      info: {
        modelId: r.model_id,
        experimentId: String(r.experiment_id),
        name: r.name,
        creationTimestampMs: r.creation_ms,
        lastUpdatedTimestampMs: r.last_updated_ms,
        artifactUri: artifactUri(r.artifact_path),
        status: r.status as LoggedModelStatus,
        statusMessage: r.status_message,
        modelType: r.model_type,
        sourceRunId: r.source_run_id,
        lifecycleStage: r.lifecycle_stage as LifecycleStage,
        tags: (tags.get(r.model_id) ?? []).map(keyValueOf),
      },
      data: {
        params: (params.get(r.model_id) ?? []).map(keyValueOf),
        metrics: (metrics.get(r.model_id) ?? [])
          .sort((a, b) =>
            a.key < b.key ? -1 : a.key > b.key ? 1 : a.step - b.step || a.timestamp_ms - b.timestamp_ms,
          )
          .map((m) => ({
            ...metricOf(m),
            modelId: m.model_id,
            ...(m.run_id ? { runId: m.run_id } : {}),
            ...(m.dataset_name ? { datasetName: m.dataset_name } : {}),
            ...(m.dataset_digest ? { datasetDigest: m.dataset_digest } : {}),
          })),
      },
    }));
  }

  /** Rows of a child table for many parents, grouped by parent, ordered by key where there is one. */
  private async childRows<T extends keyof TrackingTables, C extends keyof TrackingTables[T] & string>(
    table: T,
    column: C,
    ids: readonly (string | number)[],
    db: Db = this.db,
  ): Promise<Map<TrackingTables[T][C], TrackingTables[T][]>> {
    const out = new Map<TrackingTables[T][C], TrackingTables[T][]>();
    const k = db as unknown as Kysely<Record<string, Record<string, unknown>>>;
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      const rows = (await k
        .selectFrom(table)
        .selectAll()
        .where(sql<SqlBool>`${sql.ref(column)} in (${sql.join(chunk)})`)
        .execute()) as TrackingTables[T][];
      for (const r of rows) {
        const parent = r[column];
        const list = out.get(parent);
        if (list) list.push(r);
        else out.set(parent, [r]);
      }
    }
    for (const list of out.values()) {
      list.sort((a, b) => {
        const ka = (a as { key?: string }).key ?? '';
        const kb = (b as { key?: string }).key ?? '';
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      });
    }
    return out;
  }

  private async listUnder(root: string, path: string): Promise<ArtifactListing> {
    const sub = confinePath(path ?? '');
    const entries = await this.artifacts.list(joinPath(root, sub));
    return {
      rootUri: artifactUri(root),
      files: entries.map((e) => ({ ...e, path: e.path.slice(root.length + 1) })),
    };
  }
}

function newer(a: MetricRow, b: MetricRow): boolean {
  if (a.step !== b.step) return a.step > b.step;
  if (a.timestamp_ms !== b.timestamp_ms) return a.timestamp_ms > b.timestamp_ms;
  return a.value > b.value;
}

function metricOf(r: {
  key: string;
  value: number;
  timestamp_ms: number;
  step: number;
  is_nan: number;
}): Metric {
  return { key: r.key, value: r.is_nan ? Number.NaN : r.value, timestamp: r.timestamp_ms, step: r.step };
}

function runInfoOf(r: RunRow): RunInfo {
  return {
    runId: r.run_id,
    runName: r.name,
    experimentId: String(r.experiment_id),
    userId: r.user_id,
    status: r.status as RunStatus,
    startTime: r.start_time,
    endTime: r.end_time,
    artifactUri: artifactUri(r.artifact_path),
    lifecycleStage: r.lifecycle_stage as LifecycleStage,
  };
}

function keyValueOf(r: { key: string; value: string }): KeyValue {
  return { key: r.key, value: r.value };
}

function keyValue(kv: KeyValue, path: string): KeyValue {
  if (typeof kv?.key !== 'string' || kv.key === '') throw bad(`${path}key is required`);
  maxLength(kv.key, LIMITS.keyLength, `${path}key`);
  maxLength(kv.value, Number.POSITIVE_INFINITY, `${path}value`);
  if (typeof kv.value !== 'string') throw bad(`${path}value must be a string`);
  return { key: kv.key, value: kv.value };
}

/** The last value for each key wins, keeping first-seen order. */
function dedupe(kvs: KeyValue[]): KeyValue[] {
  const m = new Map<string, string>();
  for (const kv of kvs) m.set(kv.key, kv.value);
  return [...m].map(([key, value]) => ({ key, value }));
}

function conflictsOf(wanted: KeyValue[], stored: KeyValue[]): string | undefined {
  const have = new Map(stored.map((s) => [s.key, s.value]));
  const diffs = wanted.filter((w) => have.has(w.key) && have.get(w.key) !== w.value);
  if (diffs.length === 0) return undefined;
  return diffs
    .map(
      (d) =>
        `Param with key='${d.key}' was already logged with value='${have.get(d.key)}'; attempted new value '${d.value}'`,
    )
    .join('; ');
}

function stagesOf(view: ViewType | undefined): LifecycleStage[] {
  if (view === 'DELETED_ONLY') return ['deleted'];
  if (view === 'ALL') return ['active', 'deleted'];
  return ['active'];
}

function page<T>(items: T[], more: boolean, nextOffset: number): Page<T> {
  return more ? { items, nextPageToken: pageToken(nextOffset) } : { items };
}

function notFound(message: string): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_RESOURCE_NOT_FOUND', message);
}

function experimentExists(name: string): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_ALREADY_EXISTS', `Experiment(name=${name}) already exists.`);
}

/** `mlflow-artifacts:/<path>` or `mlflow-artifacts://<host>/<path>` → the confined `<path>`. */
function parseArtifactUri(uri: string, field: string): string {
  if (!uri.startsWith(ARTIFACT_URI_SCHEME)) {
    throw bad(
      `${field} '${uri}' is not an mlflow-artifacts:/ URI: Slipway keeps artifacts in its own store and serves them through the artifact proxy`,
    );
  }
  let rest = uri.slice(ARTIFACT_URI_SCHEME.length);
  if (rest.startsWith('//')) rest = rest.slice(2).replace(/^[^/]*/, '');
  return maxLength(confinePath(rest.replace(/^\/+/, ''), field), LIMITS.artifactPathLength, field);
}

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** How deep a JSON text nests, read without building it (brackets inside strings do not count). */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * True for a folder holding several registered versions' files: the artifact root, the
 * registry's folder or one model's. A version made from one would copy the registry into itself,
 * doubling it each time.
 */
function holdsVersions(folder: string): boolean {
  if (folder === '') return true;
  const parts = folder.split('/');
  return parts[0] === REGISTRY_ROOT && parts.length < 3;
}
