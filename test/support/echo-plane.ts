/** A data plane for transport tests: a model that echoes its inputs, with delays on demand. */
import { levelFor, logSettingsOf } from '../../src/config/log-settings.js';
import { SlipwayError } from '../../src/errors/index.js';
import type { DataPlane, ServerMetadata } from '../../src/inference/data-plane-api.js';
import { DEFAULT_MODEL_CONFIG, describeConfig } from '../../src/inference/model-config.js';
import { type SharedMemoryRegion, SharedMemoryRegions } from '../../src/inference/shared-memory.js';
import { StatsRecorder } from '../../src/inference/stats.js';
import { Tracer } from '../../src/inference/trace.js';
import type {
  InferOptions,
  InferRequest,
  InferResponse,
  ModelMetadata,
  Parameters,
  RepositoryEntry,
} from '../../src/inference/types.js';

/**
 * Model `echo` returns its inputs as outputs (filtered by requested outputs) and the request's
 * parameters as response parameters. A `delay_ms` parameter makes it wait, honouring the
 * timeout (unless `ignore_timeout` is set) and the abort signal as the real plane does.
 * Model `loading` is not ready; `boom` throws a plain Error; any other name is not found.
 */
export class EchoPlane implements DataPlane {
  readonly sharedMemory: SharedMemoryRegions;

  /** `shmRoot`: where shared memory objects are (a test folder instead of /dev/shm). */
  constructor(shmRoot?: string) {
    this.sharedMemory = new SharedMemoryRegions({ allowed: true, ...(shmRoot ? { root: shmRoot } : {}) });
  }
  async registerSharedMemory(region: SharedMemoryRegion) {
    this.sharedMemory.register(region);
  }
  async unregisterSharedMemory(name?: string) {
    this.sharedMemory.unregister(name);
  }
  readonly log = { level: 'info' };
  logSettings() {
    return logSettingsOf(this.log);
  }
  logLevel() {
    return this.log.level;
  }
  async updateLogSettings(patch: unknown) {
    this.log.level = levelFor(this.log.level, patch);
    return this.logSettings();
  }
  readonly tracer = new Tracer({ file: '', level: [], rate: 1000, count: -1, logFrequency: 0 });
  readonly tracing = false;

  traceSettings(model?: string) {
    return this.tracer.settings(model);
  }
  async updateTraceSettings(model: string | undefined, patch: unknown) {
    this.tracer.update(model, patch);
    return this.tracer.settings(model);
  }
  lastOptions?: InferOptions;
  lastLoad?: { model: string; parameters?: Parameters };
  unloaded: string[] = [];
  /** Inferences running now, and the most that ran at once. */
  running = 0;
  maxRunning = 0;
  readonly stats = new StatsRecorder('echo', '1');

  live() {
    return true;
  }
  ready() {
    return true;
  }
  serverMetadata(): ServerMetadata {
    return { name: 'slipway', version: '0.1.0', extensions: ['model_repository', 'statistics'] };
  }
  private find(model: string, version?: string) {
    if (model === 'loading') {
      throw new SlipwayError('SLIPWAY_ERR_MODEL_UNAVAILABLE', `model 'loading' is LOADING`);
    }
    if (model !== 'echo' && model !== 'boom') {
      throw new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `model '${model}' is not in the repository`);
    }
    if (version !== undefined && version !== '1') {
      throw new SlipwayError('SLIPWAY_ERR_VERSION_NOT_FOUND', `model '${model}' has no version '${version}'`);
    }
  }
  modelMetadata(model: string, version?: string): ModelMetadata {
    this.find(model, version);
    return {
      name: model,
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'INPUT0', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'OUTPUT0', datatype: 'BYTES', shape: [-1] }],
    };
  }
  modelReady(model: string, version?: string) {
    if (model === 'loading') return false;
    this.find(model, version);
    return true;
  }
  modelConfig(model: string, version?: string) {
    const m = this.modelMetadata(model, version);
    return describeConfig(model, { ...DEFAULT_MODEL_CONFIG, preferredBatchSizes: [4, 8] }, m);
  }
  async infer(model: string, version: string | undefined, request: InferRequest, options: InferOptions) {
    this.lastOptions = options;
    this.find(model, version);
    if (model === 'boom') throw new Error('kaboom');
    const delay = request.parameters?.delay_ms;
    if (typeof delay === 'number') {
      this.maxRunning = Math.max(this.maxRunning, ++this.running);
      try {
        await wait(
          delay,
          request.parameters?.ignore_timeout ? { ...options, timeoutMs: undefined } : options,
        );
      } finally {
        this.running--;
      }
    }
    const wanted = request.outputs?.map((o) => o.name);
    const response: InferResponse = {
      modelName: model,
      modelVersion: '1',
      outputs: request.inputs.filter((t) => !wanted || wanted.includes(t.name)),
    };
    if (request.id !== undefined) response.id = request.id;
    if (request.parameters) response.parameters = request.parameters;
    this.stats.request(true, 1000, 10);
    this.stats.execution(2, 1, 100, 200, 300);
    return response;
  }
  async predictRecords(): Promise<never> {
    throw new Error('the gRPC service has no records API');
  }
  failed(): void {}
  async repositoryIndex(readyOnly: boolean): Promise<RepositoryEntry[]> {
    const all: RepositoryEntry[] = [
      { name: 'echo', version: '1', state: 'READY', reason: '' },
      { name: 'loading', state: 'LOADING', reason: 'warming up' },
    ];
    return readyOnly ? all.filter((e) => e.state === 'READY') : all;
  }
  async loadModel(model: string, parameters?: Parameters) {
    this.lastLoad = parameters ? { model, parameters } : { model };
  }
  async unloadModel(model: string) {
    this.find(model);
    this.unloaded.push(model);
  }
  statistics(model?: string, version?: string) {
    if (model !== undefined) this.find(model, version);
    return [this.stats.snapshot()];
  }
}

function wait(ms: number, options: InferOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = setTimeout(resolve, ms);
    const timeout =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            clearTimeout(done);
            reject(
              new SlipwayError('SLIPWAY_ERR_TIMEOUT', `request timed out after ${options.timeoutMs} ms`),
            );
          }, options.timeoutMs);
    if (options.cancel) {
      options.cancel.onCancel = () => {
        clearTimeout(done);
        clearTimeout(timeout);
        reject(new SlipwayError('SLIPWAY_ERR_CANCELLED', 'the request was cancelled'));
      };
    }
  });
}
