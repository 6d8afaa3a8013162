/**
 * One ONNX Runtime session: created and run the same way in a worker thread (onnx-worker.ts) and
 * on the main thread (the pool's main-thread instance), so both give the same numbers.
 *
 * It holds onnxruntime-node's native session (`binding.InferenceSession`, the synchronous object
 * the package's own `InferenceSession` wraps) and runs it directly. The package's `run()` defers
 * each call to a `setImmediate`: called from the batcher's dispatch, which already runs in the
 * event loop's check phase, that pushed every main-thread run, and its answer, into the next turn
 * of the loop. Creating a session passes the same options the package's `create()` would.
 */
import * as ort from 'onnxruntime-node';
import { type Binding, binding, initOrt } from 'onnxruntime-node/dist/binding.js';
import type { WorkerFeed, WorkerInit, WorkerValueMetadata } from './onnx-protocol.js';

/** ONNX Runtime's element type numbers (ONNX TensorProto.DataType) as its type names. */
const ORT_TYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  21: 'uint4',
  22: 'int4',
};

const NO_RUN_OPTIONS = {};

export class OnnxSession {
  private native: Binding.InferenceSession | undefined;
  readonly outputNames: readonly string[];

  constructor(init: WorkerInit) {
    initOrt();
    const native = new binding.InferenceSession();
    native.loadModel(init.path, {
      intraOpNumThreads: init.intraOpThreads,
      interOpNumThreads: init.interOpThreads,
      graphOptimizationLevel: init.graphOptimizationLevel,
      executionMode: 'sequential',
    });
    this.native = native;
    this.outputNames = native.outputMetadata.map((m) => m.name);
  }

  get inputs(): WorkerValueMetadata[] {
    return this.live().inputMetadata.map(describe);
  }

  get outputs(): WorkerValueMetadata[] {
    return this.live().outputMetadata.map(describe);
  }

  /** Runs the model now, on this thread; `inferNs` is the time inside ONNX Runtime's run call. */
  run(feeds: WorkerFeed[], outputs: string[]): { outputs: WorkerFeed[]; inferNs: number } {
    const native = this.live();
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const f of feeds)
      ortFeeds[f.name] = new ort.Tensor(f.type as 'float32', f.data as Float32Array, f.dims);
    const fetches: Record<string, null> = {};
    for (const name of outputs) {
      if (!this.outputNames.includes(name)) throw new Error(`the model has no output '${name}'`);
      fetches[name] = null;
    }
    const start = process.hrtime.bigint();
    const result = native.run(ortFeeds, fetches, NO_RUN_OPTIONS);
    const inferNs = Number(process.hrtime.bigint() - start);
    const out: WorkerFeed[] = [];
    for (const name of outputs) {
      const t = result[name] as ort.Tensor | undefined;
      if (!t) throw new Error(`the model produced no output '${name}'`);
      if (t.type === undefined || t.dims === undefined || t.data === undefined) {
        throw new Error(`output '${name}' is not a tensor (sequence or map outputs are not served)`);
      }
      out.push({ name, type: t.type, dims: [...t.dims], data: t.data as WorkerFeed['data'] });
    }
    return { outputs: out, inferNs };
  }

  /** Frees the native session; later runs throw. */
  release(): void {
    const native = this.native;
    this.native = undefined;
    native?.dispose();
  }

  private live(): Binding.InferenceSession {
    if (!this.native) throw new Error('the session is released');
    return this.native;
  }
}

function describe(m: Binding.ValueMetadata): WorkerValueMetadata {
  if (!m.isTensor) return { name: m.name, isTensor: false };
  const type = ORT_TYPES[m.type];
  if (type === undefined) throw new Error(`${m.name} has an element type ONNX Runtime names ${m.type}`);
  return {
    name: m.name,
    isTensor: true,
    type,
    shape: m.shape.map((d, i) => (d >= 0 ? d : (m.symbolicDimensions[i] ?? -1))),
  };
}

export interface LoadedSession {
  session: OnnxSession;
  inputs: WorkerValueMetadata[];
  outputs: WorkerValueMetadata[];
}

export async function createSession(init: WorkerInit): Promise<LoadedSession> {
  const session = new OnnxSession(init);
  return { session, inputs: session.inputs, outputs: session.outputs };
}

/**
 * Prepares tensors to cross to another thread and returns the buffers to transfer. A tensor that
 * owns its whole buffer is handed over as it is (unless `keep`: the sender reads it afterwards);
 * a view into a larger buffer (a request body, a gRPC message) is first copied to a compact array,
 * since structured cloning a view would copy the whole buffer behind it.
 */
export function transferables(feeds: WorkerFeed[], keep = false): ArrayBuffer[] {
  const transfer: ArrayBuffer[] = [];
  for (const f of feeds) {
    let d = f.data;
    // An empty buffer needs no transfer, and a detached one (handed over before) must not be
    // listed: postMessage then drops the whole message, and the run would never be answered.
    if (Array.isArray(d) || d.buffer.byteLength === 0) continue;
    if (keep || d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength) {
      d = d.slice();
      f.data = d;
    }
    transfer.push(d.buffer as ArrayBuffer);
  }
  return transfer;
}
