/**
 * Wires the server together in one place, by plain constructor injection: settings → logger →
 * metrics → data plane → transports (REST, gRPC).
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { type Logger, pino } from 'pino';
import {
  ArtifactRepository,
  artifactMigrations,
  type BlobStore,
  FolderBlobStore,
  openS3BlobStore,
} from './artifacts/index.js';
import { isLoopback, TokenStore, tokenMigrations } from './auth/index.js';
import { ClusterDataPlane, type Peers, type RepositoryOp } from './cluster/index.js';
import type { Settings } from './config/index.js';
import { Datasets, datasetMigrations, Quarantine, quarantineMigrations, TableProfile } from './data/index.js';
import { SlipwayError } from './errors/index.js';
import {
  type DataPlane,
  FolderModelSource,
  RepositoryDataPlane,
  ResponseCache,
  Tracer,
} from './inference/index.js';
import { ServingMetrics } from './metrics/index.js';
import { alertMigrations } from './monitoring/alert-migrations.js';
import { AlertEngine, MonitoringMetrics } from './monitoring/alerts/index.js';
import { ModelGauges, Monitoring, monitoringMigrations, PredictionLog } from './monitoring/index.js';
import { Registry, registryMigrations } from './registry/index.js';
import { adminRoutes } from './server/admin/index.js';
import { type ApiServer, buildApiServer } from './server/api/index.js';
import { type GrpcServer, startGrpcServer } from './server/grpc/index.js';
import { type RunningHttpServer, startHttpServer } from './server/index.js';
import { mlflowPlugin, mlflowRegistryRoutes } from './server/mlflow/index.js';
import { alertRoutes, monitoringRoutes } from './server/monitoring/index.js';
import { tokenRoutes } from './server/tokens/index.js';
import { createInputPolicy, RegistryModelSource, RegistryWatcher } from './serving/index.js';
import { Database, type NamedMigration } from './store/index.js';
import { Tracking, trackingMigrations } from './tracking/index.js';

export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface App {
  settings: Readonly<Settings>;
  plane: RepositoryDataPlane;
  /** The registry's database: SQLite under the data dir, or PostgreSQL. */
  db: Database;
  artifacts: ArtifactRepository;
  tokens: TokenStore;
  registry: Registry;
  tracking: Tracking;
  /** Request rows set aside by models in `quarantine` mode. */
  quarantine: Quarantine;
  /** The prediction log (absent when `predictionLog` is off). */
  predictions?: PredictionLog;
  /** What the log holds, read back: predictions, feedback, performance, window profiles. */
  monitoring: Monitoring;
  /** Each model's quality, drift and cost figures for /metrics, recomputed on a schedule. */
  gauges: ModelGauges;
  /** Alert rules, evaluated on a schedule; webhooks and retraining commands. */
  alerts: AlertEngine;
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
  /**
   * The other serving processes sharing this one's ports (`slipway serve --workers N`): repository
   * loads and unloads reach them all, and statistics and /metrics cover them all.
   */
  peers?: Peers;
  /**
   * Repository loads and unloads to repeat before listening: a replacement serving process
   * catches up with what its peers were asked since they started.
   */
  replay?: readonly RepositoryOp[];
}

/** Every capability's schema changes, in the order they run. */
export const MIGRATIONS: readonly NamedMigration[] = [
  ...tokenMigrations,
  ...artifactMigrations,
  ...registryMigrations,
  ...trackingMigrations,
  ...datasetMigrations,
  ...quarantineMigrations,
  ...monitoringMigrations,
  ...alertMigrations,
];

export interface Store {
  db: Database;
  blobs: BlobStore;
  artifacts: ArtifactRepository;
  close(): Promise<void>;
}

/**
 * Opens the database (SQLite under the data dir, or PostgreSQL) with every migration applied,
 * and the artifact store. The server and the CLI commands that work on the store share it.
 */
export async function openStore(settings: Readonly<Settings>): Promise<Store> {
  const db = await Database.open({ url: settings.databaseUrl ?? join(settings.dataDir, 'slipway.db') });
  try {
    await db.migrate(MIGRATIONS);
  } catch (err) {
    await db.close();
    throw err;
  }
  let blobs: BlobStore;
  try {
    blobs = await openBlobStore(settings);
  } catch (err) {
    await db.close();
    throw err;
  }
  const artifacts = new ArtifactRepository(db, blobs);
  return {
    db,
    blobs,
    artifacts,
    async close() {
      await blobs.close();
      await db.close();
    },
  };
}

