export {
  type ApiServer,
  type ApiServerOptions,
  buildApiServer,
  fastifyErrorToSlipway,
} from './api-server.js';
export { bodyAsSent } from './body-as-sent.js';
