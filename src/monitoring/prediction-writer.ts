import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { TableProfile } from '../data/index.js';
import type { PredictionEntry } from '../inference/index.js';
import type { Database } from '../store/index.js';
import { LatencyCounts } from './latency-counts.js';
import type { MonitoringTables } from './monitoring-migrations.js';
import type { PayloadSegments } from './payload-segments.js';
import {
  batchEntry,
  RecordBatchBuilder,
  rowLatency,
  rowTime,
  type TensorBatch,
  tensorBatchSections,
  tensorBatchStorage,
  transferables,
} from './prediction-batch.js';
import {
  type CellPlan,
  type PredictionRow,
  predictionRows,
  profileCells,
  tensorCellPlan,
} from './prediction-rows.js';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;

/**
 * Window profiles keep exact value counts up to this many distinct values per column, then
 * sketches (KLL, HyperLogLog, Misra–Gries), so a window's stored size stays bounded.
 */
export const WINDOW_PROFILE_OPTIONS = { exactLimit: 1000 } as const;

/** Rows per second (over all models) folded into window profiles; beyond it a uniform sample. */
export const WINDOW_SAMPLE_PER_SECOND = 500;

/** Requests a model version answered and failed in one minute, and their CPU time (µs). */
export interface WindowCounts {
  model: string;
  version: string;
  windowMs: number;
  requests: number;
  errors: number;
  cpuUs: number;
}

/** What the log hands its writer each flush interval. */
export interface WriteMessage {
  tensors: TensorBatch[];
  /** Records-API entries, as served. */
  records: PredictionEntry[];
  counts: WindowCounts[];
  /** Entries (requests) the message holds. */
  entries: number;
  /**
   * Whether the message ends a flush interval: its commit syncs, and with it every commit
   * before it. A version's batch handed over early (`false`) may commit without syncing
   * (see `PredictionWriterOptions.commitSync`).
   */
  sync: boolean;
}

export interface WriteReply {
  /** Entries stored by this write, including earlier messages it retried. */
  entries: number;
  rows: number;
  failed: boolean;
  /** The buffers of the tensor batches stored, given back to gather into again. */
  spent?: ArrayBuffer[];
  /** Rows of a message that could not reach the writer at all (it could not be copied to it). */
  lost?: number;
}

export interface PredictionWriterOptions {
  flushMs: number;
  warn: (fields: Record<string, unknown>, message: string) => void;
  now: () => number;
  /** Payloads go to segment files beside a SQLite database instead of its rows. */
  segments?: PayloadSegments;
  /**
   * Whether commits sync to disk, when the writer has a SQLite connection of its own
   * (`commitSyncOf`). Absent, every commit keeps the connection's setting.
   */
  commitSync?: CommitSync;
}

/** Control over whether a connection's commits sync to disk. */
export interface CommitSync {
  /** Whether the next commits sync. */
  set(sync: boolean): Promise<void>;
  /** Syncs every commit made so far. */
  now(): Promise<void>;
}

/**
 * Commit syncing for a writer with its own SQLite connection: `synchronous = FULL` (the store's
 * setting) or `NORMAL`, under which a commit in WAL mode survives a crash of the process but may
 * roll back in a crash of the machine until the WAL is synced: by a later FULL commit, which
 * syncs the WAL and with it every commit before it, or by a checkpoint, which syncs the WAL
 * first (`now`). Undefined for PostgreSQL, whose commits always sync. Never for a connection
 * the serving thread shares: its other writes must stay FULL.
 */
export function commitSyncOf(db: Database): CommitSync | undefined {
  if (db.dialect !== 'sqlite') return undefined;
  return {
    async set(sync) {
      await sql.raw(`PRAGMA synchronous = ${sync ? 'FULL' : 'NORMAL'}`).execute(db.kysely);
    },
    async now() {
      await sql.raw('PRAGMA wal_checkpoint(PASSIVE)').execute(db.kysely);
    },
  };
}

