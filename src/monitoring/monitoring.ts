import type { Kysely } from 'kysely';
import { type Cell, type RowBatch, readTable, type TableFormat, type TableProfile } from '../data/index.js';
import { describeValue, SlipwayError } from '../errors/index.js';
import { type DriftSettings, MAX_REQUEST_ID_LENGTH, type Prediction } from '../inference/index.js';
import type { Database } from '../store/index.js';
import {
  analyzeDrift,
  type DriftOptions,
  type DriftReport,
  type MultivariateDrift,
  pcaReconstructionDrift,
  statTests,
} from './drift/index.js';
import { MAX_TIME_MS, TIME_RANGE } from './durations.js';
import { LatencyCounts } from './latency-counts.js';
import type { MonitoringTables } from './monitoring-migrations.js';
import { readPayload, segmentFolder } from './payload-segments.js';
import {
  classificationMetrics,
  type LabelledRow,
  type PerformanceMetrics,
  regressionMetrics,
} from './performance.js';
import { batchClassPredictions, batchRows, storedColumns } from './prediction-batch.js';
import { type PredictionRow, profileCells } from './prediction-rows.js';
import { HOUR_MS, mergeProfiles } from './prediction-writer.js';

/** Reference rows read for multivariate drift at most (the first ones of the dataset version). */
const MULTIVARIATE_REFERENCE_ROWS = 200_000;

/** A logged prediction as the API and CLI show it. */
export interface LoggedPrediction {
  requestId: string;
  row: number;
  timeMs: number;
  model: string;
  version: string;
  protocol: string;
  latencyUs: number;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  segments: Record<string, string> | null;
  groundTruth?: unknown;
}

/** A logged prediction as the REST API and the CLI print it (snake_case, times as ISO, latency in ms). */
export function predictionJson(p: LoggedPrediction): Record<string, unknown> {
  return {
    request_id: p.requestId,
    row: p.row,
    time: new Date(p.timeMs).toISOString(),
    model: p.model,
    version: p.version,
    protocol: p.protocol,
    latency_ms: p.latencyUs / 1000,
    inputs: p.inputs,
    outputs: p.outputs,
    segments: p.segments,
    ...(p.groundTruth !== undefined ? { ground_truth: p.groundTruth } : {}),
  };
}

export interface PredictionQuery {
  model?: string;
  version?: string;
  requestId?: string;
  sinceMs?: number;
  untilMs?: number;
  /** Newest first; default 100. */
  limit?: number;
}

/** Ground truth for one prediction (a request's row, 0-based; 0 for one-record requests). */
export interface FeedbackInput {
  request_id: string;
  row?: number;
  ground_truth: string | number | boolean;
  weight?: number;
}

export interface PerformanceQuery {
  model: string;
  version?: string;
  sinceMs: number;
  untilMs: number;
  /** Only rows whose segment `key` has `value`. */
  segment?: { key: string; value: string };
  /** One result per value of this segment key, beside the overall one. */
  by?: string;
  /** One result per window of this many ms, beside the overall one. */
  windowMs?: number;
  /** The positive class of binary precision, recall and F1. */
  positive?: string;
}

/** A logged prediction with its ground truth. */
interface LabelledPrediction {
  timeMs: number;
  segments: Record<string, string> | null;
  row: LabelledRow;
}

/** Where drift references come from: the registry's lineage and the dataset store. */
export interface ReferenceResolver {
  /** The training dataset version (`name@n`) a model version names, if any. */
  trainingData(model: string, version: string): Promise<string | undefined>;
  /** A dataset version's table files as local paths. */
  tables(ref: string): Promise<{ local: string; format: TableFormat }[]>;
  /** A dataset version's stored profile (its tables merged), when it has one. */
  profile?(ref: string): Promise<TableProfile | undefined>;
}

export interface ServiceStats {
  requests: number;
  errors: number;
  /** errors / (requests + errors). */
  error_rate: number;
  /** CPU time of the answered requests (their shares of batch compute on every intra-op thread). */
  cpu_seconds: number;
  /** Logged predictions in the range's minute windows (whose latencies the quantiles are of). */
  logged: number;
  latency_ms: { p50: number | null; p95: number | null; p99: number | null };
}

export interface VersionComparison {
  version: string;
  requests: number;
  errors: number;
  error_rate: number;
  latency_ms: ServiceStats['latency_ms'];
  cpu_seconds: number;
  gpu_seconds: number;
  /** CPU (and GPU) time at the configured prices, per 1000 answered requests. */
  cost_per_1000: number | null;
  labelled: number;
  accuracy?: number;
  rmse?: number;
  /**
   * Every scalar quality figure of the task on the labelled predictions: accuracy, precision,
   * recall, f1, roc_auc and log_loss (classification), or mae, rmse, mape and r2 (regression);
   * figures not defined for the data (roc_auc of one class) are left out.
   */
  quality?: Record<string, number>;
}

export interface PerformanceResult {
  model: string;
  version?: string;
  since: string;
  until: string;
  /** Predictions in range, and how many have ground truth. */
  predictions: number;
  labelled: number;
  metrics: PerformanceMetrics | null;
  segments?: Record<string, PerformanceMetrics | null>;
  windows?: { start: string; labelled: number; metrics: PerformanceMetrics | null }[];
}

async function firstBatch(t: { local: string; format: TableFormat }): Promise<RowBatch | undefined> {
  for await (const b of readTable(t.local, { format: t.format, batchRows: 1 })) return b;
  return undefined;
}

