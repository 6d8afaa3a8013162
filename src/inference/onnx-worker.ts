/**
 * Worker thread that owns one ONNX Runtime session. `session.run` blocks the thread it runs on,
 * so each model instance lives in a worker of its own and the event loop stays free for I/O.
 * Messages: `load` once, then `run` many times, then `close`. Tensors move as transferables.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import type { WorkerInit, WorkerReply, WorkerRequest } from './onnx-protocol.js';
import { createSession, runSession, transferables } from './onnx-session.js';

const port = parentPort!;
let session: InferenceSession | undefined;

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

async function run(req: Extract<WorkerRequest, { kind: 'run' }>): Promise<void> {
  try {
    const { outputs, inferNs } = await runSession(session!, req.feeds, req.outputs);
    reply({ kind: 'result', id: req.id, outputs, inferNs }, transferables(outputs));
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

createSession(workerData as WorkerInit).then(
  (loaded) => {
    session = loaded.session;
    reply({ kind: 'loaded', inputs: loaded.inputs, outputs: loaded.outputs });
  },
  (err) => reply({ kind: 'load-failed', message: err instanceof Error ? err.message : String(err) }),
);