/** An open minute window of one model version. */
interface Window {
  model: string;
  version: string;
  windowMs: number;
  profile: TableProfile;
  /** Rows written in the window; the profile holds a sample of them when traffic is high. */
  logged: number;
  /** Every written row's latency (µs), not a sample. */
  latency: LatencyCounts;
  requests: number;
  errors: number;
  cpuUs: number;
}

/**
 * Stores what the prediction log gathered: one batch row per model version and request shape
 * (all of a message's rows in one statement), window profiles folded from a sample of them,
 * and minute windows written once closed. A message whose write fails is kept and written
 * before the next one. It runs on the log's worker thread, or beside the log when there is none.
 */
export class PredictionWriter {
  private readonly windows = new Map<string, Window>();
  private retry: WriteMessage[] = [];
  private readonly payloads = new PayloadArena();
  /** Rows that may still be folded into profiles (at most a flush interval's worth). */
  private sampleTokens: number;
  /** The latest row time the budget was refilled to. */
  private sampledUntilMs = Number.NEGATIVE_INFINITY;
  /** Whether commits sync now (the connection opens with FULL). */
  private syncing = true;
  /** Whether a commit since the last synced one did not sync. */
  private unsynced = false;

  constructor(
    private readonly db: Kysely<MonitoringTables>,
    private readonly options: PredictionWriterOptions,
  ) {
    this.sampleTokens = this.sampleCap();
  }

  async write(message: WriteMessage): Promise<WriteReply> {
    for (const c of message.counts) {
      const w = this.window(c.model, c.version, c.windowMs);
      w.requests += c.requests;
      w.errors += c.errors;
      w.cpuUs += c.cpuUs;
    }
    message.counts = [];
    const pending = this.retry.length > 0 ? [...this.retry, message] : [message];
    this.retry = [];
    const reply: WriteReply = { entries: 0, rows: 0, failed: false };
    for (const m of pending) {
      if (reply.failed) {
        this.retry.push(m);
        continue;
      }
      try {
        const rows = await this.insert(m);
        reply.rows += rows;
        reply.entries += m.entries;
        this.profile(m, rows);
        // Nothing here reads the batches again: their buffers go back to the serving thread.
        const spent = transferables(m.tensors);
        if (spent.length > 0) reply.spent = [...(reply.spent ?? []), ...spent];
      } catch (err) {
        reply.failed = true;
        this.retry.push(m);
        this.options.warn(
          { err: (err as Error).message, entries: m.entries },
          'prediction log write failed; retrying',
        );
      }
    }
    await this.writeWindows(false);
    if (message.sync && this.unsynced && !reply.failed) {
      await this.commitsSync(true);
      await this.options.commitSync?.now();
      this.unsynced = false;
    }
    return reply;
  }

  private async insert(m: WriteMessage): Promise<number> {
    const values: MonitoringTables['prediction_batches'][] = [];
    const segments = this.options.segments;
    if (segments) {
      // The payloads go from the batches' own buffers to their file (no copy into one buffer),
      // synced before the rows that name them are committed.
      const parts: Uint8Array[][] = [];
      for (const b of m.tensors) {
        if (b.rows === 0) continue;
        const { header, sections } = tensorBatchSections(b);
        values.push(batchRow(b, header));
        parts.push(sections);
      }
      const refs = segments.append(parts);
      values.forEach((v, i) => {
        const ref = refs[i]!;
        v.payload_file = ref.file;
        v.payload_offset = ref.offset;
        v.payload_length = ref.length;
      });
    } else {
      this.payloads.begin();
      for (const b of m.tensors) {
        if (b.rows === 0) continue;
        const { header, payload } = tensorBatchStorage(b, this.payloads.take);
        values.push(batchRow(b, header, payload));
      }
    }
    const builders = new Map<string, RecordBatchBuilder>();
    for (const e of m.records) {
      const key = `${e.model}\u0000${e.version}`;
      let b = builders.get(key);
      if (!b) {
        b = new RecordBatchBuilder(e.model, e.version);
        builders.set(key, b);
      }
      b.add(e);
    }
    for (const b of builders.values()) {
      if (b.rows === 0) continue;
      values.push(batchRow(b, b.finish()));
    }
    if (values.length > 0) {
      await this.commitsSync(m.sync);
      await this.db.insertInto('prediction_batches').values(values).execute();
      this.unsynced = !this.syncing;
    }
    return values.reduce((n, v) => n + v.rows, 0);
  }

