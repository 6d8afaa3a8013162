/**
 * `slipway serve`: one serving process, or (`--workers N`) a supervisor and N serving processes
 * sharing the ports, each a full server on the same store.
 */
import cluster from 'node:cluster';
import { pino } from 'pino';
import { checkExposure, openStore, startApp, VERSION } from '../app.js';
import { ProcessPeers, type ReadyReport, runSupervisor } from '../cluster/index.js';
import type { Settings } from '../config/index.js';
import type { RepositoryEntry } from '../inference/index.js';
import { settle } from './settle.js';
import { closeOnSignals } from './signals.js';

interface Banner extends ReadyReport {
  workers?: number;
}

export async function serve(settings: Readonly<Settings>): Promise<void> {
  if (cluster.isWorker) return serveAsWorker(settings);
  if (settings.workers > 1) return superviseWorkers(settings);
  const app = await startApp(settings);
  closeOnSignals(app);
  const index = await app.plane.repositoryIndex(false);
  printBanner(settings, {
    url: app.http.url,
    grpcPort: app.grpc?.port ?? null,
    ...summarize(index),
  });
}

function summarize(index: readonly RepositoryEntry[]): { ready: number; problems: string[] } {
  return {
    ready: index.filter((e) => e.state === 'READY').length,
    problems: index
      .filter((e) => e.state !== 'READY')
      .map((e) => `${e.name}${e.version ? ` v${e.version}` : ''} ${e.state}: ${e.reason}`),
  };
}

function printBanner(settings: Readonly<Settings>, b: Banner): void {
  process.stdout.write(
    `Slipway ${VERSION} serving ${b.ready} model version(s)${settings.models ? ` (repository ${settings.models} and the registry)` : ' from the registry'}\n` +
      `  data  ${settings.databaseUrl ? 'PostgreSQL' : settings.dataDir}\n` +
      `  REST  ${b.url}\n` +
      (b.grpcPort !== null ? `  gRPC  ${settings.host}:${b.grpcPort}\n` : '') +
      (b.workers ? `  workers  ${b.workers} serving processes\n` : ''),
  );
  for (const p of b.problems) process.stdout.write(`  ! ${p}\n`);
}

/** The supervising process: migrations once, then the serving processes. */
async function superviseWorkers(settings: Readonly<Settings>): Promise<void> {
  checkExposure(settings);
  const logger = pino({ level: settings.logLevel }, pino.destination(2));
  // Migrations run here once, before the serving processes open the store together.
  await (await openStore(settings)).close();
  const supervisor = await runSupervisor({
    workers: settings.workers,
    graceMs: settings.shutdownGraceMs,
    logger,
    onReady: (report) => printBanner(settings, { ...report, workers: settings.workers }),
  });
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    void supervisor.stop(reason).then(async (code) => {
      await settle();
      process.exit(code);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** A forked serving process: a full server whose control operations reach its peers. */
async function serveAsWorker(settings: Readonly<Settings>): Promise<void> {
  const worker = cluster.worker!;
  const peers = new ProcessPeers(String(worker.id));
  const app = await startApp(settings, { peers, replay: await peers.replay() });
  peers.serve(async (op) => {
    switch (op.kind) {
      case 'load':
        return app.plane.loadModel(
          op.model,
          op.parameters,
          op.upload !== undefined ? { root: op.upload, owned: false } : undefined,
        );
      case 'unload':
        return app.plane.unloadModel(op.model);
      case 'statistics':
        return app.plane.statistics(op.model, op.version);
      case 'shm-register':
        return app.plane.registerSharedMemory(op.region);
      case 'shm-unregister':
        return app.plane.unregisterSharedMemory(op.name);
      case 'log-level':
        app.logger.level = op.level;
        return;
      case 'trace-settings':
        app.plane.tracer.replace(op.model, op.state);
        return;
      case 'metrics':
        return app.metrics.renderOwn();
    }
  });
  const stop = closeOnSignals(app);
  peers.onShutdown(() => stop('the supervisor asked'));
  // Without its supervisor no new connection reaches this process: drain and go. Node's cluster
  // code exits at once on a disconnect it did not ask for, unless told it was expected; this
  // listener runs before that check.
  worker.once('disconnect', () => {
    worker.exitedAfterDisconnect = true;
    stop('the supervisor is gone');
  });
  const index = await app.plane.repositoryIndex(false);
  peers.ready({ url: app.http.url, grpcPort: app.grpc?.port ?? null, ...summarize(index) });
}
