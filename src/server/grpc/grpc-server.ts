import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { Scope } from '../../auth/index.js';
import type { LogSettingValues } from '../../config/index.js';
import { SlipwayError } from '../../errors/index.js';
import {
  Cancellation,
  cudaUnsupported,
  type DataPlane,
  noCudaRegion,
  type TraceSettingValues,
} from '../../inference/index.js';
import {
  authorizationOf,
  type GrpcLogger,
  grpcTransport,
  inferOne,
  type TracedCall,
  toServiceError,
  UNDECODABLE,
  undecodableError,
  untilDeadline,
} from './grpc-calls.js';
import {
  encodeModelConfig,
  encodeModelMetadata,
  encodeRepositoryIndex,
  encodeStatistics,
  LOADER_OPTIONS,
  type ModelInferRequestMsg,
  type ModelRepositoryParameterMsg,
  repositoryParametersFromMsg,
} from './grpc-codec.js';
import { InferStreams } from './infer-stream.js';

export interface GrpcServerOptions {
  /** Interface to listen on, e.g. `0.0.0.0`, `127.0.0.1` or `::`. */
  host: string;
  /** 0 picks a free port; the chosen one is on the returned handle. */
  port: number;
  /** Largest request or response message in bytes (default 64 MiB; grpc-js's own is 4 MiB). */
  maxMessageBytes?: number;
  /** Receives faults that answer INTERNAL; client errors are not logged. */
  logger?: GrpcLogger;
  /**
   * Checks the `authorization` metadata against a scope; throws SLIPWAY_ERR_UNAUTHENTICATED /
   * SLIPWAY_ERR_FORBIDDEN. Absent: no auth. ServerLive and ServerReady are always open.
   */
  authorize?: (authorization: string | undefined, scope: Scope) => unknown;
}

export interface GrpcServer {
  /** The port actually bound (differs from the option when it was 0). */
  readonly port: number;
  /**
   * Stops taking new calls, lets in-flight calls finish for up to `graceMs` (default 10 s),
   * then cancels what is left. Safe to call more than once.
   */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const DEFAULT_GRACE_MS = 10_000;

/**
 * Where the service definition is. tsc does not copy `.proto` files, so the compiled module
 * (dist/src/server/grpc/) reaches back to the source tree; a module run from src/ directly, or a
 * build that copies the file beside the JS, finds it next to itself. Both paths are relative to
 * this module, never to the working directory.
 */
export function grpcProtoPath(): string {
  const candidates = [
    new URL('./grpc_service.proto', import.meta.url),
    new URL('../../../../src/server/grpc/grpc_service.proto', import.meta.url),
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new SlipwayError(
      'SLIPWAY_ERR_INTERNAL',
      `grpc_service.proto not found; looked in ${candidates.join(', ')}`,
    );
  }
  return found;
}

/**
 * Serves the Open Inference Protocol over gRPC (package `inference`, service
 * `GRPCInferenceService`, with Triton's repository, configuration and statistics calls) on
 * top of a data plane. The transport only converts messages and maps errors.
 *
 * @example
 *   const grpcServer = await startGrpcServer(plane, { host: '0.0.0.0', port: 8001 });
 *   // ... on SIGTERM:
 *   await grpcServer.close(5_000);
 */
export async function startGrpcServer(plane: DataPlane, options: GrpcServerOptions): Promise<GrpcServer> {
  const definition = loadSync(grpcProtoPath(), LOADER_OPTIONS);
  const service = definition['inference.GRPCInferenceService'] as grpc.ServiceDefinition;
  // grpc-js answers a message its deserializer throws on with INTERNAL; a malformed message is the
  // client's mistake, so it reaches the handler marked and is answered INVALID_ARGUMENT.
  for (const method of Object.values(service)) {
    const decode = method.requestDeserialize;
    method.requestDeserialize = (bytes: Buffer) => {
      try {
        return decode(bytes);
      } catch (err) {
        return { [UNDECODABLE]: (err as Error).message };
      }
    };
  }
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
  });
  const streams = new InferStreams();
  server.addService(service, createHandlers(plane, streams, options.logger, options.authorize));

  const host =
    options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) {
        reject(
          new SlipwayError(
            'SLIPWAY_ERR_CONFIG',
            `gRPC server cannot listen on ${host}:${options.port}: ${err.message}`,
            {
              cause: err,
            },
          ),
        );
      } else {
        resolve(bound);
      }
    });
  });

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs = DEFAULT_GRACE_MS) {
      if (!closing) {
        streams.close();
        closing = drain(server, graceMs);
      }
      return closing;
    },
  };
}

