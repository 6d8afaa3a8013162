export {
  Database,
  type DatabaseOptions,
  type DialectName,
  type NamedMigration,
  redactUrl,
} from './database.js';
export { fromJson, now, toJson } from './values.js';
