import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { SlipwayError } from '../errors/index.js';

export type DialectName = 'sqlite' | 'postgres';

/** A versioned schema change. Names sort in the order they run: `0001-registry`, `0002-…`. */
export interface NamedMigration {
  name: string;
  /** Runs in a transaction; `dialect` is there for the rare step that differs between databases. */
  up(db: Kysely<any>, dialect: DialectName): Promise<void>;
  down?: Migration['down'];
}

export interface DatabaseOptions {
  /** `postgres://…` for PostgreSQL; otherwise the path of the SQLite file (`:memory:` for tests). */
  url: string;
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
}

/** How long opening a SQLite store waits for other processes to let it switch the file to WAL. */
const WAL_WAIT_MS = 5000;

/**
 * `PRAGMA journal_mode = WAL`, retried while another connection holds the lock the switch needs.
 * When several processes open a new file at once, SQLite answers the switch with SQLITE_BUSY at
 * once, without its busy handler (waiting could deadlock two connections that each hold a read
 * lock), so the wait is here: a few milliseconds at a time, up to `WAL_WAIT_MS`.
 */
function enableWal(sqlite: BetterSqlite3.Database): void {
  const deadline = Date.now() + WAL_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      sqlite.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, 5 + Math.floor(Math.random() * 20));
    }
  }
}

/**
 * One database for every capability, on SQLite (embedded default) or PostgreSQL. Capabilities
 * write their queries once with Kysely; the few places where the dialects differ ask `dialect`.
 *
 * @example
 *   const db = await Database.open({ url: './.slipway/slipway.db' });
 *   await db.migrate([...registryMigrations, ...trackingMigrations]);
 *   const rows = await db.kysely.selectFrom('registered_models').selectAll().execute();
 */
export class Database {
  private constructor(
    // Each capability narrows this to its own tables with `db.as<Tables>()`.
    readonly kysely: Kysely<any>,
    readonly dialect: DialectName,
    /** The SQLite database's file (absent for PostgreSQL and `:memory:`). */
    readonly file?: string,
  ) {}

  static async open(options: DatabaseOptions): Promise<Database> {
    if (/^postgres(ql)?:\/\//.test(options.url)) return Database.openPostgres(options);
    return Database.openSqlite(options.url);
  }

  private static openSqlite(path: string): Database {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    let sqlite: BetterSqlite3.Database;
    try {
      sqlite = new BetterSqlite3(path);
    } catch (err) {
      throw new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        `database ${path} cannot be opened: ${(err as Error).message}`,
      );
    }
    // WAL lets readers run beside the writer; FULL syncs every commit, so an acknowledged
    // write survives a crash of the process or of the machine.
    enableWal(sqlite);
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // Kysely prepares every query afresh; the same few hundred SQL texts recur, so keep their
    // compiled statements. One connection runs one statement at a time, so sharing is safe.
    const statements = new Map<string, BetterSqlite3.Statement>();
    const database = {
      prepare(text: string) {
        let stmt = statements.get(text);
        if (!stmt) {
          if (statements.size >= 1000) statements.clear();
          stmt = sqlite.prepare(text);
          statements.set(text, stmt);
        }
        return stmt;
      },
      close() {
        statements.clear();
        sqlite.close();
      },
    };
    return new Database(
      new Kysely({ dialect: new SqliteDialect({ database }) }),
      'sqlite',
      path === ':memory:' ? undefined : path,
    );
  }