function drain(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface NameVersion {
  name?: string;
  version?: string;
}

function createHandlers(
  plane: DataPlane,
  streams: InferStreams,
  logger: GrpcLogger | undefined,
  authorize: GrpcServerOptions['authorize'],
): grpc.UntypedServiceImplementation {
  const open = <Req>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, unknown>) => unknown) =>
    wrapUnary(fn, logger);
  const guarded =
    (scope: Scope) =>
    <Req>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, unknown>) => unknown) => {
      if (!authorize) return wrapUnary(fn, logger);
      return wrapUnary<Req>((req, call) => {
        const checked = authorize(authorizationOf(call), scope);
        return checked instanceof Promise ? checked.then(() => fn(req, call)) : fn(req, call);
      }, logger);
    };
  const unary = guarded('read');
  const predict = guarded('predict');
  const admin = guarded('admin');
  return {
    ServerLive: open(() => ({ live: plane.live() })),
    ServerReady: open(() => ({ ready: plane.ready() })),
    ModelReady: unary((req: NameVersion) => ({
      ready: modelReady(plane, req.name ?? '', req.version || undefined),
    })),
    ServerMetadata: unary(() => plane.serverMetadata()),
    ModelMetadata: unary((req: NameVersion) =>
      encodeModelMetadata(plane.modelMetadata(req.name ?? '', req.version || undefined)),
    ),
    ModelInfer: predict(async (msg: ModelInferRequestMsg, call) => {
      const transport = grpcTransport(plane);
      if (transport) (call as TracedCall).transport = transport;
      const cancel = new Cancellation();
      const onCancel = () => cancel.fire();
      if (call.cancelled) onCancel();
      else call.once('cancelled', onCancel);
      try {
        return await inferOne(plane, msg, cancel, untilDeadline(call.getDeadline()), transport);
      } finally {
        call.off('cancelled', onCancel);
      }
    }),
    ModelStreamInfer: (call: grpc.ServerDuplexStream<ModelInferRequestMsg, never>) =>
      streams.serve(plane, call, logger, authorize),
    ModelConfig: unary((req: NameVersion) =>
      encodeModelConfig(plane.modelConfig(req.name ?? '', req.version || undefined)),
    ),
    ModelStatistics: unary(async (req: NameVersion) =>
      encodeStatistics(await plane.statistics(req.name || undefined, req.version || undefined)),
    ),
    RepositoryIndex: unary(async (req: { ready?: boolean }) =>
      encodeRepositoryIndex(await plane.repositoryIndex(req.ready === true)),
    ),
    RepositoryModelLoad: admin(
      async (req: { model_name?: string; parameters?: Record<string, ModelRepositoryParameterMsg> }) => {
        await plane.loadModel(req.model_name ?? '', repositoryParametersFromMsg(req.parameters));
        return {};
      },
    ),
    RepositoryModelUnload: admin(async (req: { model_name?: string }) => {
      await plane.unloadModel(req.model_name ?? '');
      return {};
    }),
    SystemSharedMemoryStatus: unary((req: { name?: string }) => {
      const regions: Record<string, object> = {};
      for (const r of plane.sharedMemory.status(req.name || undefined)) {
        regions[r.name] = { name: r.name, key: r.key, offset: r.offset, byte_size: r.byteSize };
      }
      return { regions };
    }),
    SystemSharedMemoryRegister: predict(
      async (req: { name?: string; key?: string; offset?: string; byte_size?: string }) => {
        await plane.registerSharedMemory({
          name: req.name ?? '',
          key: req.key ?? '',
          offset: Number(req.offset ?? 0),
          byteSize: Number(req.byte_size ?? 0),
        });
        return {};
      },
    ),
    SystemSharedMemoryUnregister: predict(async (req: { name?: string }) => {
      await plane.unregisterSharedMemory(req.name || undefined);
      return {};
    }),
    CudaSharedMemoryStatus: unary((req: { name?: string }) => {
      if (req.name) throw noCudaRegion(req.name);
      return { regions: {} };
    }),
    CudaSharedMemoryRegister: predict(() => {
      throw cudaUnsupported();
    }),
    CudaSharedMemoryUnregister: predict(() => ({})),
    // Reading needs `read`; a request that changes settings needs `admin` as well.
    LogSettings: unary(async (req: { settings?: Record<string, SettingValueMsg> }, call) => {
      const patch = Object.entries(req.settings ?? {});
      if (patch.length === 0) return { settings: settingsMsg(plane.logSettings()) };
      if (authorize) {
        await authorize(authorizationOf(call), 'admin');
      }
      const values = Object.fromEntries(patch.map(([k, v]) => [k, v[v.parameter_choice ?? 'string_param']]));
      return { settings: settingsMsg(await plane.updateLogSettings(values)) };
    }),
    TraceSetting: unary(
      async (req: { settings?: Record<string, { value?: string[] }>; model_name?: string }, call) => {
        const model = req.model_name || undefined;
        const patch = Object.entries(req.settings ?? {});
        if (patch.length === 0) return { settings: traceSettingsMsg(plane.traceSettings(model)) };
        if (authorize) await authorize(authorizationOf(call), 'admin');
        const values: Record<string, unknown> = {};
        for (const [k, v] of patch) {
          const list = v.value ?? [];
          // No values clears the setting; the level is a list, every other setting one value.
          values[k] =
            list.length === 0 ? null : k === 'trace_level' ? list : list.length === 1 ? list[0] : list;
        }
        return { settings: traceSettingsMsg(await plane.updateTraceSettings(model, values)) };
      },
    ),
  };
}

