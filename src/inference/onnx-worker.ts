/**
 * Worker thread that owns one ONNX Runtime session. `session.run` blocks the thread it runs on,
 * so each model instance lives in a worker of its own and the event loop stays free for I/O.
 * Messages: `load` once, then `run` many times, then `close`. Tensors move as transferables.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit, WorkerReply, WorkerRequest } from './onnx-protocol.js';
import { createSession, type OnnxSession, transferables } from './onnx-session.js';

const port = parentPort!;
let session: OnnxSession | undefined;

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function run(req: Extract<WorkerRequest, { kind: 'run' }>): void {
  try {
    const { outputs, inferNs } = session!.run(req.feeds, req.outputs);
    reply({ kind: 'result', id: req.id, outputs, inferNs }, transferables(outputs));
  } catch (err) {
    reply({ kind: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) });
  }
}

port.on('message', (msg: WorkerRequest) => {
  if (msg.kind === 'run') run(msg);
  else if (msg.kind === 'close') {
    const s = session;
    session = undefined;
    try {
      s?.release();
    } finally {
      reply({ kind: 'closed' });
      port.close();
    }
  }
});

createSession(workerData as WorkerInit).then(
  (loaded) => {
    session = loaded.session;
    reply({ kind: 'loaded', inputs: loaded.inputs, outputs: loaded.outputs });
  },
  (err) => reply({ kind: 'load-failed', message: err instanceof Error ? err.message : String(err) }),
);
