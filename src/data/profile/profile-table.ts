import type { CsvOptions } from '../formats/index.js';
import { checkTableFile, detectFormat, readTable } from '../formats/index.js';
import type { ProfileOptions } from './column-profile.js';
import { profileCsv } from './csv-profile.js';
import { TableProfile } from './table-profile.js';

/**
 * Profiles a table file (CSV, JSON Lines, Parquet) in one streamed pass. A CSV is profiled from
 * its bytes (`profileCsv`, split across `threads` when large), to the same profile as adding
 * `readTable`'s batches.
 *
 * @example
 *   const summary = (await profileTable('datasets/adult/adult.csv')).summary();
 */
export async function profileTable(
  path: string,
  options: { read?: CsvOptions; profile?: Partial<ProfileOptions>; threads?: number } = {},
): Promise<TableProfile> {
  await checkTableFile(path);
  const format = options.read?.format ?? (await detectFormat(path));
  if (format === 'csv') return profileCsv(path, options);
  const profile = new TableProfile(options.profile);
  for await (const batch of readTable(path, { ...options.read, format })) profile.add(batch);
  return profile;
}
