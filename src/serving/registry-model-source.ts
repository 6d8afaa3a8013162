import type { Logger } from 'pino';
import { SlipwayError } from '../errors/index.js';
import {
  isValidModelName,
  type ModelManager,
  type ModelOnDisk,
  type ModelSource,
  type PolicyFiles,
  resolveModelConfig,
} from '../inference/index.js';

/** What serving needs to know about one registered model. */
export interface ServingView {
  name: string;
  /** Every version, ascending, with the local file ONNX Runtime loads. */
  versions: {
    version: number;
    file: () => Promise<string>;
    /** The version's schema.json and steps.json, if it carries them. */
    extras?: () => Promise<PolicyFiles>;
  }[];
  /** alias → version. */
  aliases: Record<string, number>;
  /** Serving configuration (Triton-style config.json fields), if the model carries one. */
  config?: unknown;
}

/** The registry as serving sees it: names, one model's view, and change notices. */
export interface ServingCatalog {
  /** Registered models that have at least one version. */
  modelNames(): Promise<string[]>;
  /** Undefined when no such registered model exists. */
  view(name: string): Promise<ServingView | undefined>;
  /** In-process notice that a model's versions or aliases changed. Returns an unsubscribe. */
  onChange(listener: (name: string) => void): () => void;
  /** Models changed since a cursor (by any replica), and the new cursor; for polling. */
  changesSince(cursor: number): Promise<{ names: string[]; cursor: number }>;
}

/**
 * Registered models as a model source. `/v2/models/{name}` serves the version the serving alias
 * names (the latest version when no alias is set); every aliased version and the latest are
 * loaded, so each is addressable as `/v2/models/{name}/versions/{n}`.
 */
export class RegistryModelSource implements ModelSource {
  readonly label = 'registry';

  constructor(
    private readonly catalog: ServingCatalog,
    private readonly servingAlias: string,
  ) {}

  async list(): Promise<string[]> {
    const names = await this.catalog.modelNames();
    return names.filter(isValidModelName);
  }

  async read(name: string, overrideConfig?: unknown): Promise<ModelOnDisk> {
    const view = isValidModelName(name) ? await this.catalog.view(name) : undefined;
    if (!view) throw new SlipwayError('SLIPWAY_ERR_MODEL_NOT_FOUND', `no model '${name}' in the registry`);
    if (view.versions.length === 0) {
      throw new SlipwayError('SLIPWAY_ERR_MODEL_LOAD', `registered model '${name}' has no versions yet`);
    }
    const config = resolveModelConfig(name, overrideConfig ?? view.config);
    const latest = view.versions[view.versions.length - 1]!.version;
    const target = view.aliases[this.servingAlias] ?? latest;
    const wanted = new Set<number>([latest, target, ...Object.values(view.aliases)]);
    const versions = [];
    for (const v of view.versions) {
      if (!wanted.has(v.version)) continue;
      const policy = await v.extras?.();
      const has = policy && (policy.schema !== undefined || policy.steps !== undefined);
      versions.push(
        has
          ? { version: v.version, path: await v.file(), policy }
          : { version: v.version, path: await v.file() },
      );
    }
    return { name, config, versions, defaultVersion: target };
  }
}

/**
 * Keeps served registry models in step with the registry: an alias move or a new version
 * reloads that model (the new version loads beside the old, takes traffic when ready, the old
 * drains), a deleted model is unloaded. Changes made by other replicas arrive by polling.
 */
export class RegistryWatcher {
  private cursor = 0;
  private timer?: NodeJS.Timeout;
  private unsubscribe?: () => void;
  private polling?: Promise<void>;
  private readonly running = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, Promise<void>>();
  private readonly lastStart = new Map<string, number>();
  private readonly minGapMs: number;

  constructor(
    private readonly catalog: ServingCatalog,
    private readonly manager: ModelManager,
    private readonly source: RegistryModelSource,
    private readonly options: { pollMs: number; logger: Logger; minReloadGapMs?: number },
  ) {
    this.minGapMs = options.minReloadGapMs ?? 250;
  }

  async start(): Promise<void> {
    this.cursor = (await this.catalog.changesSince(Number.MAX_SAFE_INTEGER)).cursor;
    this.unsubscribe = this.catalog.onChange((name) => {
      void this.refresh(name);
    });
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => {
        this.polling = undefined;
      });
    }, this.options.pollMs);
    this.timer.unref();
  }

  /**
   * Reloads one model from the registry; resolves when the new state serves. A burst of changes
   * costs at most one reload in progress and one queued after it (starting at least
   * `minReloadGapMs` after the previous one): the queued one reads the registry when it starts,
   * so it sees every change made before then.
   */
  refresh(name: string): Promise<void> {
    const queued = this.queued.get(name);
    if (queued) return queued;
    const previous = this.running.get(name) ?? Promise.resolve();
    const next = previous.then(async () => {
      // Reloads of one model start at most every minReloadGapMs: a burst of registrations
      // loads the newest state a few times, not once per version.
      const wait = (this.lastStart.get(name) ?? 0) + this.minGapMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.lastStart.set(name, performance.now());
      this.queued.delete(name);
      this.running.set(name, next);
      try {
        await this.reload(name);
      } finally {
        if (this.running.get(name) === next) this.running.delete(name);
      }
    });
    this.queued.set(name, next);
    return next;
  }

  private async reload(name: string): Promise<void> {
    const names = await this.source.list();
    if (!names.includes(name)) {
      if (this.manager.has(name) && this.manager.sourceOf(name) === this.source.label) {
        await this.manager.unload(name).catch(() => undefined);
      }
      return;
    }
    const owner = this.manager.sourceOf(name);
    if (owner !== undefined && owner !== this.source.label) return;
    await this.manager.load(name).catch((err: Error) => {
      this.options.logger.warn({ model: name, err: err.message }, 'registry model failed to load');
    });
  }

  private async poll(): Promise<void> {
    try {
      const { names, cursor } = await this.catalog.changesSince(this.cursor);
      this.cursor = cursor;
      await Promise.all(names.map((n) => this.refresh(n)));
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'registry poll failed');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    await this.polling;
    await Promise.all([...this.running.values(), ...this.queued.values()]);
  }
}
