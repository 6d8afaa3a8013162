import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { loadSettings, type Settings } from '../config/index.js';
import { fileProblem } from '../errors/index.js';

/** Flags every command that works on the registry's store takes. */
export interface StoreFlags {
  dataDir?: string;
  databaseUrl?: string;
  s3Bucket?: string;
  s3Endpoint?: string;
  s3Prefix?: string;
  config?: string;
}

export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'database and artifact folder (SLIPWAY_DATA_DIR; default ./.slipway)')
    .option(
      '--database-url <url>',
      'postgres://… instead of SQLite under the data dir (SLIPWAY_DATABASE_URL)',
    )
    .option(
      '--s3-bucket <bucket>',
      'keep artifacts in this S3 bucket (SLIPWAY_S3_BUCKET; credentials from SLIPWAY_S3_* or the AWS environment)',
    )
    .option('--s3-endpoint <url>', 'S3-compatible endpoint, e.g. MinIO (SLIPWAY_S3_ENDPOINT)')
    .option('--s3-prefix <prefix>', 'key prefix in the bucket (SLIPWAY_S3_PREFIX)')
    .option('-c, --config <file>', 'JSON settings file (SLIPWAY_CONFIG)');
}

/** The store flags as settings names, for loadSettings. */
export function storeFlagSettings(flags: StoreFlags) {
  return {
    dataDir: flags.dataDir,
    databaseUrl: flags.databaseUrl,
    s3Bucket: flags.s3Bucket,
    s3Endpoint: flags.s3Endpoint,
    s3Prefix: flags.s3Prefix,
  };
}

/** Settings for a store command: defaults < file < SLIPWAY_* env < flags, as for `serve`. */
export function storeSettings(flags: StoreFlags): Readonly<Settings> {
  return loadSettings({
    env: process.env,
    configFile: flags.config,
    flags: storeFlagSettings(flags),
  });
}

/** Runs a command body; a failure prints its message on stderr and exits 1. */
export async function runCommand(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // A file system error names its path in plain words ("/x.csv: no such file or folder"), and
    // the file a write was going to take, not the temporary one it was writing beside it.
    const message =
      typeof e.code === 'string' && typeof e.path === 'string'
        ? `${e.path.replace(/\.(?:\d+|[0-9a-f]{8})\.partial$/, '')}: ${fileProblem(e)}`
        : e.message;
    process.stderr.write(`error: ${message}\n`);
    process.exitCode = 1;
  }
}

/** `cli:<os user>`: the actor the audit log records for CLI changes. */
export function cliActor(): string {
  let user = process.env.USER ?? process.env.USERNAME;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return `cli:${user}`;
}
