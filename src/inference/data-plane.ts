import type { Logger } from 'pino';
import { SlipwayError, toSlipwayError } from '../errors/index.js';
import type { ServingMetrics } from '../metrics/index.js';
import type { DataPlane, ServerMetadata } from './data-plane-api.js';
import { describeConfig } from './model-config.js';
import { ModelManager, type RuntimeFactory } from './model-manager.js';
import type { ModelSource } from './model-repository.js';
import { OnnxRuntimePool } from './onnx-runtime-pool.js';
import type { ModelStats } from './stats.js';
import type {
  InferOptions,
  InferRequest,
  InferResponse,
  ModelMetadata,
  Parameters,
  RepositoryEntry,
} from './types.js';
import { prepareJob } from './validate.js';

/** Request-level parameters that steer the server; the rest are echoed on the response. */
const RESERVED_PARAMETERS = new Set([
  'binary_data_output',
  'timeout',
  'priority',
  'headers',
  'sequence_id',
  'sequence_start',
  'sequence_end',
]);

export const EXTENSIONS = [
  'binary_tensor_data',
  'model_repository',
  'schedule_policy',
  'statistics',
  'model_configuration',
];

export interface DataPlaneOptions {
  /** Where models come from (repository folder, registry), asked in order. */
  sources: ModelSource[];
  logger: Logger;
  metrics?: ServingMetrics;
  serverName?: string;
  serverVersion: string;
  /** Defaults to ONNX Runtime worker pools. */
  createRuntime?: RuntimeFactory;
}

/** The data plane over a model repository (see DataPlane for the contract). */
export class RepositoryDataPlane implements DataPlane {
  readonly manager: ModelManager;
  private draining = false;
  private readonly metrics?: ServingMetrics;

  constructor(private readonly options: DataPlaneOptions) {
    this.metrics = options.metrics;
    const metrics = options.metrics;
    this.manager = new ModelManager({
      sources: options.sources,
      logger: options.logger,
      createRuntime: options.createRuntime ?? ((path, config) => OnnxRuntimePool.create(path, config)),
      onBatch: metrics ? (m, v, size) => metrics.batch(m, v, size) : undefined,
    });
  }

  /** Loads every model in the repository. */
  start(): Promise<void> {
    return this.manager.loadAll();
  }

