/** The database layer on every dialect: migrations, transactions and value round trips. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { Database, type NamedMigration } from '../src/store/index.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';

const migrations: NamedMigration[] = [
  {
    name: '0001-things',
    async up(db) {
      await db.schema
        .createTable('things')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('created_ms', 'bigint', (c) => c.notNull())
        .addColumn('body', 'text')
        .execute();
    },
  },
];

for (const make of [sqliteDatabase, postgresDatabase]) {
  describe(`store on ${make === sqliteDatabase ? 'sqlite' : 'postgres'}`, () => {
    let server: TestDatabase | { skip: string };
    before(async () => {
      server = await make();
    });
    after(async () => {
      if ('stop' in server) await server.stop();
    });

    test('migrations run once, in order, and are recorded', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const url = await server.fresh();
      const db = await Database.open({ url });
      try {
        assert.deepEqual(await db.migrate(migrations), ['0001-things']);
        assert.deepEqual(await db.migrate(migrations), []);
        const more = [
          ...migrations,
          {
            name: '0002-more',
            up: async (k: any) => {
              await k.schema.alterTable('things').addColumn('extra', 'text').execute();
            },
          },
        ];
        assert.deepEqual(await db.migrate(more), ['0002-more']);
      } finally {
        await db.close();
      }
    });

    test('a failed transaction leaves nothing behind; big times come back as numbers', async (t) => {
      if ('skip' in server) return t.skip(server.skip);
      const db = await Database.open({ url: await server.fresh() });
      try {
        await db.migrate(migrations);
        const k = db.kysely;
        const big = 1_795_000_000_123;
        await k.insertInto('things').values({ id: 'a', created_ms: big, body: '{"x":1}' }).execute();
        await assert.rejects(
          db.transaction(async (trx) => {
            await trx.insertInto('things').values({ id: 'b', created_ms: 1, body: null }).execute();
            await trx.insertInto('things').values({ id: 'a', created_ms: 2, body: null }).execute();
          }),
        );
        const rows = await k.selectFrom('things').selectAll().execute();
        assert.deepEqual(rows, [{ id: 'a', created_ms: big, body: '{"x":1}' }]);
        const count = await k
          .selectFrom('things')
          .select(sql<number>`count(*)`.as('n'))
          .executeTakeFirstOrThrow();
        assert.equal(count.n, 1);
      } finally {
        await db.close();
      }
    });
  });
}