/** S3 when a bucket is set (checked at start-up, so a wrong bucket or key fails fast), else a folder. */
async function openBlobStore(settings: Readonly<Settings>): Promise<BlobStore> {
  if (settings.s3Bucket === null) return new FolderBlobStore(join(settings.dataDir, 'artifacts'));
  return openS3BlobStore({
    bucket: settings.s3Bucket,
    prefix: settings.s3Prefix,
    endpoint: settings.s3Endpoint ?? undefined,
    region: settings.s3Region,
    accessKeyId: settings.s3AccessKeyId ?? undefined,
    secretAccessKey: settings.s3SecretAccessKey ?? undefined,
    forcePathStyle: settings.s3ForcePathStyle,
    cacheDir: join(settings.dataDir, 's3-cache'),
  });
}

/** Refuses a non-loopback address without auth, unless `insecure` says it is meant. */
export function checkExposure(settings: Readonly<Settings>): void {
  if (settings.auth === 'none' && !settings.insecure && !isLoopback(settings.host)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_CONFIG',
      `refusing to listen on ${settings.host} without auth: use --auth token (create tokens with \`slipway tokens create\`), or pass --insecure`,
    );
  }
}

/**
 * @example
 *   const app = await startApp(loadSettings({ flags: { models: './models', port: 0 } }));
 *   console.log(app.http.url);
 *   await app.close();
 */
