import type { NamedMigration } from '../store/index.js';

/** The alert tables, as Kysely sees them. Times are integer ms; JSON is text; booleans are 0/1. */
export interface AlertTables {
  alert_rules: {
    id: string;
    name: string;
    model: string;
    version: string | null;
    expression: string;
    interval_ms: number;
    /** How long the condition must hold before the rule fires (0: at once). */
    for_ms: number;
    /** Drift reference: `training`, a dataset ref, or `window:<since>/<until>`; null for other metrics. */
    reference: string | null;
    /** JSON: [{url, secret?}]. */
    webhooks: string;
    /** JSON: {command, cwd?, timeoutMs?, env?} or null. */
    retrain: string | null;
    state: string;
    state_since_ms: number;
    last_value: number | null;
    last_eval_ms: number | null;
    /** Why the last evaluation had no value, or failed. */
    last_reason: string | null;
    created_ms: number;
  };
  /** State transitions (history), one per change. */
  alert_events: {
    id: string;
    rule_id: string;
    state: string;
    previous: string;
    value: number | null;
    threshold: number;
    window_start_ms: number;
    window_end_ms: number;
    at_ms: number;
    reason: string | null;
  };
  /** Webhook delivery attempts. */
  alert_deliveries: {
    id: string;
    event_id: string;
    rule_id: string;
    url: string;
    attempt: number;
    status: number | null;
    ok: number;
    error: string | null;
    at_ms: number;
    duration_ms: number;
  };
  /** Retraining commands started by a firing rule. */
  alert_runs: {
    id: string;
    rule_id: string;
    event_id: string;
    command: string;
    status: string;
    started_ms: number;
    finished_ms: number | null;
    exit_code: number | null;
    output_tail: string;
    /** The version the command pushed (tagged trigger=<id>), set as `challenger`. */
    model_version: number | null;
  };
}

export const alertMigrations: NamedMigration[] = [
  {
    name: '0410-alerts',
    async up(db) {
      await db.schema
        .createTable('alert_rules')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(256)', (c) => c.notNull().unique())
        .addColumn('model', 'varchar(256)', (c) => c.notNull())
        .addColumn('version', 'varchar(64)')
        .addColumn('expression', 'text', (c) => c.notNull())
        .addColumn('interval_ms', 'bigint', (c) => c.notNull())
        .addColumn('for_ms', 'bigint', (c) => c.notNull())
        .addColumn('reference', 'text')
        .addColumn('webhooks', 'text', (c) => c.notNull())
        .addColumn('retrain', 'text')
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('state_since_ms', 'bigint', (c) => c.notNull())
        .addColumn('last_value', 'double precision')
        .addColumn('last_eval_ms', 'bigint')
        .addColumn('last_reason', 'text')
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('alert_events')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('rule_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('state', 'varchar(16)', (c) => c.notNull())
        .addColumn('previous', 'varchar(16)', (c) => c.notNull())
        .addColumn('value', 'double precision')
        .addColumn('threshold', 'double precision', (c) => c.notNull())
        .addColumn('window_start_ms', 'bigint', (c) => c.notNull())
        .addColumn('window_end_ms', 'bigint', (c) => c.notNull())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('reason', 'text')
        .execute();
      await db.schema
        .createIndex('alert_events_rule')
        .on('alert_events')
        .columns(['rule_id', 'at_ms'])
        .execute();
      await db.schema
        .createTable('alert_deliveries')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('event_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('rule_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('status', 'integer')
        .addColumn('ok', 'integer', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('duration_ms', 'double precision', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('alert_deliveries_event')
        .on('alert_deliveries')
        .column('event_id')
        .execute();
      await db.schema
        .createTable('alert_runs')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('rule_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('event_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('command', 'text', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('started_ms', 'bigint', (c) => c.notNull())
        .addColumn('finished_ms', 'bigint')
        .addColumn('exit_code', 'integer')
        .addColumn('output_tail', 'text', (c) => c.notNull())
        .addColumn('model_version', 'integer')
        .execute();
      await db.schema
        .createIndex('alert_runs_rule')
        .on('alert_runs')
        .columns(['rule_id', 'started_ms'])
        .execute();
    },
  },
];
