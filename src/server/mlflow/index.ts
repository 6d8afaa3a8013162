export { artifactRoutes, MULTIPART_UNSUPPORTED } from './artifact-routes.js';
export {
  doubleJson,
  experimentJson,
  loggedModelJson,
  type Message,
  MLFLOW_HTTP_STATUS,
  metricJson,
  runInfoJson,
  runJson,
  sendMlflowError,
} from './mlflow-json.js';
export {
  MLFLOW_ARTIFACT_PREFIXES,
  MLFLOW_COMPAT_VERSION,
  MLFLOW_PREFIXES,
  type MlflowPluginDeps,
  mlflowPlugin,
} from './mlflow-plugin.js';
export { messageOf, mlflowRoute } from './mlflow-route.js';
export {
  type MlflowRegistryDeps,
  mlflowRegistryRoutes,
  modelVersionJson,
  registeredModelJson,
} from './registry-routes.js';
export { trackingRoutes } from './tracking-routes.js';
