import type { Kysely } from 'kysely';
import type { TableProfile } from '../data/index.js';
import { SlipwayError } from '../errors/index.js';
import type { Database } from '../store/index.js';
import type { MonitoringTables } from './monitoring-migrations.js';
import {
  classificationMetrics,
  type LabelledRow,
  type PerformanceMetrics,
  regressionMetrics,
} from './performance.js';
import { HOUR_MS, mergeProfiles } from './prediction-log.js';

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

const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};

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

  constructor(database: Database) {
    this.db = database.as<MonitoringTables>();
  }

  async predictions(q: PredictionQuery): Promise<LoggedPrediction[]> {
    let query = this.db
      .selectFrom('prediction_log as p')
      .leftJoin('feedback as f', (j) =>
        j.onRef('f.request_id', '=', 'p.request_id').onRef('f.row_index', '=', 'p.row_index'),
      )
      .select([
        'p.request_id',
        'p.row_index',
        'p.time_ms',
        'p.model',
        'p.version',
        'p.protocol',
        'p.latency_us',
        'p.inputs',
        'p.outputs',
        'p.segments',
        'f.ground_truth',
      ]);
    if (q.model !== undefined) query = query.where('p.model', '=', q.model);
    if (q.version !== undefined) query = query.where('p.version', '=', q.version);
    if (q.requestId !== undefined) query = query.where('p.request_id', '=', q.requestId);
    if (q.sinceMs !== undefined) query = query.where('p.time_ms', '>=', q.sinceMs);
    if (q.untilMs !== undefined) query = query.where('p.time_ms', '<', q.untilMs);
    const rows = await query
      .orderBy('p.time_ms', 'desc')
      .orderBy('p.row_index', 'asc')
      .limit(q.limit ?? 100)
      .execute();
    return rows.map((r) => ({
      requestId: r.request_id,
      row: r.row_index,
      timeMs: Number(r.time_ms),
      model: r.model,
      version: r.version,
      protocol: r.protocol,
      latencyUs: r.latency_us,
      inputs: JSON.parse(r.inputs) as Record<string, unknown>,
      outputs: JSON.parse(r.outputs) as Record<string, unknown>,
      segments: r.segments === null ? null : (JSON.parse(r.segments) as Record<string, string>),
      ...(r.ground_truth === null ? {} : { groundTruth: JSON.parse(r.ground_truth) }),
    }));
  }

  /**
   * Stores ground truth, before or long after its prediction; sending the same (request, row)
   * again replaces it, so retries are harmless. Each item is checked first, naming its index.
   */
  async recordFeedback(items: readonly FeedbackInput[]): Promise<{ accepted: number }> {
    if (items.length === 0) bad('feedback: give at least one item');
    const now = Date.now();
    const rows = items.map((item, i) => {
      const at = `feedback[${i}]`;
      if (typeof item !== 'object' || item === null) bad(`${at} must be an object`);
      if (typeof item.request_id !== 'string' || item.request_id === '' || item.request_id.length > 256) {
        bad(`${at}.request_id must be a non-empty string of at most 256 characters`);
      }
      const row = item.row ?? 0;
      if (!Number.isSafeInteger(row) || row < 0) bad(`${at}.row must be a non-negative integer`);
      const gt = item.ground_truth;
      if (
        !['string', 'number', 'boolean'].includes(typeof gt) ||
        (typeof gt === 'number' && !Number.isFinite(gt))
      ) {
        bad(`${at}.ground_truth must be a string, a finite number or a boolean`);
      }
      const weight = item.weight ?? 1;
      if (typeof weight !== 'number' || !(weight > 0) || !Number.isFinite(weight))
        bad(`${at}.weight must be a positive number`);
      return {
        request_id: item.request_id,
        row_index: row,
        ground_truth: JSON.stringify(gt),
        weight,
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

  /** Performance of the predictions in a range that have ground truth, overall, per segment value and per window. */
  async performance(q: PerformanceQuery): Promise<PerformanceResult> {
    let query = this.db
      .selectFrom('prediction_log as p')
      .leftJoin('feedback as f', (j) =>
        j.onRef('f.request_id', '=', 'p.request_id').onRef('f.row_index', '=', 'p.row_index'),
      )
      .select(['p.time_ms', 'p.outputs', 'p.segments', 'f.ground_truth', 'f.weight'])
      .where('p.model', '=', q.model)
      .where('p.time_ms', '>=', q.sinceMs)
      .where('p.time_ms', '<', q.untilMs);
    if (q.version !== undefined) query = query.where('p.version', '=', q.version);
    const rows = await query.execute();
    const labelled: { timeMs: number; segments: Record<string, string> | null; row: LabelledRow }[] = [];
    let predictions = 0;
    for (const r of rows) {
      const segments = r.segments === null ? null : (JSON.parse(r.segments) as Record<string, string>);
      if (q.segment && segments?.[q.segment.key] !== q.segment.value) continue;
      predictions++;
      if (r.ground_truth === null) continue;
      const predicted = predictedOf(JSON.parse(r.outputs) as Record<string, unknown>);
      if (!predicted) continue;
      const actual = JSON.parse(r.ground_truth) as string | number | boolean;
      labelled.push({
        timeMs: Number(r.time_ms),
        segments,
        row: {
          ...predicted,
          actual: typeof actual === 'boolean' ? String(actual) : actual,
          weight: r.weight ?? 1,
        },
      });
    }
    const metricsOf = (subset: readonly LabelledRow[]): PerformanceMetrics | null => {
      if (subset.length === 0) return null;
      const classification = subset.some(
        (x) => typeof x.predicted === 'string' || x.probabilities !== undefined,
      );
      return classification ? classificationMetrics(subset, q.positive) : regressionMetrics(subset);
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
   * The merged profile of a model's logged rows in a range: hour profiles for whole hours that
   * have one, minute parts for the rest — a week is read as 168 hour rows, not a week of rows.
   */
  async profile(q: {
    model: string;
    version?: string;
    sinceMs: number;
    untilMs: number;
  }): Promise<TableProfile> {
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