  /**
   * A batch handed over before its flush commits without syncing; the flush's commit syncs it
   * with its own (or, when the flush brought nothing, a checkpoint does), so a crash of the
   * machine still loses at most the last flush interval. The payload segment is synced before
   * every commit all the same: a row never names bytes a crash could take.
   */
  private async commitsSync(sync: boolean): Promise<void> {
    const control = this.options.commitSync;
    if (!control || this.syncing === sync) return;
    await control.set(sync);
    this.syncing = sync;
  }

  private window(model: string, version: string, windowMs: number): Window {
    const key = `${model}\u0000${version}\u0000${windowMs}`;
    let w = this.windows.get(key);
    if (!w) {
      w = {
        model,
        version,
        windowMs,
        profile: new TableProfile(WINDOW_PROFILE_OPTIONS),
        logged: 0,
        latency: new LatencyCounts(),
        requests: 0,
        errors: 0,
        cpuUs: 0,
      };
      this.windows.set(key, w);
    }
    return w;
  }

  /**
   * Folds a sample of a message's rows into the minute windows: about WINDOW_SAMPLE_PER_SECOND
   * rows per second in all (every row when traffic is lower), chosen uniformly; every written
   * row counts towards its window's total and latency counts.
   */
  private profile(m: WriteMessage, rows: number): void {
    const p = this.sampleShare(m, rows);
    const folder = new Folder((r) => this.window(r.model, r.version, minuteOf(r.timeMs)).profile);
    for (const b of m.tensors) {
      let plan: CellPlan | undefined;
      let last: Window | undefined;
      for (let i = 0; i < b.rows; i++) {
        const t = rowTime(b, i);
        if (last?.windowMs !== minuteOf(t)) last = this.window(b.model, b.version, minuteOf(t));
        last.logged++;
        last.latency.add(rowLatency(b, i));
        if (p < 1 && Math.random() >= p) continue;
        plan ??= tensorCellPlan(batchEntry(b));
        const cells: unknown[] = [];
        plan.cells(i, cells);
        folder.addCells(last.profile, plan.columns, cells);
      }
    }
    for (const e of m.records) {
      const n = e.records?.length ?? 0;
      const w = this.window(e.model, e.version, minuteOf(e.timeMs));
      w.logged += n;
      if (n > 0) w.latency.add(e.latencyUs, n);
      if (p < 1 && Math.random() >= p * n) continue; // most requests hold one record
      for (const r of predictionRows(e)) folder.add(r);
    }
    folder.emit();
  }

  private sampleCap(): number {
    return (WINDOW_SAMPLE_PER_SECOND * this.options.flushMs) / 1000;
  }

  /**
   * The share of a message's rows to fold into profiles, taken from a budget refilled at
   * WINDOW_SAMPLE_PER_SECOND per second of the rows' own time and holding at most a flush
   * interval's worth, so the rate holds however many messages a flush interval brings (a large
   * batch goes before its flush).
   */
  private sampleShare(m: WriteMessage, rows: number): number {
    let at = Number.NEGATIVE_INFINITY;
    for (const b of m.tensors) if (b.rows > 0 && b.endMs > at) at = b.endMs;
    for (const e of m.records) if (e.timeMs > at) at = e.timeMs;
    if (at > this.sampledUntilMs) {
      if (this.sampledUntilMs > Number.NEGATIVE_INFINITY) {
        const refill = (WINDOW_SAMPLE_PER_SECOND * (at - this.sampledUntilMs)) / 1000;
        this.sampleTokens = Math.min(this.sampleCap(), this.sampleTokens + refill);
      }
      this.sampledUntilMs = at;
    }
    const budget = this.sampleTokens;
    this.sampleTokens = Math.max(0, budget - rows);
    return rows <= budget ? 1 : budget / rows;
  }

