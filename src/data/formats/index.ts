export { type CsvDelimiter, type CsvDialect, type CsvOptions, readCsv, sniffCsv } from './csv-reader.js';
export { type CsvWriteOptions, csvField, writeCsv } from './csv-writer.js';
export { readJsonl } from './jsonl-reader.js';
export { parquetAvailable, readParquet } from './parquet-reader.js';
export { checkTableFile, countRows, detectFormat, formatByExtension, readTable } from './read-table.js';
