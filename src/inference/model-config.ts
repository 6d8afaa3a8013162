import { SlipwayError } from '../errors/index.js';
import { statTests } from '../monitoring/drift/stattests/index.js';
import { parseWarmup, type WarmupSample } from './model-warmup.js';

/**
 * A model's `config.json` (beside its version folders), in Triton's snake_case spelling.
 * Every field is optional; `resolveModelConfig` fills the defaults and rejects bad values
 * naming the field.
 *
 * @example
 *   {
 *     "max_batch_size": 64,
 *     "dynamic_batching": { "max_queue_delay_microseconds": 200, "preferred_batch_size": [16, 32] },
 *     "instance_count": 1,
 *     "version_policy": { "latest": { "num_versions": 1 } },
 *     "feature_names": ["age", "hours_per_week"],
 *     "label_names": ["<=50K", ">50K"]
 *   }
 */
export interface ModelConfigFile {
  max_batch_size?: number;
  dynamic_batching?: {
    max_queue_delay_microseconds?: number;
    preferred_batch_size?: number[];
    max_queue_size?: number;
  };
  instance_count?: number;
  intra_op_threads?: number;
  inter_op_threads?: number;
  graph_optimization_level?: 'disabled' | 'basic' | 'extended' | 'all';
  execution?: 'auto' | 'worker' | 'main';
  main_thread_budget_microseconds?: number;
  version_policy?: { latest?: { num_versions?: number }; all?: object; specific?: { versions?: number[] } };
  default_timeout_ms?: number;
  feature_names?: string[];
  label_names?: string[];
  /** With a schema beside the model: `reject` a request with invalid rows (400), or `quarantine` them. */
  data_validation?: 'reject' | 'quarantine';
  /** Triton's response cache: identical requests answered from the server's cache (needs its size). */
  response_cache?: { enable?: boolean };
  /** Triton's warmup: requests run on each version before it serves (`model-warmup.ts`). */
  model_warmup?: {
    name: string;
    batch_size?: number;
    count?: number;
    inputs: Record<string, { data_type: string; dims: number[]; zero_data?: boolean; random_data?: boolean }>;
  }[];
  /**
   * The prediction log: the share of requests recorded, the segment keys to record with them, and
   * how live drift tests this model's columns (Evidently's test names and thresholds).
   */
  monitoring?: {
    sample_rate?: number;
    segments?: string[];
    drift?: {
      test?: string;
      threshold?: number;
      drift_share?: number;
      columns?: Record<string, { test?: string; threshold?: number }>;
    };
  };
}

export type VersionPolicy =
  | { kind: 'latest'; numVersions: number }
  | { kind: 'all' }
  | { kind: 'specific'; versions: number[] };

export interface ModelConfig {
  /** 0 disables batching: each request runs alone. */
  maxBatchSize: number;
  /** How long the first queued request may wait for a fuller batch when the model is busy. */
  maxQueueDelayUs: number;
  preferredBatchSizes: number[];
  /** Requests waiting beyond this are refused with 429 and Retry-After. */
  maxQueueSize: number;
  instanceCount: number;
  intraOpThreads: number;
  interOpThreads: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Where batches run: `worker` threads only, the `main` thread only, or `auto`: on the main
   * thread when the model's measured cost for the batch fits `mainThreadBudgetUs`, else a worker.
   */
  execution: 'auto' | 'worker' | 'main';
  mainThreadBudgetUs: number;
  versionPolicy: VersionPolicy;
  /** Requests each version runs before it is READY. */
  warmup: WarmupSample[];
  /** Answers are kept in the server's response cache and identical requests served from it. */
  responseCache: boolean;
  /** Timeout applied when the request names none; 0 means none. */
  defaultTimeoutMs: number;
  featureNames?: string[];
  labelNames?: string[];
  /** What a request's rows that break the version's schema cause (see src/inference/input-policy.ts). */
  dataValidation: 'reject' | 'quarantine';
  /** Share of requests the prediction log records (0 to 1). */
  sampleRate: number;
  /**
   * Segment keys recorded with each prediction: a record field or request parameter by name,
   * or a header as `header:<name>`.
   */
  segments: string[];
  /** How live drift tests this model's columns unless a request says otherwise. */
  drift?: DriftSettings;
}

/**
 * A model's drift test choices (config.json `monitoring.drift`), as the drift engine takes them:
 * a test and threshold for every column, per-column ones that win over those, and the share of
 * drifted columns that makes the dataset drift.
 */
export interface DriftSettings {
  test?: string;
  threshold?: number;
  driftShare?: number;
  columns?: Record<string, { test?: string; threshold?: number }>;
}

