export { tokenRoutes } from './token-routes.js';
