/**
 * One ONNX Runtime session: created and run the same way in a worker thread (onnx-worker.ts) and
 * on the main thread (the pool's main-thread instance), so both give the same numbers.
 */
import * as ort from 'onnxruntime-node';
import type { WorkerFeed, WorkerInit, WorkerValueMetadata } from './onnx-protocol.js';

export interface LoadedSession {
  session: ort.InferenceSession;
  inputs: WorkerValueMetadata[];
  outputs: WorkerValueMetadata[];
}

export async function createSession(init: WorkerInit): Promise<LoadedSession> {
  const session = await ort.InferenceSession.create(init.path, {
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: init.interOpThreads,
    graphOptimizationLevel: init.graphOptimizationLevel,
    executionMode: 'sequential',
  });
  const describe = (m: ort.InferenceSession.ValueMetadata): WorkerValueMetadata =>
    m.isTensor
      ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] }
      : { name: m.name, isTensor: false };
  return {
    session,
    inputs: session.inputMetadata.map(describe),
    outputs: session.outputMetadata.map(describe),
  };
}

/** Runs the session; `inferNs` is the time inside ONNX Runtime's run call. */
export async function runSession(
  session: ort.InferenceSession,
  feeds: WorkerFeed[],
  outputs: string[],
): Promise<{ outputs: WorkerFeed[]; inferNs: number }> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const f of feeds)
    ortFeeds[f.name] = new ort.Tensor(f.type as 'float32', f.data as Float32Array, f.dims);
  const start = process.hrtime.bigint();
  const result = await session.run(ortFeeds, outputs);
  const inferNs = Number(process.hrtime.bigint() - start);
  const out: WorkerFeed[] = [];
  for (const name of outputs) {
    const t = result[name];
    if (!t) throw new Error(`the model produced no output '${name}'`);
    if (!(t instanceof ort.Tensor)) {
      throw new Error(`output '${name}' is not a tensor (sequence or map outputs are not served)`);
    }
    out.push({ name, type: t.type, dims: [...t.dims], data: t.data as WorkerFeed['data'] });
  }
  return { outputs: out, inferNs };
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
    if (Array.isArray(d)) continue;
    if (keep || d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength) {
      d = d.slice();
      f.data = d;
    }
    transfer.push(d.buffer as ArrayBuffer);
  }
  return transfer;
}
