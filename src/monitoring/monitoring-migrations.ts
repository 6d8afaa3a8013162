import type { NamedMigration } from '../store/index.js';

/** The monitoring tables, as Kysely sees them. Times are integer ms; JSON is text. */
export interface MonitoringTables {
  prediction_log: {
    id: string;
    time_ms: number;
    model: string;
    version: string;
    protocol: string;
    request_id: string;
    /** 0-based row of the request. */
    row_index: number;
    latency_us: number;
    /** The row's inputs by name (JSON object). */
    inputs: string;
    /** The row's outputs by name (JSON object). */
    outputs: string;
    /** Segment keys (JSON object of strings), null when none. */
    segments: string | null;
  };
  feedback: {
    request_id: string;
    row_index: number;
    /** JSON: a label, class name or number. */
    ground_truth: string;
    weight: number;
    received_ms: number;
  };
  /** Mergeable profiles of the logged rows, one part per writer and window; readers merge parts. */
  monitoring_windows: {
    id: string;
    model: string;
    version: string;
    /** `minute` parts as written; `hour` rows merge an hour's minute parts. */
    granularity: string;
    window_ms: number;
    rows: number;
    /** Minute parts merged into an hour row (to redo it when late parts arrive). */
    parts: number;
    /** A TableProfileJson: inputs by name, outputs as `prediction.<name>`. */
    profile: string;
  };
}

export const monitoringMigrations: NamedMigration[] = [
  {
    name: '0400-monitoring',
    async up(db) {
      await db.schema
        .createTable('prediction_log')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('time_ms', 'bigint', (c) => c.notNull())
        .addColumn('model', 'varchar(256)', (c) => c.notNull())
        .addColumn('version', 'varchar(64)', (c) => c.notNull())
        .addColumn('protocol', 'varchar(32)', (c) => c.notNull())
        .addColumn('request_id', 'varchar(256)', (c) => c.notNull())
        .addColumn('row_index', 'integer', (c) => c.notNull())
        .addColumn('latency_us', 'integer', (c) => c.notNull())
        .addColumn('inputs', 'text', (c) => c.notNull())
        .addColumn('outputs', 'text', (c) => c.notNull())
        .addColumn('segments', 'text')
        .execute();
      await db.schema
        .createIndex('prediction_log_model_time')
        .on('prediction_log')
        .columns(['model', 'time_ms'])
        .execute();
      await db.schema
        .createIndex('prediction_log_request')
        .on('prediction_log')
        .columns(['request_id', 'row_index'])
        .execute();
      await db.schema
        .createTable('feedback')
        .addColumn('request_id', 'varchar(256)', (c) => c.notNull())
        .addColumn('row_index', 'integer', (c) => c.notNull())
        .addColumn('ground_truth', 'text', (c) => c.notNull())
        .addColumn('weight', 'double precision', (c) => c.notNull())
        .addColumn('received_ms', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('feedback_pk', ['request_id', 'row_index'])
        .execute();
      await db.schema
        .createTable('monitoring_windows')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('model', 'varchar(256)', (c) => c.notNull())
        .addColumn('version', 'varchar(64)', (c) => c.notNull())
        .addColumn('granularity', 'varchar(16)', (c) => c.notNull())
        .addColumn('window_ms', 'bigint', (c) => c.notNull())
        .addColumn('rows', 'integer', (c) => c.notNull())
        .addColumn('parts', 'integer', (c) => c.notNull())
        .addColumn('profile', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('monitoring_windows_model')
        .on('monitoring_windows')
        .columns(['model', 'granularity', 'window_ms'])
        .execute();
    },
  },
];
