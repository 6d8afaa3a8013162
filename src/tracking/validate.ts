/**
 * MLflow's checks on what a client logs (mlflow/utils/validation.py), so a request the MLflow
 * server refuses is refused here too, with a 400 naming the field.
 */
import { SlipwayError } from '../errors/index.js';
import type { KeyValue, Metric } from './tracking-types.js';

export const LIMITS = {
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
  experimentNameLength: 500,
  experimentTagKeyLength: 250,
  experimentTagValueLength: 20000,
  runNameLength: 250,
  userIdLength: 256,
  modelIdLength: 64,
  loggedModelNameLength: 500,
  datasetNameLength: 500,
  datasetDigestLength: 36,
  datasetSourceTypeLength: 36,
  artifactPathLength: 900,
  /** How deep a `runs/log-model` model_json may nest (an MLmodel dict is a few levels). */
  modelJsonDepth: 100,
  /**
   * Lists in one request where MLflow sets no bound of its own (tags or params of a create,
   * datasets and models of log-inputs and outputs, experiment_ids of a search): at most this many.
   */
  listItems: 1000,
  /** AND-ed clauses of a search filter. */
  filterClauses: 100,
  /** Values in all the IN / NOT IN lists of one search filter together. */
  filterListValues: 1000,
  /** Order-by terms of a search. */
  orderByTerms: 100,
  /** Datasets of a logged-models search. */
  searchDatasets: 100,
  searchMaxResults: 50000,
  searchDefaultResults: 1000,
  loggedModelsDefaultResults: 100,
} as const;

export function bad(message: string): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
}

/**
 * A value for a text column: PostgreSQL refuses over-long values and NUL characters with errors
 * that would surface as a 500, so both are checked first and reported as the caller's mistake.
 */
export function maxLength<T extends string | null | undefined>(value: T, limit: number, field: string): T {
  if (typeof value === 'string') {
    if (value.length > limit) throw bad(`${field} exceeds the maximum length of ${limit} characters`);
    if (value.includes('\0')) throw bad(`${field} must not contain NUL characters`);
  }
  return value;
}

// Python's \w is Unicode-aware: letters, digits, marks and underscore.
const KEY_CHARS = /^[/\p{L}\p{N}\p{M}_.\- :]*$/u;

/** Python's posixpath.normpath, which MLflow uses to refuse names that would alias other names as files. */
function normpath(p: string): string {
  if (p === '') return '.';
  const initial = p.startsWith('/') ? (p.startsWith('//') && !p.startsWith('///') ? 2 : 1) : 0;
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg !== '..' || (initial === 0 && out.length === 0) || out[out.length - 1] === '..') out.push(seg);
    else if (out.length > 0) out.pop();
  }
  const joined = '/'.repeat(initial) + out.join('/');
  return joined === '' ? '.' : joined;
}

/** A metric, param or tag key: MLflow's characters, no aliasing path forms, at most 250 characters. */
export function validateKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || key === '') throw bad(`${field} is required: a key name must be provided`);
  if (!KEY_CHARS.test(key)) {
    throw bad(
      `${field} '${key}' is invalid: names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)`,
    );
  }
  const norm = normpath(key);
  if (norm !== key || norm === '.' || norm.startsWith('..') || norm.startsWith('/')) {
    throw bad(`${field} '${key}' is invalid: it would resolve to '${norm}' when treated as a file name`);
  }
  if (key.length > LIMITS.keyLength) {
    throw bad(`${field} '${key.slice(0, 40)}…' exceeds the maximum length of ${LIMITS.keyLength}`);
  }
  return key;
}

/**
 * Param and tag values longer than MLflow's limits are cut to the limit, as the MLflow server does
 * by default (MLFLOW_TRUNCATE_LONG_VALUES), so a script that works against MLflow works here.
 */
export function truncateValue(value: unknown, limit: number, field: string): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw bad(`${field} must be a string`);
  return maxLength(value.length > limit ? value.slice(0, limit) : value, limit, field);
}

export function validateParam(p: KeyValue, path = ''): KeyValue {
  return {
    key: validateKey(p.key, `${path}key`),
    value: truncateValue(p.value, LIMITS.paramValueLength, `${path}value`),
  };
}

