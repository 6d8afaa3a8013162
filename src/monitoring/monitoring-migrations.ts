import type { NamedMigration } from '../store/index.js';

/** The monitoring tables, as Kysely sees them. Times are integer ms; JSON is text. */
export interface MonitoringTables {
  /**
   * The prediction log, a batch per model version and flush: columns of values (JSON), so a
   * flush of thousands of predictions is one row, written in one statement.
   */
  prediction_batches: {
    id: string;
    model: string;
    version: string;
    /** Earliest and latest prediction time in the batch. */
    start_ms: number;
    end_ms: number;
    rows: number;
    /**
     * A BatchColumns JSON object (see prediction-batch.ts), or, with `payload`, the header of a
     * binary tensor batch (`TensorBatchHeader`).
     */
    data: string;
    /** A binary tensor batch's numbers, request ids and tensor bytes (null for JSON batches; 0421). */
    payload: Uint8Array | null;
    /**
     * Where the payload is instead, on a SQLite store: a segment file beside the database
     * (payload-segments.ts), its byte offset and length (0422; null otherwise).
     */
    payload_file: string | null;
    payload_offset: number | null;
    payload_length: number | null;
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
    /** Rows logged (sampled) in the window; the profile may hold a uniform sample of them. */
    rows: number;
    /** Requests answered and failed (5xx) in the window, sampled or not. */
    requests: number;
    errors: number;
    /** CPU time spent on the requests (their shares of batch compute), µs. */
    cpu_us: number;
    /** Minute parts merged into an hour row (to redo it when late parts arrive). */
    parts: number;
    /** A TableProfileJson: inputs by name, outputs as `prediction.<name>`. */
    profile: string;
    /**
     * Every written row's latency in µs as `[values, counts]` (values ascending), so latency
     * quantiles over a range merge windows instead of reading raw rows; null before 0420.
     */
    latency: string | null;
  };
}

export const monitoringMigrations: NamedMigration[] = [
  {
    name: '0400-monitoring',
    async up(db) {
      await db.schema
        .createTable('prediction_batches')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('model', 'varchar(256)', (c) => c.notNull())
        .addColumn('version', 'varchar(64)', (c) => c.notNull())
        .addColumn('start_ms', 'bigint', (c) => c.notNull())
        .addColumn('end_ms', 'bigint', (c) => c.notNull())
        .addColumn('rows', 'integer', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('prediction_batches_model_time')
        .on('prediction_batches')
        .columns(['model', 'start_ms'])
        .execute();
      await db.schema
        .createIndex('prediction_batches_end')
        .on('prediction_batches')
        .column('end_ms')
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
        .addColumn('requests', 'integer', (c) => c.notNull())
        .addColumn('errors', 'integer', (c) => c.notNull())
        .addColumn('cpu_us', 'double precision', (c) => c.notNull())
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
  {
    name: '0420-window-latency',
    async up(db) {
      await db.schema.alterTable('monitoring_windows').addColumn('latency', 'text').execute();
    },
  },
  {
    name: '0421-batch-payload',
    async up(db, dialect) {
      await db.schema
        .alterTable('prediction_batches')
        .addColumn('payload', dialect === 'postgres' ? 'bytea' : 'blob')
        .execute();
    },
  },
  {
    name: '0422-batch-payload-file',
    async up(db) {
      await db.schema.alterTable('prediction_batches').addColumn('payload_file', 'varchar(64)').execute();
      await db.schema.alterTable('prediction_batches').addColumn('payload_offset', 'bigint').execute();
      await db.schema.alterTable('prediction_batches').addColumn('payload_length', 'integer').execute();
    },
  },
];
