export {
  type HttpServerOptions,
  type RunningHttpServer,
  startHttpServer,
  TIMEOUT_HEADER,
} from './rest/http-server.js';
export { decodeInferRequest, encodeInferResponse } from './rest/v2-codec.js';
