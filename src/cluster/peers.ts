/**
 * A serving process's link to the others, through the supervisor: ask every peer to run an
 * operation and collect their results, and answer the peers' own asks.
 */
import { ERROR_CODES, type ErrorCode, SlipwayError, toSlipwayError } from '../errors/index.js';
import {
  isSlipwayMessage,
  type PeerOp,
  type PeerResult,
  type PrimaryMessage,
  type ReadyReport,
  type RepositoryOp,
  type WorkerMessage,
} from './protocol.js';

export interface Peers {
  /** This process's id among the serving processes (the `worker` label in /metrics). */
  readonly worker: string;
  /** Runs `op` on every other serving process; one result per process that was serving. */
  ask(op: PeerOp): Promise<PeerResult[]>;
}

/** Throws the first failed result as the error the peer raised. */
export function throwFirstFailure(results: readonly PeerResult[]): void {
  for (const r of results) {
    if (!r.ok) {
      const code = (r.error.code in ERROR_CODES ? r.error.code : 'SLIPWAY_ERR_INTERNAL') as ErrorCode;
      throw new SlipwayError(code, `serving process ${r.worker}: ${r.error.message}`);
    }
  }
}

/** Peers over Node's cluster IPC channel (`process.send`), in a forked serving process. */
export class ProcessPeers implements Peers {
  private nextId = 1;
  private readonly pending = new Map<number, (results: PeerResult[]) => void>();
  private handler?: (op: PeerOp) => Promise<unknown>;
  private shutdown?: () => void;
  private shutdownAsked = false;
  private replayed?: (ops: RepositoryOp[]) => void;

  constructor(readonly worker: string) {
    process.on('message', (m: unknown) => {
      if (!isSlipwayMessage<PrimaryMessage>(m)) return;
      if (m.slipway === 'replay') {
        this.replayed?.(m.ops);
        this.replayed = undefined;
      } else if (m.slipway === 'answers') {
        const done = this.pending.get(m.id);
        this.pending.delete(m.id);
        done?.(m.results);
      } else if (m.slipway === 'peer') void this.answer(m.id, m.op);
      else if (m.slipway === 'shutdown') {
        this.shutdownAsked = true;
        this.shutdown?.();
      }
    });
  }

  ask(op: PeerOp): Promise<PeerResult[]> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      if (!this.send({ slipway: 'ask', id, op })) {
        this.pending.delete(id);
        resolve([]); // the supervisor is gone: there is nobody else to ask
      }
    });
  }

  /**
   * What this process must repeat before it listens, from the supervisor: nothing for a process
   * forked at start, the others' loads, unloads and settings for a replacement.
   */
  replay(): Promise<RepositoryOp[]> {
    return new Promise((resolve) => {
      this.replayed = resolve;
      if (!this.send({ slipway: 'replay?' })) {
        this.replayed = undefined;
        resolve([]);
      }
    });
  }

  /** Runs the operations other processes ask for. */
  serve(handler: (op: PeerOp) => Promise<unknown>): void {
    this.handler = handler;
  }

  /** Called when the supervisor asks this process to drain and exit. */
  onShutdown(fn: () => void): void {
    this.shutdown = fn;
    if (this.shutdownAsked) fn();
  }

  /** Tells the supervisor this process serves. */
  ready(message: ReadyReport): void {
    this.send({ slipway: 'ready', ...message });
  }

  private async answer(id: string, op: PeerOp): Promise<void> {
    let result: PeerResult;
    try {
      if (!this.handler)
        throw new SlipwayError('SLIPWAY_ERR_SHUTTING_DOWN', 'this serving process is not serving');
      result = { ok: true, worker: this.worker, value: (await this.handler(op)) ?? null };
    } catch (err) {
      const e = toSlipwayError(err);
      result = { ok: false, worker: this.worker, error: { code: e.code, message: e.message } };
    }
    this.send({ slipway: 'answer', id, result });
  }

  private send(m: WorkerMessage): boolean {
    if (!process.connected || !process.send) return false;
    try {
      process.send(m);
      return true;
    } catch {
      return false;
    }
  }
}
