import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { TableProfile } from '../data/index.js';
import type { PredictionEntry, PredictionSink } from '../inference/index.js';
import type { Database } from '../store/index.js';
import type { MonitoringTables } from './monitoring-migrations.js';
import {
  type BatchBuilder,
  RecordBatchBuilder,
  TensorBatchBuilder,
  tensorSignature,
} from './prediction-batch.js';
import { predictionRows, profileCells } from './prediction-rows.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/**
 * Window profiles keep exact value counts up to this many distinct values per column, then
 * sketches (KLL, HyperLogLog, Misra–Gries), so a window's stored size stays bounded.
 */
export const WINDOW_PROFILE_OPTIONS = { exactLimit: 1000 } as const;

/** Requests written per statement; the flush yields to requests between slices. */
const FLUSH_SLICE = 500;

/** Rows per second (over all models) folded into window profiles; beyond it a uniform sample. */
export const WINDOW_SAMPLE_PER_SECOND = 500;

/** An open minute window of one model version. */
interface Window {
  model: string;
  version: string;
  windowMs: number;
  profile: TableProfile;
  /** Rows written in the window; the profile holds a sample of them when traffic is high. */
  logged: number;
  requests: number;
  errors: number;
  cpuUs: number;
}

export interface PredictionLogOptions {
  /** Queued entries are written this often (ms); a crash loses at most this much. */
  flushMs: number;
  /** Entries queued at most; beyond, new ones are dropped and counted. */
  queueMax: number;
  /** Raw rows and minute profiles are kept this many days; hour profiles ten times as long. */
  retentionDays: number;
  logger: Logger;
  /** The clock (tests move it). */
  now?: () => number;
}

/** Counters of the log, for /metrics. */
export interface PredictionLogCounters {
  queued: number;
  written: number;
  dropped: number;
  failedFlushes: number;
}

/**
 * The prediction log: the data plane hands it every sampled answer by reference; it queues them
 * (bounded; overflow is counted), writes them in batches every `flushMs` in one transaction per
 * flush, and folds them into per-minute mergeable profiles per model version (inputs, and
 * outputs as `prediction.<name>`), written when the minute closes; an hourly pass merges past
 * hours' minute parts into one hour profile and removes what is past retention. `close()`
 * writes everything queued and every open window.
 *
 * @example
 *   const log = new PredictionLog(db, { flushMs: 1000, queueMax: 100_000, retentionDays: 7, logger });
 *   new RepositoryDataPlane({ …, predictions: log });
 *   await log.close();
 */
export class PredictionLog implements PredictionSink {
  private readonly db: Kysely<MonitoringTables>;
  private queue: PredictionEntry[] = [];
  private readonly windows = new Map<
    string,
    /** `logged`: rows written in the window; the profile holds a sample of them when traffic is high. */
    Window
  >();
  private readonly counters: PredictionLogCounters = { queued: 0, written: 0, dropped: 0, failedFlushes: 0 };
  private timer?: NodeJS.Timeout;
  private sweeper?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly now: () => number;

  constructor(
    database: Database,
    private readonly options: PredictionLogOptions,
  ) {
    this.db = database.as<MonitoringTables>();
    this.now = options.now ?? Date.now;
  }

  /** Starts the flush timer and the hourly compaction and retention pass. */
  start(): void {
    this.timer = setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
    this.sweeper = setInterval(
      () =>
        void this.sweep().catch((err) => this.options.logger.warn({ err }, 'prediction log sweep failed')),
      10 * MINUTE_MS,
    );
    this.sweeper.unref();
  }

  record(entry: PredictionEntry): void {
    if (this.closed || this.queue.length >= this.options.queueMax) {
      this.counters.dropped += entry.records?.length ?? entry.inputs?.[0]?.shape[0] ?? 1;
      return;
    }
    this.queue.push(entry);
  }

  count(model: string, version: string, failed: boolean, cpuUs: number): void {
    const w = this.window(model, version, this.now());
    if (failed) w.errors++;
    else w.requests++;
    w.cpuUs += cpuUs;
  }

  private window(model: string, version: string, timeMs: number): Window {
    const windowMs = Math.floor(timeMs / MINUTE_MS) * MINUTE_MS;
    const key = `${model}\u0000${version}\u0000${windowMs}`;
    let w = this.windows.get(key);
    if (!w) {
      w = {
        model,
        version,
        windowMs,
        profile: new TableProfile(WINDOW_PROFILE_OPTIONS),
        logged: 0,
        requests: 0,
        errors: 0,
        cpuUs: 0,
      };
      this.windows.set(key, w);
    }
    return w;
  }

