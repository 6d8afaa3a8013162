/**
 * MLflow's JSON (protobuf JSON of mlflow/protos/service.proto: snake_case names, int64 as
 * numbers, enums as names, NaN and infinities as strings) ↔ the tracking capability's entities.
 */
import type { FastifyReply } from 'fastify';
import { SlipwayError } from '../../errors/index.js';
import {
  type DatasetInput,
  type Experiment,
  type KeyValue,
  LOGGED_MODEL_STATUSES,
  type LoggedModel,
  type LoggedModelStatus,
  type Metric,
  RUN_STATUSES,
  type Run,
  type RunInfo,
  type RunStatus,
  VIEW_TYPES,
  type ViewType,
} from '../../tracking/index.js';
import { fastifyErrorToSlipway } from '../api/index.js';

/** A request message: the JSON body, or for GET the query string (repeated keys are lists). */
export type Message = Record<string, unknown>;

/**
 * MLflow's HTTP status for each `error_code`, except INVALID_STATE: MLflow answers it with 500,
 * which its client retries for minutes; a state conflict is the caller's to fix, so it is 400 here.
 */
export const MLFLOW_HTTP_STATUS: Readonly<Record<string, number>> = {
  BAD_REQUEST: 400,
  INVALID_PARAMETER_VALUE: 400,
  RESOURCE_ALREADY_EXISTS: 400,
  INVALID_STATE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RESOURCE_DOES_NOT_EXIST: 404,
  ENDPOINT_NOT_FOUND: 404,
  REQUEST_LIMIT_EXCEEDED: 429,
  CANCELLED: 499,
  INTERNAL_ERROR: 500,
  NOT_IMPLEMENTED: 501,
  TEMPORARILY_UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

/** Sends any error as MLflow does: `{"error_code": "...", "message": "..."}` with MLflow's status. */
export function sendMlflowError(reply: FastifyReply, err: unknown): SlipwayError {
  const e = fastifyErrorToSlipway(err);
  const status = MLFLOW_HTTP_STATUS[e.mlflowCode] ?? e.httpStatus;
  const retry = e.retryAfter;
  if (retry !== undefined) reply.header('retry-after', String(retry));
  reply.code(status).send({ error_code: e.mlflowCode, message: e.message });
  return e;
}

/** NaN and the infinities as protobuf's JSON writes them (JSON has no such numbers). */
export function doubleJson(v: number): number | string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return v;
}

export function experimentJson(e: Experiment) {
  return {
    experiment_id: e.experimentId,
    name: e.name,
    artifact_location: e.artifactLocation,
    lifecycle_stage: e.lifecycleStage,
    last_update_time: e.lastUpdateTime,
    creation_time: e.creationTime,
    tags: e.tags,
  };
}

export function runInfoJson(i: RunInfo) {
  return {
    run_id: i.runId,
    run_uuid: i.runId,
    run_name: i.runName,
    experiment_id: i.experimentId,
    user_id: i.userId,
    status: i.status,
    start_time: i.startTime,
    ...(i.endTime === null ? {} : { end_time: i.endTime }),
    artifact_uri: i.artifactUri,
    lifecycle_stage: i.lifecycleStage,
  };
}

export function metricJson(m: Metric) {
  return {
    key: m.key,
    value: doubleJson(m.value),
    timestamp: m.timestamp,
    step: m.step,
    ...(m.modelId ? { model_id: m.modelId } : {}),
    ...(m.datasetName ? { dataset_name: m.datasetName } : {}),
    ...(m.datasetDigest ? { dataset_digest: m.datasetDigest } : {}),
    ...(m.runId ? { run_id: m.runId } : {}),
  };
}

function datasetInputJson(d: DatasetInput) {
  return {
    tags: d.tags,
    dataset: {
      name: d.dataset.name,
      digest: d.dataset.digest,
      source_type: d.dataset.sourceType,
      source: d.dataset.source,
      ...(d.dataset.schema === undefined ? {} : { schema: d.dataset.schema }),
      ...(d.dataset.profile === undefined ? {} : { profile: d.dataset.profile }),
    },
  };
}

export function runJson(r: Run) {
  return {
    info: runInfoJson(r.info),
    data: { metrics: r.data.metrics.map(metricJson), params: r.data.params, tags: r.data.tags },
    inputs: {
      dataset_inputs: r.inputs.datasetInputs.map(datasetInputJson),
      model_inputs: r.inputs.modelInputs.map((m) => ({ model_id: m.modelId })),
    },
    outputs: { model_outputs: r.outputs.modelOutputs.map((m) => ({ model_id: m.modelId, step: m.step })) },
  };
}

