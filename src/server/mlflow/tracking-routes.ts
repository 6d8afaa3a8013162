/**
 * The MLflow tracking REST routes (mlflow/protos/service.proto) over `Tracking`: experiments,
 * runs, params, metrics, tags, inputs/outputs and 3.x logged models. Registered under both
 * `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow` by `mlflowPlugin`.
 */
import type { FastifyInstance } from 'fastify';
import { SlipwayError } from '../../errors/index.js';
import type { DatasetInput, Tracking } from '../../tracking/index.js';
import {
  experimentJson,
  int,
  keyValues,
  loggedModelJson,
  loggedModelStatusOf,
  type Message,
  metricJson,
  metricOf,
  required,
  runIdOf,
  runInfoJson,
  runJson,
  runStatusOf,
  str,
  strings,
  viewTypeOf,
} from './mlflow-json.js';
import { ANY, I, KV_LIST, mlflowRoutes, nextPageJson, S, STR_LIST } from './mlflow-route.js';

const METRIC = {
  type: 'object',
  properties: {
    key: S,
    value: ANY,
    timestamp: I,
    step: I,
    model_id: S,
    dataset_name: S,
    dataset_digest: S,
  },
} as const;

export function trackingRoutes(app: FastifyInstance, tracking: Tracking): void {
  const { read, write } = mlflowRoutes(app);
  // ---- experiments
  write('POST', '/experiments/create', { name: S, artifact_location: S, tags: KV_LIST }, async (msg) => {
    const id = await tracking.createExperiment(required(msg, 'name'), {
      artifactLocation: str(msg, 'artifact_location') || undefined,
      tags: keyValues(msg, 'tags'),
    });
    return { experiment_id: id };
  });
  read('GET', '/experiments/get', { experiment_id: S }, async (msg) => ({
    experiment: experimentJson(await tracking.getExperiment(required(msg, 'experiment_id'))),
  }));
  read('GET', '/experiments/get-by-name', { experiment_name: S }, async (msg) => ({
    experiment: experimentJson(await tracking.getExperimentByName(required(msg, 'experiment_name'))),
  }));
  const searchExperiments = { max_results: I, page_token: S, filter: S, order_by: STR_LIST, view_type: ANY };
  read('POST', '/experiments/search', searchExperiments, async (msg) => searchExperimentsJson(tracking, msg));
  read('GET', '/experiments/search', searchExperiments, async (msg) => searchExperimentsJson(tracking, msg));
  write('POST', '/experiments/delete', { experiment_id: S }, async (msg) => {
    await tracking.deleteExperiment(required(msg, 'experiment_id'));
    return {};
  });
  write('POST', '/experiments/restore', { experiment_id: S }, async (msg) => {
    await tracking.restoreExperiment(required(msg, 'experiment_id'));
    return {};
  });
  write('POST', '/experiments/update', { experiment_id: S, new_name: S }, async (msg) => {
    await tracking.renameExperiment(required(msg, 'experiment_id'), required(msg, 'new_name'));
    return {};
  });
  write('POST', '/experiments/set-experiment-tag', { experiment_id: S, key: S, value: S }, async (msg) => {
    await tracking.setExperimentTag(
      required(msg, 'experiment_id'),
      required(msg, 'key'),
      str(msg, 'value') ?? '',
    );
    return {};
  });
  write('POST', '/experiments/delete-experiment-tag', { experiment_id: S, key: S }, async (msg) => {
    await tracking.deleteExperimentTag(required(msg, 'experiment_id'), required(msg, 'key'));
    return {};
  });

  // ---- runs
  write(
    'POST',
    '/runs/create',
    { experiment_id: S, user_id: S, run_name: S, start_time: I, tags: KV_LIST },
    async (msg, req) => {
      const run = await tracking.createRun({
        experimentId: str(msg, 'experiment_id') || undefined,
        // MLflow records whoever the client says; a client that says nobody is the caller.
        userId: str(msg, 'user_id') || req.principal?.name || '',
        startTime: int(msg, 'start_time'),
        runName: str(msg, 'run_name') || undefined,
        tags: keyValues(msg, 'tags'),
      });
      return { run: runJson(run) };
    },
  );
  write(
    'POST',
    '/runs/update',
    { run_id: S, run_uuid: S, status: ANY, end_time: I, run_name: S },
    async (msg) => {
      const info = await tracking.updateRun(runIdOf(msg), {
        status: runStatusOf(msg, 'status'),
        endTime: int(msg, 'end_time'),
        runName: str(msg, 'run_name') || undefined,
      });
      return { run_info: runInfoJson(info) };
    },
  );
  write('POST', '/runs/delete', { run_id: S }, async (msg) => {
    await tracking.deleteRun(required(msg, 'run_id'));
    return {};
  });
  write('POST', '/runs/restore', { run_id: S }, async (msg) => {
    await tracking.restoreRun(required(msg, 'run_id'));
    return {};
  });
  read('GET', '/runs/get', { run_id: S, run_uuid: S }, async (msg) => ({
    run: runJson(await tracking.getRun(runIdOf(msg))),
  }));
  const searchRuns = {
    experiment_ids: STR_LIST,
    filter: S,
    run_view_type: ANY,
    max_results: I,
    order_by: STR_LIST,
    page_token: S,
  };
  read('POST', '/runs/search', searchRuns, async (msg) => searchRunsJson(tracking, msg));
  read('GET', '/runs/search', searchRuns, async (msg) => searchRunsJson(tracking, msg));
  write('POST', '/runs/log-metric', { ...METRIC.properties, run_id: S, run_uuid: S }, async (msg) => {
    await tracking.logMetric(runIdOf(msg), metricOf(msg, ''));
    return {};
  });
  write('POST', '/runs/log-parameter', { run_id: S, run_uuid: S, key: S, value: S }, async (msg) => {
    await tracking.logParam(runIdOf(msg), required(msg, 'key'), str(msg, 'value') ?? '');
    return {};
  });
  write('POST', '/runs/set-tag', { run_id: S, run_uuid: S, key: S, value: S }, async (msg) => {
    await tracking.setTag(runIdOf(msg), required(msg, 'key'), str(msg, 'value') ?? '');
    return {};
  });
  write('POST', '/runs/delete-tag', { run_id: S, key: S }, async (msg) => {
    await tracking.deleteTag(runIdOf(msg), required(msg, 'key'));
    return {};
  });
  write(
    'POST',
    '/runs/log-batch',
    { run_id: S, metrics: { type: 'array', items: METRIC }, params: KV_LIST, tags: KV_LIST },
    async (msg) => {
      const metrics = Array.isArray(msg.metrics) ? (msg.metrics as Message[]) : [];
      await tracking.logBatch(required(msg, 'run_id'), {
        metrics: metrics.map((m, i) => metricOf(m, `metrics[${i}].`)),
        params: keyValues(msg, 'params'),
        tags: keyValues(msg, 'tags'),
      });
      return {};
    },
  );
  write('POST', '/runs/log-model', { run_id: S, model_json: S }, async (msg) => {
    await tracking.logModelHistory(required(msg, 'run_id'), required(msg, 'model_json'));
    return {};
  });
  write(
    'POST',
    '/runs/log-inputs',
    { run_id: S, datasets: { type: 'array' }, models: { type: 'array' } },
    async (msg) => {
      await tracking.logInputs(required(msg, 'run_id'), {
        datasets: list(msg, 'datasets').map(datasetInputOf),
        models: list(msg, 'models').map((m) => ({ modelId: str(m, 'model_id') ?? '' })),
      });
      return {};
    },
  );
  write('POST', '/runs/outputs', { run_id: S, models: { type: 'array' } }, async (msg) => {
    const models = list(msg, 'models');
    if (models.length === 0)
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `models must list at least one model`);
    await tracking.logOutputs(
      required(msg, 'run_id'),
      models.map((m) => ({ modelId: str(m, 'model_id') ?? '', step: int(m, 'step') ?? 0 })),
    );
    return {};
  });
  read(
    'GET',
    '/metrics/get-history',
    { run_id: S, run_uuid: S, metric_key: S, page_token: S, max_results: I },
    async (msg) => {
      const page = await tracking.getMetricHistory(runIdOf(msg), required(msg, 'metric_key'), {
        maxResults: int(msg, 'max_results'),
        pageToken: str(msg, 'page_token') || undefined,
      });
      return {
        metrics: page.items.map(metricJson),
        ...nextPageJson(page.nextPageToken),
      };
    },
  );
  read('GET', '/artifacts/list', { run_id: S, run_uuid: S, path: S, page_token: S }, async (msg) => {
    const listing = await tracking.listRunArtifacts(runIdOf(msg), str(msg, 'path') ?? '');
    return listingJson(listing);
  });

  // ---- logged models (3.x)
  write(
    'POST',
    '/logged-models',
    { experiment_id: S, name: S, model_type: S, source_run_id: S, params: KV_LIST, tags: KV_LIST },
    async (msg) => {
      const model = await tracking.createLoggedModel({
        experimentId: required(msg, 'experiment_id'),
        name: str(msg, 'name') || undefined,
        modelType: str(msg, 'model_type') || undefined,
        sourceRunId: str(msg, 'source_run_id') || undefined,
        params: keyValues(msg, 'params'),
        tags: keyValues(msg, 'tags'),
      });
      return { model: loggedModelJson(model) };
    },
  );
  const searchModels = {
    experiment_ids: STR_LIST,
    filter: S,
    datasets: { type: 'array' },
    max_results: I,
    order_by: { type: 'array' },
    page_token: S,
  };
  read('POST', '/logged-models/search', searchModels, async (msg) => searchLoggedModelsJson(tracking, msg));
  read('GET', '/logged-models/:model_id', { allow_deleted: { type: 'boolean' } }, async (msg) => ({
    model: loggedModelJson(
      await tracking.getLoggedModel(required(msg, 'model_id'), {
        allowDeleted: msg.allow_deleted === true,
      }),
    ),
  }));
  write('PATCH', '/logged-models/:model_id', { status: ANY }, async (msg) => {
    const status = loggedModelStatusOf(msg, 'status');
    if (!status)
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `Missing value for required parameter 'status'.`);
    return { model: loggedModelJson(await tracking.finalizeLoggedModel(required(msg, 'model_id'), status)) };
  });
  write('DELETE', '/logged-models/:model_id', undefined, async (msg) => {
    await tracking.deleteLoggedModel(required(msg, 'model_id'));
    return {};
  });
  write('PATCH', '/logged-models/:model_id/tags', { tags: KV_LIST }, async (msg) => ({
    model: loggedModelJson(
      await tracking.setLoggedModelTags(required(msg, 'model_id'), keyValues(msg, 'tags')),
    ),
  }));
  write('DELETE', '/logged-models/:model_id/tags/:tag_key', undefined, async (msg) => {
    await tracking.deleteLoggedModelTag(required(msg, 'model_id'), required(msg, 'tag_key'));
    return {};
  });
  write('POST', '/logged-models/:model_id/params', { params: KV_LIST }, async (msg) => {
    await tracking.logLoggedModelParams(required(msg, 'model_id'), keyValues(msg, 'params'));
    return {};
  });
  read(
    'GET',
    '/logged-models/:model_id/artifacts/directories',
    { artifact_directory_path: S, page_token: S },
    async (msg) =>
      listingJson(
        await tracking.listLoggedModelArtifacts(
          required(msg, 'model_id'),
          str(msg, 'artifact_directory_path') ?? '',
        ),
      ),
  );
}