  get stats(): PredictionLogCounters {
    return { ...this.counters, queued: this.queue.length };
  }

  /** Writes what is queued now (after any flush in progress); resolves when it is stored. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeQueued());
    return this.flushing;
  }

  /** Writes everything queued and every open window now (a later row of the same minute adds a part). */
  async checkpoint(): Promise<void> {
    await this.flush();
    this.flushing = this.flushing.then(() => this.writeWindows(true));
    await this.flushing;
  }

  /** Stops the timers, writes everything queued and every open window. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearInterval(this.sweeper);
    await this.checkpoint();
  }

  private async writeQueued(): Promise<void> {
    const all = this.queue;
    this.queue = [];
    // In slices, yielding between them, so a busy second's flush never holds requests up for long.
    for (let i = 0; i < all.length; i += FLUSH_SLICE) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      const entries = all.slice(i, i + FLUSH_SLICE);
      try {
        const rows = await this.insert(entries);
        this.counters.written += rows;
        this.profile(entries, rows);
      } catch (err) {
        this.counters.failedFlushes++;
        this.options.logger.warn(
          { err: (err as Error).message, entries: entries.length },
          'prediction log write failed; retrying',
        );
        // Back in front of newer entries, within the bound.
        const rest = all.slice(i);
        const room = Math.max(0, this.options.queueMax - this.queue.length);
        const kept = rest.slice(0, room);
        this.counters.dropped += rest.length - kept.length;
        this.queue = [...kept, ...this.queue];
        break;
      }
    }
    await this.writeWindows(false);
  }

  /**
   * One batch row per model version and request shape: records as columns of values, V2
   * requests as their tensors concatenated (a copy and a base64 pass). Returns the rows written.
   */
  private async insert(entries: PredictionEntry[]): Promise<number> {
    const builders = new Map<string, BatchBuilder>();
    for (const e of entries) {
      const shape = e.records ? 'records' : tensorSignature(e);
      const key = `${e.model}\u0000${e.version}\u0000${shape}`;
      let b = builders.get(key);
      if (!b) {
        b = e.records
          ? new RecordBatchBuilder(e.model, e.version)
          : new TensorBatchBuilder(e.model, e.version);
        builders.set(key, b);
      }
      b.add(e);
    }
    const values = [...builders.values()]
      .filter((b) => b.rows > 0)
      .map((b) => ({
        id: randomUUID(),
        model: b.model,
        version: b.version,
        start_ms: b.startMs,
        end_ms: b.endMs,
        rows: b.rows,
        data: JSON.stringify(b.finish()),
      }));
    if (values.length > 0) await this.db.insertInto('prediction_batches').values(values).execute();
    return values.reduce((n, v) => n + v.rows, 0);
  }

  /**
   * Folds a sample of the written rows into the open minute windows: about
   * WINDOW_SAMPLE_PER_SECOND rows per second in all (every row when traffic is lower), chosen
   * uniformly, so profiles cost little however busy the server is.
   */
  private profile(entries: PredictionEntry[], rows: number): void {
    const budget = (WINDOW_SAMPLE_PER_SECOND * this.options.flushMs) / 1000;
    const p = rows <= budget ? 1 : budget / rows;
    let target: TableProfile | undefined;
    let columns: string[] = [];
    let batch: unknown[][] = [];
    const emit = () => {
      if (target && batch.length > 0) target.add({ columns, rows: batch as never[][], firstRow: 1 });
      batch = [];
    };
    for (const e of entries) {
      const n = e.records?.length ?? e.inputs?.[0]?.shape[0] ?? 0;
      if (p < 1 && Math.random() >= p * n) continue; // most requests hold one row
      for (const r of predictionRows(e)) {
        const w = this.window(r.model, r.version, r.timeMs);
        const names: string[] = [];
        const cells: unknown[] = [];
        profileCells(r, names, cells);
        if (w.profile !== target || !sameNames(names, columns)) {
          emit();
          target = w.profile;
          columns = names;
        }
        batch.push(cells);
      }
    }
    emit();
    // Every written row counts towards its window's total, sampled or not.
    for (const e of entries) {
      this.window(e.model, e.version, e.timeMs).logged += e.records?.length ?? e.inputs?.[0]?.shape[0] ?? 0;
    }
  }

