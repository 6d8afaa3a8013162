import type { NamedMigration } from '../store/index.js';

/**
 * The tracking tables, as Kysely sees them. Times are integer ms; booleans are 0/1 integers (the
 * same on both dialects); metric values are doubles with NaN kept as `is_nan = 1, value = 0`,
 * since SQLite stores NaN as NULL.
 */
export interface TrackingTables {
  tracking_experiments: {
    experiment_id: number;
    name: string;
    /** Folder in the artifact repository (`<experiment_id>`). */
    artifact_path: string;
    lifecycle_stage: string;
    creation_time: number;
    last_update_time: number;
  };
  tracking_experiment_tags: { experiment_id: number; key: string; value: string };
  tracking_runs: {
    run_id: string;
    experiment_id: number;
    name: string;
    user_id: string;
    status: string;
    start_time: number;
    end_time: number | null;
    lifecycle_stage: string;
    deleted_time: number | null;
    /** `<experiment_id>/<run_id>/artifacts`. */
    artifact_path: string;
  };
  tracking_params: { run_id: string; key: string; value: string };
  tracking_run_tags: { run_id: string; key: string; value: string };
  /** Every logged value; the primary key makes re-logging the same point a no-op, as in MLflow. */
  tracking_metrics: {
    run_id: string;
    key: string;
    step: number;
    timestamp_ms: number;
    value: number;
    is_nan: number;
  };
  /** The latest value per key (highest step, then timestamp, then value): what runs show and search. */
  tracking_latest_metrics: {
    run_id: string;
    key: string;
    step: number;
    timestamp_ms: number;
    value: number;
    is_nan: number;
  };
  tracking_run_datasets: {
    run_id: string;
    name: string;
    digest: string;
    source_type: string;
    source: string;
    schema: string | null;
    profile: string | null;
    /** The `mlflow.data.context` input tag, kept apart for `datasets.context` filters. */
    context: string | null;
    /** Input tags, a JSON array of {key, value}. */
    tags: string;
  };
  /** Logged models a run used (`input`) or produced (`output`, with the step). */
  tracking_run_models: { run_id: string; direction: string; model_id: string; step: number };
  tracking_logged_models: {
    model_id: string;
    experiment_id: number;
    name: string;
    /** `<experiment_id>/models/<model_id>/artifacts`. */
    artifact_path: string;
    creation_ms: number;
    last_updated_ms: number;
    status: string;
    status_message: string | null;
    model_type: string | null;
    source_run_id: string | null;
    lifecycle_stage: string;
  };
  tracking_logged_model_tags: { model_id: string; key: string; value: string };
  tracking_logged_model_params: { model_id: string; key: string; value: string };
  tracking_logged_model_metrics: {
    model_id: string;
    key: string;
    step: number;
    timestamp_ms: number;
    /** '' when the value was not logged from a run. */
    run_id: string;
    value: number;
    is_nan: number;
    dataset_name: string | null;
    dataset_digest: string | null;
  };
}

/** The experiment every run without one lands in; it exists from the first migration on. */
export const DEFAULT_EXPERIMENT_ID = '0';
export const DEFAULT_EXPERIMENT_NAME = 'Default';