export const DEFAULT_MODEL_CONFIG: ModelConfig = Object.freeze({
  maxBatchSize: 64,
  maxQueueDelayUs: 0,
  preferredBatchSizes: [],
  maxQueueSize: 1024,
  instanceCount: 1,
  intraOpThreads: 1,
  interOpThreads: 1,
  graphOptimizationLevel: 'all',
  execution: 'auto',
  mainThreadBudgetUs: 500,
  versionPolicy: { kind: 'latest', numVersions: 1 },
  warmup: [],
  responseCache: false,
  defaultTimeoutMs: 0,
  dataValidation: 'reject',
  sampleRate: 1,
  segments: [],
}) as ModelConfig;

function fail(model: string, field: string, expected: string): never {
  throw new SlipwayError(
    'SLIPWAY_ERR_MODEL_LOAD',
    `model '${model}' config.json: '${field}' must be ${expected}`,
  );
}

function int(model: string, field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(model, field, `an integer between ${min} and ${max}`);
  }
  return v;
}

function strings(model: string, field: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string') || new Set(v).size !== v.length) {
    fail(model, field, 'an array of distinct strings');
  }
  return v as string[];
}

/** Validates a parsed config.json and fills defaults. `base` supplies server-wide defaults. */
export function resolveModelConfig(
  model: string,
  raw: unknown,
  base: ModelConfig = DEFAULT_MODEL_CONFIG,
): ModelConfig {
  if (raw === undefined || raw === null) return { ...base };
  if (typeof raw !== 'object' || Array.isArray(raw)) fail(model, '(root)', 'a JSON object');
  const known = new Set([
    'max_batch_size',
    'dynamic_batching',
    'instance_count',
    'intra_op_threads',
    'inter_op_threads',
    'graph_optimization_level',
    'execution',
    'main_thread_budget_microseconds',
    'version_policy',
    'default_timeout_ms',
    'feature_names',
    'label_names',
    'data_validation',
    'monitoring',
    'model_warmup',
    'response_cache',
    'name',
    'platform',
    'backend',
  ]);
  const c = raw as Record<string, unknown>;
  for (const key of Object.keys(c)) if (!known.has(key)) fail(model, key, `one of: ${[...known].join(', ')}`);
  const out: ModelConfig = { ...base };
  if (c.max_batch_size !== undefined)
    out.maxBatchSize = int(model, 'max_batch_size', c.max_batch_size, 0, 1 << 20);
  if (c.dynamic_batching !== undefined) {
    const d = c.dynamic_batching as Record<string, unknown>;
    if (typeof d !== 'object' || d === null) fail(model, 'dynamic_batching', 'an object');
    if (d.max_queue_delay_microseconds !== undefined) {
      out.maxQueueDelayUs = int(
        model,
        'dynamic_batching.max_queue_delay_microseconds',
        d.max_queue_delay_microseconds,
        0,
        10_000_000,
      );
    }
    if (d.preferred_batch_size !== undefined) {
      const p = d.preferred_batch_size;
      if (!Array.isArray(p))
        fail(model, 'dynamic_batching.preferred_batch_size', 'an array of positive integers');
      out.preferredBatchSizes = p
        .map((n, i) => int(model, `dynamic_batching.preferred_batch_size[${i}]`, n, 1, 1 << 20))
        .sort((a, b) => a - b);
    }
    if (d.max_queue_size !== undefined) {
      out.maxQueueSize = int(model, 'dynamic_batching.max_queue_size', d.max_queue_size, 1);
    }
  }
  if (c.instance_count !== undefined)
    out.instanceCount = int(model, 'instance_count', c.instance_count, 1, 64);
  if (c.intra_op_threads !== undefined) {
    out.intraOpThreads = int(model, 'intra_op_threads', c.intra_op_threads, 0, 256);
  }
  if (c.inter_op_threads !== undefined) {
    out.interOpThreads = int(model, 'inter_op_threads', c.inter_op_threads, 0, 256);
  }
  if (c.graph_optimization_level !== undefined) {
    const levels = ['disabled', 'basic', 'extended', 'all'];
    if (!levels.includes(c.graph_optimization_level as string)) {
      fail(model, 'graph_optimization_level', `one of ${levels.join(', ')}`);
    }
    out.graphOptimizationLevel = c.graph_optimization_level as ModelConfig['graphOptimizationLevel'];
  }
  if (c.execution !== undefined) {
    if (!['auto', 'worker', 'main'].includes(c.execution as string))
      fail(model, 'execution', 'one of auto, worker, main');
    out.execution = c.execution as ModelConfig['execution'];
  }
  if (c.main_thread_budget_microseconds !== undefined) {
    out.mainThreadBudgetUs = int(
      model,
      'main_thread_budget_microseconds',
      c.main_thread_budget_microseconds,
      0,
      1_000_000,
    );
  }
  if (c.version_policy !== undefined) out.versionPolicy = versionPolicy(model, c.version_policy);
  if (c.response_cache !== undefined) {
    const r = c.response_cache as Record<string, unknown>;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) fail(model, 'response_cache', 'an object');
    for (const key of Object.keys(r))
      if (key !== 'enable') fail(model, `response_cache.${key}`, 'one of: enable');
    if (r.enable !== undefined && typeof r.enable !== 'boolean')
      fail(model, 'response_cache.enable', 'true or false');
    out.responseCache = r.enable === true;
  }
  if (c.model_warmup !== undefined)
    out.warmup = parseWarmup(c.model_warmup, (field, expected) => fail(model, field, expected));
  if (c.default_timeout_ms !== undefined) {
    out.defaultTimeoutMs = int(model, 'default_timeout_ms', c.default_timeout_ms, 0, 3_600_000);
  }
  if (c.feature_names !== undefined) out.featureNames = strings(model, 'feature_names', c.feature_names);
  if (c.label_names !== undefined) out.labelNames = strings(model, 'label_names', c.label_names);
  if (c.data_validation !== undefined) {
    if (c.data_validation !== 'reject' && c.data_validation !== 'quarantine') {
      fail(model, 'data_validation', '"reject" or "quarantine"');
    }
    out.dataValidation = c.data_validation as 'reject' | 'quarantine';
  }
  if (c.monitoring !== undefined) {
    const m = c.monitoring as Record<string, unknown>;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(model, 'monitoring', 'an object');
    for (const key of Object.keys(m)) {
      if (key !== 'sample_rate' && key !== 'segments' && key !== 'drift')
        fail(model, `monitoring.${key}`, 'one of: sample_rate, segments, drift');
    }
    if (m.drift !== undefined) out.drift = driftSettings(model, m.drift);
    if (m.sample_rate !== undefined) {
      if (typeof m.sample_rate !== 'number' || !(m.sample_rate >= 0 && m.sample_rate <= 1)) {
        fail(model, 'monitoring.sample_rate', 'a number from 0 to 1');
      }
      out.sampleRate = m.sample_rate as number;
    }
    if (m.segments !== undefined) out.segments = strings(model, 'monitoring.segments', m.segments);
  }
  for (const p of out.preferredBatchSizes) {
    if (out.maxBatchSize > 0 && p > out.maxBatchSize) {
      fail(model, 'dynamic_batching.preferred_batch_size', `at most max_batch_size (${out.maxBatchSize})`);
    }
  }
  return out;
}

