/**
 * `slipway serve --workers N`: this process forks N serving processes that share the REST and
 * gRPC ports (Node's cluster module hands each new connection to one of them in turn), relays
 * what they ask of each other, starts another when one dies, and drains them all on SIGTERM.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { removeUploadedModel } from '../inference/index.js';
import {
  isSlipwayMessage,
  type PeerOp,
  type PeerResult,
  type PrimaryMessage,
  type ReadyReport,
  type RepositoryOp,
  type WorkerMessage,
} from './protocol.js';

export interface SupervisorOptions {
  /** Serving processes to run; they inherit this process's Node flags. */
  workers: number;
  /** How long a drain may take before the processes still running are killed. */
  graceMs: number;
  logger: Logger;
  /** Once every process serves, with the first one's report. */
  onReady(report: ReadyReport): void;
}

/** A process that died more often than this within RESTART_WINDOW_MS is not started again. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

interface PendingAsk {
  origin: Worker;
  askId: number;
  waiting: Set<number>;
  results: PeerResult[];
  /**
   * A load from uploaded files, journaled only once every peer loaded it: a failed one leaves the
   * processes on what they served, and its folder is gone, so a replacement must not repeat it.
   */
  journalOnSuccess?: RepositoryOp;
}

export interface Supervisor {
  /** Drains every process and resolves with the exit code this process should end with. */
  stop(reason: string): Promise<number>;
}

