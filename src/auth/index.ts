export { ANONYMOUS, allows, type Principal, SCOPES, type Scope } from './principal.js';
export {
  isLoopback,
  MAX_TOKEN_DAYS,
  parseScopes,
  type TokenInfo,
  TokenStore,
  tokenMigrations,
} from './tokens.js';