function traceSettingsMsg(values: TraceSettingValues): Record<string, { value: string[] }> {
  const out: Record<string, { value: string[] }> = {};
  for (const [k, v] of Object.entries(values)) out[k] = { value: Array.isArray(v) ? v : [v] };
  return out;
}

/** A LogSettings value as proto-loader gives it (`oneofs: true`). */
interface SettingValueMsg {
  parameter_choice?: 'bool_param' | 'uint32_param' | 'string_param';
  bool_param?: boolean;
  uint32_param?: number;
  string_param?: string;
}

function settingsMsg(values: LogSettingValues): Record<string, object> {
  const out: Record<string, object> = {};
  for (const [k, v] of Object.entries(values)) {
    out[k] =
      typeof v === 'boolean'
        ? { bool_param: v }
        : typeof v === 'number'
          ? { uint32_param: v }
          : { string_param: v };
  }
  return out;
}

/**
 * Triton answers ModelReady for an unknown model or version with `ready: false`, not an error:
 * tritonclient's is_model_ready() raises on an error, which would break loops that poll for a
 * model to appear.
 */
function modelReady(plane: DataPlane, model: string, version: string | undefined): boolean {
  try {
    return plane.modelReady(model, version);
  } catch (err) {
    const code = err instanceof SlipwayError ? err.code : undefined;
    if (code === 'SLIPWAY_ERR_MODEL_NOT_FOUND' || code === 'SLIPWAY_ERR_VERSION_NOT_FOUND') return false;
    throw err;
  }
}

/** Runs a handler that may return a value or a promise, answering errors with their gRPC status. */
function wrapUnary<Req>(
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, unknown>) => unknown,
  logger: GrpcLogger | undefined,
): grpc.handleUnaryCall<Req, unknown> {
  return (call, callback) => {
    const undecodable = undecodableError(call.request);
    if (undecodable) {
      callback(toServiceError(undecodable, call.getPath(), logger));
      return;
    }
    let result: unknown;
    try {
      result = fn(call.request, call);
    } catch (err) {
      callback(toServiceError(err, call.getPath(), logger));
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (value) => {
          const transport = (call as TracedCall).transport;
          if (transport) transport.sendStart = performance.now();
          callback(null, value);
          if (transport) transport.sendEnd = performance.now();
        },
        (err) => callback(toServiceError(err, call.getPath(), logger)),
      );
    } else {
      callback(null, result);
    }
  };
}
