import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PredictionEntry, PredictionSink } from '../inference/index.js';
import type { Database } from '../store/index.js';
import { LatencyCounts } from './latency-counts.js';
import type { MonitoringTables } from './monitoring-migrations.js';
import { removeSegmentsBefore, segmentFolder } from './payload-segments.js';
import { BufferPool, TensorAccumulator, transferables } from './prediction-batch.js';
import type { LogWorkerInit, LogWorkerReply, LogWorkerRequest } from './prediction-log-worker.js';
import {
  HOUR_MS,
  MINUTE_MS,
  mergeProfiles,
  PredictionWriter,
  type WindowCounts,
  type WriteMessage,
  type WriteReply,
} from './prediction-writer.js';

const WORKER_URL = new URL('./prediction-log-worker.js', import.meta.url);

/** Records-API entries gathered before they are handed to the writer, flush or not. */
export const RECORDS_PER_MESSAGE = 1024;

export interface PredictionLogOptions {
  /**
   * Gathered entries are handed to the writer this often (ms), a version's V2 batch sooner once it
   * holds HANDOFF_BYTES; a crash loses at most this much.
   */
  flushMs: number;
  /** Entries not yet stored at most; beyond, new ones are dropped and counted. */
  queueMax: number;
  /** Raw rows and minute profiles are kept this many days; hour profiles ten times as long. */
  retentionDays: number;
  logger: Logger;
  /**
   * The database's URL or SQLite path. When given (and not `:memory:`), a worker thread with its
   * own connection serializes, writes and profiles; otherwise that work runs on this thread.
   */
  databaseUrl?: string;
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

/** Where gathered entries go: the writer on a worker thread, or on this one. */
interface WriterChannel {
  write(message: WriteMessage): Promise<WriteReply>;
  /** Writes every open window. */
  windows(): Promise<void>;
  close(): Promise<void>;
}

/** What the serving thread keeps per model version: its open tensor batches and minute counts. */
interface VersionState {
  accumulators: TensorAccumulator[];
  last?: TensorAccumulator;
  counts: WindowCounts;
}

/**
 * The prediction log. On the serving path it only gathers: a V2 answer's tensors are copied
 * into growing per-signature buffers and its fields appended to columns, a request is counted in
 * its version's minute, and nothing a request allocated outlives it. Every `flushMs` (a
 * version's batch sooner, once it holds HANDOFF_BYTES) the gathered batches (their buffers
 * transferred, not copied) go to a writer on a worker thread
 * with its own database connection, which stores one batch row per model version and shape in
 * one statement, folds a sample of rows into per-minute mergeable profiles per model version
 * (inputs, and outputs as `prediction.<name>`), and writes each minute once it closes; an hourly
 * pass merges past hours' minute parts into one hour profile and removes what is past retention.
 * Entries not yet stored are bounded by `queueMax` (overflow is counted). `close()` writes
 * everything gathered and every open window.
 *
 * @example
 *   const log = new PredictionLog(db, { flushMs: 1000, queueMax: 100_000, retentionDays: 7, logger, databaseUrl });
 *   new RepositoryDataPlane({ …, predictions: log });
 *   await log.close();
 */
export class PredictionLog implements PredictionSink {
  private readonly db: Kysely<MonitoringTables>;
  private readonly versions = new Map<string, Map<string, VersionState>>();
  /** The buffers of stored batches, back from the writer for the next ones. */
  private readonly buffers = new BufferPool();
  private lastModel?: string;
  private lastVersion?: string;
  private lastState?: VersionState;
  private records: PredictionEntry[] = [];
  /** Entries recorded and not gathered yet (see `record`). */
  private readonly incoming: PredictionEntry[] = [];
  /** A gather is queued on the tick queue. */
  private gathering = false;
  private closedCounts: WindowCounts[] = [];
  /** Entries gathered and not yet handed over; handed over and not yet stored. */
  private pending = 0;
  private inFlight = 0;
  private retrying = false;
  /** When the minute of the last rows or counts handed to the writer ends (0: none open). */
  private openUntilMs = 0;
  /** Whether a batch went to the writer early since the last flush (whose commit syncs it). */
  private handedOff = false;
  private readonly counters: PredictionLogCounters = { queued: 0, written: 0, dropped: 0, failedFlushes: 0 };
  private readonly channel: WriterChannel;
  private timer?: NodeJS.Timeout;
  private sweeper?: NodeJS.Timeout;
  private closing?: Promise<void>;
  private closed = false;
  private readonly now: () => number;
  /** The folder of payload segments on a SQLite store (see payload-segments.ts). */
  private readonly segments: string | undefined;

