import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { SlipwayError } from '../errors/index.js';
import { fromOrtType, toOrtType } from './datatypes.js';
import type { ModelConfig } from './model-config.js';
import type { ModelRuntime, RunOptions, RunResult, RuntimeSignature } from './model-runtime.js';
import type { WorkerFeed, WorkerInit, WorkerReply, WorkerValueMetadata } from './onnx-protocol.js';
import { createSession, type LoadedSession, transferables } from './onnx-session.js';
import type { Tensor, TensorData, TensorMetadata } from './types.js';

const WORKER_URL = new URL('./onnx-worker.js', import.meta.url);

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

class OnnxWorker {
  busy = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed?: () => void;
  private exited = false;

  private constructor(readonly worker: Worker) {
    worker.on('message', (msg: WorkerReply) => this.onMessage(msg));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => {
      this.exited = true;
      this.failAll(new Error('the ONNX Runtime worker exited'));
      this.closed?.();
    });
  }

  static start(
    init: WorkerInit,
  ): Promise<{ worker: OnnxWorker; inputs: WorkerValueMetadata[]; outputs: WorkerValueMetadata[] }> {
    return new Promise((resolve, reject) => {
      // No execArgv: flags such as --input-type given to the parent would break the worker.
      const w = new Worker(WORKER_URL, { workerData: init, execArgv: [] });
      const onFirst = (msg: WorkerReply) => {
        w.off('error', onError);
        if (msg.kind === 'loaded')
          resolve({ worker: new OnnxWorker(w), inputs: msg.inputs, outputs: msg.outputs });
        else {
          void w.terminate();
          reject(new Error(msg.kind === 'load-failed' ? msg.message : `unexpected worker reply ${msg.kind}`));
        }
      };
      const onError = (err: Error) => {
        w.off('message', onFirst);
        reject(err);
      };
      w.once('message', onFirst);
      w.once('error', onError);
    });
  }

  run(feeds: WorkerFeed[], outputs: string[], keepInputs = false): Promise<RunResult> {
    const id = this.nextId++;
    const transfer = transferables(feeds, keepInputs);
    this.busy++;
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.worker.postMessage({ kind: 'run', id, feeds, outputs }, transfer);
      } catch (err) {
        // Inputs that cannot be sent (a buffer already handed to another thread): nothing runs.
        this.pending.delete(id);
        this.busy--;
        reject(
          new SlipwayError(
            'SLIPWAY_ERR_INTERNAL',
            `the inputs could not be sent to ONNX Runtime's thread: ${(err as Error).message}`,
          ),
        );
      }
    });
  }

  private onMessage(msg: WorkerReply): void {
    if (msg.kind === 'result' || msg.kind === 'error') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      this.busy--;
      if (msg.kind === 'error') {
        p.reject(new SlipwayError('SLIPWAY_ERR_INFERENCE_FAILED', `ONNX Runtime: ${msg.message}`));
        return;
      }
      try {
        p.resolve({ outputs: toTensors(msg.outputs), inferNs: msg.inferNs });
      } catch (err) {
        p.reject(err as Error);
      }
    } else if (msg.kind === 'closed') {
      void this.worker.terminate();
    }
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) {
      p.reject(new SlipwayError('SLIPWAY_ERR_INFERENCE_FAILED', err.message, { cause: err }));
    }
    this.busy -= this.pending.size;
    this.pending.clear();
  }

  /** Releases the session and ends the thread. */
  close(): Promise<void> {
    // A thread that already ended (it crashed) has nothing to release, and no exit event to come.
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.closed = resolve;
      this.worker.postMessage({ kind: 'close' });
      // A worker stuck in a long run is terminated after a grace period.
      setTimeout(() => void this.worker.terminate(), 10_000).unref();
    });
  }
}

/** ONNX Runtime outputs as protocol tensors; throws for types the protocol cannot carry. */
function toTensors(outputs: WorkerFeed[]): Tensor[] {
  return outputs.map((o) => {
    const datatype = fromOrtType(o.type);
    if (!datatype) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INFERENCE_FAILED',
        `output '${o.name}' has type ${o.type}, which the protocol cannot carry`,
      );
    }
    return { name: o.name, datatype, shape: o.dims, data: o.data };
  });
}

