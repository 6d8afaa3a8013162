export { type AdminRoutesOptions, adminRoutes } from './admin-routes.js';