  /** Writes closed minute windows (all of them when `all`) as profile parts. */
  private async writeWindows(all: boolean): Promise<void> {
    const current = Math.floor(this.now() / MINUTE_MS) * MINUTE_MS;
    const done = [...this.windows.entries()].filter(([, w]) => all || w.windowMs < current);
    if (done.length === 0) return;
    try {
      await this.db
        .insertInto('monitoring_windows')
        .values(
          done.map(([, w]) => ({
            id: randomUUID(),
            model: w.model,
            version: w.version,
            granularity: 'minute',
            window_ms: w.windowMs,
            rows: w.logged,
            requests: w.requests,
            errors: w.errors,
            cpu_us: w.cpuUs,
            parts: 1,
            profile: JSON.stringify(w.profile),
          })),
        )
        .execute();
      for (const [key] of done) this.windows.delete(key);
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, 'window profiles write failed; retrying');
    }
  }

  /**
   * Merges each past hour's minute parts into one hour profile (again when late parts arrived),
   * then removes raw rows and minute parts past retention, and hour profiles past ten times it.
   */
  async sweep(): Promise<void> {
    const now = this.now();
    const currentHour = Math.floor(now / HOUR_MS) * HOUR_MS;
    const minutes = await this.db
      .selectFrom('monitoring_windows')
      .select(['model', 'version', 'window_ms'])
      .where('granularity', '=', 'minute')
      .where('window_ms', '<', currentHour)
      .execute();
    const hours = new Map<string, { model: string; version: string; hourMs: number; parts: number }>();
    for (const m of minutes) {
      const hourMs = Math.floor(Number(m.window_ms) / HOUR_MS) * HOUR_MS;
      const key = `${m.model}\u0000${m.version}\u0000${hourMs}`;
      const h = hours.get(key) ?? { model: m.model, version: m.version, hourMs, parts: 0 };
      h.parts++;
      hours.set(key, h);
    }
    for (const h of hours.values()) {
      const existing = await this.db
        .selectFrom('monitoring_windows')
        .select(['id', 'parts'])
        .where('granularity', '=', 'hour')
        .where('model', '=', h.model)
        .where('version', '=', h.version)
        .where('window_ms', '=', h.hourMs)
        .executeTakeFirst();
      if (existing && existing.parts === h.parts) continue;
      const parts = await this.db
        .selectFrom('monitoring_windows')
        .select(['profile', 'rows', 'requests', 'errors', 'cpu_us'])
        .where('granularity', '=', 'minute')
        .where('model', '=', h.model)
        .where('version', '=', h.version)
        .where('window_ms', '>=', h.hourMs)
        .where('window_ms', '<', h.hourMs + HOUR_MS)
        .execute();
      const merged = mergeProfiles(parts.map((p) => p.profile));
      await this.db.transaction().execute(async (trx) => {
        if (existing) await trx.deleteFrom('monitoring_windows').where('id', '=', existing.id).execute();
        await trx
          .insertInto('monitoring_windows')
          .values({
            id: randomUUID(),
            model: h.model,
            version: h.version,
            granularity: 'hour',
            window_ms: h.hourMs,
            rows: parts.reduce((n, p) => n + p.rows, 0),
            requests: parts.reduce((n, p) => n + p.requests, 0),
            errors: parts.reduce((n, p) => n + p.errors, 0),
            cpu_us: parts.reduce((n, p) => n + p.cpu_us, 0),
            parts: parts.length,
            profile: JSON.stringify(merged),
          })
          .execute();
      });
    }
    const rawCutoff = now - this.options.retentionDays * 86_400_000;
    await this.db.deleteFrom('prediction_batches').where('end_ms', '<', rawCutoff).execute();
    await this.db
      .deleteFrom('monitoring_windows')
      .where('granularity', '=', 'minute')
      .where('window_ms', '<', rawCutoff)
      .execute();
    await this.db
      .deleteFrom('monitoring_windows')
      .where('granularity', '=', 'hour')
      .where('window_ms', '<', now - 10 * this.options.retentionDays * 86_400_000)
      .execute();
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Profiles stored as JSON, merged into one (an empty profile when there are none). */
export function mergeProfiles(texts: readonly string[]): TableProfile {
  const merged = new TableProfile(WINDOW_PROFILE_OPTIONS);
  for (const t of texts) merged.merge(TableProfile.fromJSON(JSON.parse(t)));
  return merged;
}
