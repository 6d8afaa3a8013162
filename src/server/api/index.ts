export {
  type ApiServer,
  type ApiServerOptions,
  buildApiServer,
  fastifyErrorToSlipway,
} from './api-server.js';
