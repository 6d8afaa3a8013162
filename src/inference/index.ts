export { DynamicBatcher, type Job, type JobResult, MAX_TIMER_MS, stack, unstack } from './batcher.js';
export {
  type DataPlaneOptions,
  EXTENSIONS,
  type RecordsResponse,
  RepositoryDataPlane,
} from './data-plane.js';
export type { DataPlane, ServerMetadata } from './data-plane-api.js';
export {
  allocate,
  checkOrtString,
  decodeBytesElements,
  decodeOrtString,
  ELEMENT_SIZE,
  elementCount,
  encodeBytesElements,
  fromBytes,
  isDatatype,
  TYPED_ARRAY,
  toBytes,
  wireByteSize,
} from './datatypes.js';
export type {
  InputPolicy,
  PolicyFactory,
  PolicyFiles,
  QuarantinedRow,
  QuarantineSink,
  RowProblem,
} from './input-policy.js';
export {
  DEFAULT_MODEL_CONFIG,
  type DriftSettings,
  type ModelConfig,
  resolveModelConfig,
} from './model-config.js';
export { ModelManager, type RuntimeFactory, ServedVersion } from './model-manager.js';
export {
  FolderModelSource,
  isValidModelName,
  type ModelOnDisk,
  type ModelSource,
} from './model-repository.js';
export type { ModelRuntime, RunOptions, RunResult, RuntimeSignature } from './model-runtime.js';
export {
  hasUploadedFiles,
  removeUploadedModel,
  type UploadedModel,
  withoutUploadedFiles,
} from './model-upload.js';
export { OnnxRuntimePool } from './onnx-runtime-pool.js';
export type { PredictionEntry, PredictionSink } from './prediction-sink.js';
export {
  classifierPredictions,
  type Prediction,
  type RecordsLayout,
  recordsLayout,
  recordsToRequest,
  responseToPredictions,
} from './records.js';
export { MAX_REQUEST_ID_LENGTH } from './request-id.js';
export { ResponseCache } from './response-cache.js';
export {
  checkSharedOutputs,
  cudaUnsupported,
  inSharedMemory,
  noCudaRegion,
  readSharedInput,
  SHM_ROOT,
  type SharedMemoryRef,
  type SharedMemoryRegion,
  SharedMemoryRegions,
  sharedInputData,
  sharedMemoryRef,
  writeSharedOutputs,
} from './shared-memory.js';
export type { ModelStats } from './stats.js';
export {
  parseLevel,
  type TraceLevel,
  Tracer,
  type TraceScopeState,
  type TraceSettingValues,
} from './trace.js';
export * from './types.js';
