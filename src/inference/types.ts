/**
 * Protocol-level types of the Open Inference Protocol (KServe V2), independent of transport.
 * REST (JSON and binary) and gRPC convert to and from these; the data plane only sees these.
 */

export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;

export type Datatype = (typeof DATATYPES)[number];

/** Parameter values as the protocol allows them (gRPC's int64/uint64 arrive as numbers). */
export type ParameterValue = string | number | boolean;
export type Parameters = Record<string, ParameterValue>;

/**
 * Tensor contents, always flat and row-major. Numeric types use the typed array ONNX Runtime
 * takes directly (BOOL and UINT8 as Uint8Array, FP16 as raw Uint16Array bits, INT64/UINT64 as
 * BigInt arrays); BYTES is an array of UTF-8 strings, as ONNX Runtime's string tensors are.
 */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array
  | string[];

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
  parameters?: Parameters;
}

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferRequest {
  id?: string;
  parameters?: Parameters;
  inputs: Tensor[];
  /** Absent or empty means every output of the model. */
  outputs?: RequestedOutput[];
}

export interface InferResponse {
  modelName: string;
  modelVersion: string;
  id?: string;
  parameters?: Parameters;
  outputs: Tensor[];
}

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  /** -1 marks a dynamic dimension. */
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: 'onnx_onnxv1';
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export type ModelState = 'LOADING' | 'READY' | 'UNLOADING' | 'UNAVAILABLE';

export interface RepositoryEntry {
  name: string;
  version?: string;
  state: ModelState;
  reason: string;
}

/** Which transport carried a request; a label on metrics and in logs. */
export type Protocol = 'rest' | 'grpc' | 'records';

export interface InferOptions {
  protocol: Protocol;
  /** Set when the client goes away; the request is dropped from the queue if still waiting. */
  cancel?: Cancellation;
  /** Per-request timeout in milliseconds (from the `timeout` parameter or a header). */
  timeoutMs?: number;
  /** The transport's headers (lower-case names), for segment keys read from headers. */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * When the request crossed the transport, for a traced request: transports fill it only while
   * tracing is on (`DataPlane.tracing`), and the send times after `infer` returns.
   */
  transport?: TransportTimes;
}

/**
 * A request's way through its transport, in `performance.now()` milliseconds: Triton's
 * `HTTP_RECV_*`/`HTTP_SEND_*` and `GRPC_WAITREAD_*`/`GRPC_SEND_*` trace timestamps.
 */
export interface TransportTimes {
  protocol: 'HTTP' | 'GRPC';
  /** HTTP: the handler has the request, its headers parsed. gRPC: unknown (grpc-js hands over whole messages). */
  recvStart?: number;
  /** HTTP: the body is read. gRPC: the message is decoded and handed to the handler. */
  recvEnd: number;
  /**
   * The answer is handed to the transport, and the transport has taken it: HTTP has written it to
   * the socket; grpc-js has queued it on the HTTP/2 stream, which sends it a moment later.
   */
  sendStart?: number;
  sendEnd?: number;
}

/**
 * A client's cancellation, as a plain object rather than an AbortSignal: EventTarget costs a few
 * microseconds per request on the hot path, this costs nothing until it fires.
 *
 * @example
 *   const cancel = new Cancellation();
 *   res.once('close', () => cancel.fire());
 */
export class Cancellation {
  cancelled = false;
  /** Set by whoever holds the request (the batcher); called once, on fire. */
  onCancel?: () => void;

  fire(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.onCancel?.();
  }
}
