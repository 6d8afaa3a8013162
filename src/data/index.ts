export { type DatasetTables, datasetMigrations } from './dataset-migrations.js';
export {
  type AddOptions,
  type ChangedFile,
  canonicalManifest,
  type DatasetDiff,
  type DatasetSummary,
  Datasets,
  type DatasetsOptions,
  type DatasetVersion,
  type Manifest,
  type ManifestFile,
  parseRef,
  shortDigest,
} from './datasets.js';
export {
  type CsvDelimiter,
  type CsvDialect,
  type CsvOptions,
  countRows,
  detectFormat,
  parquetAvailable,
  readCsv,
  readJsonl,
  readParquet,
  readTable,
  sniffCsv,
} from './formats/index.js';
export {
  ColumnProfile,
  type ColumnSummary,
  type ColumnType,
  type Distribution,
  PROFILE_FORMAT,
  PROFILE_VERSION,
  type ProfileOptions,
  parseDecimal,
  profileTable,
  TableProfile,
  type TableProfileJson,
  type TableSummary,
} from './profile/index.js';
export {
  Quarantine,
  type QuarantinedRecord,
  type QuarantineInput,
  type QuarantineQuery,
  type QuarantineTables,
  quarantineMigrations,
} from './quarantine.js';
export * from './schema/index.js';
export * from './steps/index.js';
export type { Cell, ReadOptions, RowBatch, TableFormat, TableReader } from './table.js';
