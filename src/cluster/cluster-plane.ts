/**
 * The data plane one serving process's transports see when several processes share the ports: its
 * own plane for inference and reads, with repository loads and unloads run on every process and
 * statistics summed over all of them, so any connection gets the server's answer.
 */

import {
  type DataPlane,
  type Parameters as ModelParameters,
  type ModelStats,
  type RepositoryDataPlane,
  type SharedMemoryRegion,
  withoutUploadedFiles,
} from '../inference/index.js';
import { mergeStatistics } from './merge.js';
import { type Peers, throwFirstFailure } from './peers.js';

export class ClusterDataPlane implements DataPlane {
  constructor(
    private readonly local: RepositoryDataPlane,
    private readonly peers: Peers,
  ) {}

  live() {
    return this.local.live();
  }
  ready() {
    return this.local.ready();
  }
  serverMetadata() {
    return this.local.serverMetadata();
  }
  modelMetadata(model: string, version?: string) {
    return this.local.modelMetadata(model, version);
  }
  modelReady(model: string, version?: string) {
    return this.local.modelReady(model, version);
  }
  modelConfig(model: string, version?: string) {
    return this.local.modelConfig(model, version);
  }
  infer(...args: Parameters<DataPlane['infer']>) {
    return this.local.infer(...args);
  }
  predictRecords(...args: Parameters<DataPlane['predictRecords']>) {
    return this.local.predictRecords(...args);
  }
  failed(...args: Parameters<DataPlane['failed']>) {
    this.local.failed(...args);
  }
  repositoryIndex(readyOnly: boolean) {
    return this.local.repositoryIndex(readyOnly);
  }
  get tracing() {
    return this.local.tracing;
  }

  get sharedMemory() {
    return this.local.sharedMemory;
  }

  /**
   * Registers on this process first (so a bad request fails as it would on one process), then on
   * every other one: any connection may carry the requests that use the region.
   */
  async registerSharedMemory(region: SharedMemoryRegion): Promise<void> {
    await this.local.registerSharedMemory(region);
    const results = await this.peers.ask({ kind: 'shm-register', region });
    if (results.some((r) => !r.ok)) {
      // Not registered anywhere, rather than on some processes: a retry then starts clean.
      await this.local.unregisterSharedMemory(region.name);
      await this.peers.ask({ kind: 'shm-unregister', name: region.name });
    }
    throwFirstFailure(results);
  }

  logSettings() {
    return this.local.logSettings();
  }
  logLevel() {
    return this.local.logLevel();
  }

  /** Checked and applied here, then the resulting level on every other process. */
  async updateLogSettings(patch: unknown) {
    const settings = await this.local.updateLogSettings(patch);
    throwFirstFailure(await this.peers.ask({ kind: 'log-level', level: this.local.logLevel() }));
    return settings;
  }

  traceSettings(model?: string) {
    return this.local.traceSettings(model);
  }

  /** Checked and applied here, then the scope's resulting settings on every other process. */
  async updateTraceSettings(model: string | undefined, patch: unknown) {
    const state = this.local.traceState(model, patch);
    throwFirstFailure(
      await this.peers.ask({ kind: 'trace-settings', ...(model !== undefined ? { model } : {}), state }),
    );
    return this.local.traceSettings(model);
  }

  async unregisterSharedMemory(name?: string): Promise<void> {
    await this.local.unregisterSharedMemory(name);
    throwFirstFailure(
      await this.peers.ask({ kind: 'shm-unregister', ...(name !== undefined ? { name } : {}) }),
    );
  }

  /**
   * Loads on this process and every other one; resolves when all serve the new versions. Model
   * files in the request are written once, here, and every process loads that folder; this
   * process removes it once none of its versions came from it.
   */
  async loadModel(model: string, parameters?: ModelParameters): Promise<void> {
    const upload = await this.local.stageUpload(model, parameters);
    if (upload === undefined) {
      const [, results] = await Promise.all([
        this.local.loadModel(model, parameters),
        this.peers.ask({ kind: 'load', model, ...(parameters ? { parameters } : {}) }),
      ]);
      throwFirstFailure(results);
      return;
    }
    const rest = withoutUploadedFiles(parameters!);
    // The peers load first: this process may remove the folder as soon as its own load settles.
    const results = await this.peers.ask({ kind: 'load', model, parameters: rest, upload });
    await this.local.loadModel(model, rest, { root: upload, owned: true });
    throwFirstFailure(results);
  }

  /** Unloads on every process; resolves when each one's in-flight requests have finished. */
  async unloadModel(model: string): Promise<void> {
    const [, results] = await Promise.all([
      this.local.unloadModel(model),
      this.peers.ask({ kind: 'unload', model }),
    ]);
    throwFirstFailure(results);
  }

  /**
   * Every process's statistics, summed. The local call runs first, so a request for an unknown
   * model fails as it would on one process; a peer that cannot answer is left out.
   */
  async statistics(model?: string, version?: string): Promise<ModelStats[]> {
    const own = await this.local.statistics(model, version);
    const results = await this.peers.ask({
      kind: 'statistics',
      ...(model !== undefined ? { model } : {}),
      ...(version !== undefined ? { version } : {}),
    });
    const lists = [own];
    for (const r of results) if (r.ok) lists.push(r.value as ModelStats[]);
    return mergeStatistics(lists);
  }
}
