/**
 * One registry of errors. Every error the product raises is a `SlipwayError` with a stable
 * code that maps to one HTTP status and one gRPC status. Codes are never reused; each one is
 * documented in docs/ERRORS.md (a test checks it).
 *
 * @example
 *   throw new SlipwayError('SLIPWAY_ERR_INPUT_SHAPE', `input 'x': expected shape [-1,4], got [2,3]`);
 */

/** gRPC status codes (the subset we use), numbered as in grpc/status.h. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

interface ErrorSpec {
  readonly http: number;
  readonly grpc: number;
  readonly summary: string;
}

export const ERROR_CODES = {
  SLIPWAY_ERR_BAD_REQUEST: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: 'The request body or a parameter is malformed.',
  },
  SLIPWAY_ERR_INPUT_MISSING: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: 'A model input was not supplied, or an unknown input was supplied.',
  },
  SLIPWAY_ERR_INPUT_DATATYPE: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: "An input's datatype is unknown or differs from the model's.",
  },
  SLIPWAY_ERR_INPUT_SHAPE: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: "An input's shape does not match the model's, or its data has the wrong number of elements.",
  },
  SLIPWAY_ERR_INPUT_DATA: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: "An input's data holds a value that its datatype cannot represent.",
  },
  SLIPWAY_ERR_OUTPUT_UNKNOWN: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: 'A requested output does not exist in the model.',
  },
  SLIPWAY_ERR_BINARY_DATA: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: 'The binary tensor extension was used inconsistently (sizes, header length, FP16 in JSON).',
  },
  SLIPWAY_ERR_RECORD_FIELD: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: 'A record in a records-API request lacks a feature or holds a value of the wrong type.',
  },
  SLIPWAY_ERR_MODEL_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.NOT_FOUND,
    summary: 'No model of that name is in the repository.',
  },
  SLIPWAY_ERR_VERSION_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.NOT_FOUND,
    summary: 'The model exists but not that version (or the version policy does not serve it).',
  },
  SLIPWAY_ERR_ROUTE_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.UNIMPLEMENTED,
    summary: 'No endpoint answers that method and path.',
  },
  SLIPWAY_ERR_MODEL_UNAVAILABLE: {
    http: 503,
    grpc: GrpcStatus.UNAVAILABLE,
    summary: 'The model is loading, unloading or failed to load; the reason is in the repository index.',
  },
  SLIPWAY_ERR_QUEUE_FULL: {
    http: 429,
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
    summary: "The model's queue is full; retry after the number of seconds in Retry-After.",
  },
  SLIPWAY_ERR_SHUTTING_DOWN: {
    http: 503,
    grpc: GrpcStatus.UNAVAILABLE,
    summary: 'The server is draining for shutdown and takes no new requests.',
  },
  SLIPWAY_ERR_TIMEOUT: {
    http: 504,
    grpc: GrpcStatus.DEADLINE_EXCEEDED,
    summary: 'The request did not complete within its timeout.',
  },
  SLIPWAY_ERR_CANCELLED: {
    http: 499,
    grpc: GrpcStatus.CANCELLED,
    summary: 'The client went away before the request completed.',
  },
  SLIPWAY_ERR_INFERENCE_FAILED: {
    http: 500,
    grpc: GrpcStatus.INTERNAL,
    summary: 'ONNX Runtime failed while running the model; the message carries its reason.',
  },
  SLIPWAY_ERR_MODEL_LOAD: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: 'A model could not be loaded (missing or corrupt file, bad config.json).',
  },
  SLIPWAY_ERR_CONFIG: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    summary: 'A setting (file, environment variable or flag) is invalid.',
  },
  SLIPWAY_ERR_PAYLOAD_TOO_LARGE: {
    http: 413,
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
    summary: 'The request body is larger than the configured limit.',
  },
  SLIPWAY_ERR_INTERNAL: {
    http: 500,
    grpc: GrpcStatus.INTERNAL,
    summary: 'An unexpected fault inside the server; it is logged with the request id.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class SlipwayError extends Error {
  readonly code: ErrorCode;
  /** Seconds a client should wait before retrying (429/503), if known. */
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SlipwayError';
    this.code = code;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  get grpcStatus(): number {
    return ERROR_CODES[this.code].grpc;
  }
}

/** Wraps anything thrown into a SlipwayError, keeping known errors as they are. */
export function toSlipwayError(err: unknown): SlipwayError {
  if (err instanceof SlipwayError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SlipwayError('SLIPWAY_ERR_INTERNAL', message, { cause: err });
}
