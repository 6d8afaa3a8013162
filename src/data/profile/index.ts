export {
  ColumnProfile,
  type ColumnSummary,
  type ColumnType,
  DEFAULT_OPTIONS,
  type KeyJson,
  type ProfileOptions,
  QUANTILES,
} from './column-profile.js';
export { type Distribution, ExactDistribution } from './distribution.js';
export { FrequentItems } from './frequent-items.js';
export { HyperLogLog } from './hyperloglog.js';
export { KllSketch } from './kll.js';
export { Moments } from './moments.js';
export { MISSING_TOKENS, parseDatetime, parseDecimal } from './parse-cell.js';
export { profileTable } from './profile-table.js';
export {
  PROFILE_FORMAT,
  PROFILE_VERSION,
  TableProfile,
  type TableProfileJson,
  type TableSummary,
} from './table-profile.js';
export type { Key } from './value-counts.js';