/** Resolves once every serving process serves; rejects if one exits before that. */
export function runSupervisor(o: SupervisorOptions): Promise<Supervisor> {
  const all = new Map<number, Worker>();
  const serving = new Map<number, Worker>();
  const asks = new Map<string, PendingAsk>();
  const restarts: number[] = [];
  /** What a replacement process repeats (see journalize). */
  const journal = new Map<string, RepositoryOp>();
  /** Changes to the journal so far, and their number when each process was forked. */
  let journalChanges = 0;
  const journalAtFork = new Map<number, number>();
  /**
   * Folders of uploaded model files: the process that wrote one removes it when done with it;
   * those of a process that died first are removed when the server stops.
   */
  const uploads = new Set<string>();
  let started = false;
  let stopping: Promise<number> | undefined;
  let failedExit = false;
  let firstReport: ReadyReport | undefined;
  let onStarted: ((s: Supervisor) => void) | undefined;
  let onFailed: ((e: Error) => void) | undefined;

  const send = (w: Worker, m: PrimaryMessage) => {
    if (!w.isConnected()) return false;
    try {
      w.send(m);
      return true;
    } catch {
      return false;
    }
  };

  const finishAsk = (key: string, a: PendingAsk) => {
    asks.delete(key);
    if (a.journalOnSuccess && a.results.every((r) => r.ok) && journalize(journal, a.journalOnSuccess))
      journalChanges++;
    send(a.origin, { slipway: 'answers', id: a.askId, results: a.results });
  };

  const onMessage = (w: Worker, m: unknown) => {
    if (!isSlipwayMessage<WorkerMessage>(m)) return;
    if (m.slipway === 'replay?') {
      // What it repeats is the journal as of now; catch-up covers what changes until it serves.
      journalAtFork.set(w.id, journalChanges);
      send(w, { slipway: 'replay', ops: [...journal.values()] });
    } else if (m.slipway === 'ready') {
      serving.set(w.id, w);
      catchUp(w);
      const { slipway: _, ...report } = m;
      firstReport ??= report;
      if (!started && serving.size === o.workers) {
        started = true;
        o.onReady(firstReport);
        onStarted?.(supervisor);
      } else if (started) {
        o.logger.info({ worker: w.id, pid: w.process.pid }, 'serving process started');
      }
    } else if (m.slipway === 'ask') {
      const uploaded = m.op.kind === 'load' && m.op.upload !== undefined;
      if (!uploaded && journalize(journal, m.op)) journalChanges++;
      if (m.op.kind === 'load' && m.op.upload !== undefined) uploads.add(m.op.upload);
      // The supervisor's own log follows the serving processes' level.
      if (m.op.kind === 'log-level') o.logger.level = m.op.level;
      const key = `${w.id}:${m.id}`;
      const peers = [...serving.values()].filter((x) => x !== w);
      const a: PendingAsk = { origin: w, askId: m.id, waiting: new Set(), results: [] };
      if (uploaded) a.journalOnSuccess = m.op as RepositoryOp;
      for (const p of peers) if (send(p, { slipway: 'peer', id: key, op: m.op })) a.waiting.add(p.id);
      asks.set(key, a);
      if (a.waiting.size === 0) finishAsk(key, a);
    } else if (m.slipway === 'answer') {
      if (m.id.startsWith('catch-up:')) {
        if (!m.result.ok) {
          o.logger.warn(
            { worker: w.id, error: m.result.error },
            'repeating a change in a replacement process failed',
          );
        }
        return;
      }
      const a = asks.get(m.id);
      if (!a?.waiting.delete(w.id)) return;
      a.results.push(m.result);
      if (a.waiting.size === 0) finishAsk(m.id, a);
    }
  };

  const onExit = (w: Worker, code: number | null, signal: string | null) => {
    all.delete(w.id);
    serving.delete(w.id);
    // A process replaced earlier does not make a clean drain later a failure.
    if (code !== 0 && stopping) failedExit = true;
    // Asks waiting on it get its failure; asks it made are dropped.
    for (const [key, a] of asks) {
      if (a.origin === w) asks.delete(key);
      else if (a.waiting.delete(w.id)) {
        a.results.push({
          ok: false,
          worker: String(w.id),
          error: { code: 'SLIPWAY_ERR_SHUTTING_DOWN', message: 'the serving process exited' },
        });
        if (a.waiting.size === 0) finishAsk(key, a);
      }
    }
    if (stopping) return;
    if (!started) {
      failedExit = true;
      const err = new Error(
        `serving process ${w.id} exited (${signal ?? `code ${code}`}) before it served; see its error above`,
      );
      // The others are stopped before the failure is reported, so none outlives this process.
      void supervisor.stop('startup failed').then(() => onFailed?.(err));
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && now - restarts[0]! > RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length > MAX_RESTARTS) {
      o.logger.error(
        { worker: w.id, code, signal },
        `serving processes exited ${restarts.length} times within ${RESTART_WINDOW_MS / 1000} s; stopping`,
      );
      void supervisor.stop('restart limit').then((c) => process.exit(c || 1));
      return;
    }
    o.logger.warn(
      { worker: w.id, pid: w.process.pid, code, signal },
      'serving process exited; starting another',
    );
    fork();
  };

  /**
   * A process forked with the journal as it was, and changed since, gets the journal again now
   * that it serves (changes relayed while it started went only to the processes serving then):
   * every region dropped, then the regions and model changes as they stand.
   */
  const catchUp = (w: Worker) => {
    const at = journalAtFork.get(w.id);
    journalAtFork.delete(w.id);
    if (at === undefined || at === journalChanges) return;
    const ops: PeerOp[] = [{ kind: 'shm-unregister' }, ...journal.values()];
    for (const [i, op] of ops.entries()) send(w, { slipway: 'peer', id: `catch-up:${w.id}:${i}`, op });
  };

  const fork = () => {
    const w = cluster.fork();
    journalAtFork.set(w.id, journalChanges);
    all.set(w.id, w);
    w.on('message', (m) => onMessage(w, m));
    w.on('exit', (code, signal) => onExit(w, code, signal));
    return w;
  };

  const supervisor: Supervisor = {
    stop(reason: string) {
      stopping ??= new Promise<number>((resolve) => {
        o.logger.info({ reason, workers: all.size }, 'draining the serving processes');
        const done = () => {
          if (all.size > 0) return;
          clearTimeout(killer);
          void Promise.all([...uploads].map((root) => removeUploadedModel(root).catch(() => undefined))).then(
            () => resolve(failedExit ? 1 : 0),
          );
        };
        const killer = setTimeout(() => {
          for (const w of all.values()) w.process.kill('SIGKILL');
        }, o.graceMs + 15_000);
        killer.unref();
        cluster.on('exit', done);
        for (const w of all.values()) {
          if (!send(w, { slipway: 'shutdown' })) w.process.kill('SIGTERM');
        }
        done();
      });
      return stopping;
    },
  };

  return new Promise<Supervisor>((resolve, reject) => {
    onStarted = resolve;
    onFailed = reject;
    for (let i = 0; i < o.workers; i++) fork();
  });
}

/**
 * Keeps what a replacement process must repeat: the last load or unload of each model, the
 * shared memory regions registered now (an unregister drops them rather than being repeated) and
 * the last log level set.
 * Returns whether the operation changed the journal (statistics and metrics do not).
 */
export function journalize(journal: Map<string, RepositoryOp>, op: PeerOp): boolean {
  if (op.kind === 'load' || op.kind === 'unload') journal.set(`model:${op.model}`, op);
  else if (op.kind === 'shm-register') journal.set(`shm:${op.region.name}`, op);
  else if (op.kind === 'log-level') journal.set('log', op);
  else if (op.kind === 'trace-settings') journal.set(`trace:${op.model ?? ''}`, op);
  else if (op.kind === 'shm-unregister') {
    for (const key of [...journal.keys()]) {
      if (key === `shm:${op.name}` || (op.name === undefined && key.startsWith('shm:'))) journal.delete(key);
    }
  } else return false;
  return true;
}
