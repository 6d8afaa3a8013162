import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Datasets, RowBatch } from '../../data/index.js';
import { readTable, TableProfile } from '../../data/index.js';
import type { Registry } from '../../registry/index.js';
import { parseDatasetRef } from '../../registry/index.js';
import { analyzeDrift, type DriftAnalysis, type DriftOptions } from '../drift/index.js';
import { parseWindowReference } from '../durations.js';
import { type LoggedPrediction, type Monitoring, rowsTable } from '../monitoring.js';
import type { RuleExpression } from './rule-expression.js';

/** A measured metric, or why there is none (`no_data`). */
export interface Measurement {
  value: number | null;
  reason?: string;
  /** The model version measured (drift against its training data). */
  version?: string;
  /** The training dataset ref of that version, when known (retraining gets it). */
  dataset?: string;
}

export interface MeasureTarget {
  model: string;
  version?: string | null;
  /** Drift reference: `training` (default), a dataset ref (`adult@1`), or `window:<since>/<until>`. */
  reference?: string | null;
}

/** What a rule's metric is read from: the engine's one seam, so it can run on any source. */
export interface AlertMetricSource {
  measure(
    target: MeasureTarget,
    expr: RuleExpression,
    window: { sinceMs: number; untilMs: number },
  ): Promise<Measurement>;
}

/** The drift engine's entry point (Evidently's DataDriftPreset on two tables). */
export type DriftFunction = (
  reference: TableProfile,
  current: TableProfile,
  options: DriftOptions,
) => Promise<DriftAnalysis>;

export interface MonitoringMetricsOptions {
  monitoring: Monitoring;
  /** For drift against a version's training data. */
  registry?: Registry;
  datasets?: Datasets;
  drift?: DriftFunction;
  /** About the most logged rows a drift check reads from its window (a uniform sample of its batches beyond). Default DRIFT_SAMPLE_ROWS. */
  maxDriftRows?: number;
}

/** Exact counts past any number of distinct values, as the drift tests need. */
const EXACT = { exactLimit: Number.MAX_SAFE_INTEGER, exactBytes: Number.MAX_SAFE_INTEGER };

/**
 * Measures rule metrics on the monitoring store: service stats, performance on predictions with
 * ground truth, and drift of the logged inputs against a reference table (the training dataset
 * of the model version, a named dataset, or a past window of the log).
 */
export class MonitoringMetrics implements AlertMetricSource {
  /** Reference profiles of immutable datasets, by ref. */
  private readonly references = new Map<string, Promise<TableProfile>>();

  constructor(private readonly options: MonitoringMetricsOptions) {}

  async measure(
    target: MeasureTarget,
    expr: RuleExpression,
    window: { sinceMs: number; untilMs: number },
  ): Promise<Measurement> {
    const version = target.version ?? undefined;
    const base = { model: target.model, ...(version !== undefined ? { version } : {}), ...window };
    if (expr.kind === 'service') {
      const s = await this.options.monitoring.service(base);
      switch (expr.metric) {
        case 'requests':
          return { value: s.requests };
        case 'errors':
          return { value: s.errors };
        case 'error_rate':
          return s.requests + s.errors === 0
            ? { value: null, reason: 'no requests in the window' }
            : { value: s.error_rate };
        default: {
          const q = expr.metric.slice(0, 3) as 'p50' | 'p95' | 'p99';
          const v = s.latency_ms[q];
          return v === null ? { value: null, reason: 'no logged predictions in the window' } : { value: v };
        }
      }
    }
    if (expr.kind === 'performance') {
      const p = await this.options.monitoring.performance({
        ...base,
        ...(expr.segment ? { segment: expr.segment } : {}),
      });
      if (!p.metrics) {
        return {
          value: null,
          reason: `no predictions with ground truth in the window (${p.predictions} predictions)`,
        };
      }
      const v = (p.metrics as unknown as Record<string, unknown>)[expr.metric];
      if (typeof v !== 'number') {
        return {
          value: null,
          reason:
            v === undefined
              ? `${expr.metric} is not a ${p.metrics.task} metric`
              : `${expr.metric} cannot be computed on these rows`,
        };
      }
      return { value: v };
    }
    return this.drift(target, expr, window);
  }

  private async drift(
    target: MeasureTarget,
    expr: RuleExpression,
    window: { sinceMs: number; untilMs: number },
  ): Promise<Measurement> {
    const rows = await this.logged(target.model, target.version ?? undefined, window, expr.segment);
    if (rows.length === 0) return { value: null, reason: 'no logged predictions in the window' };
    const version = target.version ?? mostFrequent(rows.map((r) => r.version));
    const ref = await this.reference(target, version, window, expr.segment);
    if ('reason' in ref) return { value: null, reason: ref.reason, version };
    const current = currentProfile(rows, new Set(ref.profile.columnNames));
    const measured = { version, ...(ref.dataset ? { dataset: ref.dataset } : {}) };
    if (current.columnNames.length === 0) {
      return { value: null, reason: 'no logged input column is in the reference table', ...measured };
    }
    if (expr.column !== undefined && !current.columnNames.includes(expr.column)) {
      return { value: null, reason: `no logged values of column '${expr.column}'`, ...measured };
    }
    // The model's config.json choices (monitoring.drift) under the rule's own test for its column.
    const options = this.options.monitoring.driftOptions(
      target.model,
      expr.column !== undefined && expr.test !== 'drift_score'
        ? { columns: { [expr.column]: { test: expr.test! } } }
        : {},
    );
    const drift = this.options.drift ?? ((a, b, o) => analyzeDrift(a, b, o));
    const { report, skipped } = await drift(ref.profile, current, options);
    if (expr.kind === 'column_drift') {
      const c = report.columns[expr.column!];
      if (!c) {
        const why = skipped.find((s) => s.name === expr.column)?.reason ?? 'not tested';
        return { value: null, reason: `column '${expr.column}': ${why}`, ...measured };
      }
      return { value: c.score, ...measured };
    }
    const tested = Object.keys(report.columns).length;
    if (tested === 0) return { value: null, reason: 'no column could be tested', ...measured };
    if (expr.metric === 'drift_share') return { value: report.drift_share, ...measured };
    if (expr.metric === 'dataset_drift') return { value: report.dataset_drift ? 1 : 0, ...measured };
    return { value: Object.values(report.columns).filter((c) => c.drifted).length, ...measured };
  }

