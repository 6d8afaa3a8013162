import { join, sep } from 'node:path';
import type { Logger } from 'pino';
import { SlipwayError } from '../errors/index.js';
import type { LoadGauge } from '../metrics/index.js';
import { DynamicBatcher } from './batcher.js';
import type { InputPolicy, PolicyFactory, PolicyFiles } from './input-policy.js';
import type { ModelConfig } from './model-config.js';
import { checkModelFile, type ModelOnDisk, type ModelSource, readModel } from './model-repository.js';
import type { ModelRuntime } from './model-runtime.js';
import { removeUploadedModel, type UploadedModel } from './model-upload.js';
import { warmUp } from './model-warmup.js';
import { StatsRecorder } from './stats.js';
import type { ModelState, RepositoryEntry } from './types.js';

/** Creates the runtime of one model version; ONNX Runtime worker pools in production. */
export type RuntimeFactory = (path: string, config: ModelConfig) => Promise<ModelRuntime>;

let loads = 0;

/** One model version as it is served: its runtime, queue, statistics and state. */
export class ServedVersion {
  /**
   * Tells this load apart from any other of the same version (a reload may bring other files
   * under the same number): the response cache keys answers by it.
   */
  readonly loadId = ++loads;
  state: ModelState = 'LOADING';
  reason = '';
  /** Requests accepted and not yet answered. */
  inFlight = 0;
  runtime?: ModelRuntime;
  batcher?: DynamicBatcher;
  /** The schema and cleaning steps requests pass before inference, if the version carries any. */
  policy?: InputPolicy;
  readonly stats: StatsRecorder;

  constructor(
    readonly model: string,
    readonly version: string,
    readonly config: ModelConfig,
    /** The model file it runs; a reload keeps a version whose file, config and policy files are unchanged. */
    readonly path: string,
    readonly policyKey = '',
  ) {
    this.stats = new StatsRecorder(model, version);
  }
}

interface ModelEntry {
  name: string;
  config?: ModelConfig;
  /** Versions that requests route to, by version string. */
  versions: Map<string, ServedVersion>;
  /** Where requests without a version go: the source's default, else the highest READY version. */
  latest?: ServedVersion;
  state: ModelState;
  reason: string;
  /** Loads and unloads of one model run one after another. */
  op: Promise<unknown>;
  /** Loads and unloads queued or running on `op`. */
  pending: number;
  /** Set by an explicit unload: the model no longer counts towards server readiness. */
  unloaded?: boolean;
  /** Label of the source that served the last successful read. */
  source?: string;
  /** The uploaded folder the routed versions came from, when they came from one. */
  upload?: UploadedModel;
}

export interface ModelManagerOptions {
  /** Asked in order; the first that lists a model serves it. */
  sources: ModelSource[];
  logger: Logger;
  createRuntime: RuntimeFactory;
  onBatch?: (model: string, version: string, size: number) => void;
  /** Builds a version's input policy from its schema.json / steps.json. */
  createPolicy?: PolicyFactory;
  /** Whether the server has a response cache, so a model asking for one is warned when it has not. */
  responseCache?: boolean;
  /** Told of each version once it no longer serves and its runtime is freed. */
  onRetired?: (version: ServedVersion) => void;
}

/**
 * Keeps the models of its sources loaded. A reload brings new versions up beside the old ones and
 * switches traffic only when they are ready; old versions drain before they are freed. Versions
 * whose file and configuration did not change are kept as they are.
 */
export class ModelManager {
  private readonly models = new Map<string, ModelEntry>();
  private readonly logger: Logger;
  private closed = false;

  constructor(private readonly options: ModelManagerOptions) {
    this.logger = options.logger;
  }

  /** Every model name the sources hold, each once. */
  async listAll(): Promise<string[]> {
    const names = new Set<string>();
    for (const source of this.options.sources) for (const n of await source.list()) names.add(n);
    return [...names].sort();
  }

  /** Loads every model of every source; a model that fails is UNAVAILABLE, the rest serve. */
  async loadAll(): Promise<void> {
    const names = await this.listAll();
    await Promise.all(
      names.map((n) =>
        this.load(n).catch((err: Error) =>
          this.logger.warn({ model: n, err: err.message }, 'model failed to load'),
        ),
      ),
    );
  }