export function loggedModelJson(m: LoggedModel) {
  const i = m.info;
  return {
    info: {
      model_id: i.modelId,
      experiment_id: i.experimentId,
      name: i.name,
      creation_timestamp_ms: i.creationTimestampMs,
      last_updated_timestamp_ms: i.lastUpdatedTimestampMs,
      artifact_uri: i.artifactUri,
      status: i.status,
      ...(i.statusMessage === null ? {} : { status_message: i.statusMessage }),
      ...(i.modelType === null ? {} : { model_type: i.modelType }),
      ...(i.sourceRunId === null ? {} : { source_run_id: i.sourceRunId }),
      tags: i.tags,
    },
    data: { params: m.data.params, metrics: m.data.metrics.map(metricJson) },
  };
}

// ---- requests

function bad(message: string): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
}

export function str(msg: Message, field: string): string | undefined {
  const v = msg[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${field} must be a string`);
  return v;
}

export function required(msg: Message, field: string): string {
  const v = str(msg, field);
  if (v === undefined || v === '') throw bad(`Missing value for required parameter '${field}'.`);
  return v;
}

/** The run a message names: `run_id`, or the deprecated `run_uuid` older clients send. */
export function runIdOf(msg: Message): string {
  const v = str(msg, 'run_id') || str(msg, 'run_uuid');
  if (!v) throw bad(`Missing value for required parameter 'run_id'.`);
  return v;
}

export function int(msg: Message, field: string): number | undefined {
  const v = msg[field];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw bad(`${field} must be a 64-bit integer`);
  return n;
}

export function strings(msg: Message, field: string): string[] {
  const v = msg[field];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x, i) => {
    if (typeof x !== 'string' && typeof x !== 'number') throw bad(`${field}[${i}] must be a string`);
    return String(x);
  });
}

export function keyValues(msg: Message, field: string): KeyValue[] {
  const v = msg[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(`${field} must be a list of {key, value}`);
  return v.map((kv, i) => {
    if (typeof kv !== 'object' || kv === null) throw bad(`${field}[${i}] must be an object`);
    const { key, value } = kv as { key?: unknown; value?: unknown };
    if (typeof key !== 'string' || key === '')
      throw bad(`Missing value for required parameter '${field}[${i}].key'.`);
    if (value !== undefined && value !== null && typeof value !== 'string') {
      throw bad(`${field}[${i}].value must be a string`);
    }
    return { key, value: (value as string | undefined | null) ?? '' };
  });
}

/** A metric of `log-metric` or of `log-batch`'s list; value checks are the tracking capability's. */
export function metricOf(m: Message, path: string): Metric {
  if (typeof m !== 'object' || m === null) throw bad(`${path} must be an object`);
  if (m.value === undefined || m.value === null)
    throw bad(`Missing value for required parameter '${path}value'.`);
  const timestamp = int(m, 'timestamp');
  if (timestamp === undefined) throw bad(`Missing value for required parameter '${path}timestamp'.`);
  const modelId = str(m, 'model_id');
  const datasetName = str(m, 'dataset_name');
  const datasetDigest = str(m, 'dataset_digest');
  return {
    key: str(m, 'key') ?? '',
    value: m.value as number,
    timestamp,
    step: int(m, 'step') ?? 0,
    ...(modelId ? { modelId } : {}),
    ...(datasetName ? { datasetName } : {}),
    ...(datasetDigest ? { datasetDigest } : {}),
  };
}

function enumOf<T extends string>(
  msg: Message,
  field: string,
  names: readonly T[],
  firstNumber: number,
): T | undefined {
  const v = msg[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string' && (names as readonly string[]).includes(v)) return v as T;
  const n = Number(v);
  if (Number.isInteger(n) && n >= firstNumber && n - firstNumber < names.length)
    return names[n - firstNumber];
  throw bad(`${field} '${String(v)}' is not one of ${names.join(', ')}`);
}

export function viewTypeOf(msg: Message, field: string): ViewType | undefined {
  return enumOf(msg, field, VIEW_TYPES, 1);
}

export function runStatusOf(msg: Message, field: string): RunStatus | undefined {
  return enumOf(msg, field, RUN_STATUSES, 1);
}

export function loggedModelStatusOf(msg: Message, field: string): LoggedModelStatus | undefined {
  return enumOf(msg, field, LOGGED_MODEL_STATUSES, 0);
}
