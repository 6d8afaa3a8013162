/**
 * The prediction log's writer thread: its own database connection (SQLite in WAL mode lets a
 * second connection write the same file; PostgreSQL gets a small pool), so serializing batches,
 * writing them and folding window profiles never run on the serving thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Database } from '../store/index.js';
import type { MonitoringTables } from './monitoring-migrations.js';
import { PayloadSegments, segmentFolder } from './payload-segments.js';
import { commitSyncOf, PredictionWriter, type WriteMessage, type WriteReply } from './prediction-writer.js';
import { lowerThreadPriority } from './thread-priority.js';

export interface LogWorkerInit {
  databaseUrl: string;
  flushMs: number;
}

export type LogWorkerRequest =
  | { kind: 'write'; id: number; message: WriteMessage }
  | { kind: 'windows'; id: number }
  | { kind: 'close'; id: number };

export type LogWorkerReply =
  | ({ kind: 'written'; id: number } & WriteReply)
  | { kind: 'done'; id: number }
  | { kind: 'warn'; fields: Record<string, unknown>; message: string };

const port = parentPort!;
const init = workerData as LogWorkerInit;
// Writing is background work: at nice 10, when every core is busy, requests go first. A flush
// that waits only holds rows already answered, and the queue bound still applies.
lowerThreadPriority(10);
const warn = (fields: Record<string, unknown>, message: string) =>
  port.postMessage({ kind: 'warn', fields, message } satisfies LogWorkerReply);

const opened = Database.open({ url: init.databaseUrl, poolSize: 2 }).then((db) => {
  const folder = segmentFolder(db);
  const segments = folder ? new PayloadSegments(folder) : undefined;
  // The connection is this thread's alone, so batches handed over early may commit unsynced.
  const commitSync = commitSyncOf(db);
  return {
    db,
    segments,
    writer: new PredictionWriter(db.as<MonitoringTables>(), {
      flushMs: init.flushMs,
      warn,
      now: Date.now,
      ...(segments ? { segments } : {}),
      ...(commitSync ? { commitSync } : {}),
    }),
  };
});

async function handle(req: LogWorkerRequest): Promise<LogWorkerReply> {
  let store: Awaited<typeof opened>;
  try {
    store = await opened;
  } catch (err) {
    warn({ err: (err as Error).message }, 'prediction log database cannot be opened');
    return req.kind === 'write'
      ? { kind: 'written', id: req.id, entries: 0, rows: 0, failed: true }
      : { kind: 'done', id: req.id };
  }
  if (req.kind === 'write')
    return { kind: 'written', id: req.id, ...(await store.writer.write(req.message)) };
  await store.writer.writeWindows(true);
  if (req.kind === 'close') {
    store.segments?.close();
    await store.db.close();
  }
  return { kind: 'done', id: req.id };
}

// One request at a time, in order: a flush's reply means everything sent before it is stored.
let chain: Promise<void> = Promise.resolve();
port.on('message', (req: LogWorkerRequest) => {
  chain = chain.then(async () => {
    let reply: LogWorkerReply;
    try {
      reply = await handle(req);
    } catch (err) {
      warn({ err: (err as Error).message }, 'prediction log writer failed');
      reply =
        req.kind === 'write'
          ? { kind: 'written', id: req.id, entries: 0, rows: 0, failed: true }
          : { kind: 'done', id: req.id };
    }
    // The stored batches' buffers move back rather than being copied.
    port.postMessage(reply, reply.kind === 'written' ? (reply.spent ?? []) : []);
    if (req.kind === 'close') port.close();
  });
});