export function validateTag(t: KeyValue, path = ''): KeyValue {
  return {
    key: validateKey(t.key, `${path}key`),
    value: truncateValue(t.value, LIMITS.tagValueLength, `${path}value`),
  };
}

export function validateExperimentTag(t: KeyValue, path = ''): KeyValue {
  validateKey(t.key, `${path}key`);
  if (typeof t.value !== 'string') throw bad(`${path}value must be a string`);
  maxLength(t.value, LIMITS.experimentTagValueLength, `${path}value`);
  return { key: t.key, value: t.value };
}

export function validateExperimentName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || name === '') throw bad(`${field} is required: invalid experiment name ''`);
  return maxLength(name, LIMITS.experimentNameLength, field);
}

/**
 * A metric's value (a number, or the strings protobuf's JSON uses for NaN and the infinities),
 * timestamp (a non-negative integer) and step (an integer).
 */
export function validateMetric(m: Metric, path = ''): Metric {
  const key = validateKey(m.key, `${path}key`);
  const value = metricValue(m.value, `${path}value`);
  if (!Number.isSafeInteger(m.timestamp) || m.timestamp < 0) {
    throw bad(
      `${path}timestamp of metric '${key}' must be a non-negative 64-bit integer, got ${m.timestamp}`,
    );
  }
  if (!Number.isSafeInteger(m.step)) throw bad(`${path}step of metric '${key}' must be a 64-bit integer`);
  maxLength(m.modelId, LIMITS.modelIdLength, `${path}model_id`);
  maxLength(m.datasetName, LIMITS.datasetNameLength, `${path}dataset_name`);
  maxLength(m.datasetDigest, LIMITS.datasetDigestLength, `${path}dataset_digest`);
  return { ...m, key, value };
}

export function metricValue(v: unknown, field: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (v === 'NaN') return Number.NaN;
    if (v === 'Infinity') return Number.POSITIVE_INFINITY;
    if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
    if (v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  throw bad(`${field} must be a double (64-bit floating point), got ${JSON.stringify(v)}`);
}

export function validateBatchLimits(metrics: number, params: number, tags: number): void {
  const check = (what: string, limit: number, n: number) => {
    if (n > limit) {
      throw bad(
        `A batch logging request can contain at most ${limit} ${what}. Got ${n} ${what}. Please split up ${what} across multiple requests and try again.`,
      );
    }
  };
  check('metrics', LIMITS.metricsPerBatch, metrics);
  check('params', LIMITS.paramsPerBatch, params);
  check('tags', LIMITS.tagsPerBatch, tags);
  check('metrics, params, and tags', LIMITS.entitiesPerBatch, metrics + params + tags);
}

const RUN_ID = /^[a-zA-Z0-9][\w-]{0,255}$/;

export function validateRunId(runId: unknown, field = 'run_id'): string {
  if (typeof runId !== 'string' || runId === '') throw bad(`${field} is required`);
  if (!RUN_ID.test(runId)) throw bad(`${field} '${runId}' is not a valid run ID`);
  return runId;
}

/**
 * A request list within its bound, refused naming the field and the limit (long lists would
 * otherwise reach the database's bound-parameter and expression limits).
 */
export function maxItems<T>(list: readonly T[] | undefined, limit: number, field: string): readonly T[] {
  if (list && list.length > limit) {
    throw bad(`${field} lists ${list.length} items; at most ${limit} are allowed in one request`);
  }
  return list ?? [];
}

/** Experiment IDs are integers written as strings. */
export function parseExperimentId(id: unknown, field = 'experiment_id'): number {
  const s = typeof id === 'number' ? String(id) : id;
  if (typeof s !== 'string' || !/^\d{1,15}$/.test(s)) {
    throw bad(`${field} '${String(id)}' is invalid: an experiment ID must be a valid integer`);
  }
  return Number(s);
}

export function validateMaxResults(n: number | undefined, fallback: number, field = 'max_results'): number {
  if (n === undefined) return fallback;
  if (!Number.isInteger(n) || n < 1) throw bad(`${field} ${n} is invalid: it must be a positive integer`);
  if (n > LIMITS.searchMaxResults) {
    throw bad(`${field} ${n} is invalid: it must be at most ${LIMITS.searchMaxResults}`);
  }
  return n;
}