export async function startApp(settings: Readonly<Settings>, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? pino({ level: settings.logLevel }, pino.destination(2));
  checkExposure(settings);
  const { db, blobs, artifacts } = await openStore(settings);
  const tokens = new TokenStore(db, { cacheMs: settings.registryPollMs });
  const auth = settings.auth === 'token';
  const datasets = new Datasets(db, artifacts);
  const registry = new Registry(db, artifacts, {
    servingAlias: settings.servingAlias,
    datasetExists: (ref) => datasets.exists(ref),
  });
  const tracking = new Tracking(db, artifacts);
  const monitoring = new Monitoring(
    db,
    { cpuHour: settings.cpuHourPrice, gpuHour: settings.gpuHourPrice },
    {
      trainingData: async (model, version) =>
        (await registry.getVersion(model, Number(version)).catch(() => undefined))?.trainingData.find(
          (d) => !d.uri,
        )?.ref,
      tables: (ref) => datasets.tables(ref),
      profile: async (ref) => {
        const stored = (await datasets.show(ref)).profile as Record<string, unknown> | null;
        const parts = Object.values(stored ?? {}).map((p) => TableProfile.fromJSON(p));
        const [first, ...rest] = parts;
        for (const p of rest) first!.merge(p);
        return first;
      },
    },
    (model) => plane?.manager.configOf(model),
  );
  const alerts = new AlertEngine(db, {
    metrics: new MonitoringMetrics({ monitoring, registry, datasets }),
    registry,
    logger,
    environment: { dataDir: settings.dataDir, databaseUrl: settings.databaseUrl },
  });
  const plugins: FastifyPluginAsync[] = [
    tokenRoutes(tokens),
    monitoringRoutes(monitoring),
    alertRoutes(alerts),
    adminRoutes(registry),
    mlflowPlugin({
      tracking,
      artifacts,
      registryRoutes: mlflowRegistryRoutes({
        registry,
        resolveSource: (source, modelId) => tracking.resolveModelSource(source, modelId),
        loggedModelRun: async (modelId) => (await tracking.getLoggedModel(modelId)).info.sourceRunId,
      }),
    }),
  ];
  const api = await buildApiServer({
    logger,
    version: VERSION,
    bodyLimit: settings.maxRequestBytes,
    plugins,
    ...(auth
      ? {
          authenticate: (req, scope) =>
            Promise.resolve(tokens.authenticate(req.headers.authorization, scope)),
        }
      : {}),
  });
  const catalog = registry.servingCatalog();
  const registrySource = new RegistryModelSource(catalog, settings.servingAlias);
  let plane: RepositoryDataPlane | undefined;
  const metrics = new ServingMetrics(() => plane?.manager.loadGauges() ?? [], {
    processMetrics: options.processMetrics ?? true,
  });
  const quarantine = new Quarantine(db);
  const predictions = settings.predictionLog
    ? new PredictionLog(db, {
        flushMs: settings.predictionFlushMs,
        queueMax: settings.predictionQueueMax,
        retentionDays: settings.predictionRetentionDays,
        logger,
        databaseUrl: settings.databaseUrl ?? join(settings.dataDir, 'slipway.db'),
      })
    : undefined;
  if (predictions) metrics.attachPredictionLog(() => predictions.stats);
  metrics.attachAlerts(() => alerts.states());
  const responseCache =
    settings.responseCacheBytes > 0 ? new ResponseCache(settings.responseCacheBytes) : undefined;
  if (responseCache) {
    metrics.attachResponseCache(() => ({
      bytes: responseCache.usedBytes,
      entries: responseCache.size,
      evictions: responseCache.evictions,
    }));
  }
  plane = new RepositoryDataPlane({
    // A folder model shadows a registered model of the same name.
    sources: [...(settings.models === null ? [] : [new FolderModelSource(settings.models)]), registrySource],
    logger,
    metrics,
    serverVersion: VERSION,
    createPolicy: createInputPolicy,
    quarantine,
    ...(predictions ? { predictions } : {}),
    allowClientShm: settings.allowClientShm,
    ...(responseCache ? { responseCache } : {}),
    tracer: new Tracer({
      // Serving processes sharing the ports write files of their own: `<file>.w<process>`.
      file:
        settings.traceFile === null
          ? ''
          : cluster.worker
            ? `${settings.traceFile}.w${cluster.worker.id}`
            : settings.traceFile,
      level: settings.traceLevel,
      rate: settings.traceRate,
      count: settings.traceCount,
      logFrequency: settings.traceLogFrequency,
      onWriteError: (err, path) =>
        logger.warn({ path, err: err.message }, 'a trace file could not be written'),
    }),
  });
  const p = plane;
  await p.start();
  for (const op of options.replay ?? []) {
    try {
      if (op.kind === 'load')
        await p.loadModel(
          op.model,
          op.parameters,
          op.upload !== undefined ? { root: op.upload, owned: false } : undefined,
        );
      else if (op.kind === 'unload') await p.unloadModel(op.model);
      else if (op.kind === 'shm-register') await p.registerSharedMemory(op.region);
      else if (op.kind === 'shm-unregister') await p.unregisterSharedMemory(op.name);
      else if (op.kind === 'trace-settings') p.tracer.replace(op.model, op.state);
      else logger.level = op.level;
    } catch (err) {
      logger.warn({ op, err }, 'repeating a repository or shared memory change failed');
    }
  }
  predictions?.start();
  const gauges = new ModelGauges(monitoring, {
    models: () => [...new Set(p.manager.allVersions().map((v) => v.model))],
    refreshMs: settings.monitoringRefreshMs,
    logger,
  });
  metrics.attachModelGauges(() => gauges.current);
  gauges.start();
  const watcher = new RegistryWatcher(catalog, p.manager, registrySource, {
    pollMs: settings.registryPollMs,
    logger,
  });
  await watcher.start();
  const { peers } = options;
  const served: DataPlane = peers ? new ClusterDataPlane(p, peers) : p;
  if (peers) {
    metrics.attachPeers(peers.worker, async () =>
      (await peers.ask({ kind: 'metrics' })).flatMap((r) =>
        r.ok ? [{ worker: r.worker, text: r.value as string }] : [],
      ),
    );
  }
  const http = await startHttpServer(served, {
    host: settings.host,
    port: settings.port,
    maxRequestBytes: settings.maxRequestBytes,
    logger,
    metrics,
    modelConfig: (m) => p.manager.configOf(m),
    fallback: api.handle,
    ...(auth ? { authorize: (req, scope) => tokens.authenticate(req.headers.authorization, scope) } : {}),
  });
  let grpc: GrpcServer | undefined;
  try {
    if (settings.grpcPort !== null) {
      grpc = await startGrpcServer(served, {
        host: settings.host,
        port: settings.grpcPort,
        maxMessageBytes: settings.maxRequestBytes,
        logger,
        ...(auth ? { authorize: (header, scope) => tokens.authenticate(header, scope) } : {}),
      });
    }
  } catch (err) {
    await http.close(0);
    await watcher.stop();
    await p.close();
    await predictions?.close();
    await api.close();
    await blobs.close();
    await db.close();
    throw err;
  }
  alerts.setEnvironment({ url: http.url });
  alerts.start();
  let closing: Promise<void> | undefined;
  return {
    settings,
    plane: p,
    db,
    artifacts,
    tokens,
    registry,
    tracking,
    quarantine,
    predictions,
    monitoring,
    gauges,
    alerts,
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
        await watcher.stop();
        await alerts.stop();
        await p.close();
        await gauges.stop();
        // Every answered request is queued by now: write them all before the store closes.
        await predictions?.close();
        await api.close();
        await blobs.close();
        await db.close();
      })();
      return closing;
    },
  };
}
