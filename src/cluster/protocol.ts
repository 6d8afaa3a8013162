/**
 * Messages between `slipway serve --workers N`'s supervising process and its serving processes,
 * over Node's cluster IPC channel. Every message carries `slipway` (its kind) so other traffic on
 * the channel (Node's own) is left alone.
 */
import type { Parameters, SharedMemoryRegion, TraceScopeState } from '../inference/index.js';

/** What one serving process asks of every other one. */
export type PeerOp =
  /** `upload`: the folder the asking process wrote a load request's model files to. */
  | { kind: 'load'; model: string; parameters?: Parameters; upload?: string }
  | { kind: 'unload'; model: string }
  | { kind: 'shm-register'; region: SharedMemoryRegion }
  | { kind: 'shm-unregister'; name?: string }
  | { kind: 'log-level'; level: string }
  /** A trace settings scope (global when `model` is absent) as it now stands. */
  | { kind: 'trace-settings'; model?: string; state: TraceScopeState }
  | { kind: 'statistics'; model?: string; version?: string }
  | { kind: 'metrics' };

export type PeerResult =
  | { ok: true; worker: string; value: unknown }
  | { ok: false; worker: string; error: { code: string; message: string } };

/** What a serving process reports once it serves: where, and its models' states. */
export interface ReadyReport {
  url: string;
  grpcPort: number | null;
  ready: number;
  problems: string[];
}

/** A repository or shared memory change a replacement process repeats. */
export type RepositoryOp = Extract<
  PeerOp,
  { kind: 'load' | 'unload' | 'shm-register' | 'shm-unregister' | 'log-level' | 'trace-settings' }
>;

/** Serving process → supervisor. */
export type WorkerMessage =
  | ({ slipway: 'ready' } & ReadyReport)
  /** Asked once at start, before the process listens: what it must repeat (see `replay`). */
  | { slipway: 'replay?' }
  | { slipway: 'ask'; id: number; op: PeerOp }
  | { slipway: 'answer'; id: string; result: PeerResult };

/** Supervisor → serving process. */
export type PrimaryMessage =
  /**
   * The loads, unloads and settings relayed since start (the last one of each) and the shared
   * memory regions registered now, which a replacement applies before it listens. Sent over the
   * channel rather than in the environment, which caps one variable at 128 KiB.
   */
  | { slipway: 'replay'; ops: RepositoryOp[] }
  | { slipway: 'peer'; id: string; op: PeerOp }
  | { slipway: 'answers'; id: number; results: PeerResult[] }
  | { slipway: 'shutdown' };

export function isSlipwayMessage<T extends { slipway: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { slipway?: unknown }).slipway === 'string';
}
