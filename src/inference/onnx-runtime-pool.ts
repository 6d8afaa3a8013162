import { Worker } from 'node:worker_threads';
import { SlipwayError } from '../errors/index.js';
import { fromOrtType, toOrtType } from './datatypes.js';
import type { ModelConfig } from './model-config.js';
import type { ModelRuntime, RunResult, RuntimeSignature } from './model-runtime.js';
import type { WorkerFeed, WorkerInit, WorkerReply, WorkerValueMetadata } from './onnx-protocol.js';
import type { Tensor, TensorData, TensorMetadata } from './types.js';

const WORKER_URL = new URL('./onnx-worker.js', import.meta.url);

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
  names: string[];
}

class OnnxWorker {
  busy = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed?: () => void;

  private constructor(readonly worker: Worker) {
    worker.on('message', (msg: WorkerReply) => this.onMessage(msg));
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => {
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

  run(feeds: WorkerFeed[], outputs: string[]): Promise<RunResult> {
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    for (const f of feeds) {
      const d = f.data;
      // Only hand over buffers the tensor owns whole; a view into a shared buffer is copied.
      if (!Array.isArray(d) && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength) {
        transfer.push(d.buffer as ArrayBuffer);
      }
    }
    this.busy++;
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, names: outputs });
      this.worker.postMessage({ kind: 'run', id, feeds, outputs }, transfer);
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
      const outputs: Tensor[] = [];
      for (const o of msg.outputs) {
        const datatype = fromOrtType(o.type);
        if (!datatype) {
          p.reject(
            new SlipwayError(
              'SLIPWAY_ERR_INFERENCE_FAILED',
              `output '${o.name}' has type ${o.type}, which the protocol cannot carry`,
            ),
          );
          return;
        }
        outputs.push({ name: o.name, datatype, shape: o.dims, data: o.data });
      }
      p.resolve({ outputs, inferNs: msg.inferNs });
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
    return new Promise((resolve) => {
      this.closed = resolve;
      this.worker.postMessage({ kind: 'close' });
      // A worker stuck in a long run is terminated after a grace period.
      setTimeout(() => void this.worker.terminate(), 10_000).unref();
    });
  }
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

/**
 * ONNX Runtime sessions in `instanceCount` worker threads. A run goes to the least busy worker,
 * so two instances keep two cores busy while the event loop only moves buffers.
 */
export class OnnxRuntimePool implements ModelRuntime {
  readonly capacity: number;
  readonly batchable: boolean;
  private unloading = false;

  private constructor(
    private readonly workers: OnnxWorker[],
    readonly signature: RuntimeSignature,
  ) {
    this.capacity = workers.length;
    // Stacking requests needs a dynamic first dimension on every input and output.
    const dynamicFirst = (t: TensorMetadata) => t.shape.length > 0 && t.shape[0] === -1;
    this.batchable = signature.inputs.every(dynamicFirst) && signature.outputs.every(dynamicFirst);
  }

  static async create(path: string, config: ModelConfig): Promise<OnnxRuntimePool> {
    const init: WorkerInit = {
      path,
      intraOpThreads: config.intraOpThreads,
      interOpThreads: config.interOpThreads,
      graphOptimizationLevel: config.graphOptimizationLevel,
    };
    const started = await Promise.allSettled(
      Array.from({ length: config.instanceCount }, () => OnnxWorker.start(init)),
    );
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    try {
      if (failed)
        throw new SlipwayError(
          'SLIPWAY_ERR_MODEL_LOAD',
          `cannot load ${path}: ${(failed.reason as Error).message}`,
        );
      const first = ok[0]!;
      const signature = {
        inputs: toMetadata(first.inputs, 'input'),
        outputs: toMetadata(first.outputs, 'output'),
      };
      return new OnnxRuntimePool(
        ok.map((s) => s.worker),
        signature,
      );
    } catch (err) {
      await Promise.all(ok.map((s) => s.worker.close()));
      throw err;
    }
  }

  run(inputs: Tensor[], outputs: string[]): Promise<RunResult> {
    if (this.unloading)
      return Promise.reject(new SlipwayError('SLIPWAY_ERR_MODEL_UNAVAILABLE', 'the model is unloading'));
    let best = this.workers[0]!;
    for (let i = 1; i < this.workers.length; i++)
      if (this.workers[i]!.busy < best.busy) best = this.workers[i]!;
    const feeds: WorkerFeed[] = inputs.map((t) => ({
      name: t.name,
      type: toOrtType(t.datatype),
      dims: t.shape,
      data: t.data as TensorData,
    }));
    return best.run(feeds, outputs);
  }

  async unload(): Promise<void> {
    this.unloading = true;
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