  private async logged(
    model: string,
    version: string | undefined,
    window: { sinceMs: number; untilMs: number },
    segment?: { key: string; value: string },
  ): Promise<LoggedPrediction[]> {
    // A long window is read as a uniform sample of its stored batches, not as its newest rows.
    const rows = await this.options.monitoring.sampled(
      { model, ...(version !== undefined ? { version } : {}), ...window },
      this.options.maxDriftRows,
    );
    return segment ? rows.filter((r) => r.segments?.[segment.key] === segment.value) : rows;
  }

  /** The reference table's profile, or why there is none. */
  private async reference(
    target: MeasureTarget,
    version: string,
    window: { sinceMs: number; untilMs: number },
    segment?: { key: string; value: string },
  ): Promise<{ profile: TableProfile; dataset?: string } | { reason: string }> {
    const spec = target.reference ?? 'training';
    if (spec.startsWith('window:')) {
      let sinceMs: number;
      let untilMs: number;
      try {
        // As the rule was checked when created; an absolute end may since have made it reversed.
        ({ sinceMs, untilMs } = parseWindowReference(spec, 'reference', window.untilMs));
      } catch (err) {
        return { reason: (err as Error).message };
      }
      // The same segment then and now.
      const rows = await this.logged(
        target.model,
        target.version ?? undefined,
        { sinceMs, untilMs },
        segment,
      );
      if (rows.length === 0) return { reason: `no logged predictions in the reference window ${spec}` };
      return { profile: currentProfile(rows, null) };
    }
    let ref = spec;
    if (spec === 'training') {
      const n = Number(version);
      if (!this.options.registry || !Number.isSafeInteger(n)) {
        return { reason: `${target.model} v${version} is not a registry version: give the rule a reference` };
      }
      let v: Awaited<ReturnType<Registry['getVersion']>>;
      try {
        v = await this.options.registry.getVersion(target.model, n);
      } catch {
        return { reason: `${target.model} v${version} is not in the registry: give the rule a reference` };
      }
      const training = v.trainingData[0];
      if (!training) return { reason: `${target.model} v${version} names no training data` };
      ref = training.ref;
    }
    try {
      return { profile: await this.datasetProfile(ref), dataset: ref };
    } catch (err) {
      this.references.delete(ref);
      return { reason: `reference ${ref}: ${(err as Error).message}` };
    }
  }

  /** A dataset version's (or a file URI's) tables read into one exact profile, cached by ref. */
  private datasetProfile(ref: string): Promise<TableProfile> {
    let p = this.references.get(ref);
    if (!p) {
      p = (async () => {
        const parsed = parseDatasetRef(ref, 'reference');
        if (parsed.uri !== null) {
          if (!parsed.uri.startsWith('file:'))
            throw new Error('only file: URIs and dataset refs can be read');
          return profileFiles([fileURLToPath(parsed.uri)]);
        }
        if (!this.options.datasets) throw new Error('no dataset store');
        const v = await this.options.datasets.show(ref);
        const dir = await mkdtemp(join(tmpdir(), 'slipway-alert-ref-'));
        try {
          const files = await this.options.datasets.get(v.ref, dir);
          const tables = new Set(v.manifest.files.filter((f) => f.format).map((f) => f.path));
          return await profileFiles(files.filter((f) => [...tables].some((t) => f.endsWith(t))));
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      })();
      this.references.set(ref, p);
    }
    return p;
  }
}

async function profileFiles(paths: readonly string[]): Promise<TableProfile> {
  if (paths.length === 0) throw new Error('holds no table file');
  const profile = new TableProfile(EXACT);
  for (const path of paths) for await (const batch of readTable(path)) profile.add(batch);
  return profile;
}

function mostFrequent(values: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
}

/**
 * Logged rows as one table, inputs and predictions (`prediction.<output>`, see rowsTable), the
 * columns limited to `keep` when given.
 */
function currentProfile(rows: readonly LoggedPrediction[], keep: Set<string> | null): TableProfile {
  const all = rowsTable(rows);
  const idx: number[] = [];
  all.columns.forEach((c, i) => {
    if (!keep || keep.has(c)) idx.push(i);
  });
  const batch: RowBatch = {
    columns: idx.map((i) => all.columns[i]!),
    rows: all.rows.map((r) => idx.map((i) => r[i]!)),
    firstRow: 1,
  };
  const profile = new TableProfile(EXACT);
  if (batch.columns.length > 0) profile.add(batch);
  return profile;
}
