import * as grpc from '@grpc/grpc-js';
import { GrpcStatus, SlipwayError, toSlipwayError } from '../../errors/index.js';
import {
  type Cancellation,
  type DataPlane,
  type TransportTimes,
  writeSharedOutputs,
} from '../../inference/index.js';
import { decodeInferRequest, encodeInferResponse, type ModelInferRequestMsg } from './grpc-codec.js';

/** The slice of a pino logger the gRPC server uses. */
export interface GrpcLogger {
  error(obj: object, msg?: string): void;
}

/**
 * Marks a request message that could not be decoded: the server's deserializers return
 * `{ [UNDECODABLE]: reason }` instead of throwing, so the handler answers the client's mistake
 * with INVALID_ARGUMENT rather than grpc-js's INTERNAL.
 */
export const UNDECODABLE = Symbol('undecodable');

/** The error for a message marked UNDECODABLE; undefined for a decoded one. */
export function undecodableError(message: unknown): SlipwayError | undefined {
  const reason = (message as { [UNDECODABLE]?: string } | undefined)?.[UNDECODABLE];
  if (reason === undefined) return undefined;
  return new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `the request message cannot be decoded: ${reason}`);
}

/** SlipwayError → its gRPC status and message (code in `slipway-error-code` metadata); else INTERNAL. */
export function toServiceError(
  err: unknown,
  method: string,
  logger: GrpcLogger | undefined,
): Partial<grpc.StatusObject> {
  const e = toSlipwayError(err);
  if (e.grpcStatus === GrpcStatus.INTERNAL) logger?.error({ err, method }, 'gRPC call failed');
  const metadata = new grpc.Metadata();
  metadata.set('slipway-error-code', e.code);
  const retry = e.retryAfter;
  if (retry !== undefined) metadata.set('retry-after', String(retry));
  return { code: e.grpcStatus, details: e.message, metadata };
}

/** A call's `authorization` metadata as text (undefined when absent). */
export function authorizationOf(call: { metadata: grpc.Metadata }): string | undefined {
  const header = call.metadata.get('authorization')[0];
  return typeof header === 'string' ? header : header?.toString('utf8');
}

/**
 * A unary call whose request is traced carries its transport times, so the answer's send is
 * stamped where the answer is handed to grpc-js.
 */
export interface TracedCall {
  transport?: TransportTimes;
}

/** Transport times for a gRPC request handed over now, when tracing is on. */
export function grpcTransport(plane: DataPlane): TransportTimes | undefined {
  return plane.tracing ? { protocol: 'GRPC', recvEnd: performance.now() } : undefined;
}

/** Milliseconds left before a call's deadline; undefined when it has none. */
export function untilDeadline(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/**
 * One ModelInferRequest, unary or on a stream: decoded, run by the data plane within the
 * earlier of its `timeout` parameter and the call's deadline, and encoded (raw output contents
 * when the request sent raw inputs). A failure is counted by the data plane and rethrown.
 */
export async function inferOne(
  plane: DataPlane,
  msg: ModelInferRequestMsg,
  cancel: Cancellation,
  deadlineMs: number | undefined,
  transport?: TransportTimes,
): Promise<ReturnType<typeof encodeInferResponse>> {
  const start = performance.now();
  let answered = false;
  try {
    const regions = plane.sharedMemory.size > 0 ? plane.sharedMemory : undefined;
    const decoded = decodeInferRequest(msg, regions);
    const res = await plane.infer(decoded.model, decoded.version, decoded.request, {
      protocol: 'grpc',
      cancel,
      timeoutMs: earliest(decoded.timeoutMs, deadlineMs),
      transport,
    });
    // Counted as answered from here: an output too large for its shared memory is the client's
    // error without a second count.
    answered = true;
    if (regions) writeSharedOutputs(regions, decoded.request, res);
    return encodeInferResponse(res, decoded.request.id, decoded.raw);
  } catch (err) {
    if (!answered) plane.failed(msg.model_name ?? '', 'grpc', err, (performance.now() - start) / 1000);
    throw err;
  }
}
