/**
 * Messages between `slipway serve --workers N`'s supervising process and its serving processes,
 * over Node's cluster IPC channel. Every message carries `slipway` (its kind) so other traffic on
 * the channel (Node's own) is left alone.
 */
import type { Parameters } from '../inference/index.js';

/** What one serving process asks of every other one. */
export type PeerOp =
  | { kind: 'load'; model: string; parameters?: Parameters }
  | { kind: 'unload'; model: string }
  | { kind: 'statistics'; model?: string; version?: string }
  | { kind: 'metrics' };

export type PeerResult =
  | { ok: true; worker: string; value: unknown }
  | { ok: false; worker: string; error: { code: string; message: string } };

/** Serving process → supervisor. */
export type WorkerMessage =
  | { slipway: 'ready'; url: string; grpcPort: number | null; ready: number; problems: string[] }
  | { slipway: 'ask'; id: number; op: PeerOp }
  | { slipway: 'answer'; id: string; result: PeerResult };

/** Supervisor → serving process. */
export type PrimaryMessage =
  | { slipway: 'peer'; id: string; op: PeerOp }
  | { slipway: 'answers'; id: number; results: PeerResult[] }
  | { slipway: 'shutdown' };

export function isSlipwayMessage<T extends { slipway: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { slipway?: unknown }).slipway === 'string';
}