  constructor(
    database: Database,
    private readonly options: PredictionLogOptions,
  ) {
    this.db = database.as<MonitoringTables>();
    this.segments = segmentFolder(database);
    this.now = options.now ?? Date.now;
    const url = options.databaseUrl;
    this.channel =
      url && url !== ':memory:'
        ? new WorkerChannel({ databaseUrl: url, flushMs: options.flushMs }, options.logger)
        : new LocalChannel(
            new PredictionWriter(this.db, {
              flushMs: options.flushMs,
              now: this.now,
              warn: (fields, message) => options.logger.warn(fields, message),
            }),
          );
  }

  /** Starts the flush timer and the hourly compaction and retention pass. */
  start(): void {
    this.timer = setInterval(() => {
      // Once the minute of the last rows handed over has ended, a flush (even an empty one) lets
      // the writer write that minute's window when traffic stopped.
      const windowsDue = this.openUntilMs > 0 && this.now() >= this.openUntilMs;
      if (windowsDue) this.openUntilMs = 0;
      if (
        this.pending > 0 ||
        this.handedOff ||
        this.retrying ||
        this.closedCounts.length > 0 ||
        this.counting() ||
        windowsDue
      )
        void this.flush();
    }, this.options.flushMs);
    this.timer.unref();
    this.sweeper = setInterval(
      () =>
        void this.sweep().catch((err) => this.options.logger.warn({ err }, 'prediction log sweep failed')),
      10 * MINUTE_MS,
    );
    this.sweeper.unref();
  }

  record(entry: PredictionEntry): void {
    if (this.closed || this.pending + this.inFlight >= this.options.queueMax) {
      this.counters.dropped += entry.records?.length ?? entry.inputs?.[0]?.shape[0] ?? 1;
      return;
    }
    this.pending++;
    this.incoming.push(entry);
    if (!this.gathering) {
      this.gathering = true;
      process.nextTick(this.gatherIncoming);
    }
  }

  /**
   * Gathers the entries recorded so far. `record` is called from a promise continuation, and a
   * tick queued there runs once the microtask queue is empty: after the continuations that hand
   * the answer to the transport (over HTTP it is on the socket by then, so a lone request's answer
   * does not wait for its own entry to be copied; HTTP/2 sends a moment later), and in the same
   * callback, so gathering costs no turn of the event loop. (It used to wait for the
   * check phase: an answer sent from the batcher's own check-phase callback then took a second
   * turn, whose `epoll_wait` cost more at concurrency 1 than the whole gather.)
   */
  private readonly gatherIncoming = (): void => {
    this.gathering = false;
    const entries = this.incoming;
    for (let i = 0; i < entries.length; i++) this.gather(entries[i]!);
    entries.length = 0;
  };

  private gather(entry: PredictionEntry): void {
    if (entry.records) {
      // Records-API entries are kept as served until the flush. An id built by concatenation is
      // a rope; reading a character flattens it into one string before it is kept (kept ropes,
      // promoted by the thousand, once doubled the GC time).
      entry.requestId.charCodeAt(0);
      this.records.push(entry);
      if (this.records.length >= RECORDS_PER_MESSAGE) void this.handOffRecords();
      return;
    }
    const s = this.state(entry.model, entry.version);
    let acc = s.last;
    if (!acc?.matches(entry)) {
      acc = s.accumulators.find((a) => a.matches(entry));
      if (!acc) {
        acc = new TensorAccumulator(entry.model, entry.version, entry, this.buffers);
        s.accumulators.push(acc);
      }
      s.last = acc;
    }
    acc.add(entry);
    if (acc.rows >= acc.handoffRows) void this.handOffTensors(acc);
  }

