export * from './drift/index.js';
export * from './alerts/index.js';
export { type AlertTables, alertMigrations } from './alert-migrations.js';
