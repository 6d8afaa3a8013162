import type { Logger } from 'pino';
import { type LogSettingValues, levelFor, logSettingsOf } from '../config/log-settings.js';
import { describeValue, SlipwayError, toSlipwayError } from '../errors/index.js';
import type { ServingMetrics } from '../metrics/index.js';
import { classificationCounts, classifyOutputs } from './classification.js';
import type { DataPlane, ServerMetadata } from './data-plane-api.js';
import { allocate } from './datatypes.js';
import type { PolicyFactory, QuarantinedRow, QuarantineSink, RowProblem } from './input-policy.js';
import { describeConfig } from './model-config.js';
import { ModelManager, type RuntimeFactory, type ServedVersion } from './model-manager.js';
import type { ModelSource } from './model-repository.js';
import {
  hasUploadedFiles,
  readUploadedFiles,
  type UploadedModel,
  writeUploadedModel,
} from './model-upload.js';
import { OnnxRuntimePool } from './onnx-runtime-pool.js';
import type { PredictionEntry, PredictionSink } from './prediction-sink.js';
import {
  checkRecordDepth,
  type Prediction,
  recordsLayout,
  recordsToRequest,
  responseToPredictions,
} from './records.js';
import { requestIds } from './request-id.js';
import { ResponseCache } from './response-cache.js';
import { type SharedMemoryRegion, SharedMemoryRegions } from './shared-memory.js';
import type { ModelStats } from './stats.js';
import { type Trace, Tracer, type TraceScopeState, type TraceSettingValues } from './trace.js';
import type {
  InferOptions,
  InferRequest,
  InferResponse,
  ModelMetadata,
  Parameters,
  RepositoryEntry,
  Tensor,
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
  'classification',
  'logging',
  'model_repository',
  'schedule_policy',
  'statistics',
  'model_configuration',
  'trace',
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
  /** Builds a version's schema checks and cleaning steps from its schema.json / steps.json. */
  createPolicy?: PolicyFactory;
  /** Where rows set aside in `quarantine` mode are stored. */
  quarantine?: QuarantineSink;
  /** The prediction log: every answered request a model samples goes there, by reference. */
  predictions?: PredictionSink;
  /** Whether clients may register system shared memory regions (`--allow-client-shm`). */
  allowClientShm?: boolean;
  /** Triton's trace extension: which requests are traced, and where traces go. Off by default. */
  tracer?: Tracer;
  /** Triton's response cache, for models whose config.json enables it. None by default. */
  responseCache?: ResponseCache;
}

/** The records API's answer: one prediction per instance, null where the row was quarantined. */
export interface RecordsResponse {
  modelName: string;
  modelVersion: string;
  id?: string;
  predictions: (Prediction | null)[];
  /** Rows set aside in `quarantine` mode, with their problems. */
  quarantined?: { row: number; problems: RowProblem[] }[];
}

/** Rows to keep after a policy check, and the problems of the others. */
interface Screened {
  /** 0-based indexes of the rows that pass, or null when every row passes. */
  kept: number[] | null;
  stored?: Promise<void>;
  quarantined?: { row: number; problems: RowProblem[] }[];
}

/** The data plane over a model repository (see DataPlane for the contract). */
export class RepositoryDataPlane implements DataPlane {
  readonly manager: ModelManager;
  readonly sharedMemory: SharedMemoryRegions;
  readonly tracer: Tracer;
  private draining = false;
  private readonly metrics?: ServingMetrics;
  /** Failures counted under their model version, which `failed` then leaves alone. */
  private readonly counted = new WeakSet<object>();

