export type { GrpcLogger } from './grpc-calls.js';
export { LOADER_OPTIONS } from './grpc-codec.js';
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  type GrpcServer,
  type GrpcServerOptions,
  grpcProtoPath,
  startGrpcServer,
} from './grpc-server.js';
export { MAX_STREAM_IN_FLIGHT } from './infer-stream.js';