function driftSettings(model: string, v: unknown): DriftSettings {
  const isObject = (x: unknown): x is Record<string, unknown> =>
    typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObject(v)) fail(model, 'monitoring.drift', 'an object');
  const d = v as Record<string, unknown>;
  const out: DriftSettings = {};
  const testAndThreshold = (
    field: string,
    o: Record<string, unknown>,
    into: { test?: string; threshold?: number },
  ) => {
    if (o.test !== undefined) {
      if (typeof o.test !== 'string' || !statTests.has(o.test))
        fail(model, `${field}.test`, `one of Evidently's tests: ${[...statTests.keys()].join(', ')}`);
      into.test = o.test as string;
    }
    if (o.threshold !== undefined) {
      if (typeof o.threshold !== 'number' || !Number.isFinite(o.threshold) || o.threshold < 0) {
        fail(model, `${field}.threshold`, 'a number >= 0');
      }
      into.threshold = o.threshold;
    }
  };
  for (const key of Object.keys(d)) {
    if (!['test', 'threshold', 'drift_share', 'columns'].includes(key))
      fail(model, `monitoring.drift.${key}`, 'one of: test, threshold, drift_share, columns');
  }
  testAndThreshold('monitoring.drift', d, out);
  if (d.drift_share !== undefined) {
    if (typeof d.drift_share !== 'number' || !(d.drift_share >= 0 && d.drift_share <= 1)) {
      fail(model, 'monitoring.drift.drift_share', 'a number from 0 to 1');
    }
    out.driftShare = d.drift_share;
  }
  if (d.columns !== undefined) {
    if (!isObject(d.columns))
      fail(model, 'monitoring.drift.columns', 'an object of column → {test, threshold}');
    out.columns = {};
    for (const [column, o] of Object.entries(d.columns as Record<string, unknown>)) {
      const field = `monitoring.drift.columns.${column}`;
      if (!isObject(o)) fail(model, field, 'an object with test and/or threshold');
      for (const key of Object.keys(o as object)) {
        if (key !== 'test' && key !== 'threshold') fail(model, `${field}.${key}`, 'one of: test, threshold');
      }
      const c: { test?: string; threshold?: number } = {};
      testAndThreshold(field, o as Record<string, unknown>, c);
      out.columns[column] = c;
    }
  }
  return out;
}