/** A stored row as the API lists it. */
function loggedOf(r: PredictionRow): LoggedPrediction {
  return {
    requestId: r.requestId,
    row: r.rowIndex,
    timeMs: r.timeMs,
    model: r.model,
    version: r.version,
    protocol: r.protocol,
    latencyUs: r.latencyUs,
    inputs: r.inputs,
    outputs: r.outputs,
    segments: r.segments,
  };
}

/**
 * Rows of the log a drift comparison reads at most (about): a longer range is read as a uniform
 * random sample of its stored batches.
 */
export const DRIFT_SAMPLE_ROWS = 200_000;

/** Batches in a random order until they hold `rows` rows, back in their order (all when fewer). */
function sampleBatches<T extends { rows: number }>(batches: T[], rows: number): T[] {
  let total = 0;
  for (const b of batches) total += Number(b.rows);
  if (total <= rows) return batches;
  const order = batches.map((_, i) => i);
  const taken: number[] = [];
  let held = 0;
  for (let i = 0; i < order.length && held < rows; i++) {
    const j = i + Math.floor(Math.random() * (order.length - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
    taken.push(order[i]!);
    held += Number(batches[order[i]!]!.rows);
  }
  return taken.sort((a, b) => a - b).map((i) => batches[i]!);
}

/** The time of the n-th newest row held. */
function nthNewest(rows: readonly PredictionRow[], n: number): number {
  return rows.map((r) => r.timeMs).sort((a, b) => b - a)[n - 1]!;
}

/** A task's scalar quality figures by name (see VersionComparison.quality). */
function qualityFigures(m: PerformanceMetrics): Record<string, number> {
  const picked =
    m.task === 'classification'
      ? {
          accuracy: m.accuracy,
          precision: m.precision,
          recall: m.recall,
          f1: m.f1,
          roc_auc: m.roc_auc,
          log_loss: m.log_loss,
        }
      : { mae: m.mae, rmse: m.rmse, mape: m.mape, r2: m.r2 };
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(picked)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/**
 * Logged rows as one table for drift: their inputs by name and their predictions as
 * `prediction.<output>` (class probabilities as `prediction.probabilities.<class>`, a short array's
 * elements as `prediction.<output>[k]`), as the window profiles name them. A reference that holds
 * no such column (a training dataset) compares the inputs only.
 */
export function rowsTable(rows: readonly Pick<PredictionRow, 'inputs' | 'outputs'>[]): RowBatch {
  const columns: string[] = [];
  const index = new Map<string, number>();
  const names: string[] = [];
  const cells: unknown[] = [];
  const table: Cell[][] = [];
  for (const r of rows) {
    names.length = 0;
    cells.length = 0;
    profileCells(r, names, cells);
    const row: Cell[] = [];
    for (let k = 0; k < names.length; k++) {
      let i = index.get(names[k]!);
      if (i === undefined) {
        i = columns.push(names[k]!) - 1;
        index.set(names[k]!, i);
      }
      row[i] = cells[k] as Cell;
    }
    table.push(row);
  }
  // Every row as wide as the columns, a cell its row lacks as null.
  for (const row of table) for (let i = 0; i < columns.length; i++) row[i] ??= null;
  return { columns, rows: table, firstRow: 1 };
}

const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};

/** Windows of a performance answer at most (`windowMs` against the range). */
const MAX_WINDOWS = 10_000;

const FEEDBACK_FIELDS = ['request_id', 'row', 'ground_truth', 'weight'];

/** Longest ground truth given as a string: a class name. */
const MAX_GROUND_TRUTH_LENGTH = 1024;

/**
 * Refuses a range whose ends a Date cannot hold (they are printed as ISO, and a 500 "Invalid time
 * value" helps no one) or that is reversed or empty, naming the end at fault.
 */
function checkRange(
  q: { sinceMs?: number; untilMs?: number },
  names: { since: string; until: string } = { since: 'since', until: 'until' },
): void {
  for (const [field, ms] of [
    [names.since, q.sinceMs],
    [names.until, q.untilMs],
  ] as const) {
    if (ms !== undefined && !(Math.abs(ms) <= MAX_TIME_MS)) {
      bad(`${field} must lie between ${TIME_RANGE}, got ${ms}`);
    }
  }
  if (q.sinceMs !== undefined && q.untilMs !== undefined && q.sinceMs >= q.untilMs) {
    bad(`${names.since} must be before ${names.until}`);
  }
}

const REFERENCE_RANGE = { since: 'reference since', until: 'reference until' };

/** Drift choices a request makes, checked before anything is read. */
function checkDriftOptions(o: DriftOptions): void {
  if (o.test !== undefined && !statTests.has(o.test)) {
    bad(
      `test must be one of Evidently's tests (${[...statTests.keys()].join(', ')}), got ${describeValue(o.test)}`,
    );
  }
  if (o.threshold !== undefined && !(Number.isFinite(o.threshold) && o.threshold >= 0)) {
    bad(`threshold must be a finite number >= 0, got ${o.threshold}`);
  }
  if (o.driftShare !== undefined && !(o.driftShare >= 0 && o.driftShare <= 1)) {
    bad(`drift_share must be between 0 and 1, got ${o.driftShare}`);
  }
}

/** A classifier's answer as a labelled row's prediction: its class by name, with probabilities. */
function classPredicted(p: Prediction): Pick<LabelledRow, 'predicted' | 'probabilities'> {
  return {
    predicted: String(p.label),
    ...(p.probabilities ? { probabilities: p.probabilities as Record<string, number> } : {}),
  };
}

/** What a prediction row says the model answered: a class (with probabilities) or a number. */
function predictedOf(
  outputs: Record<string, unknown>,
): Pick<LabelledRow, 'predicted' | 'probabilities'> | null {
  if ('label' in outputs && (typeof outputs.label === 'string' || typeof outputs.label === 'number')) {
    const p = outputs.probabilities;
    return {
      predicted: outputs.label,
      ...(p && typeof p === 'object' && !Array.isArray(p)
        ? { probabilities: p as Record<string, number> }
        : {}),
    };
  }
  const numbers = Object.values(outputs).filter((v) => typeof v === 'number');
  if (numbers.length === 1) return { predicted: numbers[0] as number };
  const arrays = Object.values(outputs).filter(
    (v) => Array.isArray(v) && v.length === 1 && typeof v[0] === 'number',
  );
  if (numbers.length === 0 && arrays.length === 1) return { predicted: (arrays[0] as number[])[0]! };
  return null;
}

/** What reading a stored batch's rows needs. */
const BATCH_COLUMNS = [
  'model',
  'version',
  'data',
  'payload',
  'payload_file',
  'payload_offset',
  'payload_length',
] as const;
type BatchRead = Pick<MonitoringTables['prediction_batches'], (typeof BATCH_COLUMNS)[number]>;

/**
 * What the prediction log holds, read back: predictions, ground truth joined to them, model
 * performance per window and segment, and the merged window profiles drift compares.
 *
 * @example
 *   await monitoring.recordFeedback([{ request_id: 'r-1', ground_truth: '>50K' }]);
 *   await monitoring.performance({ model: 'adult', sinceMs: Date.now() - 86_400_000, untilMs: Date.now(), by: 'region' });
 */
export class Monitoring {
  private readonly db: Kysely<MonitoringTables>;
  private readonly segments: string | undefined;

  constructor(
    database: Database,
    private readonly prices: { cpuHour: number; gpuHour: number } = { cpuHour: 0.045, gpuHour: 0 },
    private readonly references?: ReferenceResolver,
    /**
     * A model's config.json as it serves now: its drift test choices (`monitoring.drift`), and
     * its class names for batches logged before the log stored them.
     */
    private readonly config?: (model: string) => { drift?: DriftSettings; labelNames?: string[] } | undefined,
  ) {
    this.db = database.as<MonitoringTables>();
    this.segments = segmentFolder(database);
  }

  /**
   * A stored batch's columns, its payload read from its row or its segment file; undefined when
   * retention removed the file since the row was read.
   */
  private async columns(b: BatchRead): Promise<ReturnType<typeof storedColumns> | undefined> {
    if (b.payload_file === null || b.payload !== null) return storedColumns(b.data, b.payload);
    if (!this.segments) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INTERNAL',
        `prediction batch payload is in segment ${b.payload_file}, but this store keeps no segment files`,
      );
    }
    const payload = await readPayload(this.segments, {
      file: b.payload_file,
      offset: Number(b.payload_offset),
      length: Number(b.payload_length),
    });
    return payload && storedColumns(b.data, payload);
  }

  /**
   * Drift against a named reference: `training` (the dataset version the model version was
   * trained on, per the registry), a dataset version `name@n`, or another range of the log.
   */
  async driftAgainst(
    q: { model: string; version?: string; sinceMs: number; untilMs: number },
    reference:
      | { kind: 'training' }
      | { kind: 'dataset'; ref: string }
      | { kind: 'window'; sinceMs: number; untilMs: number },
    requested: DriftOptions & { multivariate?: boolean } = {},
  ): Promise<DriftReport & { reference: string; version: string | null; multivariate?: MultivariateDrift }> {
    checkDriftOptions(requested);
    checkRange(q);
    if (reference.kind === 'window') checkRange(reference, REFERENCE_RANGE);
    const options = { ...this.driftOptions(q.model, requested), multivariate: requested.multivariate };
    if (reference.kind === 'window') {
      const report = await this.drift(q, reference, options);
      const multivariate = options.multivariate
        ? await this.multivariate(
            q,
            [await this.loggedTable({ ...q, sinceMs: reference.sinceMs, untilMs: reference.untilMs })],
            report,
          )
        : undefined;
      return {
        ...report,
        ...(multivariate ? { multivariate } : {}),
        reference: `${new Date(reference.sinceMs).toISOString()}..${new Date(reference.untilMs).toISOString()}`,
        version: q.version ?? null,
      };
    }
    if (!this.references) bad('dataset references are not available here');
    let ref: string;
    let version = q.version ?? null;
    if (reference.kind === 'dataset') ref = reference.ref;
    else {
      version ??= await this.latestVersion(q);
      if (version === null) await this.noPredictions(q);
      const training = await this.references!.trainingData(q.model, version!);
      if (!training) {
        bad(
          `model '${q.model}' version ${version} names no training dataset version (models push --train-data); give reference=<dataset@version>`,
        );
      }
      ref = training!;
    }
    const range = { ...q, ...(version !== null ? { version } : {}) };
    const profile = await this.referenceProfile(ref!);
    const report = profile
      ? await this.drift(range, { profile }, options)
      : await this.drift(range, { tables: await this.references!.tables(ref!) }, options);
    let multivariate: MultivariateDrift | undefined;
    if (options.multivariate) {
      const batches: RowBatch[] = [];
      let rows = 0;
      for (const t of await this.references!.tables(ref!)) {
        for await (const b of readTable(t.local, { format: t.format })) {
          if (rows >= MULTIVARIATE_REFERENCE_ROWS) break;
          batches.push(b);
          rows += b.rows.length;
        }
      }
      multivariate = await this.multivariate(range, batches, report);
    }
    return { ...report, reference: ref!, version, ...(multivariate ? { multivariate } : {}) };
  }

  /**
   * A 404 when nothing here knows the model: it is not served and was never logged (one indexed
   * lookup, made only for a model not served). For the API's reads of one model; the queries
   * themselves answer zeros for a model without traffic, as alert rules on `requests` need.
   * Without the served models (the CLI), every model is known here; the CLI asks `hasLogged`
   * and the registry itself.
   *
   * @example await monitoring.checkKnown('adult'); // throws SLIPWAY_ERR_MODEL_NOT_FOUND for a typo
   */
  async checkKnown(model: string): Promise<void> {
    if (!this.config || this.config(model) !== undefined) return;
    if (!(await this.hasLogged(model))) {
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_NOT_FOUND',
        `model '${model}' is not served here and has no logged predictions`,
      );
    }
  }

  /** Whether the store holds logged predictions, or counted requests, of a model. */
  async hasLogged(model: string): Promise<boolean> {
    const logged =
      (await this.db
        .selectFrom('prediction_batches')
        .select('id')
        .where('model', '=', model)
        .limit(1)
        .executeTakeFirst()) ??
      (await this.db
        .selectFrom('monitoring_windows')
        .select('model')
        .where('model', '=', model)
        .limit(1)
        .executeTakeFirst());
    return logged !== undefined;
  }

  /**
   * Why a range holds no logged predictions of a model: a 404 when nothing here knows the model
   * (`checkKnown`), else a 400 — the model exists, the range is empty.
   */
  private async noPredictions(q: { model: string; version?: string }): Promise<never> {
    await this.checkKnown(q.model);
    return bad(
      `no logged predictions of model '${q.model}'${q.version ? ` version ${q.version}` : ''} in that range`,
    );
  }

  /**
   * The drift options for a model: its config.json choices (`monitoring.drift`) unless a request
   * chooses. A request's test or threshold for every column replaces the config's choices
   * altogether (a threshold means something only for the test it was chosen with); a request's
   * (or a rule's) choice for a column replaces the config's for that column. Columns named only by
   * the config and absent from a comparison are left out there, not refused.
   */
  driftOptions(model: string, requested: DriftOptions = {}): DriftOptions {
    const s = this.config?.(model)?.drift;
    if (!s || requested.test !== undefined || requested.threshold !== undefined) return requested;
    const columns: Record<string, { test?: string; threshold?: number }> = { ...s.columns };
    const configured = new Set(Object.keys(columns));
    for (const [name, c] of Object.entries(requested.columns ?? {})) {
      // The config's threshold for every column was chosen for its own test, not this one.
      const test = c.test !== undefined ? statTests.get(c.test) : undefined;
      columns[name] =
        c.threshold === undefined && test && s.threshold !== undefined
          ? { ...c, threshold: test.defaultThreshold }
          : c;
      configured.delete(name);
    }
    const driftShare = requested.driftShare ?? s.driftShare;
    return {
      ...requested,
      ...(s.test !== undefined ? { test: s.test } : {}),
      ...(s.threshold !== undefined ? { threshold: s.threshold } : {}),
      ...(driftShare !== undefined ? { driftShare } : {}),
      ...(Object.keys(columns).length > 0 ? { columns } : {}),
      ...(configured.size > 0 ? { optionalColumns: [...configured] } : {}),
    };
  }

  /** PCA reconstruction drift over the columns the per-column report compared. */
  private async multivariate(
    q: { model: string; version?: string; sinceMs: number; untilMs: number },
    reference: RowBatch[],
    report: DriftReport,
  ): Promise<MultivariateDrift> {
    const current = await this.loggedTable(q);
    // Over the inputs: the predictions follow from them.
    const inputs = Object.keys(report.columns).filter((c) => !c.startsWith('prediction.'));
    return pcaReconstructionDrift(reference, [current], inputs);
  }

  private readonly profiles = new Map<string, TableProfile | null>();

  /**
   * The dataset version's stored profile when every column kept exact counts (the tests need
   * every value): read once and kept (a version never changes); otherwise the files are read.
   */
  private async referenceProfile(ref: string): Promise<TableProfile | undefined> {
    if (!this.references?.profile || !/@\d+$/.test(ref)) return undefined;
    if (!this.profiles.has(ref)) {
      const p = await this.references.profile(ref);
      const exact = p?.columnNames.every((c) => p.get(c)!.exact !== null) === true;
      if (this.profiles.size >= 16) this.profiles.delete(this.profiles.keys().next().value!);
      this.profiles.set(ref, exact ? p : null);
    }
    return this.profiles.get(ref) ?? undefined;
  }

  /** The version of a model's most recent logged batch in a range. */
  private async latestVersion(q: {
    model: string;
    sinceMs: number;
    untilMs: number;
  }): Promise<string | null> {
    const row = await this.db
      .selectFrom('prediction_batches')
      .select('version')
      .where('model', '=', q.model)
      .where('end_ms', '>=', q.sinceMs)
      .where('start_ms', '<', q.untilMs)
      .orderBy('end_ms', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row?.version ?? null;
  }

  /**
   * The versions of a model side by side in a range: traffic, errors, latency, CPU time, cost
   * per 1000 predictions and the headline quality figure (accuracy, or RMSE for regression).
   */
  async versions(q: { model: string; sinceMs: number; untilMs: number }): Promise<VersionComparison[]> {
    checkRange(q);
    const seen = await this.db
      .selectFrom('monitoring_windows')
      .select('version')
      .distinct()
      .where('model', '=', q.model)
      .where('window_ms', '>=', Math.floor(q.sinceMs / 60_000) * 60_000)
      .where('window_ms', '<', q.untilMs)
      .execute();
    const out: VersionComparison[] = [];
    for (const { version } of seen.sort((a, b) => Number(a.version) - Number(b.version))) {
      const range = { model: q.model, version, sinceMs: q.sinceMs, untilMs: q.untilMs };
      const [service, perf] = await Promise.all([
        this.service(range),
        this.performance(range, { labelledOnly: true }),
      ]);
      const m = perf.metrics;
      const cost = (service.cpu_seconds / 3600) * this.prices.cpuHour;
      out.push({
        version,
        requests: service.requests,
        errors: service.errors,
        error_rate: service.error_rate,
        latency_ms: service.latency_ms,
        cpu_seconds: service.cpu_seconds,
        gpu_seconds: 0,
        cost_per_1000: service.requests > 0 ? (cost / service.requests) * 1000 : null,
        labelled: perf.labelled,
        ...(m?.task === 'classification' ? { accuracy: m.accuracy } : {}),
        ...(m?.task === 'regression' ? { rmse: m.rmse } : {}),
        ...(m ? { quality: qualityFigures(m) } : {}),
      });
    }
    return out;
  }

  /**
   * The logged rows of batches overlapping a range (latest-ending batches first), filtered.
   * With `newest`, batches stop being read once `newest` rows are held that are all newer than
   * the end of the next batch, and so than anything it or a later one holds (batches of one
   * flush overlap in time: records, each version's tensors, early hand-offs); a listing reads
   * the last few batches, not the range. With
   * `sample`, a range holding more rows than that is read as a uniform random sample of its
   * batches, about `sample` rows in all (drift over a week reads a bounded share of it).
   */
  private async rows(
    q: PredictionQuery,
    how: { newest?: number; sample?: number } = {},
  ): Promise<PredictionRow[]> {
    checkRange(q);
    let query = this.db.selectFrom('prediction_batches').select(['id', 'start_ms', 'end_ms', 'rows']);
    if (q.model !== undefined) query = query.where('model', '=', q.model);
    if (q.version !== undefined) query = query.where('version', '=', q.version);
    if (q.sinceMs !== undefined) query = query.where('end_ms', '>=', q.sinceMs);
    if (q.untilMs !== undefined) query = query.where('start_ms', '<', q.untilMs);
    let batches = await query.orderBy('end_ms', 'desc').orderBy('start_ms', 'desc').execute();
    if (how.sample !== undefined) batches = sampleBatches(batches, how.sample);
    const out: PredictionRow[] = [];
    for (const m of batches) {
      if (
        how.newest !== undefined &&
        out.length >= how.newest &&
        Number(m.end_ms) < nthNewest(out, how.newest)
      )
        break;
      const b = await this.db
        .selectFrom('prediction_batches')
        .select(BATCH_COLUMNS)
        .where('id', '=', m.id)
        .executeTakeFirst();
      const columns = b && (await this.columns(b));
      if (!b || !columns) continue; // removed by retention since
      for (const r of batchRows(b.model, b.version, columns)) {
        if (q.sinceMs !== undefined && r.timeMs < q.sinceMs) continue;
        if (q.untilMs !== undefined && r.timeMs >= q.untilMs) continue;
        if (q.requestId !== undefined && r.requestId !== q.requestId) continue;
        out.push(r);
      }
    }
    return out;
  }

  /** Ground truth of some (request, row) pairs, read in chunks. */
  private async feedbackFor(
    rows: readonly Pick<PredictionRow, 'requestId' | 'rowIndex'>[],
  ): Promise<Map<string, { groundTruth: unknown; weight: number }>> {
    const ids = [...new Set(rows.map((r) => r.requestId))];
    const found = new Map<string, { groundTruth: unknown; weight: number }>();
    for (let i = 0; i < ids.length; i += 500) {
      const got = await this.db
        .selectFrom('feedback')
        .select(['request_id', 'row_index', 'ground_truth', 'weight'])
        .where('request_id', 'in', ids.slice(i, i + 500))
        .execute();
      for (const f of got) {
        found.set(`${f.request_id}\u0000${f.row_index}`, {
          groundTruth: JSON.parse(f.ground_truth),
          weight: f.weight,
        });
      }
    }
    return found;
  }

  /** Logged predictions, newest first, without their ground truth (what drift needs, and cheaper). */
  async logged(q: PredictionQuery): Promise<LoggedPrediction[]> {
    return (await this.rows(q, { newest: q.limit ?? 100 }))
      .sort(
        (a, b) =>
          b.timeMs - a.timeMs ||
          (a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0) ||
          a.rowIndex - b.rowIndex,
      )
      .slice(0, q.limit ?? 100)
      .map(loggedOf);
  }

  /**
   * Logged predictions of a range for drift: all of them, or a uniform random sample of the
   * range's stored batches holding about `rows` rows when it holds more (in no set order).
   */
  async sampled(q: Omit<PredictionQuery, 'limit'>, rows = DRIFT_SAMPLE_ROWS): Promise<LoggedPrediction[]> {
    return (await this.rows(q, { sample: rows })).map(loggedOf);
  }

  /** Logged predictions, newest first, with their ground truth when it has arrived. */
  async predictions(q: PredictionQuery): Promise<LoggedPrediction[]> {
    const rows = await this.logged(q);
    const truth = await this.feedbackFor(rows.map((r) => ({ requestId: r.requestId, rowIndex: r.row })));
    return rows.map((r) => {
      const f = truth.get(`${r.requestId}\u0000${r.row}`);
      return f ? { ...r, groundTruth: f.groundTruth } : r;
    });
  }

  /**
   * Stores ground truth, before or long after its prediction; sending the same (request, row)
   * again replaces it, so retries are harmless. Each item is checked first, as sent (nothing is
   * coerced: `null` is not a class, `"2"` is not a weight): a lone item's errors name the field
   * (`weight`), a list's the item too (`feedback[3].weight`).
   */
  async recordFeedback(input: FeedbackInput | readonly FeedbackInput[]): Promise<{ accepted: number }> {
    const list = Array.isArray(input);
    const items: readonly unknown[] = list ? (input as readonly FeedbackInput[]) : [input];
    if (items.length === 0) bad('feedback: give at least one item');
    const now = Date.now();
    const rows = items.map((value, i) => {
      const at = list ? `feedback[${i}].` : '';
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        bad(
          `${list ? `feedback[${i}]` : 'a feedback item'} must be an object {request_id, ground_truth, row?, weight?}, got ${describeValue(value)}`,
        );
      }
      const item = value as Record<string, unknown>;
      for (const k of Object.keys(item)) {
        if (!FEEDBACK_FIELDS.includes(k))
          bad(`${at}${k} is not a feedback field (${FEEDBACK_FIELDS.join(', ')})`);
      }
      const id = item.request_id;
      if (typeof id !== 'string' || id === '' || id.length > MAX_REQUEST_ID_LENGTH) {
        bad(
          `${at}request_id must be a non-empty string of at most ${MAX_REQUEST_ID_LENGTH} characters, got ${describeValue(id)}`,
        );
      }
      const gt = item.ground_truth;
      if (
        !(
          typeof gt === 'string' ||
          typeof gt === 'boolean' ||
          (typeof gt === 'number' && Number.isFinite(gt))
        )
      ) {
        bad(`${at}ground_truth must be a string, a finite number or a boolean, got ${describeValue(gt)}`);
      }
      if (typeof gt === 'string' && gt.length > MAX_GROUND_TRUTH_LENGTH) {
        bad(
          `${at}ground_truth is ${gt.length} characters long, and a class name may be at most ${MAX_GROUND_TRUTH_LENGTH}`,
        );
      }
      const row = item.row === undefined ? 0 : item.row;
      if (typeof row !== 'number' || !Number.isSafeInteger(row) || row < 0) {
        bad(
          `${at}row must be a non-negative integer when present (the request's 0-based row), got ${describeValue(row)}`,
        );
      }
      const weight = item.weight === undefined ? 1 : item.weight;
      if (typeof weight !== 'number' || !(weight > 0) || !Number.isFinite(weight)) {
        bad(`${at}weight must be a positive finite number when present, got ${describeValue(weight)}`);
      }
      return {
        request_id: id as string,
        row_index: row as number,
        ground_truth: JSON.stringify(gt),
        weight: weight as number,
        received_ms: now,
      };
    });
    await this.db.transaction().execute(async (trx) => {
      for (const r of rows) {
        await trx
          .insertInto('feedback')
          .values(r)
          .onConflict((oc) =>
            oc.columns(['request_id', 'row_index']).doUpdateSet({
              ground_truth: r.ground_truth,
              weight: r.weight,
              received_ms: r.received_ms,
            }),
          )
          .execute();
      }
    });
    return { accepted: rows.length };
  }

  /**
   * The predictions of a range (and segment) joined with their ground truth, read one stored
   * batch at a time (each parsed, filtered and joined before the next is read, with a turn of
   * the event loop between them), so memory holds one batch and serving is never held up for
   * longer than a batch takes.
   */
  private async labelled(
    q: PerformanceQuery,
    labelledOnly: boolean,
  ): Promise<{ predictions: number; labelled: LabelledPrediction[] }> {
    const labelled: LabelledPrediction[] = [];
    let predictions = 0;
    const anyTruth =
      (await this.db.selectFrom('feedback').select('request_id').limit(1).executeTakeFirst()) !== undefined;
    if (!anyTruth && labelledOnly) return { predictions, labelled };
    let ids = this.db.selectFrom('prediction_batches').select('id').where('model', '=', q.model);
    if (q.version !== undefined) ids = ids.where('version', '=', q.version);
    const batches = await ids
      .where('end_ms', '>=', q.sinceMs)
      .where('start_ms', '<', q.untilMs)
      .orderBy('start_ms', 'desc')
      .execute();
    for (const { id } of batches) {
      await new Promise((resolve) => setImmediate(resolve));
      const b = await this.db
        .selectFrom('prediction_batches')
        .select(BATCH_COLUMNS)
        .where('id', '=', id)
        .executeTakeFirst();
      const columns = b && (await this.columns(b));
      if (!b || !columns) continue; // removed by retention since
      const inRange: PredictionRow[] = [];
      const all = batchRows(b.model, b.version, columns);
      // A V2 classifier's rows hold its label as an integer and its probabilities as an array:
      // read as the records API answers them, so they are scored as classes, not as numbers.
      const classes = anyTruth
        ? batchClassPredictions(columns, this.config?.(b.model)?.labelNames)
        : undefined;
      const classOf = new Map<PredictionRow, Prediction>();
      for (let i = 0; i < all.length; i++) {
        const r = all[i]!;
        if (r.timeMs < q.sinceMs || r.timeMs >= q.untilMs) continue;
        if (q.segment && r.segments?.[q.segment.key] !== q.segment.value) continue;
        inRange.push(r);
        if (classes) classOf.set(r, classes[i]!);
      }
      predictions += inRange.length;
      if (!anyTruth) continue;
      const truth = await this.feedbackFor(inRange);
      for (const r of inRange) {
        const f = truth.get(`${r.requestId}\u0000${r.rowIndex}`);
        if (!f) continue;
        const c = classOf.get(r);
        const predicted = c ? classPredicted(c) : predictedOf(r.outputs);
        if (!predicted) continue;
        const actual = f.groundTruth as string | number | boolean;
        labelled.push({
          timeMs: r.timeMs,
          segments: r.segments,
          row: {
            ...predicted,
            actual: typeof actual === 'boolean' ? String(actual) : actual,
            weight: f.weight,
          },
        });
      }
    }
    return { predictions, labelled };
  }

  /**
   * Performance of the predictions in a range that have ground truth, overall, per segment value
   * and per window. With `labelledOnly`, `predictions` is not counted, and when no ground truth
   * has been received at all the raw log is not read (what the scheduled gauges ask for).
   */
  async performance(
    q: PerformanceQuery,
    options: { labelledOnly?: boolean } = {},
  ): Promise<PerformanceResult> {
    checkRange(q);
    if (q.windowMs !== undefined) {
      if (!(q.windowMs >= 1)) bad(`window must be at least 1ms, got ${q.windowMs} ms`);
      if ((q.untilMs - q.sinceMs) / q.windowMs > MAX_WINDOWS) {
        bad('window: at most 10 000 windows per request (a longer window or a shorter range)');
      }
      // The first window starts on a multiple of its length at or before since.
      if (Math.floor(q.sinceMs / q.windowMs) * q.windowMs < -MAX_TIME_MS) {
        bad('since: the first window would start before the earliest date a Date holds (-271821-04-20)');
      }
    }
    const { predictions, labelled } = await this.labelled(q, options.labelledOnly === true);
    const isClassification = (subset: readonly LabelledRow[]) =>
      subset.some((x) => typeof x.predicted === 'string' || x.probabilities !== undefined);
    if (q.positive !== undefined) this.checkPositive(q.model, q.positive, labelled, isClassification);
    const metricsOf = (subset: readonly LabelledRow[]): PerformanceMetrics | null => {
      if (subset.length === 0) return null;
      return isClassification(subset) ? classificationMetrics(subset, q.positive) : regressionMetrics(subset);
    };
    const result: PerformanceResult = {
      model: q.model,
      ...(q.version !== undefined ? { version: q.version } : {}),
      since: new Date(q.sinceMs).toISOString(),
      until: new Date(q.untilMs).toISOString(),
      predictions,
      labelled: labelled.length,
      metrics: metricsOf(labelled.map((x) => x.row)),
    };
    if (q.by !== undefined) {
      const groups = new Map<string, LabelledRow[]>();
      for (const x of labelled) {
        const v = x.segments?.[q.by];
        if (v === undefined) continue;
        const g = groups.get(v);
        if (g) g.push(x.row);
        else groups.set(v, [x.row]);
      }
      result.segments = Object.fromEntries(
        [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([v, g]) => [v, metricsOf(g)]),
      );
    }
    if (q.windowMs !== undefined) {
      const windows: NonNullable<PerformanceResult['windows']> = [];
      // Windows aligned on multiples of their length (hours on the hour), covering the range.
      for (
        let start = Math.floor(q.sinceMs / q.windowMs) * q.windowMs;
        start < q.untilMs;
        start += q.windowMs
      ) {
        const subset = labelled
          .filter((x) => x.timeMs >= start && x.timeMs < start + q.windowMs!)
          .map((x) => x.row);
        windows.push({
          start: new Date(start).toISOString(),
          labelled: subset.length,
          metrics: metricsOf(subset),
        });
      }
      result.windows = windows;
    }
    return result;
  }

  /**
   * Refuses a positive class the model does not have (its `label_names`, or the classes its
   * labelled predictions and ground truth hold), or any positive class for a regressor: else
   * precision, recall and F1 would be 0 for a typo. Nothing to check against, nothing refused.
   */
  private checkPositive(
    model: string,
    positive: string,
    labelled: readonly LabelledPrediction[],
    isClassification: (rows: readonly LabelledRow[]) => boolean,
  ): void {
    const rows = labelled.map((x) => x.row);
    if (rows.length > 0 && !isClassification(rows)) {
      bad(`positive: model '${model}' is scored as a regressor here; positive is for classifiers`);
    }
    const classes = new Set(this.config?.(model)?.labelNames ?? []);
    for (const r of rows) {
      classes.add(String(r.actual));
      classes.add(String(r.predicted));
    }
    if (classes.size > 0 && !classes.has(positive)) {
      bad(
        `positive: ${describeValue(positive)} is not a class of model '${model}' (classes: ${[...classes]
          .sort()
          .map((c) => describeValue(c))
          .join(', ')})`,
      );
    }
  }

  /**
   * Drift of a model's logged inputs in a range against a reference table (the training dataset
   * version's files, or another range of the log), with Evidently's tests and defaults (see
   * src/monitoring/drift). Only columns both sides have are compared.
   */
  async drift(
    q: { model: string; version?: string; sinceMs: number; untilMs: number },
    reference:
      | { tables: { local: string; format: TableFormat }[] }
      | { profile: TableProfile }
      | { sinceMs: number; untilMs: number },
    options: DriftOptions = {},
  ): Promise<DriftReport> {
    checkRange(q);
    if ('sinceMs' in reference) checkRange(reference, REFERENCE_RANGE);
    const current = await this.loggedTable(q);
    if (current.rows.length === 0) await this.noPredictions(q);
    if ('profile' in reference) {
      const shared = current.columns.filter((c) => reference.profile.get(c));
      if (shared.length === 0) bad("the reference has none of the model's logged input columns");
      const idx = shared.map((c) => current.columns.indexOf(c));
      const cur = {
        columns: shared,
        rows: current.rows.map((r) => idx.map((i) => r[i] ?? null)),
        firstRow: 1,
      };
      const analysis = await analyzeDrift(
        reference.profile,
        (async function* () {
          yield cur;
        })(),
        options,
      );
      return analysis.report;
    }
    let refColumns: readonly string[];
    let refBatches: () => AsyncIterable<RowBatch>;
    if ('tables' in reference) {
      const tables = reference.tables;
      if (tables.length === 0) bad('the reference dataset version holds no table files');
      const first = await firstBatch(tables[0]!);
      refColumns = first?.columns ?? [];
      refBatches = async function* () {
        for (const t of tables) yield* readTable(t.local, { format: t.format });
      };
    } else {
      const ref = await this.loggedTable({ ...q, sinceMs: reference.sinceMs, untilMs: reference.untilMs });
      if (ref.rows.length === 0) {
        bad(
          `no logged predictions of model '${q.model}'${q.version ? ` version ${q.version}` : ''} in the reference window ${new Date(reference.sinceMs).toISOString()}..${new Date(reference.untilMs).toISOString()}`,
        );
      }
      refColumns = ref.columns;
      refBatches = async function* () {
        yield ref;
      };
    }
    const shared = current.columns.filter((c) => refColumns.includes(c));
    if (shared.length === 0) bad("the reference has none of the model's logged input columns");
    const project = (batch: RowBatch): RowBatch => {
      const idx = shared.map((c) => batch.columns.indexOf(c));
      return {
        columns: shared,
        rows: batch.rows.map((r) => idx.map((i) => r[i] ?? null)),
        firstRow: batch.firstRow,
      };
    };
    const refSource = async function* () {
      for await (const b of refBatches()) yield project(b);
    };
    const curSource = async function* () {
      yield project(current);
    };
    const analysis = await analyzeDrift(refSource(), curSource(), options);
    return analysis.report;
  }

  /** The logged inputs of a range as one table (scalar values only; arrays and objects left out). */
  private async loggedTable(q: {
    model: string;
    version?: string;
    sinceMs: number;
    untilMs: number;
  }): Promise<RowBatch> {
    return rowsTable(await this.rows(q, { sample: DRIFT_SAMPLE_ROWS }));
  }

  /**
   * Traffic of a model in a range: requests answered and failed (from the minute windows, so up
   * to a minute behind), and latency quantiles of the logged predictions.
   */
  async service(q: {
    model: string;
    version?: string;
    sinceMs: number;
    untilMs: number;
  }): Promise<ServiceStats> {
    checkRange(q);
    // Minute windows only: counts, CPU time and every written row's latency, merged (an hour of
    // traffic is 60 rows here, not an hour of raw predictions).
    let windows = this.db
      .selectFrom('monitoring_windows')
      .select(['requests', 'errors', 'cpu_us', 'rows', 'latency'])
      .where('model', '=', q.model)
      .where('granularity', '=', 'minute')
      .where('window_ms', '>=', Math.floor(q.sinceMs / 60_000) * 60_000)
      .where('window_ms', '<', q.untilMs);
    if (q.version !== undefined) windows = windows.where('version', '=', q.version);
    const counts = await windows.execute();
    const requests = counts.reduce((n, c) => n + c.requests, 0);
    const errors = counts.reduce((n, c) => n + c.errors, 0);
    const cpuSeconds = counts.reduce((n, c) => n + c.cpu_us, 0) / 1e6;
    const latency = new LatencyCounts();
    for (const c of counts) latency.merge(c.latency);
    const [p50, p95, p99] = latency.quantilesMs([0.5, 0.95, 0.99]);
    return {
      requests,
      errors,
      error_rate: requests + errors > 0 ? errors / (requests + errors) : 0,
      cpu_seconds: cpuSeconds,
      logged: counts.reduce((n, c) => n + c.rows, 0),
      latency_ms: { p50: p50 ?? null, p95: p95 ?? null, p99: p99 ?? null },
    };
  }

  /**
   * The merged profile of a model's logged rows in a range: hour profiles for whole hours that
   * have one, minute parts for the rest — a week is read as 168 hour rows, not a week of rows.
   */
  async profile(q: {
    model: string;
    version?: string;
    sinceMs: number;
    untilMs: number;
  }): Promise<TableProfile> {
    checkRange(q);
    const firstHour = Math.ceil(q.sinceMs / HOUR_MS) * HOUR_MS;
    const lastHour = Math.floor(q.untilMs / HOUR_MS) * HOUR_MS;
    let hoursQ = this.db
      .selectFrom('monitoring_windows')
      .select(['version', 'window_ms', 'profile'])
      .where('model', '=', q.model)
      .where('granularity', '=', 'hour')
      .where('window_ms', '>=', firstHour)
      .where('window_ms', '<', lastHour);
    if (q.version !== undefined) hoursQ = hoursQ.where('version', '=', q.version);
    const hours = await hoursQ.execute();
    const covered = new Set(hours.map((h) => `${h.version}\u0000${Number(h.window_ms)}`));
    let minutesQ = this.db
      .selectFrom('monitoring_windows')
      .select(['version', 'window_ms', 'profile'])
      .where('model', '=', q.model)
      .where('granularity', '=', 'minute')
      .where('window_ms', '>=', q.sinceMs)
      .where('window_ms', '<', q.untilMs);
    if (q.version !== undefined) minutesQ = minutesQ.where('version', '=', q.version);
    const minutes = (await minutesQ.execute()).filter(
      (m) => !covered.has(`${m.version}\u0000${Math.floor(Number(m.window_ms) / HOUR_MS) * HOUR_MS}`),
    );
    return mergeProfiles([...hours, ...minutes].map((w) => w.profile));
  }
}
