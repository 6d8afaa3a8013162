/**
 * Wires the server together in one place, by plain constructor injection: settings → logger →
 * metrics → data plane → transports (REST, gRPC).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { type Logger, pino } from 'pino';
import {
  ArtifactRepository,
  artifactMigrations,
  type BlobStore,
  FolderBlobStore,
} from './artifacts/index.js';
import type { Settings } from './config/index.js';
import { FolderModelSource, RepositoryDataPlane } from './inference/index.js';
import { ServingMetrics } from './metrics/index.js';
import { type ApiServer, buildApiServer } from './server/api/index.js';
import { type GrpcServer, startGrpcServer } from './server/grpc/index.js';
import { type RunningHttpServer, startHttpServer } from './server/index.js';
import { Database, type NamedMigration } from './store/index.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface App {
  settings: Readonly<Settings>;
  plane: RepositoryDataPlane;
  /** The registry's database: SQLite under the data dir, or PostgreSQL. */
  db: Database;
  artifacts: ArtifactRepository;
  api: ApiServer;
  metrics: ServingMetrics;
  http: RunningHttpServer;
  grpc?: GrpcServer;
  logger: Logger;
  /** Refuses new work, drains in-flight requests (up to the grace period), frees every model. */
  close(): Promise<void>;
}

export interface AppOptions {
  logger?: Logger;
  /** Process-wide metrics (CPU, memory, event loop) in /metrics; off in tests that start many apps. */
  processMetrics?: boolean;
}

/**
 * @example
 *   const app = await startApp(loadSettings({ flags: { models: './models', port: 0 } }));
 *   console.log(app.http.url);
 *   await app.close();
 */
export async function startApp(settings: Readonly<Settings>, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? pino({ level: settings.logLevel }, pino.destination(2));
  const db = await Database.open({ url: settings.databaseUrl ?? join(settings.dataDir, 'slipway.db') });
  const migrations: NamedMigration[] = [...artifactMigrations];
  await db.migrate(migrations);
  const blobs: BlobStore = new FolderBlobStore(join(settings.dataDir, 'artifacts'));
  const artifacts = new ArtifactRepository(db, blobs);
  const plugins: FastifyPluginAsync[] = [];
  const api = await buildApiServer({
    logger,
    version: VERSION,
    bodyLimit: settings.maxRequestBytes,
    plugins,
  });
  let plane: RepositoryDataPlane | undefined;
  const metrics = new ServingMetrics(() => plane?.manager.loadGauges() ?? [], {
    processMetrics: options.processMetrics ?? true,
  });
  plane = new RepositoryDataPlane({
    sources: settings.models === null ? [] : [new FolderModelSource(settings.models)],
    logger,
    metrics,
    serverVersion: VERSION,
  });
  const p = plane;
  await p.start();
  const http = await startHttpServer(p, {
    host: settings.host,
    port: settings.port,
    maxRequestBytes: settings.maxRequestBytes,
    logger,
    metrics,
    modelConfig: (m) => p.manager.configOf(m),
    fallback: api.handle,
  });
  let grpc: GrpcServer | undefined;
  try {
    if (settings.grpcPort !== null) {
      grpc = await startGrpcServer(p, {
        host: settings.host,
        port: settings.grpcPort,
        maxMessageBytes: settings.maxRequestBytes,
        logger,
      });
    }
  } catch (err) {
    await http.close(0);
    await p.close();
    await api.close();
    await blobs.close();
    await db.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    settings,
    plane: p,
    db,
    artifacts,
    api,
    metrics,
    http,
    grpc,
    logger,
    close() {
      closing ??= (async () => {
        p.beginDrain();
        await Promise.all([http.close(settings.shutdownGraceMs), grpc?.close(settings.shutdownGraceMs)]);
        // Past the grace period nobody waits for queued work any more; only running batches finish.
        p.rejectQueued();
        await p.close();
        await api.close();
        await blobs.close();
        await db.close();
      })();
      return closing;
    },
  };
}
