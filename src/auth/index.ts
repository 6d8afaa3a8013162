export { ANONYMOUS, allows, type Principal, SCOPES, type Scope } from './principal.js';