export const trackingMigrations: NamedMigration[] = [
  {
    name: '0200-tracking',
    async up(db) {
      await db.schema
        .createTable('tracking_experiments')
        .addColumn('experiment_id', 'bigint', (c) => c.primaryKey())
        .addColumn('name', 'varchar(500)', (c) => c.notNull().unique())
        .addColumn('artifact_path', 'varchar(1024)', (c) => c.notNull())
        .addColumn('lifecycle_stage', 'varchar(32)', (c) => c.notNull())
        .addColumn('creation_time', 'bigint', (c) => c.notNull())
        .addColumn('last_update_time', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tracking_experiment_tags')
        .addColumn('experiment_id', 'bigint', (c) => c.notNull())
        .addColumn('key', 'varchar(250)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('tracking_experiment_tags_pk', ['experiment_id', 'key'])
        .execute();
      await db.schema
        .createTable('tracking_runs')
        .addColumn('run_id', 'varchar(32)', (c) => c.primaryKey())
        .addColumn('experiment_id', 'bigint', (c) => c.notNull())
        .addColumn('name', 'varchar(250)', (c) => c.notNull())
        .addColumn('user_id', 'varchar(256)', (c) => c.notNull())
        .addColumn('status', 'varchar(20)', (c) => c.notNull())
        .addColumn('start_time', 'bigint', (c) => c.notNull())
        .addColumn('end_time', 'bigint')
        .addColumn('lifecycle_stage', 'varchar(32)', (c) => c.notNull())
        .addColumn('deleted_time', 'bigint')
        .addColumn('artifact_path', 'varchar(1024)', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('tracking_runs_experiment')
        .on('tracking_runs')
        .columns(['experiment_id', 'start_time'])
        .execute();
      for (const table of ['tracking_params', 'tracking_run_tags']) {
        await db.schema
          .createTable(table)
          .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
          .addColumn('key', 'varchar(250)', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint(`${table}_pk`, ['run_id', 'key'])
          .execute();
      }
      // One composite key serves both de-duplication and history reads, which MLflow orders by
      // timestamp, step, value.
      await db.schema
        .createTable('tracking_metrics')
        .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
        .addColumn('key', 'varchar(250)', (c) => c.notNull())
        .addColumn('step', 'bigint', (c) => c.notNull())
        .addColumn('timestamp_ms', 'bigint', (c) => c.notNull())
        .addColumn('value', 'double precision', (c) => c.notNull())
        .addColumn('is_nan', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('tracking_metrics_pk', [
          'run_id',
          'key',
          'timestamp_ms',
          'step',
          'value',
          'is_nan',
        ])
        .execute();
      await db.schema
        .createTable('tracking_latest_metrics')
        .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
        .addColumn('key', 'varchar(250)', (c) => c.notNull())
        .addColumn('step', 'bigint', (c) => c.notNull())
        .addColumn('timestamp_ms', 'bigint', (c) => c.notNull())
        .addColumn('value', 'double precision', (c) => c.notNull())
        .addColumn('is_nan', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('tracking_latest_metrics_pk', ['run_id', 'key'])
        .execute();
      await db.schema
        .createTable('tracking_run_datasets')
        .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
        .addColumn('name', 'varchar(500)', (c) => c.notNull())
        .addColumn('digest', 'varchar(36)', (c) => c.notNull())
        .addColumn('source_type', 'varchar(36)', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('schema', 'text')
        .addColumn('profile', 'text')
        .addColumn('context', 'varchar(500)')
        .addColumn('tags', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('tracking_run_datasets_pk', ['run_id', 'name', 'digest'])
        .execute();
      await db.schema
        .createTable('tracking_run_models')
        .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
        .addColumn('direction', 'varchar(8)', (c) => c.notNull())
        .addColumn('model_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('step', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('tracking_run_models_pk', ['run_id', 'direction', 'model_id', 'step'])
        .execute();
      await db.schema
        .createTable('tracking_logged_models')
        .addColumn('model_id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('experiment_id', 'bigint', (c) => c.notNull())
        .addColumn('name', 'varchar(500)', (c) => c.notNull())
        .addColumn('artifact_path', 'varchar(1024)', (c) => c.notNull())
        .addColumn('creation_ms', 'bigint', (c) => c.notNull())
        .addColumn('last_updated_ms', 'bigint', (c) => c.notNull())
        .addColumn('status', 'varchar(40)', (c) => c.notNull())
        .addColumn('status_message', 'text')
        .addColumn('model_type', 'varchar(500)')
        .addColumn('source_run_id', 'varchar(32)')
        .addColumn('lifecycle_stage', 'varchar(32)', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('tracking_logged_models_experiment')
        .on('tracking_logged_models')
        .columns(['experiment_id', 'creation_ms'])
        .execute();
      for (const table of ['tracking_logged_model_tags', 'tracking_logged_model_params']) {
        await db.schema
          .createTable(table)
          .addColumn('model_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('key', 'varchar(250)', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint(`${table}_pk`, ['model_id', 'key'])
          .execute();
      }
      await db.schema
        .createTable('tracking_logged_model_metrics')
        .addColumn('model_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('key', 'varchar(250)', (c) => c.notNull())
        .addColumn('step', 'bigint', (c) => c.notNull())
        .addColumn('timestamp_ms', 'bigint', (c) => c.notNull())
        .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
        .addColumn('value', 'double precision', (c) => c.notNull())
        .addColumn('is_nan', 'integer', (c) => c.notNull())
        .addColumn('dataset_name', 'varchar(500)')
        .addColumn('dataset_digest', 'varchar(36)')
        .addPrimaryKeyConstraint('tracking_logged_model_metrics_pk', [
          'model_id',
          'key',
          'step',
          'timestamp_ms',
          'run_id',
        ])
        .execute();
      const now = Date.now();
      await db
        .insertInto('tracking_experiments')
        .values({
          experiment_id: Number(DEFAULT_EXPERIMENT_ID),
          name: DEFAULT_EXPERIMENT_NAME,
          artifact_path: DEFAULT_EXPERIMENT_ID,
          lifecycle_stage: 'active',
          creation_time: now,
          last_update_time: now,
        })
        .execute();
    },
  },
];
