import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type Database, fromJson, type NamedMigration, now, toJson } from '../store/index.js';

/** The quarantine table, as Kysely sees it. Times are integer ms; JSON is text. */
export interface QuarantineTables {
  quarantine_rows: {
    id: string;
    created_ms: number;
    model: string;
    version: string;
    request_id: string | null;
    protocol: string;
    /** 1-based row of the request. */
    row_number: number;
    /** The row as sent, a JSON object. */
    record: string;
    /** Why it was set aside: a JSON array of {row, field, rule, value, expected}. */
    problems: string;
  };
}

export const quarantineMigrations: NamedMigration[] = [
  {
    name: '0310-quarantine',
    async up(db) {
      await db.schema
        .createTable('quarantine_rows')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('model', 'varchar(256)', (c) => c.notNull())
        .addColumn('version', 'varchar(64)', (c) => c.notNull())
        .addColumn('request_id', 'varchar(256)')
        .addColumn('protocol', 'varchar(32)', (c) => c.notNull())
        .addColumn('row_number', 'integer', (c) => c.notNull())
        .addColumn('record', 'text', (c) => c.notNull())
        .addColumn('problems', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('quarantine_rows_model_time')
        .on('quarantine_rows')
        .columns(['model', 'created_ms'])
        .execute();
    },
  },
];

/** A row a serving request set aside (the shape src/inference's QuarantineSink hands over). */
export interface QuarantineInput {
  model: string;
  version: string;
  requestId?: string;
  protocol: string;
  row: number;
  record: Record<string, unknown>;
  problems: unknown[];
}

export interface QuarantinedRecord extends QuarantineInput {
  id: string;
  createdMs: number;
}

export interface QuarantineQuery {
  model?: string;
  version?: string;
  /** Only rows stored at or after this time (ms). */
  sinceMs?: number;
  /** At most this many, newest first (default 100). */
  limit?: number;
}

/** Rows per INSERT: 9 parameters each stays far below every database's limit. */
const CHUNK = 500;

/**
 * Rows that broke a model version's schema in `quarantine` mode, with their reasons: stored
 * before the request is answered, listed and exported with `slipway data quarantine`.
 *
 * @example
 *   await quarantine.store([{ model: 'adult', version: '2', protocol: 'records', row: 3, record, problems }]);
 *   await quarantine.list({ model: 'adult', limit: 10 });
 */
export class Quarantine {
  private readonly db: Kysely<QuarantineTables>;

  constructor(database: Database) {
    this.db = database.as<QuarantineTables>();
  }

  async store(rows: readonly QuarantineInput[]): Promise<void> {
    if (rows.length === 0) return;
    const at = now();
    const values = rows.map((r) => ({
      id: randomUUID(),
      created_ms: at,
      model: r.model,
      version: r.version,
      request_id: r.requestId ?? null,
      protocol: r.protocol,
      row_number: r.row,
      record: toJson(r.record),
      problems: toJson(r.problems),
    }));
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < values.length; i += CHUNK) {
        await trx
          .insertInto('quarantine_rows')
          .values(values.slice(i, i + CHUNK))
          .execute();
      }
    });
  }

  async list(query: QuarantineQuery = {}): Promise<QuarantinedRecord[]> {
    let q = this.db.selectFrom('quarantine_rows').selectAll();
    if (query.model !== undefined) q = q.where('model', '=', query.model);
    if (query.version !== undefined) q = q.where('version', '=', query.version);
    if (query.sinceMs !== undefined) q = q.where('created_ms', '>=', query.sinceMs);
    const rows = await q
      .orderBy('created_ms', 'desc')
      .orderBy('request_id', 'asc')
      .orderBy('row_number', 'asc')
      .limit(query.limit ?? 100)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      createdMs: Number(r.created_ms),
      model: r.model,
      version: r.version,
      ...(r.request_id === null ? {} : { requestId: r.request_id }),
      protocol: r.protocol,
      row: r.row_number,
      record: fromJson<Record<string, unknown>>(r.record, {}),
      problems: fromJson<unknown[]>(r.problems, []),
    }));
  }

  /** Counts per model and version. */
  async counts(): Promise<{ model: string; version: string; rows: number }[]> {
    const rows = await this.db
      .selectFrom('quarantine_rows')
      .select(['model', 'version', (eb) => eb.fn.countAll<number | string>().as('n')])
      .groupBy(['model', 'version'])
      .orderBy('model')
      .orderBy('version')
      .execute();
    return rows.map((r) => ({ model: r.model, version: r.version, rows: Number(r.n) }));
  }
}
