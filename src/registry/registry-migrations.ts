import type { NamedMigration } from '../store/index.js';

/** The registry's tables, as Kysely sees them. Times are integer ms; JSON is text. */
export interface RegistryTables {
  registry_models: {
    id: string;
    name: string;
    description: string;
    creator: string;
    created_ms: number;
    updated_ms: number;
    /** Highest version number ever assigned; numbers are never reused, even after a delete. */
    last_version: number;
    /** Model card sections, a JSON object keyed by section. */
    card: string;
    card_updated_ms: number | null;
    card_updated_by: string | null;
  };
  registry_model_tags: { model_id: string; key: string; value: string };
  registry_versions: {
    model_id: string;
    version: number;
    status: string;
    description: string;
    creator: string;
    created_ms: number;
    updated_ms: number;
    source: string;
    run_id: string | null;
    run_link: string | null;
    logged_model_id: string | null;
    stage: string;
    /** The version's own immutable folder: `registry/<name>/<version>`. */
    artifact_path: string;
    /** The ONNX file, relative to `artifact_path`; null when the folder holds none. */
    model_file: string | null;
    model_sha256: string | null;
    model_size: number | null;
    signature: string | null;
    metrics: string;
  };
  registry_version_tags: { model_id: string; version: number; key: string; value: string };
  registry_version_datasets: {
    model_id: string;
    version: number;
    role: string;
    position: number;
    ref: string;
    dataset_name: string | null;
    dataset_version: string | null;
    uri: string | null;
  };
  registry_aliases: {
    model_id: string;
    alias: string;
    version: number;
    updated_ms: number;
    updated_by: string;
  };
  registry_alias_history: {
    seq: number;
    model_id: string;
    model_name: string;
    alias: string;
    from_version: number | null;
    to_version: number | null;
    actor: string;
    at_ms: number;
  };
  registry_audit: {
    seq: number;
    at_ms: number;
    actor: string;
    action: string;
    target: string;
    model_name: string | null;
    version: number | null;
    alias: string | null;
    details: string;
  };
  /** One row: the last change sequence number handed out. */
  registry_state: { id: number; change_seq: number };
}

export const registryMigrations: NamedMigration[] = [
  {
    name: '0100-registry',
    async up(db) {
      await db.schema
        .createTable('registry_models')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(256)', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('creator', 'varchar(256)', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .addColumn('last_version', 'integer', (c) => c.notNull())
        .addColumn('card', 'text', (c) => c.notNull())
        .addColumn('card_updated_ms', 'bigint')
        .addColumn('card_updated_by', 'varchar(256)')
        .execute();
      await db.schema
        .createTable('registry_model_tags')
        .addColumn('model_id', 'varchar(36)', (c) =>
          c.notNull().references('registry_models.id').onDelete('cascade'),
        )
        .addColumn('key', 'varchar(250)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_model_tags_pk', ['model_id', 'key'])
        .execute();
      await db.schema
        .createTable('registry_versions')
        .addColumn('model_id', 'varchar(36)', (c) =>
          c.notNull().references('registry_models.id').onDelete('cascade'),
        )
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('creator', 'varchar(256)', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('run_id', 'varchar(64)')
        .addColumn('run_link', 'text')
        .addColumn('logged_model_id', 'varchar(64)')
        .addColumn('stage', 'varchar(32)', (c) => c.notNull())
        .addColumn('artifact_path', 'varchar(1024)', (c) => c.notNull())
        .addColumn('model_file', 'varchar(1024)')
        .addColumn('model_sha256', 'char(64)')
        .addColumn('model_size', 'bigint')
        .addColumn('signature', 'text')
        .addColumn('metrics', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_versions_pk', ['model_id', 'version'])
        .execute();
      await db.schema
        .createIndex('registry_versions_run_id')
        .on('registry_versions')
        .column('run_id')
        .execute();
      await db.schema
        .createTable('registry_version_tags')
        .addColumn('model_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('key', 'varchar(250)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_version_tags_pk', ['model_id', 'version', 'key'])
        .addForeignKeyConstraint(
          'registry_version_tags_fk',
          ['model_id', 'version'],
          'registry_versions',
          ['model_id', 'version'],
          (c) => c.onDelete('cascade'),
        )
        .execute();
      await db.schema
        .createTable('registry_version_datasets')
        .addColumn('model_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('role', 'varchar(16)', (c) => c.notNull())
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('ref', 'text', (c) => c.notNull())
        .addColumn('dataset_name', 'varchar(256)')
        .addColumn('dataset_version', 'varchar(256)')
        .addColumn('uri', 'text')
        .addPrimaryKeyConstraint('registry_version_datasets_pk', ['model_id', 'version', 'role', 'position'])
        .addForeignKeyConstraint(
          'registry_version_datasets_fk',
          ['model_id', 'version'],
          'registry_versions',
          ['model_id', 'version'],
          (c) => c.onDelete('cascade'),
        )
        .execute();
      await db.schema
        .createIndex('registry_version_datasets_name')
        .on('registry_version_datasets')
        .columns(['dataset_name', 'dataset_version'])
        .execute();
      await db.schema
        .createTable('registry_aliases')
        .addColumn('model_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('alias', 'varchar(64)', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('updated_ms', 'bigint', (c) => c.notNull())
        .addColumn('updated_by', 'varchar(256)', (c) => c.notNull())
        .addPrimaryKeyConstraint('registry_aliases_pk', ['model_id', 'alias'])
        .addForeignKeyConstraint(
          'registry_aliases_fk',
          ['model_id', 'version'],
          'registry_versions',
          ['model_id', 'version'],
          (c) => c.onDelete('cascade'),
        )
        .execute();
      // History and audit outlive the model they describe: no foreign keys.
      await db.schema
        .createTable('registry_alias_history')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('model_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('model_name', 'varchar(256)', (c) => c.notNull())
        .addColumn('alias', 'varchar(64)', (c) => c.notNull())
        .addColumn('from_version', 'integer')
        .addColumn('to_version', 'integer')
        .addColumn('actor', 'varchar(256)', (c) => c.notNull())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('registry_alias_history_model')
        .on('registry_alias_history')
        .columns(['model_id', 'alias'])
        .execute();
      await db.schema
        .createTable('registry_audit')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'varchar(256)', (c) => c.notNull())
        .addColumn('action', 'varchar(64)', (c) => c.notNull())
        .addColumn('target', 'varchar(1024)', (c) => c.notNull())
        .addColumn('model_name', 'varchar(256)')
        .addColumn('version', 'integer')
        .addColumn('alias', 'varchar(64)')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('registry_audit_model').on('registry_audit').column('model_name').execute();
      await db.schema.createIndex('registry_audit_at').on('registry_audit').column('at_ms').execute();
      await db.schema
        .createTable('registry_state')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('change_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.insertInto('registry_state').values({ id: 1, change_seq: 0 }).execute();
    },
  },
];