async function searchExperimentsJson(tracking: Tracking, msg: Message) {
  const page = await tracking.searchExperiments({
    viewType: viewTypeOf(msg, 'view_type'),
    maxResults: int(msg, 'max_results'),
    filter: str(msg, 'filter') || undefined,
    orderBy: strings(msg, 'order_by'),
    pageToken: str(msg, 'page_token') || undefined,
  });
  return {
    experiments: page.items.map(experimentJson),
    ...nextPageJson(page.nextPageToken),
  };
}

async function searchRunsJson(tracking: Tracking, msg: Message) {
  const page = await tracking.searchRuns({
    experimentIds: strings(msg, 'experiment_ids'),
    filter: str(msg, 'filter') || undefined,
    runViewType: viewTypeOf(msg, 'run_view_type'),
    maxResults: int(msg, 'max_results'),
    orderBy: strings(msg, 'order_by'),
    pageToken: str(msg, 'page_token') || undefined,
  });
  return {
    runs: page.items.map(runJson),
    ...nextPageJson(page.nextPageToken),
  };
}

async function searchLoggedModelsJson(tracking: Tracking, msg: Message) {
  const page = await tracking.searchLoggedModels({
    experimentIds: strings(msg, 'experiment_ids'),
    filter: str(msg, 'filter') || undefined,
    datasets: list(msg, 'datasets').map((d) => ({
      datasetName: str(d, 'dataset_name') ?? '',
      datasetDigest: str(d, 'dataset_digest') || undefined,
    })),
    maxResults: int(msg, 'max_results'),
    orderBy: list(msg, 'order_by').map((o) => ({
      fieldName: str(o, 'field_name') ?? '',
      ascending: o.ascending !== false,
      datasetName: str(o, 'dataset_name') || undefined,
      datasetDigest: str(o, 'dataset_digest') || undefined,
    })),
    pageToken: str(msg, 'page_token') || undefined,
  });
  return {
    models: page.items.map(loggedModelJson),
    ...nextPageJson(page.nextPageToken),
  };
}

function listingJson(listing: { rootUri: string; files: { path: string; isDir: boolean; size?: number }[] }) {
  return {
    root_uri: listing.rootUri,
    files: listing.files.map((f) => ({
      path: f.path,
      is_dir: f.isDir,
      ...(f.isDir ? {} : { file_size: f.size }),
    })),
  };
}

function list(msg: Message, field: string): Message[] {
  const v = msg[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${field} must be a list`);
  return v.map((x, i) => {
    if (typeof x !== 'object' || x === null) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${field}[${i}] must be an object`);
    }
    return x as Message;
  });
}

function datasetInputOf(m: Message): DatasetInput {
  const d = (m.dataset ?? {}) as Message;
  return {
    dataset: {
      name: str(d, 'name') ?? '',
      digest: str(d, 'digest') ?? '',
      sourceType: str(d, 'source_type') ?? '',
      source: str(d, 'source') ?? '',
      ...(str(d, 'schema') === undefined ? {} : { schema: str(d, 'schema') }),
      ...(str(d, 'profile') === undefined ? {} : { profile: str(d, 'profile') }),
    },
    tags: keyValues(m, 'tags'),
  };
}