  /** Refuses new requests from now on; in-flight ones continue. */
  beginDrain(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Answers every queued request with SLIPWAY_ERR_SHUTTING_DOWN; executing batches finish. */
  rejectQueued(): void {
    const error = new SlipwayError(
      'SLIPWAY_ERR_SHUTTING_DOWN',
      'the server shut down before the request was run',
    );
    for (const v of this.manager.allVersions()) v.batcher?.rejectQueued(error);
  }

  /** Waits for in-flight requests, then frees every model. */
  async close(): Promise<void> {
    this.draining = true;
    await this.manager.close();
  }

  live(): boolean {
    return true;
  }

  ready(): boolean {
    return !this.draining && this.manager.allReady();
  }

  serverMetadata(): ServerMetadata {
    return {
      name: this.options.serverName ?? 'slipway',
      version: this.options.serverVersion,
      extensions: EXTENSIONS,
    };
  }

  modelMetadata(model: string, version?: string): ModelMetadata {
    const v = this.manager.resolve(model, version);
    const versions = this.manager
      .versionsOf(model)
      .filter((x) => x.state === 'READY')
      .map((x) => x.version);
    const sig = v.runtime!.signature;
    return { name: model, versions, platform: 'onnx_onnxv1', inputs: sig.inputs, outputs: sig.outputs };
  }

  modelReady(model: string, version?: string): boolean {
    try {
      this.manager.resolve(model, version);
      return !this.draining;
    } catch (err) {
      if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_MODEL_UNAVAILABLE') return false;
      throw err;
    }
  }

  modelConfig(model: string, version?: string): Record<string, unknown> {
    const v = this.manager.resolve(model, version);
    return describeConfig(model, v.config, v.runtime!.signature);
  }

  /**
   * Validates, queues and runs one request. Nothing between routing and queueing awaits, so a
   * version being swapped out still drains every request routed to it.
   */
  async infer(
    model: string,
    version: string | undefined,
    request: InferRequest,
    options: InferOptions,
  ): Promise<InferResponse> {
    const start = performance.now();
    if (this.draining) {
      throw new SlipwayError('SLIPWAY_ERR_SHUTTING_DOWN', 'the server is shutting down', {
        retryAfterSeconds: 1,
      });
    }
    let v: ReturnType<ModelManager['resolve']> | undefined;
    try {
      v = this.manager.resolve(model, version);
      const job = prepareJob(v.runtime!.signature, v.config, v.runtime!.batchable, request);
      const timeout = options.timeoutMs ?? (v.config.defaultTimeoutMs || undefined);
      if (timeout !== undefined) {
        if (timeout <= 0)
          throw new SlipwayError('SLIPWAY_ERR_TIMEOUT', 'the request arrived after its deadline');
        job.timeoutMs = timeout;
      }
      if (options.cancel) job.cancel = options.cancel;
      v.inFlight++;
      let result: Awaited<ReturnType<NonNullable<typeof v.batcher>['submit']>>;
      try {
        result = await v.batcher!.submit(job);
      } finally {
        v.inFlight--;
      }
      const response: InferResponse = { modelName: model, modelVersion: v.version, outputs: result.outputs };
      if (request.id !== undefined) response.id = request.id;
      const echoed = echoParameters(request.parameters);
      if (echoed) response.parameters = echoed;
      this.metrics?.request(
        model,
        v.version,
        options.protocol,
        200,
        (performance.now() - start) / 1000,
        result.queueMs / 1000,
        result.computeMs / 1000,
      );
      return response;
    } catch (err) {
      const e = toSlipwayError(err);
      if (v) {
        // Failures before the queue (validation) count as failed inferences, as in Triton.
        if (e.code !== 'SLIPWAY_ERR_INFERENCE_FAILED')
          v.stats.request(false, (performance.now() - start) * 1e6, 0);
        this.metrics?.request(
          model,
          v.version,
          options.protocol,
          e.httpStatus,
          (performance.now() - start) / 1000,
        );
      }
      throw e;
    }
  }

  repositoryIndex(readyOnly: boolean): Promise<RepositoryEntry[]> {
    return this.manager.index(readyOnly);
  }

  async loadModel(model: string, parameters?: Parameters): Promise<void> {
    let override: unknown;
    const config = parameters?.config;
    if (config !== undefined) {
      if (typeof config !== 'string')
        throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "parameter 'config' must be a JSON string");
      try {
        override = JSON.parse(config);
      } catch (err) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `parameter 'config' is not valid JSON: ${(err as Error).message}`,
        );
      }
    }
    await this.manager.load(model, override);
  }

  unloadModel(model: string): Promise<void> {
    return this.manager.unload(model);
  }

  statistics(model?: string, version?: string): ModelStats[] {
    if (model === undefined || model === '') return this.manager.allVersions().map((v) => v.stats.snapshot());
    const versions = this.manager.versionsOf(model);
    if (version === undefined || version === '') return versions.map((v) => v.stats.snapshot());
    const v = versions.find((x) => x.version === version);
    if (!v)
      throw new SlipwayError('SLIPWAY_ERR_VERSION_NOT_FOUND', `model '${model}' has no version '${version}'`);
    return [v.stats.snapshot()];
  }
}

function echoParameters(p: Parameters | undefined): Parameters | undefined {
  if (!p) return undefined;
  let out: Parameters | undefined;
  for (const k in p) {
    if (RESERVED_PARAMETERS.has(k)) continue;
    out ??= {};
    out[k] = p[k]!;
  }
  return out;
}
