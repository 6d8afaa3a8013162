export { alertRoutes } from './alert-routes.js';
export { monitoringRoutes } from './monitoring-routes.js';
