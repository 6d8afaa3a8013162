import type { CsvOptions } from '../formats/index.js';
import { readTable } from '../formats/index.js';
import type { ProfileOptions } from './column-profile.js';
import { TableProfile } from './table-profile.js';

/**
 * Profiles a table file (CSV, JSON Lines, Parquet) in one streamed pass.
 *
 * @example
 *   const summary = (await profileTable('datasets/adult/adult.csv')).summary();
 */
export async function profileTable(
  path: string,
  options: { read?: CsvOptions; profile?: Partial<ProfileOptions> } = {},
): Promise<TableProfile> {
  const profile = new TableProfile(options.profile);
  for await (const batch of readTable(path, options.read)) profile.add(batch);
  return profile;
}