  /** Routes a request: the given version, or the latest ready one. */
  resolve(model: string, version?: string): ServedVersion {
    const entry = this.models.get(model);
    if (!entry)
      throw new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `model '${model}' is not in the repository`);
    if (version === undefined || version === '') {
      if (entry.latest) return entry.latest;
      throw unavailable(model, entry.state, entry.reason);
    }
    const v = entry.versions.get(version);
    if (!v) {
      if (entry.versions.size === 0) throw unavailable(model, entry.state, entry.reason);
      throw new SlipwayError(
        'SLIPWAY_ERR_VERSION_NOT_FOUND',
        `model '${model}' has no version '${version}' being served; versions: ${[...entry.versions.keys()].join(', ')}`,
      );
    }
    if (v.state !== 'READY') throw unavailable(`${model}' version '${version}`, v.state, v.reason);
    return v;
  }

  /** Every version that is routed to, for metadata and statistics. */
  versionsOf(model: string): ServedVersion[] {
    const entry = this.models.get(model);
    if (!entry)
      throw new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `model '${model}' is not in the repository`);
    return [...entry.versions.values()];
  }

  has(model: string): boolean {
    return this.models.has(model);
  }

  /** Which source the model is served from (`registry`, `folder ./models`), once read. */
  sourceOf(model: string): string | undefined {
    return this.models.get(model)?.source;
  }

  configOf(model: string): ModelConfig | undefined {
    return this.models.get(model)?.config;
  }

  allVersions(): ServedVersion[] {
    return [...this.models.values()].flatMap((e) => [...e.versions.values()]);
  }

  /** True when every model that should serve has a ready version (explicitly unloaded ones aside). */
  allReady(): boolean {
    for (const e of this.models.values()) if (e.state !== 'READY' && !e.unloaded) return false;
    return true;
  }

  loadGauges(): LoadGauge[] {
    return this.allVersions()
      .filter((v) => v.batcher)
      .map((v) => ({
        model: v.model,
        version: v.version,
        queueDepth: v.batcher!.depth,
        inFlight: v.inFlight,
      }));
  }

  async index(readyOnly: boolean): Promise<RepositoryEntry[]> {
    const rows: RepositoryEntry[] = [];
    const names = new Set([...(await this.listAll().catch(() => [])), ...this.models.keys()]);
    for (const name of [...names].sort()) {
      const entry = this.models.get(name);
      if (!entry) {
        if (!readyOnly) rows.push({ name, state: 'UNAVAILABLE', reason: 'not loaded' });
        continue;
      }
      if (entry.versions.size === 0) {
        if (!readyOnly) rows.push({ name, state: entry.state, reason: entry.reason });
        continue;
      }
      for (const v of [...entry.versions.values()].sort((a, b) => Number(a.version) - Number(b.version))) {
        if (readyOnly && v.state !== 'READY') continue;
        rows.push({ name, version: v.version, state: v.state, reason: v.reason });
      }
    }
    return rows;
  }

  /**
   * (Re)loads a model from its source, or from an uploaded folder (which then stands in for the
   * sources until the next load). Resolves when the new versions serve; rejects with the reasons
   * of failures.
   */
  load(name: string, overrideConfig?: unknown, upload?: UploadedModel): Promise<void> {
    const entry = this.entry(name);
    entry.pending++;
    const op = entry.op
      .then(() => this.doLoad(entry, overrideConfig, upload))
      .finally(() => {
        entry.pending--;
      });
    entry.op = op.catch(() => undefined);
    return op;
  }

  /** Stops routing to a model and frees it once its in-flight requests are answered. */
  unload(name: string): Promise<void> {
    const entry = this.models.get(name);
    if (!entry)
      return Promise.reject(new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `model '${name}' is not loaded`));
    entry.pending++;
    const op = entry.op.then(async () => {
      const old = [...entry.versions.values()];
      entry.versions = new Map();
      entry.latest = undefined;
      entry.state = 'UNLOADING';
      entry.reason = 'unloading';
      await this.retire(old);
      await this.release(entry.upload);
      entry.upload = undefined;
      entry.state = 'UNAVAILABLE';
      entry.reason = 'unloaded';
      entry.unloaded = true;
      this.logger.info({ model: name }, 'model unloaded');
    });
    void op
      .finally(() => {
        entry.pending--;
      })
      .catch(() => undefined);
    entry.op = op.catch(() => undefined);
    return op;
  }

  /** Unloads everything, waiting for in-flight requests. Loads asked for later are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.models.keys()].map((n) => this.unload(n).catch(() => undefined)));
  }

  private entry(name: string): ModelEntry {
    let entry = this.models.get(name);
    if (!entry) {
      entry = {
        name,
        versions: new Map(),
        state: 'LOADING',
        reason: 'loading',
        op: Promise.resolve(),
        pending: 0,
      };
      this.models.set(name, entry);
    }
    return entry;
  }

  private async doLoad(entry: ModelEntry, overrideConfig?: unknown, upload?: UploadedModel): Promise<void> {
    let adopted = false;
    try {
      if (this.closed) throw new SlipwayError('SLIPWAY_ERR_SHUTTING_DOWN', 'the server is shutting down');
      const outcome = await this.swapIn(entry, overrideConfig, upload);
      adopted = outcome.adopted;
      if (outcome.failed) throw outcome.failed;
    } finally {
      if (!adopted) await this.release(upload);
    }
  }

  /**
   * Loads and routes the new versions. Throws when nothing changed; otherwise says whether they
   * came from `upload` (whose folder then stays while they serve) and why some versions failed.
   */
  private async swapIn(
    entry: ModelEntry,
    overrideConfig?: unknown,
    upload?: UploadedModel,
  ): Promise<{ adopted: boolean; failed?: SlipwayError }> {
    const started = performance.now();
    entry.unloaded = false;
    const wasServing = entry.latest !== undefined;
    if (!wasServing) {
      entry.state = 'LOADING';
      entry.reason = 'loading';
    }
    // Reasons name an uploaded file as its parameter (`file:1/model.onnx`), not by where it was written.
    const uploadedAs = upload ? `${join(upload.root, entry.name)}${sep}` : undefined;
    const told = (message: string) => (uploadedAs ? message.replaceAll(uploadedAs, 'file:') : message);
    let disk: ModelOnDisk & { source: string };
    try {
      disk = upload
        ? { ...(await readModel(upload.root, entry.name, overrideConfig)), source: 'upload' }
        : await this.read(entry.name, overrideConfig);
    } catch (err) {
      if (err instanceof Error) err.message = told(err.message);
      this.failEntry(entry, err as Error, wasServing);
      throw err;
    }
    const sameConfig =
      entry.config !== undefined && JSON.stringify(entry.config) === JSON.stringify(disk.config);
    const fresh = await Promise.all(
      disk.versions.map(async ({ version, path, policy }) => {
        const current = entry.versions.get(String(version));
        const policyKey = policy ? JSON.stringify(policy) : '';
        if (
          sameConfig &&
          current?.state === 'READY' &&
          current.path === path &&
          current.policyKey === policyKey
        ) {
          return current;
        }
        const v = new ServedVersion(entry.name, String(version), disk.config, path, policyKey);
        try {
          if (policy) v.policy = this.policyOf(policy);
          await checkModelFile(path);
          v.runtime = await this.options.createRuntime(path, disk.config);
          if (disk.config.warmup.length > 0) await warmUp(v.runtime, disk.config);
          const onBatch = this.options.onBatch;
          v.batcher = new DynamicBatcher(
            v.runtime,
            disk.config,
            v.stats,
            onBatch ? (size) => onBatch(v.model, v.version, size) : undefined,
          );
          v.state = 'READY';
        } catch (err) {
          v.state = 'UNAVAILABLE';
          v.reason = told((err as Error).message);
          // A runtime that loaded and then failed its warmup is freed.
          await v.runtime?.unload().catch(() => undefined);
          v.runtime = undefined;
        }
        return v;
      }),
    );
    const ready = fresh.filter((v) => v.state === 'READY');
    const failed = fresh.filter((v) => v.state !== 'READY');
    if (ready.length === 0 && wasServing) {
      // Keep serving what worked before; report why the new load failed.
      const error = new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        failed.map((v) => `version ${v.version}: ${v.reason}`).join('; '),
      );
      this.logger.warn(
        { model: entry.name, err: error.message },
        'reload failed; previous versions keep serving',
      );
      throw error;
    }
    const kept = new Set(fresh);
    const old = [...entry.versions.values()].filter((v) => !kept.has(v));
    const replaced = entry.upload;
    const adopted = upload !== undefined && ready.length > 0;
    entry.upload = adopted ? upload : undefined;
    entry.config = disk.config;
    entry.source = disk.source;
    entry.versions = new Map(fresh.map((v) => [v.version, v]));
    const preferred =
      disk.defaultVersion === undefined ? undefined : entry.versions.get(String(disk.defaultVersion));
    entry.latest =
      preferred?.state === 'READY'
        ? preferred
        : ready.length > 0
          ? ready.reduce((a, b) => (Number(b.version) > Number(a.version) ? b : a))
          : undefined;
    entry.state = entry.latest ? 'READY' : 'UNAVAILABLE';
    entry.reason = entry.latest ? '' : failed.map((v) => `version ${v.version}: ${v.reason}`).join('; ');
    this.logger.info(
      {
        model: entry.name,
        versions: ready.map((v) => v.version),
        ms: Math.round(performance.now() - started),
      },
      'model loaded',
    );
    if (disk.config.responseCache && !this.options.responseCache && ready.length > 0) {
      this.logger.warn(
        { model: entry.name },
        'config.json enables response_cache but the server has no cache (give it --response-cache-bytes): served uncached',
      );
    }
    await this.retire(old);
    if (replaced !== undefined && replaced.root !== upload?.root) await this.release(replaced);
    if (failed.length === 0) return { adopted };
    return {
      adopted,
      failed: new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        failed.map((v) => `version ${v.version}: ${v.reason}`).join('; '),
      ),
    };
  }

  /** Removes an uploaded folder this process wrote; the session already holds the model. */
  private async release(upload: UploadedModel | undefined): Promise<void> {
    if (!upload?.owned) return;
    await removeUploadedModel(upload.root).catch((err: Error) =>
      this.logger.warn(
        { root: upload.root, err: err.message },
        'an uploaded model folder could not be removed',
      ),
    );
  }

  private policyOf(files: PolicyFiles): InputPolicy | undefined {
    if (!this.options.createPolicy) {
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        'the version carries schema.json or steps.json, which this server cannot apply',
      );
    }
    return this.options.createPolicy(files);
  }

  /** The first source that has the model reads it. */
  private async read(name: string, overrideConfig?: unknown): Promise<ModelOnDisk & { source: string }> {
    let notFound: unknown;
    for (const source of this.options.sources) {
      try {
        return { ...(await source.read(name, overrideConfig)), source: source.label };
      } catch (err) {
        if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_MODEL_NOT_FOUND') {
          notFound = err;
          continue;
        }
        throw err;
      }
    }
    throw notFound ?? new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `no model '${name}' in the repository`);
  }

  private failEntry(entry: ModelEntry, err: Error, wasServing: boolean): void {
    if (wasServing) return;
    entry.state = 'UNAVAILABLE';
    entry.reason = err.message;
    // Forgotten unless another load or unload is queued behind this one: it needs the entry.
    if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_MODEL_NOT_FOUND' && entry.pending <= 1)
      this.models.delete(entry.name);
  }

  /** Drains old versions, then frees them. Requests no longer route to them. */
  private async retire(versions: ServedVersion[]): Promise<void> {
    await Promise.all(
      versions.map(async (v) => {
        if (v.state === 'READY') {
          v.state = 'UNLOADING';
          v.reason = 'unloading';
        }
        try {
          await v.batcher?.drain();
          await v.runtime?.unload();
        } finally {
          v.state = 'UNAVAILABLE';
          v.reason = 'unloaded';
          this.options.onRetired?.(v);
        }
      }),
    );
  }
}

function unavailable(what: string, state: ModelState, reason: string): SlipwayError {
  const why =
    state === 'LOADING'
      ? 'is loading'
      : state === 'UNLOADING'
        ? 'is unloading'
        : `is unavailable: ${reason || 'unknown reason'}`;
  return new SlipwayError('SLIPWAY_ERR_MODEL_UNAVAILABLE', `model '${what}' ${why}`);
}
