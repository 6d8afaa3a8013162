import type { NamedMigration } from '../store/index.js';

/** The dataset tables, as Kysely sees them. Times are integer ms; JSON is text. */
export interface DatasetTables {
  datasets: {
    id: string;
    name: string;
    created_ms: number;
    /** Highest version number assigned; numbers are never reused. */
    last_number: number;
  };
  dataset_versions: {
    dataset_id: string;
    number: number;
    /** SHA-256 of the files' paths, sizes and digests (`canonicalManifest`): the version's identity. */
    digest: string;
    created_ms: number;
    creator: string;
    /** The manifest, JSON. */
    manifest: string;
    /** Tags, a JSON object. */
    tags: string;
    /** The profile of the version's tables, JSON; null until profiled. */
    profile: string | null;
  };
}

export const datasetMigrations: NamedMigration[] = [
  {
    name: '0300-datasets',
    async up(db) {
      await db.schema
        .createTable('datasets')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(256)', (c) => c.notNull().unique())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('last_number', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('dataset_versions')
        .addColumn('dataset_id', 'varchar(64)', (c) => c.notNull().references('datasets.id'))
        .addColumn('number', 'integer', (c) => c.notNull())
        .addColumn('digest', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('creator', 'varchar(256)', (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('tags', 'text', (c) => c.notNull())
        .addColumn('profile', 'text')
        .addPrimaryKeyConstraint('dataset_versions_pk', ['dataset_id', 'number'])
        .addUniqueConstraint('dataset_versions_digest', ['dataset_id', 'digest'])
        .execute();
    },
  },
];
