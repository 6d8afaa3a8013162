/**
 * The tracking capability's entities, shaped like MLflow's (experiments, runs, metrics, params,
 * tags, 3.x logged models) with TypeScript names; the MLflow transport maps them to its JSON.
 */

export type LifecycleStage = 'active' | 'deleted';

/** Which lifecycle stages a search returns. */
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
export const VIEW_TYPES: readonly ViewType[] = ['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL'];

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'];

export type LoggedModelStatus =
  | 'LOGGED_MODEL_STATUS_UNSPECIFIED'
  | 'LOGGED_MODEL_PENDING'
  | 'LOGGED_MODEL_READY'
  | 'LOGGED_MODEL_UPLOAD_FAILED';
export const LOGGED_MODEL_STATUSES: readonly LoggedModelStatus[] = [
  'LOGGED_MODEL_STATUS_UNSPECIFIED',
  'LOGGED_MODEL_PENDING',
  'LOGGED_MODEL_READY',
  'LOGGED_MODEL_UPLOAD_FAILED',
];

export interface KeyValue {
  key: string;
  value: string;
}

export interface Experiment {
  experimentId: string;
  name: string;
  /** `mlflow-artifacts:/<experiment_id>`: the client uploads through the artifact proxy. */
  artifactLocation: string;
  lifecycleStage: LifecycleStage;
  creationTime: number;
  lastUpdateTime: number;
  tags: KeyValue[];
}

/** One logged value of a metric. `value` may be NaN; infinities are stored as ±Number.MAX_VALUE, as MLflow does. */
export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
  /** 3.x: the logged model the value describes. */
  modelId?: string;
  datasetName?: string;
  datasetDigest?: string;
  runId?: string;
}

export interface RunInfo {
  runId: string;
  runName: string;
  experimentId: string;
  userId: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
  /** `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`. */
  artifactUri: string;
  lifecycleStage: LifecycleStage;
}

export interface Dataset {
  name: string;
  digest: string;
  sourceType: string;
  source: string;
  schema?: string;
  profile?: string;
}

export interface DatasetInput {
  dataset: Dataset;
  tags: KeyValue[];
}

export interface Run {
  info: RunInfo;
  data: {
    /** The latest value of each metric key (highest step, then timestamp, then value). */
    metrics: Metric[];
    params: KeyValue[];
    tags: KeyValue[];
  };
  inputs: { datasetInputs: DatasetInput[]; modelInputs: { modelId: string }[] };
  outputs: { modelOutputs: { modelId: string; step: number }[] };
}

export interface LoggedModelInfo {
  /** `m-<32 hex>`. */
  modelId: string;
  experimentId: string;
  name: string;
  creationTimestampMs: number;
  lastUpdatedTimestampMs: number;
  /** `mlflow-artifacts:/<experiment_id>/models/<model_id>/artifacts`. */
  artifactUri: string;
  status: LoggedModelStatus;
  statusMessage: string | null;
  modelType: string | null;
  sourceRunId: string | null;
  lifecycleStage: LifecycleStage;
  tags: KeyValue[];
}

export interface LoggedModel {
  info: LoggedModelInfo;
  data: { params: KeyValue[]; metrics: Metric[] };
}

/** One page of a search; `nextPageToken` is absent on the last page. */
export interface Page<T> {
  items: T[];
  nextPageToken?: string;
}

export interface SearchExperimentsRequest {
  viewType?: ViewType;
  maxResults?: number;
  filter?: string;
  orderBy?: string[];
  pageToken?: string;
}

export interface SearchRunsRequest {
  experimentIds: string[];
  filter?: string;
  runViewType?: ViewType;
  maxResults?: number;
  orderBy?: string[];
  pageToken?: string;
}

export interface LoggedModelOrderBy {
  fieldName: string;
  ascending?: boolean;
  datasetName?: string;
  datasetDigest?: string;
}

export interface SearchLoggedModelsRequest {
  experimentIds: string[];
  filter?: string;
  datasets?: { datasetName: string; datasetDigest?: string }[];
  maxResults?: number;
  orderBy?: LoggedModelOrderBy[];
  pageToken?: string;
}

export interface CreateRunRequest {
  experimentId?: string;
  userId: string;
  startTime?: number;
  runName?: string;
  tags?: KeyValue[];
}

export interface UpdateRunRequest {
  status?: RunStatus;
  endTime?: number;
  runName?: string;
}

export interface CreateLoggedModelRequest {
  experimentId: string;
  name?: string;
  modelType?: string;
  sourceRunId?: string;
  params?: KeyValue[];
  tags?: KeyValue[];
}

/** Artifact URIs the server hands out: the client rewrites them to the artifact proxy of the tracking server. */
export const ARTIFACT_URI_SCHEME = 'mlflow-artifacts:';

export function artifactUri(path: string): string {
  return `${ARTIFACT_URI_SCHEME}/${path}`;
}