  count(model: string, version: string, failed: boolean, cpuUs: number): void {
    const s = this.state(model, version);
    const now = this.now();
    const windowMs = now - (now % MINUTE_MS);
    let c = s.counts;
    if (c.windowMs !== windowMs) {
      if (c.requests > 0 || c.errors > 0) this.closedCounts.push(c);
      c = { model, version, windowMs, requests: 0, errors: 0, cpuUs: 0 };
      s.counts = c;
    }
    if (failed) c.errors++;
    else c.requests++;
    c.cpuUs += cpuUs;
  }

  private state(model: string, version: string): VersionState {
    // Requests come in runs of one version: compare two strings before two map lookups.
    if (model === this.lastModel && version === this.lastVersion) return this.lastState!;
    let byVersion = this.versions.get(model);
    if (!byVersion) {
      byVersion = new Map();
      this.versions.set(model, byVersion);
    }
    let s = byVersion.get(version);
    if (!s) {
      s = { accumulators: [], counts: { model, version, windowMs: 0, requests: 0, errors: 0, cpuUs: 0 } };
      byVersion.set(version, s);
    }
    this.lastModel = model;
    this.lastVersion = version;
    this.lastState = s;
    return s;
  }

  private counting(): boolean {
    for (const byVersion of this.versions.values())
      for (const s of byVersion.values()) if (s.counts.requests > 0 || s.counts.errors > 0) return true;
    return false;
  }

  /** Bytes of buffers the writer gave back, waiting to gather the next batches. */
  get reusableBytes(): number {
    return this.buffers.size;
  }

  get stats(): PredictionLogCounters {
    return { ...this.counters, queued: this.pending + this.inFlight };
  }

  /** Hands everything gathered to the writer; resolves when it (and all before it) is stored. */
  flush(): Promise<void> {
    this.gatherIncoming();
    const tensors = [];
    const counts = this.closedCounts;
    this.closedCounts = [];
    for (const byVersion of this.versions.values()) {
      for (const s of byVersion.values()) {
        for (const a of s.accumulators) if (a.rows > 0) tensors.push(a.take());
        const c = s.counts;
        if (c.requests > 0 || c.errors > 0) {
          counts.push({ ...c });
          c.requests = 0;
          c.errors = 0;
          c.cpuUs = 0;
        }
      }
    }
    const message: WriteMessage = {
      tensors,
      records: this.records,
      counts,
      entries: this.pending,
      sync: true,
    };
    this.records = [];
    this.handedOff = false;
    return this.send(message);
  }

  /**
   * Hands the gathered records-API entries over before the flush: they cross to the writer as
   * objects (a structured clone on this thread), and a second's worth at once held the serving
   * thread for tens of milliseconds.
   */
  private handOffRecords(): Promise<void> {
    const records = this.records;
    this.records = [];
    this.handedOff = true;
    return this.send({ tensors: [], records, counts: [], entries: records.length, sync: false });
  }

  /** Hands one version's batch over before the flush once it is HANDOFF_BYTES large. */
  private handOffTensors(acc: TensorAccumulator): Promise<void> {
    const entries = acc.entries;
    this.handedOff = true;
    return this.send({ tensors: [acc.take()], records: [], counts: [], entries, sync: false });
  }

  private send(message: WriteMessage): Promise<void> {
    if (message.entries > 0 || message.counts.length > 0) {
      const now = this.now();
      this.openUntilMs = now - (now % MINUTE_MS) + MINUTE_MS;
    }
    this.pending -= message.entries;
    this.inFlight += message.entries;
    return this.channel.write(message).then((reply) => {
      if (reply.spent) this.buffers.release(reply.spent);
      if (reply.lost) this.counters.dropped += reply.lost;
      this.inFlight -= reply.entries;
      this.counters.written += reply.rows;
      this.retrying = reply.failed;
      if (reply.failed) this.counters.failedFlushes++;
    });
  }

  /** Writes everything gathered and every open window now (a later row of the same minute adds a part). */
  async checkpoint(): Promise<void> {
    await this.flush();
    await this.channel.windows();
  }

