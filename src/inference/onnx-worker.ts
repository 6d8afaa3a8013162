/**
 * Worker thread that owns one ONNX Runtime session. `session.run` blocks the thread it runs on,
 * so each model instance lives in a worker of its own and the event loop stays free for I/O.
 * Messages: `load` once, then `run` many times, then `close`. Tensors move as transferables.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type {
  WorkerFeed,
  WorkerInit,
  WorkerReply,
  WorkerRequest,
  WorkerValueMetadata,
} from './onnx-protocol.js';

const port = parentPort!;
const init = workerData as WorkerInit;
let session: ort.InferenceSession | undefined;

async function load(): Promise<void> {
  try {
    session = await ort.InferenceSession.create(init.path, {
      intraOpNumThreads: init.intraOpThreads,
      interOpNumThreads: init.interOpThreads,
      graphOptimizationLevel: init.graphOptimizationLevel,
      executionMode: 'sequential',
    });
    const describe = (m: ort.InferenceSession.ValueMetadata): WorkerValueMetadata =>
      m.isTensor
        ? { name: m.name, isTensor: true, type: m.type, shape: [...m.shape] }
        : { name: m.name, isTensor: false };
    reply({
      kind: 'loaded',
      inputs: session.inputMetadata.map(describe),
      outputs: session.outputMetadata.map(describe),
    });
  } catch (err) {
    reply({ kind: 'load-failed', message: err instanceof Error ? err.message : String(err) });
  }
}

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

async function run(req: Extract<WorkerRequest, { kind: 'run' }>): Promise<void> {
  const s = session!;
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const f of req.feeds)
      feeds[f.name] = new ort.Tensor(f.type as 'float32', f.data as Float32Array, f.dims);
    const start = process.hrtime.bigint();
    const result = await s.run(feeds, req.outputs);
    const inferNs = Number(process.hrtime.bigint() - start);
    const outputs: WorkerFeed[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const name of req.outputs) {
      const t = result[name];
      if (!t) throw new Error(`the model produced no output '${name}'`);
      if (!(t instanceof ort.Tensor))
        throw new Error(`output '${name}' is not a tensor (sequence or map outputs are not served)`);
      const data = t.data as WorkerFeed['data'];
      outputs.push({ name, type: t.type, dims: [...t.dims], data });
      if (!Array.isArray(data) && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
        transfer.push(data.buffer as ArrayBuffer);
      }
    }
    reply({ kind: 'result', id: req.id, outputs, inferNs }, transfer);
  } catch (err) {
    reply({ kind: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
  }
}

port.on('message', (msg: WorkerRequest) => {
  if (msg.kind === 'run') void run(msg);
  else if (msg.kind === 'close') {
    const s = session;
    session = undefined;
    void (s ? s.release() : Promise.resolve()).finally(() => {
      reply({ kind: 'closed' });
      port.close();
    });
  }
});

void load();