function versionPolicy(model: string, v: unknown): VersionPolicy {
  const p = v as Record<string, Record<string, unknown>>;
  if (typeof p !== 'object' || p === null || Object.keys(p).length !== 1) {
    fail(model, 'version_policy', 'an object with exactly one of latest, all, specific');
  }
  if (p.latest) {
    const n = p.latest.num_versions ?? 1;
    return { kind: 'latest', numVersions: int(model, 'version_policy.latest.num_versions', n, 1) };
  }
  if (p.all) return { kind: 'all' };
  if (p.specific) {
    const vs = p.specific.versions;
    if (!Array.isArray(vs) || vs.length === 0) {
      fail(model, 'version_policy.specific.versions', 'a non-empty array of version numbers');
    }
    return {
      kind: 'specific',
      versions: vs.map((x, i) => int(model, `version_policy.specific.versions[${i}]`, x, 1)),
    };
  }
  return fail(model, 'version_policy', 'an object with exactly one of latest, all, specific');
}

/** Picks the versions a policy serves out of those on disk. */
export function selectVersions(policy: VersionPolicy, onDisk: number[]): number[] {
  const sorted = [...onDisk].sort((a, b) => b - a);
  switch (policy.kind) {
    case 'latest':
      return sorted.slice(0, policy.numVersions).sort((a, b) => a - b);
    case 'all':
      return sorted.reverse();
    case 'specific':
      return sorted.filter((v) => policy.versions.includes(v)).sort((a, b) => a - b);
  }
}

/** The configuration as `/v2/models/{m}/config` reports it (Triton's field names). */
export function describeConfig(
  name: string,
  config: ModelConfig,
  io: {
    inputs: { name: string; datatype: string; shape: number[] }[];
    outputs: { name: string; datatype: string; shape: number[] }[];
  },
  /** Whether every input's first dimension is dynamic, so requests can be batched along it. */
  batchable = true,
): Record<string, unknown> {
  // A model whose first dimension is fixed cannot batch, whatever config.json says: Triton reports
  // max_batch_size 0 and the full shapes, so a client sends them as they are.
  const maxBatchSize = batchable ? config.maxBatchSize : 0;
  // Triton reports dims without the batch dimension when max_batch_size > 0.
  const dims = (shape: number[]) => (maxBatchSize > 0 ? shape.slice(1) : shape);
  const policy =
    config.versionPolicy.kind === 'latest'
      ? { latest: { num_versions: config.versionPolicy.numVersions } }
      : config.versionPolicy.kind === 'all'
        ? { all: {} }
        : { specific: { versions: config.versionPolicy.versions } };
  return {
    name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy: policy,
    max_batch_size: maxBatchSize,
    input: io.inputs.map((t) => ({
      name: t.name,
      data_type: `TYPE_${tritonType(t.datatype)}`,
      dims: dims(t.shape),
    })),
    output: io.outputs.map((t) => ({
      name: t.name,
      data_type: `TYPE_${tritonType(t.datatype)}`,
      dims: dims(t.shape),
    })),
    instance_group: [{ name: `${name}_0`, kind: 'KIND_CPU', count: config.instanceCount }],
    dynamic_batching:
      maxBatchSize > 0
        ? {
            preferred_batch_size: config.preferredBatchSizes,
            max_queue_delay_microseconds: config.maxQueueDelayUs,
            default_queue_policy: { max_queue_size: config.maxQueueSize },
          }
        : undefined,
    parameters: {
      intra_op_thread_count: { string_value: String(config.intraOpThreads) },
      inter_op_thread_count: { string_value: String(config.interOpThreads) },
    },
    response_cache: config.responseCache ? { enable: true } : undefined,
    model_warmup:
      config.warmup.length > 0
        ? config.warmup.map((s) => ({
            name: s.name,
            batch_size: s.batchSize,
            count: s.count,
            inputs: Object.fromEntries(
              s.inputs.map((i) => [
                i.name,
                {
                  data_type: `TYPE_${tritonType(i.datatype)}`,
                  dims: i.dims,
                  ...(i.fill === 'zero' ? { zero_data: true } : { random_data: true }),
                },
              ]),
            ),
          }))
        : undefined,
  };
}

/** Triton's config type names differ from the protocol's for a few types. */
export function tritonType(datatype: string): string {
  if (datatype === 'BYTES') return 'STRING';
  return datatype;
}