  private static async openPostgres(options: DatabaseOptions): Promise<Database> {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      types: { getTypeParser: typeParser as typeof pg.types.getTypeParser },
    });
    // Without a listener an idle client's network error would crash the process.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      client.release();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        `database ${redactUrl(options.url)} cannot be reached: ${(err as Error).message}`,
      );
    }
    return new Database(new Kysely({ dialect: new PostgresDialect({ pool }) }), 'postgres');
  }

  /** The same connection, typed with one capability's tables. */
  as<Tables>(): Kysely<Tables> {
    return this.kysely as Kysely<Tables>;
  }

  /** Runs `fn` in one transaction: all of its writes commit together or none do. */
  transaction<T>(fn: (trx: Transaction<any>) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute(fn);
  }

  /**
   * Applies the migrations not yet applied, in name order. Safe to run from many replicas at once
   * (PostgreSQL takes a lock; on SQLite a process that loses the race retries).
   */
  async migrate(migrations: readonly NamedMigration[]): Promise<string[]> {
    const names = new Set<string>();
    for (const m of migrations) {
      if (names.has(m.name)) throw new Error(`migration ${m.name} is listed twice`);
      names.add(m.name);
    }
    const provider: MigrationProvider = {
      getMigrations: async () =>
        Object.fromEntries(
          migrations.map((m): [string, Migration] => [
            m.name,
            { up: (db) => m.up(db, this.dialect), ...(m.down ? { down: m.down } : {}) },
          ]),
        ),
    };
    const migrator = new Migrator({
      db: this.kysely,
      provider,
      migrationTableName: 'slipway_migrations',
      migrationLockTableName: 'slipway_migrations_lock',
      // Each capability numbers its own migrations in its own range (tokens 0050…, registry 0100…);
      // one added later to an earlier range must still run on a database that ran later ones.
      allowUnorderedMigrations: true,
    });
    const run = () => (this.dialect === 'sqlite' ? this.exclusive(migrator) : migrator.migrateToLatest());
    let outcome = await run();
    // A process that waited longer than busy_timeout for another's migrations tries again; so
    // does one that lost a race on a store migrated before the write lock was taken here.
    for (
      let attempt = 0;
      this.dialect === 'sqlite' && attempt < 20 && isAlreadyExists(outcome.error);
      attempt++
    ) {
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      outcome = await run();
    }
    const { error, results } = outcome;
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        `database migration ${failed} failed: ${(error as Error).message ?? String(error)}`,
        { cause: error },
      );
    }
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }

  /**
   * Migrates SQLite holding the write lock (`BEGIN IMMEDIATE`) from reading what ran to
   * recording what it ran. Kysely takes no migration lock on SQLite and runs its DDL outside a
   * transaction, so processes opening one new file at once each saw a migration pending and
   * ran it: `CREATE TABLE` then failed as already existing, `ALTER TABLE … ADD COLUMN` as a
   * duplicate column. Now the others wait (busy_timeout), then find nothing left to do; a
   * failed migration leaves the store as it was.
   */
  private async exclusive(migrator: Migrator): Promise<MigrationResultSet> {
    try {
      await sql`begin immediate`.execute(this.kysely);
    } catch (error) {
      return { error };
    }
    let outcome: MigrationResultSet;
    try {
      outcome = await migrator.migrateToLatest();
    } catch (error) {
      outcome = { error };
    }
    if (outcome.error) {
      // SQLite may have ended the transaction already when the statement failed.
      await sql`rollback`.execute(this.kysely).catch(() => undefined);
      return outcome;
    }
    try {
      await sql`commit`.execute(this.kysely);
    } catch (error) {
      await sql`rollback`.execute(this.kysely).catch(() => undefined);
      return { error };
    }
    return outcome;
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}

/** What losing the race to migrate a new SQLite file looks like: the winner's table or record is there. */
function isAlreadyExists(error: unknown): boolean {
  return (
    error instanceof Error &&
    /already exists|UNIQUE constraint failed: slipway_migrations|database is locked/i.test(error.message)
  );
}

const INT8 = 20;
const NUMERIC = 1700;

/** BIGINT and NUMERIC as numbers (times in ms and counts stay far below 2^53), the rest as pg does. */
function typeParser(oid: number, format?: string): unknown {
  if ((oid === INT8 || oid === NUMERIC) && format !== 'binary') return (v: string) => Number(v);
  return (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format);
}

/** Hides the password of a connection URL in messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}