  /** Writes closed minute windows (all of them when `all`) as profile parts. */
  async writeWindows(all: boolean): Promise<void> {
    const current = minuteOf(this.options.now());
    const done = [...this.windows.entries()].filter(([, w]) => all || w.windowMs < current);
    if (done.length === 0) return;
    try {
      // A minute's profile is written once: its commit always syncs (and every one before it).
      await this.commitsSync(true);
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
            latency: JSON.stringify(w.latency),
          })),
        )
        .execute();
      this.unsynced = false;
      for (const [key] of done) this.windows.delete(key);
    } catch (err) {
      this.options.warn({ err: (err as Error).message }, 'window profiles write failed; retrying');
    }
  }
}

/**
 * The bytes of a flush's binary payloads, reused from one flush to the next: a payload of several
 * megabytes a second allocated afresh would be memory outside V8's heap that only a full
 * collection frees, and the writer would run one every few flushes. The region is sized for the
 * last flush (payloads that do not fit get their own buffer meanwhile) and shrinks when traffic
 * falls. A payload is only read while its statement runs.
 */
class PayloadArena {
  private region = Buffer.alloc(0);
  private used = 0;
  private wanted = 0;

  /**
   * Starts a flush: the previous flush's payloads are no longer read. A flush without payloads
   * (records-API entries only) leaves the region as it is.
   */
  begin(): void {
    const w = this.wanted;
    if (w > 0 && (w > this.region.length || w * 4 < this.region.length))
      this.region = Buffer.allocUnsafeSlow(Math.ceil(w * 1.25));
    this.used = 0;
    this.wanted = 0;
  }

  readonly take = (bytes: number): Buffer => {
    this.wanted += bytes;
    if (this.used + bytes > this.region.length) return Buffer.allocUnsafeSlow(bytes);
    const out = this.region.subarray(this.used, this.used + bytes);
    this.used += bytes;
    return out;
  };
}

function minuteOf(timeMs: number): number {
  return Math.floor(timeMs / MINUTE_MS) * MINUTE_MS;
}

/** Adds rows to window profiles in runs of one profile and one set of columns. */
class Folder {
  private target: TableProfile | undefined;
  private columns: string[] = [];
  private batch: unknown[][] = [];

  constructor(private readonly profileOf: (r: PredictionRow) => TableProfile) {}

  add(r: PredictionRow): void {
    const names: string[] = [];
    const cells: unknown[] = [];
    profileCells(r, names, cells);
    this.addCells(this.profileOf(r), names, cells);
  }

  /** One row's cells under `columns` (the same array for a batch's rows is compared by identity). */
  addCells(profile: TableProfile, columns: string[], cells: unknown[]): void {
    if (profile !== this.target || (columns !== this.columns && !sameNames(columns, this.columns))) {
      this.emit();
      this.target = profile;
      this.columns = columns;
    }
    this.batch.push(cells);
  }

  emit(): void {
    if (this.target && this.batch.length > 0)
      this.target.add({ columns: this.columns, rows: this.batch as never[][], firstRow: 1 });
    this.batch = [];
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

/**
 * A `prediction_batches` row: a batch's model, version, time span and row count, and its data as
 * JSON (with a binary payload for tensor batches).
 */
function batchRow(
  b: { model: string; version: string; startMs: number; endMs: number; rows: number },
  data: unknown,
  payload: Uint8Array | null = null,
): MonitoringTables['prediction_batches'] {
  return {
    id: randomUUID(),
    model: b.model,
    version: b.version,
    start_ms: b.startMs,
    end_ms: b.endMs,
    rows: b.rows,
    data: JSON.stringify(data),
    payload,
    payload_file: null,
    payload_offset: null,
    payload_length: null,
  };
}
