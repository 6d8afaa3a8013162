export { ANONYMOUS, allows, type Principal, SCOPES, type Scope } from './principal.js';
export { isLoopback, parseScopes, type TokenInfo, TokenStore, tokenMigrations } from './tokens.js';
