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
export type { Cell, ReadOptions, RowBatch, TableFormat, TableReader } from './table.js';