  constructor(private readonly options: DataPlaneOptions) {
    this.metrics = options.metrics;
    this.sharedMemory = new SharedMemoryRegions({ allowed: options.allowClientShm === true });
    this.tracer =
      options.tracer ?? new Tracer({ file: '', level: [], rate: 1000, count: -1, logFrequency: 0 });
    const metrics = options.metrics;
    this.manager = new ModelManager({
      sources: options.sources,
      logger: options.logger,
      createRuntime: options.createRuntime ?? ((path, config) => OnnxRuntimePool.create(path, config)),
      onBatch: metrics ? (m, v, size) => metrics.batch(m, v, size) : undefined,
      createPolicy: options.createPolicy,
      responseCache: options.responseCache !== undefined,
      onRetired: options.responseCache
        ? (v) => options.responseCache!.dropLoad(ResponseCache.load(v.model, v.version, v.loadId))
        : undefined,
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
    this.sharedMemory.close();
    await this.tracer.close();
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
      extensions: this.sharedMemory.allowed ? [...EXTENSIONS, 'system_shared_memory'] : EXTENSIONS,
    };
  }

  async registerSharedMemory(region: SharedMemoryRegion): Promise<void> {
    this.sharedMemory.register(region);
  }

  async unregisterSharedMemory(name?: string): Promise<void> {
    this.sharedMemory.unregister(name);
  }

  logSettings(): LogSettingValues {
    return logSettingsOf(this.options.logger);
  }

  logLevel(): string {
    return this.options.logger.level;
  }

  async updateLogSettings(patch: unknown): Promise<LogSettingValues> {
    this.options.logger.level = levelFor(this.options.logger.level, patch);
    return this.logSettings();
  }

  get tracing(): boolean {
    return this.tracer.active;
  }

  traceSettings(model?: string): TraceSettingValues {
    if (model !== undefined) this.manager.versionsOf(model);
    return this.tracer.settings(model);
  }

  async updateTraceSettings(model: string | undefined, patch: unknown): Promise<TraceSettingValues> {
    this.traceState(model, patch);
    return this.tracer.settings(model);
  }

  /** Applies a change of trace settings; returns the scope's state for other processes. */
  traceState(model: string | undefined, patch: unknown): TraceScopeState {
    // Settings of a model the server does not have would never apply: a 404, as in its other calls.
    if (model !== undefined) this.manager.versionsOf(model);
    return this.tracer.update(model, patch);
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
    return describeConfig(model, v.config, v.runtime!.signature, v.runtime!.batchable);
  }

  /**
   * Validates, queues and runs one request. Nothing between routing and queueing awaits, so a
   * version being swapped out still drains every request routed to it.
   */
  infer(
    model: string,
    version: string | undefined,
    request: InferRequest,
    options: InferOptions,
  ): Promise<InferResponse> {
    return this.run(model, version, request, options, true, true);
  }

  private async run(
    model: string,
    version: string | undefined,
    request: InferRequest,
    options: InferOptions,
    checkPolicy: boolean,
    logTensors: boolean,
  ): Promise<InferResponse> {
    const start = performance.now();
    if (this.draining) {
      throw new SlipwayError('SLIPWAY_ERR_SHUTTING_DOWN', 'the server is shutting down', {
        retryAfterSeconds: 1,
      });
    }
    let v: ReturnType<ModelManager['resolve']> | undefined;
    let trace: Trace | undefined;
    try {
      v = this.manager.resolve(model, version);
      if (this.tracer.active) trace = this.tracer.sample(model, start, options.transport);
      let screened: Screened | undefined;
      if (checkPolicy && v.policy?.checksTensors) {
        screened = this.screenTensors(v, request, options.protocol);
        const kept = screened.kept;
        if (kept?.length === 0) {
          await screened.stored;
          throw new SlipwayError(
            'SLIPWAY_ERR_INVALID_ROWS',
            `every row broke the schema of model '${model}' version ${v.version}; all were quarantined`,
            { details: screened.quarantined!.flatMap((q) => q.problems) },
          );
        }
        if (kept) request = { ...request, inputs: request.inputs.map((t) => keepRows(t, kept)) };
      }
      const job = prepareJob(v.runtime!.signature, v.config, v.runtime!.batchable, request);
      const classified = request.outputs
        ? classificationCounts(request.outputs, v.runtime!.signature.outputs)
        : undefined;
      const timeout = options.timeoutMs ?? (v.config.defaultTimeoutMs || undefined);
      if (timeout !== undefined) {
        if (timeout <= 0)
          throw new SlipwayError('SLIPWAY_ERR_TIMEOUT', 'the request arrived after its deadline');
        job.timeoutMs = timeout;
      }
      if (options.cancel) job.cancel = options.cancel;
      if (trace) {
        job.trace = trace.times;
        // Traced tensors are read after the run: a worker thread gets a copy, not these buffers.
        if (trace.tensors) job.keepInputs = true;
      }
      // The log reads the inputs once answered: a lone request run on a worker thread sends it a
      // copy rather than its own buffers (stacked requests and main-thread runs need none).
      const logged =
        logTensors && this.options.predictions && sampled(v.config.sampleRate) ? request.inputs : undefined;
      if (logged) job.keepInputs = true;
      let result: Awaited<ReturnType<NonNullable<typeof v.batcher>['submit']>>;
      const cache = v.config.responseCache ? this.options.responseCache : undefined;
      const lookupStart = cache ? performance.now() : 0;
      const cacheLoad = cache ? ResponseCache.load(model, v.version, v.loadId) : '';
      const cacheKey = cache ? ResponseCache.key(cacheLoad, job.inputs, job.outputs) : undefined;
      const cached = cacheKey === undefined ? undefined : cache!.get(cacheKey);
      if (cacheKey !== undefined) this.metrics?.cacheLookup(model, v.version, cached !== undefined);
      if (cached) {
        // The stored tensors are shared: each answer gets objects of its own over the same data.
        result = { outputs: cached.map((t) => ({ ...t })), queueMs: 0, computeMs: 0, executedBatch: 0 };
        if (screened?.stored) await screened.stored;
        // Answered in the loop's check phase, as the batcher answers runs: answering inside the
        // read callback served 7-10k req/s at c=64 where the same requests run by the model served
        // 15-18k (one serving process, logreg30); deferred, the two were level.
        await new Promise((resolve) => setImmediate(resolve));
        const now = performance.now();
        v.stats.cacheHit((now - start) * 1e6, (lookupStart - start) * 1e6, (now - lookupStart) * 1e6);
      } else {
        const lookupMs = performance.now() - lookupStart;
        v.inFlight++;
        try {
          // Quarantined rows are stored while the rest run; the answer waits for both.
          if (screened?.stored) [result] = await Promise.all([v.batcher!.submit(job), screened.stored]);
          else result = await v.batcher!.submit(job);
        } finally {
          v.inFlight--;
        }
        if (cacheKey !== undefined) {
          const insertStart = performance.now();
          // A version retired meanwhile (its quarantined rows outlasted the drain) stores nothing:
          // its entries were dropped and could never be looked up again.
          if (v.state !== 'UNAVAILABLE') cache!.set(cacheKey, result.outputs, cacheLoad);
          v.stats.cacheMiss((lookupMs + performance.now() - insertStart) * 1e6);
        }
      }
      const response: InferResponse = { modelName: model, modelVersion: v.version, outputs: result.outputs };
      if (request.id !== undefined) response.id = request.id;
      let echoed = echoParameters(request.parameters);
      if (screened?.quarantined) {
        echoed = { ...echoed, quarantined_rows: screened.quarantined.map((q) => q.row).join(',') };
      }
      if (echoed) response.parameters = echoed;
      if (logged) {
        const now = Date.now();
        response.id ??= requestIds.next(now);
        // A plain literal (no spreads): this runs for every sampled request.
        const entry: PredictionEntry = {
          timeMs: now,
          model,
          version: v.version,
          protocol: options.protocol,
          requestId: response.id,
          latencyUs: Math.round((performance.now() - start) * 1000),
          inputs: logged,
          outputs: response.outputs,
        };
        if (v.config.featureNames) entry.featureNames = v.config.featureNames;
        if (v.config.labelNames) entry.labelNames = v.config.labelNames;
        if (v.config.segments.length > 0) {
          const { segments } = segmentsOf(v.config.segments, request.parameters, options.headers);
          if (segments) entry.segments = segments;
        }
        this.options.predictions!.record(entry);
      }
      if (trace) {
        this.tracer.finish(trace, {
          model,
          version: v.version,
          ...(response.id !== undefined ? { requestId: response.id } : {}),
          inputs: request.inputs,
          outputs: response.outputs,
        });
      }
      // After the log took the model's own outputs: the answer gets the top classes instead.
      if (classified) {
        response.outputs = classifyOutputs(
          response.outputs,
          classified,
          v.runtime!.batchable && v.config.maxBatchSize > 0,
          v.config.labelNames,
        );
      }
      // CPU time: the request's share of its batch's compute (stack, run, split), on every
      // intra-op thread the session may use.
      this.options.predictions?.count(
        model,
        v.version,
        false,
        result.computeMs *
          1000 *
          (job.batchSize / Math.max(1, result.executedBatch)) *
          v.config.intraOpThreads,
      );
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
      if (trace && v) {
        const id = request.id;
        this.tracer.finish(trace, {
          model,
          version: v.version,
          ...(id !== undefined ? { requestId: id } : {}),
        });
      }
      if (v) {
        // A client's mistake (4xx) is not the model failing; server-side failures count as errors.
        if (e.httpStatus >= 500) this.options.predictions?.count(model, v.version, true, 0);
        // Failures before the queue (validation) count as failed inferences, as in Triton.
        if (e.code !== 'SLIPWAY_ERR_INFERENCE_FAILED')
          v.stats.request(false, (performance.now() - start) * 1e6, 0);
        // Always: one error object may fail many requests (those queued at shutdown share one).
        this.metrics?.request(
          model,
          v.version,
          options.protocol,
          e.httpStatus,
          (performance.now() - start) / 1000,
        );
        this.counted.add(e);
      }
      throw e;
    }
  }

  failed(model: string, protocol: string, err: unknown, seconds: number): void {
    if (this.manager.has(model)) this.countFailed(model, '', protocol, toSlipwayError(err), seconds);
  }

  /** Counts a failed request in /metrics under `version` unless run() counted its error. */
  private countFailed(
    model: string,
    version: string,
    protocol: string,
    e: SlipwayError,
    seconds: number,
  ): void {
    if (this.counted.has(e)) return;
    this.metrics?.request(model, version, protocol, e.httpStatus, seconds);
    this.counted.add(e);
  }

  /**
   * The records API: named features in, one prediction per record out. The version's schema
   * checks the records and its cleaning steps prepare them before they become the model's inputs.
   */
  async predictRecords(
    model: string,
    version: string | undefined,
    instances: unknown,
    id: string | undefined,
    options: InferOptions,
  ): Promise<RecordsResponse> {
    if (!Array.isArray(instances) || instances.length === 0) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "'instances' must be a non-empty array of records");
    }
    instances.forEach((r, i) => {
      if (typeof r !== 'object' || r === null || Array.isArray(r)) {
        throw new SlipwayError('SLIPWAY_ERR_RECORD_FIELD', `instances[${i}] must be an object`);
      }
      checkRecordDepth(r as Record<string, unknown>, i);
    });
    const records = instances as Record<string, unknown>[];
    const start = performance.now();
    const v = this.manager.resolve(model, version);
    try {
      return await this.predictResolved(model, v, records, id, options);
    } catch (err) {
      // Refused under this version before it ran (the schema check): counted as run() counts.
      const e = toSlipwayError(err);
      this.countFailed(model, v.version, options.protocol, e, (performance.now() - start) / 1000);
      throw e;
    }
  }

  private async predictResolved(
    model: string,
    v: ServedVersion,
    records: Record<string, unknown>[],
    id: string | undefined,
    options: InferOptions,
  ): Promise<RecordsResponse> {
    let screened: Screened = { kept: null };
    if (v.policy) {
      const columns = recordColumns(records);
      screened = this.screen(
        v,
        columns,
        records.map((r) => columns.map((c) => r[c])),
        options.protocol,
        records,
        id,
      );
    }
    let rows = screened.kept ? screened.kept.map((i) => records[i]!) : records;
    if (v.policy?.prepare && rows.length > 0) rows = v.policy.prepare(rows);
    let predictions: (Prediction | null)[] = [];
    let modelVersion = v.version;
    if (rows.length > 0) {
      const meta = this.modelMetadata(model, v.version);
      const layout = recordsLayout(meta.inputs, v.config);
      const request = recordsToRequest(rows, meta.inputs, layout);
      if (id !== undefined) request.id = id;
      const started = performance.now();
      const [response] = await Promise.all([
        this.run(model, v.version, request, options, false, false),
        screened.stored,
      ]);
      modelVersion = response.modelVersion;
      predictions = responseToPredictions(response, v.config, rows.length);
      if (this.options.predictions && sampled(v.config.sampleRate)) {
        const now = Date.now();
        id ??= requestIds.next(now);
        const sent = screened.kept ? screened.kept.map((i) => records[i]!) : records;
        this.options.predictions.record({
          timeMs: now,
          model,
          version: modelVersion,
          protocol: options.protocol,
          requestId: id,
          latencyUs: Math.round((performance.now() - started) * 1000),
          records: sent,
          predictions,
          ...segmentsOf(v.config.segments, undefined, options.headers),
          ...(v.config.segments.length > 0 ? { segmentFields: v.config.segments } : {}),
        });
      }
    } else {
      await screened.stored;
    }
    if (screened.kept) {
      const all: (Prediction | null)[] = new Array(records.length).fill(null);
      screened.kept.forEach((i, k) => {
        all[i] = predictions[k]!;
      });
      predictions = all;
    }
    const out: RecordsResponse = { modelName: model, modelVersion, predictions };
    if (id !== undefined) out.id = id;
    if (screened.quarantined) out.quarantined = screened.quarantined;
    return out;
  }

  /** Checks a V2 request's columns (one input per column, or a matrix with feature names). */
  private screenTensors(v: ServedVersion, request: InferRequest, protocol: string): Screened {
    const columns: string[] = [];
    const getters: ((row: number) => unknown)[] = [];
    let n = 0;
    for (const t of request.inputs) {
      const rows = t.shape[0] ?? 0;
      n = Math.max(n, rows);
      const width = rows === 0 ? 0 : t.data.length / rows;
      const cell = (i: number) => {
        const x = (t.data as ArrayLike<unknown>)[i];
        return t.datatype === 'BOOL' ? x === 1 : x;
      };
      if (width === 1) {
        columns.push(t.name);
        getters.push(cell);
      } else if (
        v.config.featureNames &&
        width === v.config.featureNames.length &&
        request.inputs.length === 1
      ) {
        v.config.featureNames.forEach((name, k) => {
          columns.push(name);
          getters.push((i) => cell(i * width + k));
        });
      }
    }
    const cells: unknown[][] = [];
    for (let i = 0; i < n; i++) cells.push(getters.map((g) => g(i)));
    const records = () => cells.map((row) => Object.fromEntries(columns.map((c, k) => [c, row[k]])));
    return this.screen(v, columns, cells, protocol, records, request.id);
  }

  /**
   * Runs the version's checks. In `reject` mode any problem fails the request with every problem
   * listed; in `quarantine` mode the failing rows are stored (the promise in `stored`) and the
   * rest go on.
   */
  private screen(
    v: ServedVersion,
    columns: readonly string[],
    cells: readonly (readonly unknown[])[],
    protocol: string,
    records: Record<string, unknown>[] | (() => Record<string, unknown>[]),
    requestId: string | undefined,
  ): Screened {
    const problems = v.policy!.check(columns, cells);
    if (problems.length === 0) return { kept: null };
    const n = cells.length;
    const byRow = new Map<number, RowProblem[]>();
    const everyRow = problems.filter((p) => p.row === null);
    for (const p of problems) {
      if (p.row === null) continue;
      const list = byRow.get(p.row);
      if (list) list.push(p);
      else byRow.set(p.row, [p]);
    }
    const badRows = everyRow.length > 0 ? n : byRow.size;
    if (v.config.dataValidation === 'reject') {
      this.metrics?.invalid(v.model, v.version, 'rejected', badRows);
      const first = problems[0]!;
      throw new SlipwayError(
        'SLIPWAY_ERR_INVALID_ROWS',
        `${badRows} of ${n} row${n === 1 ? '' : 's'} break the schema of model '${v.model}' version ${v.version}` +
          ` (${problems.length} problem${problems.length === 1 ? '' : 's'}; first: ${describe(first)})`,
        { details: problems },
      );
    }
    const kept: number[] = [];
    const quarantined: { row: number; problems: RowProblem[] }[] = [];
    for (let i = 0; i < n; i++) {
      const own = byRow.get(i + 1);
      if (everyRow.length === 0 && !own) kept.push(i);
      else quarantined.push({ row: i + 1, problems: [...everyRow, ...(own ?? [])] });
    }
    this.metrics?.invalid(v.model, v.version, 'quarantined', quarantined.length);
    const sink = this.options.quarantine;
    if (!sink) throw new SlipwayError('SLIPWAY_ERR_INTERNAL', 'quarantine mode without a quarantine store');
    const all = typeof records === 'function' ? records() : records;
    const rows: QuarantinedRow[] = quarantined.map((q) => ({
      model: v.model,
      version: v.version,
      ...(requestId !== undefined ? { requestId } : {}),
      protocol,
      row: q.row,
      record: all[q.row - 1]!,
      problems: q.problems,
    }));
    return { kept, stored: sink.store(rows), quarantined };
  }

  repositoryIndex(readyOnly: boolean): Promise<RepositoryEntry[]> {
    return this.manager.index(readyOnly);
  }

  /**
   * Loads from the repository, or from the model files the request carries (Triton's
   * `file:<version>/<name>` parameters, which need `config`): they are written to a folder of
   * their own that stands in for the model's until the next load or unload. `upload` is such a
   * folder another serving process wrote.
   */
  async loadModel(model: string, parameters?: Parameters, upload?: UploadedModel): Promise<void> {
    const override = loadConfigOverride(parameters);
    if (upload === undefined) {
      const root = await this.writeUpload(model, parameters);
      if (root !== undefined) upload = { root, owned: true };
    }
    await this.manager.load(model, override, upload);
  }

  /**
   * Writes a request's model files for every serving process to load; undefined without any.
   * `config` is checked first, so a bad one writes nothing.
   */
  async stageUpload(model: string, parameters?: Parameters): Promise<string | undefined> {
    if (hasUploadedFiles(parameters)) loadConfigOverride(parameters);
    return this.writeUpload(model, parameters);
  }

  private async writeUpload(model: string, parameters?: Parameters): Promise<string | undefined> {
    if (!hasUploadedFiles(parameters)) return undefined;
    return writeUploadedModel(model, readUploadedFiles(model, parameters!));
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

function sampled(rate: number): boolean {
  return rate >= 1 || (rate > 0 && Math.random() < rate);
}

/** Request-level segment keys: request parameters by name, headers as `header:<name>`. */
function segmentsOf(
  keys: readonly string[],
  parameters: Parameters | undefined,
  headers: InferOptions['headers'],
): { segments?: Record<string, string> } {
  if (keys.length === 0) return {};
  let segments: Record<string, string> | undefined;
  for (const key of keys) {
    let value: unknown;
    if (key.startsWith('header:')) {
      const h = headers?.[key.slice(7).toLowerCase()];
      value = Array.isArray(h) ? h[0] : h;
    } else value = parameters?.[key];
    if (value === undefined || value === null) continue;
    segments ??= {};
    segments[key.startsWith('header:') ? key.slice(7).toLowerCase() : key] = String(value);
  }
  return segments ? { segments } : {};
}

/** Every field any record names, in order of first appearance. */
function recordColumns(records: readonly Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  for (const r of records) for (const k in r) seen.add(k);
  return [...seen];
}

function describe(p: RowProblem): string {
  const where = p.row === null ? '' : `row ${p.row} `;
  return `${where}${p.field ?? ''}: ${p.rule}, got ${describeValue(p.value)}, expected ${p.expected}`;
}

/** A tensor cut down to some of its rows (along the first dimension). */
function keepRows(t: Tensor, rows: readonly number[]): Tensor {
  const n = t.shape[0] ?? 0;
  const width = n === 0 ? 0 : t.data.length / n;
  const data = allocate(t.datatype, rows.length * width);
  rows.forEach((r, k) => {
    for (let j = 0; j < width; j++)
      (data as unknown as unknown[])[k * width + j] = (t.data as unknown as unknown[])[r * width + j];
  });
  return { ...t, shape: [rows.length, ...t.shape.slice(1)], data };
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

/** A load request's `config` parameter: the JSON that stands in for config.json. */
function loadConfigOverride(parameters: Parameters | undefined): unknown {
  const config = parameters?.config;
  if (config === undefined) return undefined;
  if (typeof config !== 'string')
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "parameter 'config' must be a JSON string");
  try {
    return JSON.parse(config);
  } catch (err) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `parameter 'config' is not valid JSON: ${(err as Error).message}`,
    );
  }
}
