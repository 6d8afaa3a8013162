export {
  type Clause,
  type Comparator,
  type EntityType,
  type OrderClause,
  pageToken,
  parseFilter,
  parseOrderBy,
  parsePageToken,
} from './search-filter.js';
export { likeToGlob } from './search-sql.js';
export { type ArtifactListing, type LogBatchRequest, Tracking } from './tracking.js';
export {
  DEFAULT_EXPERIMENT_ID,
  DEFAULT_EXPERIMENT_NAME,
  type TrackingTables,
  trackingMigrations,
} from './tracking-migrations.js';
export {
  ARTIFACT_URI_SCHEME,
  artifactUri,
  type CreateLoggedModelRequest,
  type CreateRunRequest,
  type Dataset,
  type DatasetInput,
  type Experiment,
  type KeyValue,
  type LifecycleStage,
  LOGGED_MODEL_STATUSES,
  type LoggedModel,
  type LoggedModelInfo,
  type LoggedModelOrderBy,
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
  VIEW_TYPES,
  type ViewType,
} from './tracking-types.js';
export { LIMITS as TRACKING_LIMITS, maxItems } from './validate.js';