  /** Stops the timers, writes everything gathered and every open window, and ends the writer. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearInterval(this.timer);
      clearInterval(this.sweeper);
      await this.flush();
      await this.channel.close();
    })();
    return this.closing;
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
        .select(['profile', 'rows', 'requests', 'errors', 'cpu_us', 'latency'])
        .where('granularity', '=', 'minute')
        .where('model', '=', h.model)
        .where('version', '=', h.version)
        .where('window_ms', '>=', h.hourMs)
        .where('window_ms', '<', h.hourMs + HOUR_MS)
        .execute();
      const merged = mergeProfiles(parts.map((p) => p.profile));
      const latency = new LatencyCounts();
      for (const p of parts) latency.merge(p.latency);
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
            latency: JSON.stringify(latency),
          })
          .execute();
      });
    }
    const rawCutoff = now - this.options.retentionDays * 86_400_000;
    await this.db.deleteFrom('prediction_batches').where('end_ms', '<', rawCutoff).execute();
    // Only after the rows that name them are gone: a file of an hour that ended by the cutoff.
    if (this.segments) await removeSegmentsBefore(this.segments, rawCutoff);
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

/** The writer on this thread, one write at a time. */
class LocalChannel implements WriterChannel {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly writer: PredictionWriter) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  write(message: WriteMessage): Promise<WriteReply> {
    return this.serial(() => this.writer.write(message));
  }

  windows(): Promise<void> {
    return this.serial(() => this.writer.writeWindows(true));
  }

  close(): Promise<void> {
    return this.windows();
  }
}

/** The writer on a worker thread; a message's tensor buffers are transferred, not copied. */
class WorkerChannel implements WriterChannel {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, (reply: LogWorkerReply) => void>();
  private exited = false;

  constructor(
    init: LogWorkerInit,
    private readonly logger: Logger,
  ) {
    // No execArgv: flags given to the parent (profiling, loaders) are not the writer's.
    this.worker = new Worker(WORKER_URL, { workerData: init, execArgv: [] });
    this.worker.unref();
    this.worker.on('message', (reply: LogWorkerReply) => {
      if (reply.kind === 'warn') {
        logger.warn(reply.fields, reply.message);
        return;
      }
      const resolve = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      resolve?.(reply);
    });
    this.worker.on('error', (err) => logger.error({ err }, 'prediction log writer thread failed'));
    this.worker.on('exit', () => {
      this.exited = true;
      for (const [id, resolve] of this.pending)
        resolve({ kind: 'written', id, entries: 0, rows: 0, failed: true });
      this.pending.clear();
    });
  }

  private request(req: LogWorkerRequest, transfer: ArrayBuffer[] = []): Promise<LogWorkerReply> {
    if (this.exited)
      return Promise.resolve({ kind: 'written', id: req.id, entries: 0, rows: 0, failed: true });
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, resolve);
      try {
        this.worker.postMessage(req, transfer);
      } catch (err) {
        this.pending.delete(req.id);
        reject(err);
      }
    });
  }

  async write(message: WriteMessage): Promise<WriteReply> {
    let reply: LogWorkerReply;
    try {
      reply = await this.request(
        { kind: 'write', id: this.nextId++, message },
        transferables(message.tensors),
      );
    } catch (err) {
      // A message that cannot be copied to the writer thread would fail the same way again:
      // its rows are counted as dropped rather than retried, and serving goes on.
      const rows =
        message.tensors.reduce((n, t) => n + t.rows, 0) +
        message.records.reduce((n, r) => n + (r.records?.length ?? 0), 0);
      this.logger.warn(
        { err: (err as Error).message, rows },
        'prediction log rows could not be handed to the writer; dropped',
      );
      return { entries: message.entries, rows: 0, failed: false, lost: rows };
    }
    return reply.kind === 'written' ? reply : { entries: 0, rows: 0, failed: true };
  }

  async windows(): Promise<void> {
    await this.request({ kind: 'windows', id: this.nextId++ });
  }

  async close(): Promise<void> {
    await this.request({ kind: 'close', id: this.nextId++ });
    await this.worker.terminate();
  }
}
