/** The database layer on every dialect: migrations, transactions and value round trips. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** Runs `script` (an ES module) in `count` processes at once; resolves with their stdout. */
function atOnce(count: number, script: string): Promise<string[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<string>((resolve, reject) =>
          execFile(process.execPath, ['--input-type=module', '-e', script], (err, out, stderr) =>
            err ? reject(new Error(stderr || err.message)) : resolve(out),
          ),
        ),
    ),
  );
}

test('processes migrating one new SQLite file take turns, even through slow ALTER TABLE steps', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-turns-'));
  const store = new URL('../src/store/index.js', import.meta.url).href;
  // Each step pauses before its DDL, so without a lock held across the whole migration every
  // process reads the same pending steps and runs them: the later ALTER fails as a duplicate column.
  const script = `
    const { Database } = await import(${JSON.stringify(store)});
    const { sql } = await import('kysely');
    const pause = () => new Promise((r) => setTimeout(r, 150));
    const db = await Database.open({ url: ${JSON.stringify(join(dir, 'slipway.db'))} });
    const ran = await db.migrate([
      { name: '0001-table', up: async (k) => { await pause(); await k.schema.createTable('t').addColumn('a', 'integer').execute(); } },
      { name: '0002-column', up: async (k) => { await pause(); await k.schema.alterTable('t').addColumn('b', 'text').execute(); } },
      { name: '0003-row', up: async (k) => { await pause(); await sql\`insert into t (a, b) values (1, 'x')\`.execute(k); } },
    ]);
    await db.close();
    process.stdout.write(JSON.stringify(ran));
  `;
  try {
    const ran = (await atOnce(3, script)).map((out) => JSON.parse(out) as string[]);
    // One process ran every step; the others found nothing left to do.
    assert.deepEqual(ran.map((r) => r.length).sort(), [0, 0, 3]);
    const db = await Database.open({ url: join(dir, 'slipway.db') });
    try {
      const rows = await sql<{ a: number; b: string }>`select a, b from t`.execute(db.kysely);
      assert.deepEqual(rows.rows, [{ a: 1, b: 'x' }]);
    } finally {
      await db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('several processes opening one new SQLite store at once all migrate it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-race-'));
  const app = new URL('../src/app.js', import.meta.url).href;
  const config = new URL('../src/config/index.js', import.meta.url).href;
  const script = `
    const { openStore } = await import(${JSON.stringify(app)});
    const { loadSettings } = await import(${JSON.stringify(config)});
    const store = await openStore(loadSettings({ flags: { dataDir: ${JSON.stringify(dir)} } }));
    await store.close();
  `;
  try {
    await atOnce(4, script);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