function toMetadata(values: WorkerValueMetadata[], side: string): TensorMetadata[] {
  return values.map((v) => {
    if (!v.isTensor) {
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        `${side} '${v.name}' is not a tensor (a sequence or map, as skl2onnx's ZipMap makes); convert with options {'zipmap': False}`,
      );
    }
    const datatype = fromOrtType(v.type);
    if (!datatype)
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        `${side} '${v.name}' has type ${v.type}, which the protocol cannot carry`,
      );
    return { name: v.name, datatype, shape: v.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

/** The session on the main thread, for models cheap enough that a thread hop costs more than the run. */
class MainThreadInstance {
  constructor(private readonly loaded: LoadedSession) {}

  /** Runs the model at once, on this thread (the returned promise is already settled). */
  async run(feeds: WorkerFeed[], outputs: string[]): Promise<RunResult> {
    let r: ReturnType<LoadedSession['session']['run']>;
    try {
      r = this.loaded.session.run(feeds, outputs);
    } catch (err) {
      throw new SlipwayError('SLIPWAY_ERR_INFERENCE_FAILED', `ONNX Runtime: ${(err as Error).message}`);
    }
    return { outputs: toTensors(r.outputs), inferNs: r.inferNs };
  }

  async release(): Promise<void> {
    this.loaded.session.release();
  }
}

/** With `execution: auto`, larger model files never get a main-thread session. */
export const AUTO_MAIN_THREAD_MAX_BYTES = 32 * 1024 * 1024;

/** Worker runs measured before a model is judged cheap enough for the main thread. */
const WARM_UP_RUNS = 8;

/**
 * Predicts a run's nanoseconds from its row count: a least-squares line a + b·rows over recent
 * worker runs, older runs fading out. With one row count seen so far, cost is taken to grow in
 * proportion to rows beyond it (the cautious guess).
 */
export class CostModel {
  private w = 0;
  private x = 0;
  private y = 0;
  private xx = 0;
  private xy = 0;
  runs = 0;

  constructor(private readonly decay = 0.95) {}

  observe(rows: number, ns: number): void {
    const d = this.decay;
    this.w = this.w * d + 1;
    this.x = this.x * d + rows;
    this.y = this.y * d + ns;
    this.xx = this.xx * d + rows * rows;
    this.xy = this.xy * d + rows * ns;
    this.runs++;
  }

  estimate(rows: number): number {
    if (this.runs === 0) return Number.POSITIVE_INFINITY;
    const meanX = this.x / this.w;
    const meanY = this.y / this.w;
    const varX = this.xx / this.w - meanX * meanX;
    if (varX < 1e-6 * (meanX * meanX + 1)) return rows <= meanX ? meanY : (meanY * rows) / meanX;
    const b = Math.max(0, (this.xy / this.w - meanX * meanY) / varX);
    return Math.max(0, meanY + b * (rows - meanX));
  }
}

/**
 * ONNX Runtime sessions in `instance_count` worker threads, plus (with `execution: auto` or
 * `main`) one on the main thread. A worker keeps the event loop free while a model computes, but
 * handing tensors to a thread and back costs a thread wake-up each way — on a 2-core VM about
 * 150 µs, several times a small tabular model's whole run. So with `auto`, the first runs go to a
 * worker and are timed; a model whose predicted cost for a batch fits
 * `main_thread_budget_microseconds` then runs that batch on the main thread, and anything
 * bigger keeps going to the workers.
 */
export class OnnxRuntimePool implements ModelRuntime {
  readonly batchable: boolean;
  private unloading = false;
  private readonly cost = new CostModel();
  private readonly budgetNs: number;
  /** How many batches ran where, for statistics and tests. */
  readonly placements = { main: 0, worker: 0 };

  private constructor(
    private readonly workers: OnnxWorker[],
    private readonly main: MainThreadInstance | undefined,
    readonly signature: RuntimeSignature,
    config: ModelConfig,
  ) {
    this.budgetNs = config.mainThreadBudgetUs * 1000;
    // Stacking requests needs a dynamic first dimension on every input and output.
    const dynamicFirst = (t: TensorMetadata) => t.shape.length > 0 && t.shape[0] === -1;
    this.batchable = signature.inputs.every(dynamicFirst) && signature.outputs.every(dynamicFirst);
  }

  /** True once a model has proven cheap: its batches then run one at a time on the main thread. */
  get onMainThread(): boolean {
    if (!this.main) return false;
    if (this.workers.length === 0) return true;
    return this.cost.runs >= WARM_UP_RUNS && this.cost.estimate(1) <= this.budgetNs;
  }

  /** The main-thread lane alone for a cheap model; the workers otherwise. */
  get capacity(): number {
    return this.onMainThread ? 1 : this.workers.length;
  }

  static async create(path: string, config: ModelConfig): Promise<OnnxRuntimePool> {
    const init: WorkerInit = {
      path,
      intraOpThreads: config.intraOpThreads,
      interOpThreads: config.interOpThreads,
      graphOptimizationLevel: config.graphOptimizationLevel,
    };
    const workerCount = config.execution === 'main' ? 0 : config.instanceCount;
    const started = await Promise.allSettled([
      ...Array.from({ length: workerCount }, () => OnnxWorker.start(init)),
    ]);
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    let main: LoadedSession | undefined;
    try {
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw new Error((failed.reason as Error).message);
      // A model large enough to be slow is not worth a second copy in memory on the main thread.
      const wantMain =
        config.execution === 'main' ||
        (config.execution === 'auto' && (await stat(path)).size <= AUTO_MAIN_THREAD_MAX_BYTES);
      if (wantMain) main = await createSession(init);
    } catch (err) {
      await Promise.all(ok.map((s) => s.worker.close()));
      throw new SlipwayError('SLIPWAY_ERR_MODEL_LOAD', `cannot load ${path}: ${(err as Error).message}`);
    }
    try {
      const described = ok[0] ?? main!;
      const signature = {
        inputs: toMetadata(described.inputs, 'input'),
        outputs: toMetadata(described.outputs, 'output'),
      };
      return new OnnxRuntimePool(
        ok.map((s) => s.worker),
        main ? new MainThreadInstance(main) : undefined,
        signature,
        config,
      );
    } catch (err) {
      await Promise.all(ok.map((s) => s.worker.close()));
      main?.session.release();
      throw err;
    }
  }

  async run(inputs: Tensor[], outputs: string[], options?: RunOptions): Promise<RunResult> {
    if (this.unloading) throw new SlipwayError('SLIPWAY_ERR_MODEL_UNAVAILABLE', 'the model is unloading');
    const feeds: WorkerFeed[] = inputs.map((t) => ({
      name: t.name,
      type: toOrtType(t.datatype),
      dims: t.shape,
      data: t.data as TensorData,
    }));
    const rows = this.batchable && inputs.length > 0 ? Math.max(1, inputs[0]!.shape[0]!) : 1;
    if (this.onMainThread && (this.workers.length === 0 || this.cost.estimate(rows) <= this.budgetNs)) {
      return this.runMain(feeds, outputs);
    }
    const result = await this.runWorker(feeds, outputs, options?.keepInputs === true);
    // Only worker runs refine the line; a model judged cheap keeps the one measured off the main thread.
    this.cost.observe(rows, result.inferNs);
    return result;
  }

  private runMain(feeds: WorkerFeed[], outputs: string[]): Promise<RunResult> {
    this.placements.main++;
    return this.main!.run(feeds, outputs);
  }

  private runWorker(feeds: WorkerFeed[], outputs: string[], keepInputs: boolean): Promise<RunResult> {
    this.placements.worker++;
    let best = this.workers[0]!;
    for (let i = 1; i < this.workers.length; i++) {
      if (this.workers[i]!.busy < best.busy) best = this.workers[i]!;
    }
    return best.run(feeds, outputs, keepInputs);
  }

  /**
   * Runs the inputs once on every instance (each worker thread and the main-thread session), so
   * none meets its first run with a request; the timings do not count towards placement.
   */
  async warmUp(inputs: Tensor[], outputs: string[]): Promise<void> {
    const feeds = (): WorkerFeed[] =>
      inputs.map((t) => ({
        name: t.name,
        type: toOrtType(t.datatype),
        dims: t.shape,
        data: t.data as TensorData,
      }));
    for (const w of this.workers) await w.run(feeds(), outputs, true);
    if (this.main) await this.main.run(feeds(), outputs);
  }

  async unload(): Promise<void> {
    this.unloading = true;
    await Promise.all([...this.workers.map((w) => w.close()), this.main?.release()]);
  }
}
