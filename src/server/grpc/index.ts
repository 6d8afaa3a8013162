export { LOADER_OPTIONS } from './grpc-codec.js';
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  type GrpcLogger,
  type GrpcServer,
  type GrpcServerOptions,
  grpcProtoPath,
  startGrpcServer,
} from './grpc-server.js';
