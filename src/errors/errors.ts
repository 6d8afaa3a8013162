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
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

interface ErrorSpec {
  readonly http: number;
  readonly grpc: number;
  /** MLflow's `error_code`, for the MLflow-compatible routes. */
  readonly mlflow: string;
  readonly summary: string;
}

export const ERROR_CODES = {
  SLIPWAY_ERR_BAD_REQUEST: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'The request body or a parameter is malformed.',
  },
  SLIPWAY_ERR_INPUT_MISSING: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'A model input was not supplied, or an unknown input was supplied.',
  },
  SLIPWAY_ERR_INPUT_DATATYPE: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: "An input's datatype is unknown or differs from the model's.",
  },
  SLIPWAY_ERR_INPUT_SHAPE: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: "An input's shape does not match the model's, or its data has the wrong number of elements.",
  },
  SLIPWAY_ERR_INPUT_DATA: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: "An input's data holds a value that its datatype cannot represent.",
  },
  SLIPWAY_ERR_OUTPUT_UNKNOWN: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'A requested output does not exist in the model.',
  },
  SLIPWAY_ERR_BINARY_DATA: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'The binary tensor extension was used inconsistently (sizes, header length, FP16 in JSON).',
  },
  SLIPWAY_ERR_RECORD_FIELD: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'A record in a records-API request lacks a feature or holds a value of the wrong type.',
  },
  SLIPWAY_ERR_INVALID_ROWS: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: "Rows of a request break the model version's schema; `details` lists every problem.",
  },
  SLIPWAY_ERR_MODEL_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.NOT_FOUND,
    mlflow: 'RESOURCE_DOES_NOT_EXIST',
    summary: 'No model of that name is in the repository.',
  },
  SLIPWAY_ERR_VERSION_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.NOT_FOUND,
    mlflow: 'RESOURCE_DOES_NOT_EXIST',
    summary: 'The model exists but not that version (or the version policy does not serve it).',
  },
  SLIPWAY_ERR_ROUTE_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.UNIMPLEMENTED,
    mlflow: 'ENDPOINT_NOT_FOUND',
    summary: 'No endpoint answers that method and path.',
  },
  SLIPWAY_ERR_MODEL_UNAVAILABLE: {
    http: 503,
    grpc: GrpcStatus.UNAVAILABLE,
    mlflow: 'TEMPORARILY_UNAVAILABLE',
    summary: 'The model is loading, unloading or failed to load; the reason is in the repository index.',
  },
  SLIPWAY_ERR_QUEUE_FULL: {
    http: 429,
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
    mlflow: 'REQUEST_LIMIT_EXCEEDED',
    summary: "The model's queue is full; retry after the number of seconds in Retry-After.",
  },
  SLIPWAY_ERR_SHUTTING_DOWN: {
    http: 503,
    grpc: GrpcStatus.UNAVAILABLE,
    mlflow: 'TEMPORARILY_UNAVAILABLE',
    summary: 'The server is draining for shutdown and takes no new requests.',
  },
  SLIPWAY_ERR_TIMEOUT: {
    http: 504,
    grpc: GrpcStatus.DEADLINE_EXCEEDED,
    mlflow: 'DEADLINE_EXCEEDED',
    summary: 'The request did not complete within its timeout.',
  },
  SLIPWAY_ERR_CANCELLED: {
    http: 499,
    grpc: GrpcStatus.CANCELLED,
    mlflow: 'CANCELLED',
    summary: 'The client went away before the request completed.',
  },
  SLIPWAY_ERR_INFERENCE_FAILED: {
    http: 500,
    grpc: GrpcStatus.INTERNAL,
    mlflow: 'INTERNAL_ERROR',
    summary: 'ONNX Runtime failed while running the model; the message carries its reason.',
  },
  SLIPWAY_ERR_MODEL_LOAD: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'A model could not be loaded (missing or corrupt file, bad config.json).',
  },
  SLIPWAY_ERR_CONFIG: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'A setting (file, environment variable or flag) is invalid.',
  },
  SLIPWAY_ERR_PAYLOAD_TOO_LARGE: {
    http: 413,
    grpc: GrpcStatus.RESOURCE_EXHAUSTED,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary: 'The request body is larger than the configured limit.',
  },
  SLIPWAY_ERR_RESOURCE_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.NOT_FOUND,
    mlflow: 'RESOURCE_DOES_NOT_EXIST',
    summary:
      'A registered model, version, alias, experiment, run, logged model, dataset, token or shared memory region does not exist.',
  },
  SLIPWAY_ERR_ALREADY_EXISTS: {
    http: 409,
    grpc: GrpcStatus.ALREADY_EXISTS,
    mlflow: 'RESOURCE_ALREADY_EXISTS',
    summary:
      'A registered model, experiment, shared memory region or other named resource of that name already exists.',
  },
  SLIPWAY_ERR_INVALID_STATE: {
    http: 409,
    grpc: GrpcStatus.FAILED_PRECONDITION,
    mlflow: 'INVALID_STATE',
    summary: 'The resource is in a state that forbids the change (a deleted run, a finalized logged model).',
  },
  SLIPWAY_ERR_ARTIFACT_PATH: {
    http: 400,
    grpc: GrpcStatus.INVALID_ARGUMENT,
    mlflow: 'INVALID_PARAMETER_VALUE',
    summary:
      'An artifact path is absolute, holds `..` or `.` segments (plain or percent-encoded), a backslash or NUL.',
  },
  SLIPWAY_ERR_ARTIFACT_NOT_FOUND: {
    http: 404,
    grpc: GrpcStatus.NOT_FOUND,
    mlflow: 'RESOURCE_DOES_NOT_EXIST',
    summary: 'No artifact at that path, or the blob it refers to is missing from the artifact store.',
  },
  SLIPWAY_ERR_UNAUTHENTICATED: {
    http: 401,
    grpc: GrpcStatus.UNAUTHENTICATED,
    mlflow: 'UNAUTHENTICATED',
    summary:
      'The request carries no valid token (Authorization: Bearer, or Basic with the token as password).',
  },
  SLIPWAY_ERR_FORBIDDEN: {
    http: 403,
    grpc: GrpcStatus.PERMISSION_DENIED,
    mlflow: 'PERMISSION_DENIED',
    summary: 'The token is valid but lacks the scope the endpoint needs (read, predict, write, admin).',
  },
  SLIPWAY_ERR_NOT_IMPLEMENTED: {
    http: 501,
    grpc: GrpcStatus.UNIMPLEMENTED,
    mlflow: 'NOT_IMPLEMENTED',
    summary: 'The endpoint exists but not that variant (for example multipart artifact uploads).',
  },
  SLIPWAY_ERR_STORAGE_UNAVAILABLE: {
    http: 503,
    grpc: GrpcStatus.UNAVAILABLE,
    mlflow: 'TEMPORARILY_UNAVAILABLE',
    summary: 'The database or artifact store (S3) failed or refused the server while serving; retry later.',
  },
  SLIPWAY_ERR_INTERNAL: {
    http: 500,
    grpc: GrpcStatus.INTERNAL,
    mlflow: 'INTERNAL_ERROR',
    summary: 'An unexpected fault inside the server; it is logged with the request id.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class SlipwayError extends Error {
  readonly code: ErrorCode;
  /** Seconds a client should wait before retrying (429/503), if known. */
  readonly retryAfterSeconds?: number;
  /** Structured problems the REST answer lists beside the message (e.g. every invalid row). */
  readonly details?: unknown[];

  constructor(
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number; details?: unknown[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SlipwayError';
    this.code = code;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options?.details !== undefined) this.details = options.details;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  get grpcStatus(): number {
    return ERROR_CODES[this.code].grpc;
  }

  /**
   * The `Retry-After` every 429 and 503 answer carries: the error's own, else one second (a model
   * loading, a server draining, a store that failed: worth trying again soon, on another replica).
   */
  get retryAfter(): number | undefined {
    if (this.retryAfterSeconds !== undefined) return this.retryAfterSeconds;
    const status = this.httpStatus;
    return status === 429 || status === 503 ? 1 : undefined;
  }

  get mlflowCode(): string {
    return ERROR_CODES[this.code].mlflow;
  }
}

/** Wraps anything thrown into a SlipwayError, keeping known errors as they are. */
export function toSlipwayError(err: unknown): SlipwayError {
  if (err instanceof SlipwayError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SlipwayError('SLIPWAY_ERR_INTERNAL', message, { cause: err });
}
