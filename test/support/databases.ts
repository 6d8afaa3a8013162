/**
 * The databases a store suite runs against: SQLite always, PostgreSQL when one is reachable.
 * `SLIPWAY_TEST_POSTGRES_URL` names a server to use; otherwise, when PostgreSQL's binaries are
 * installed (Debian's `postgresql` package, as `.ci/run` installs), a throwaway cluster is started
 * on a free loopback port and removed after the suite.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestDatabase {
  dialect: 'sqlite' | 'postgres';
  /** A fresh, empty database for one test (SQLite file or PostgreSQL database). */
  fresh(): Promise<string>;
  stop(): Promise<void>;
}

export interface PostgresAvailability {
  url?: string;
  /** Why PostgreSQL suites are skipped, when they are. */
  skip?: string;
}

let counter = 0;

export async function sqliteDatabase(): Promise<TestDatabase> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-sqlite-'));
  return {
    dialect: 'sqlite',
    fresh: async () => join(dir, `db-${++counter}.sqlite`),
    stop: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A PostgreSQL server for this suite, or the reason there is none. */
export async function postgresDatabase(): Promise<TestDatabase | { skip: string }> {
  const url = process.env.SLIPWAY_TEST_POSTGRES_URL;
  if (url) return onServer(url, async () => undefined);
  const bin = postgresBin();
  if (!bin) {
    if (process.env.CI) throw new Error('PostgreSQL binaries are missing in CI; .ci/run installs them');
    return {
      skip: 'PostgreSQL is not installed (apt-get install postgresql) and SLIPWAY_TEST_POSTGRES_URL is unset',
    };
  }
  const cluster = await startCluster(bin);
  return onServer(cluster.url, cluster.stop);
}

async function onServer(adminUrl: string, stopServer: () => Promise<void>): Promise<TestDatabase> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const created: string[] = [];
  return {
    dialect: 'postgres',
    async fresh() {
      const name = `slipway_test_${process.pid}_${++counter}`;
      await admin.query(`CREATE DATABASE ${name}`);
      created.push(name);
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      return u.toString();
    },
    async stop() {
      for (const name of created) {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      }
      await admin.end();
      await stopServer();
    },
  };
}

function postgresBin(): string | undefined {
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const onPath = which.stdout.trim();
  if (which.status === 0 && onPath) return join(onPath, '..');
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'initdb'))) return join(base, v, 'bin');
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** initdb + postgres on a free port; PostgreSQL refuses to run as root, so root runs it as `postgres`. */
async function startCluster(bin: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  let uid: number | undefined;
  let gid: number | undefined;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error('running as root needs a `postgres` user to start PostgreSQL');
    uid = Number(id.stdout.trim());
    gid = Number(g.stdout.trim());
    await chown(dir, uid, gid);
    await chmod(dir, 0o700);
  }
  const opts = { uid, gid, encoding: 'utf8' as const };
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
    opts,
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const server = spawn(
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-h',
      '127.0.0.1',
      '-k',
      dir,
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
    ],
    { uid, gid, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  server.stderr.on('data', (c: Buffer) => {
    log += c.toString();
  });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch {
      await c.end().catch(() => undefined);
      if (server.exitCode !== null || Date.now() > deadline) {
        server.kill('SIGKILL');
        throw new Error(`PostgreSQL did not start: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    async stop() {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      if (server.exitCode === null) server.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
