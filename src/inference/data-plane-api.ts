import type { LogSettingValues } from '../config/log-settings.js';
import type { RecordsResponse } from './data-plane.js';
import type { SharedMemoryRegion, SharedMemoryRegions } from './shared-memory.js';
import type { ModelStats } from './stats.js';
import type { TraceSettingValues } from './trace.js';
import type {
  InferOptions,
  InferRequest,
  InferResponse,
  ModelMetadata,
  Parameters,
  RepositoryEntry,
} from './types.js';

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/**
 * What every transport (REST, gRPC, records, CLI) calls. Transports only convert to and from
 * these types and map `SlipwayError` codes to their status codes.
 *
 * @example
 *   const res = await plane.infer('adult', undefined, { inputs: [x] }, { protocol: 'rest' });
 */
export interface DataPlane {
  live(): boolean;
  /** True when the server is not draining and every model the repository holds is ready. */
  ready(): boolean;
  serverMetadata(): ServerMetadata;
  /** Throws SLIPWAY_ERR_MODEL_NOT_FOUND / SLIPWAY_ERR_VERSION_NOT_FOUND. */
  modelMetadata(model: string, version?: string): ModelMetadata;
  modelReady(model: string, version?: string): boolean;
  /** Triton-shaped model configuration (`/v2/models/{m}/config`). */
  modelConfig(model: string, version?: string): Record<string, unknown>;
  infer(
    model: string,
    version: string | undefined,
    request: InferRequest,
    options: InferOptions,
  ): Promise<InferResponse>;
  /**
   * The records API: `instances` (named features) in, one prediction per record out, after the
   * version's schema check and cleaning steps. Null predictions mark quarantined rows.
   */
  predictRecords(
    model: string,
    version: string | undefined,
    instances: unknown,
    id: string | undefined,
    options: InferOptions,
  ): Promise<RecordsResponse>;
  /**
   * A transport's inference request that failed: counted in /metrics (status, duration) unless
   * `infer` or `predictRecords` already counted it under its model version. One that failed
   * before a version was resolved (its body could not be decoded, the model is loading or failed
   * to load) counts under version "", and only for a model the server has: names of unknown
   * models would be unbounded label values.
   */
  failed(model: string, protocol: string, err: unknown, seconds: number): void;
  /** Every model in the repository folder, loaded or not, one row per version. */
  repositoryIndex(readyOnly: boolean): Promise<RepositoryEntry[]>;
  /**
   * (Re)loads a model from the repository, or from the model files the parameters carry
   * (`file:<version>/<name>`, with `config`); resolves when the new versions serve.
   */
  loadModel(model: string, parameters?: Parameters): Promise<void>;
  /** Stops routing to the model and resolves once its in-flight requests have finished. */
  unloadModel(model: string): Promise<void>;
  /** Statistics of every loaded version, or one model, or one version. */
  statistics(model?: string, version?: string): ModelStats[] | Promise<ModelStats[]>;
  /**
   * Triton's system shared memory: the regions clients registered, which the transports read
   * inputs from and write outputs to.
   */
  readonly sharedMemory: SharedMemoryRegions;
  /** Registers a region (on every serving process); a 400 naming the field when it cannot be. */
  registerSharedMemory(region: SharedMemoryRegion): Promise<void>;
  /** Unregisters one region, or all of them (on every serving process). */
  unregisterSharedMemory(name?: string): Promise<void>;
  /**
   * Triton's trace extension: the trace settings in effect for a model (its own over the global
   * ones) or the global ones; a change returns them as they are after it. 404 for an unknown model.
   */
  traceSettings(model?: string): TraceSettingValues;
  /**
   * Whether some request may be traced now: transports then fill `InferOptions.transport` (and
   * skip that work otherwise).
   */
  readonly tracing: boolean;
  updateTraceSettings(model: string | undefined, patch: unknown): Promise<TraceSettingValues>;
  /** Triton's logging extension: the log settings now, and the logger's level they stand for. */
  logSettings(): LogSettingValues;
  logLevel(): string;
  /** Changes some log settings (on every serving process); the settings after the change. */
  updateLogSettings(patch: unknown): Promise<LogSettingValues>;
}
