import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { SlipwayError } from '../errors/index.js';

/**
 * Server settings: one validated, frozen object. Precedence, lowest first:
 * defaults < settings file (`--config`, or `SLIPWAY_CONFIG`) < `SLIPWAY_*` environment < CLI flags.
 *
 * @example
 *   const s = loadSettings({ env: process.env, flags: { port: '9000' } });
 */
export interface Settings {
  /**
   * Folder of a model repository: `<dir>/<model>/<version>/model.onnx`. Null serves only the
   * registry's models.
   */
  models: string | null;
  /** Where the embedded database and the local artifact folder live. */
  dataDir: string;
  /** `postgres://…` to keep the registry in PostgreSQL; null uses SQLite at `<dataDir>/slipway.db`. */
  databaseUrl: string | null;
  /** S3 bucket for artifacts; null keeps them in `<dataDir>/artifacts`. */
  s3Bucket: string | null;
  /** Key prefix inside the bucket, e.g. `team-a/`. */
  s3Prefix: string;
  /** Endpoint of an S3-compatible server (MinIO, SeaweedFS, …); null for AWS. */
  s3Endpoint: string | null;
  s3Region: string;
  /** Credentials; null falls back to the AWS SDK's chain (environment, profile, instance role). */
  s3AccessKeyId: string | null;
  s3SecretAccessKey: string | null;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need. */
  s3ForcePathStyle: boolean;
  /** The alias whose version `/v2/models/{name}` serves for registry models. */
  servingAlias: string;
  /** How often a replica checks the database for alias moves made by other replicas, in ms. */
  registryPollMs: number;
  /** Record every served prediction (sampled per model in its config.json) for monitoring. */
  predictionLog: boolean;
  /**
   * How often queued predictions are written, in ms: after a crash at most this much of the
   * log is lost; a graceful shutdown writes everything queued.
   */
  predictionFlushMs: number;
  /** Predictions queued before new ones are dropped (and counted) while the store is slow. */
  predictionQueueMax: number;
  /** Days raw prediction records are kept; per-hour profiles are kept ten times as long. */
  predictionRetentionDays: number;
  /** How often each model's quality, drift and cost gauges are recomputed, in ms. */
  monitoringRefreshMs: number;
  /** Price of one CPU-hour (any currency), for cost per 1000 predictions. */
  cpuHourPrice: number;
  /** Price of one GPU-hour; serving here runs on CPU, so GPU time is 0 until a GPU provider is used. */
  gpuHourPrice: number;
  /** `token`: every route but health needs an API token with the right scope. */
  auth: 'none' | 'token';
  /** Allows listening on a non-loopback address without auth. */
  insecure: boolean;
  /** Lets clients on this host register system shared memory regions (Triton's `--allow-client-shm`). */
  allowClientShm: boolean;
  host: string;
  /** REST port; 0 picks a free one. */
  port: number;
  /** gRPC port; 0 picks a free one, null disables gRPC. */
  grpcPort: number | null;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest request body accepted, in bytes. */
  maxRequestBytes: number;
  /** How long a SIGTERM waits for in-flight requests before closing connections. */
  shutdownGraceMs: number;
  /**
   * Serving processes sharing the REST and gRPC ports (`slipway serve` only). 1 serves in the
   * command's own process; more fork that many, each a full server on the same store, with
   * model loads and unloads, statistics and /metrics spread over all of them.
   */
  workers: number;
  /**
   * Triton's trace file (`--trace-file`): traced requests are written there, or to `<file>.<n>`
   * every `traceLogFrequency` traces. Null: no file, and tracing cannot be turned on.
   */
  traceFile: string | null;
  /** What a traced request records: none (`OFF`), `TIMESTAMPS`, `TENSORS`, or both. */
  traceLevel: ('TIMESTAMPS' | 'TENSORS')[];
  /** One request in this many is traced. */
  traceRate: number;
  /** Traces to take before tracing stops; -1 for no limit. */
  traceCount: number;
  /** Traces per file (`<file>.0`, `<file>.1`, …); 0 writes them all to the file at shutdown. */
  traceLogFrequency: number;
  /**
   * Bytes of model outputs Triton's response cache may hold (per serving process); 0 turns it
   * off. Models opt in with `response_cache.enable` in config.json.
   */
  responseCacheBytes: number;
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  models: null,
  dataDir: './.slipway',
  databaseUrl: null,
  s3Bucket: null,
  s3Prefix: '',
  s3Endpoint: null,
  s3Region: 'us-east-1',
  s3AccessKeyId: null,
  s3SecretAccessKey: null,
  s3ForcePathStyle: true,
  servingAlias: 'champion',
  registryPollMs: 2000,
  predictionLog: true,
  predictionFlushMs: 1000,
  predictionQueueMax: 100_000,
  predictionRetentionDays: 7,
  monitoringRefreshMs: 60_000,
  cpuHourPrice: 0.045,
  gpuHourPrice: 0,
  auth: 'none',
  insecure: false,
  allowClientShm: false,
  host: '127.0.0.1',
  port: 8080,
  grpcPort: 8081,
  logLevel: 'info',
  maxRequestBytes: 64 * 1024 * 1024,
  shutdownGraceMs: 30_000,
  workers: 1,
  traceFile: null,
  traceLevel: [],
  traceRate: 1000,
  traceCount: -1,
  traceLogFrequency: 0,
  responseCacheBytes: 0,
});

type Raw = Partial<Record<keyof Settings, unknown>>;

/** Environment variable of each setting. */
export const ENV_NAMES: Record<keyof Settings, string> = {
  models: 'SLIPWAY_MODELS',
  dataDir: 'SLIPWAY_DATA_DIR',
  databaseUrl: 'SLIPWAY_DATABASE_URL',
  s3Bucket: 'SLIPWAY_S3_BUCKET',
  s3Prefix: 'SLIPWAY_S3_PREFIX',
  s3Endpoint: 'SLIPWAY_S3_ENDPOINT',
  s3Region: 'SLIPWAY_S3_REGION',
  s3AccessKeyId: 'SLIPWAY_S3_ACCESS_KEY_ID',
  s3SecretAccessKey: 'SLIPWAY_S3_SECRET_ACCESS_KEY',
  s3ForcePathStyle: 'SLIPWAY_S3_FORCE_PATH_STYLE',
  servingAlias: 'SLIPWAY_SERVING_ALIAS',
  registryPollMs: 'SLIPWAY_REGISTRY_POLL_MS',
  predictionLog: 'SLIPWAY_PREDICTION_LOG',
  predictionFlushMs: 'SLIPWAY_PREDICTION_FLUSH_MS',
  predictionQueueMax: 'SLIPWAY_PREDICTION_QUEUE_MAX',
  predictionRetentionDays: 'SLIPWAY_PREDICTION_RETENTION_DAYS',
  monitoringRefreshMs: 'SLIPWAY_MONITORING_REFRESH_MS',
  cpuHourPrice: 'SLIPWAY_CPU_HOUR_PRICE',
  gpuHourPrice: 'SLIPWAY_GPU_HOUR_PRICE',
  auth: 'SLIPWAY_AUTH',
  insecure: 'SLIPWAY_INSECURE',
  allowClientShm: 'SLIPWAY_ALLOW_CLIENT_SHM',
  host: 'SLIPWAY_HOST',
  port: 'SLIPWAY_PORT',
  grpcPort: 'SLIPWAY_GRPC_PORT',
  logLevel: 'SLIPWAY_LOG_LEVEL',
  maxRequestBytes: 'SLIPWAY_MAX_REQUEST_BYTES',
  shutdownGraceMs: 'SLIPWAY_SHUTDOWN_GRACE_MS',
  workers: 'SLIPWAY_WORKERS',
  traceFile: 'SLIPWAY_TRACE_FILE',
  traceLevel: 'SLIPWAY_TRACE_LEVEL',
  traceRate: 'SLIPWAY_TRACE_RATE',
  traceCount: 'SLIPWAY_TRACE_COUNT',
  traceLogFrequency: 'SLIPWAY_TRACE_LOG_FREQUENCY',
  responseCacheBytes: 'SLIPWAY_RESPONSE_CACHE_BYTES',
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function invalid(source: string, expected: string, value: unknown): never {
  throw new SlipwayError(
    'SLIPWAY_ERR_CONFIG',
    `${source}: must be ${expected}, got ${JSON.stringify(value)}`,
  );
}

function integer(source: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    invalid(source, `an integer from ${min} to ${max}`, value);
  }
  return n;
}

function price(source: string, value: unknown): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) invalid(source, 'a price of 0 or more', value);
  return n as number;
}

function optionalString(expected: string) {
  return (v: unknown, s: string): string | null =>
    v === null ? null : typeof v === 'string' && v !== '' ? v : invalid(s, expected, v);
}

function boolean(v: unknown, s: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  return invalid(s, 'true or false', v);
}

const PARSERS: { [K in keyof Settings]: (value: unknown, source: string) => Settings[K] } = {
  models: optionalString('a folder path'),
  dataDir: (v, s) => (typeof v === 'string' && v !== '' ? v : invalid(s, 'a folder path', v)),
  databaseUrl: (v, s) => {
    const url = optionalString('a postgres:// URL')(v, s);
    if (url !== null && !/^postgres(ql)?:\/\//.test(url)) invalid(s, 'a postgres:// URL', v);
    return url;
  },
  s3Bucket: optionalString('a bucket name'),
  s3Prefix: (v, s) => (typeof v === 'string' ? v : invalid(s, 'a key prefix', v)),
  s3Endpoint: (v, s) => {
    const url = optionalString('an http(s):// URL')(v, s);
    if (url !== null && !/^https?:\/\//.test(url)) invalid(s, 'an http(s):// URL', v);
    return url;
  },
  s3Region: (v, s) => (typeof v === 'string' && v !== '' ? v : invalid(s, 'a region name', v)),
  s3AccessKeyId: optionalString('an access key id'),
  s3SecretAccessKey: optionalString('a secret access key'),
  s3ForcePathStyle: boolean,
  servingAlias: (v, s) =>
    typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(v)
      ? v
      : invalid(s, 'an alias name (letters, digits, _ and -)', v),
  registryPollMs: (v, s) => integer(s, v, 100, 3_600_000),
  predictionLog: boolean,
  predictionFlushMs: (v, s) => integer(s, v, 10, 60_000),
  predictionQueueMax: (v, s) => integer(s, v, 1, 10_000_000),
  predictionRetentionDays: (v, s) => integer(s, v, 1, 3650),
  monitoringRefreshMs: (v, s) => integer(s, v, 1000, 86_400_000),
  cpuHourPrice: (v, s) => price(s, v),
  gpuHourPrice: (v, s) => price(s, v),
  auth: (v, s) => (v === 'none' || v === 'token' ? v : invalid(s, 'none or token', v)),
  insecure: boolean,
  allowClientShm: boolean,
  host: (v, s) => (typeof v === 'string' && v !== '' ? v : invalid(s, 'a host name or address', v)),
  port: (v, s) => integer(s, v, 0, 65535),
  grpcPort: (v, s) => (v === null || v === 'off' || v === false ? null : integer(s, v, 0, 65535)),
  logLevel: (v, s) =>
    typeof v === 'string' && LOG_LEVELS.includes(v)
      ? (v as Settings['logLevel'])
      : invalid(s, `one of ${LOG_LEVELS.join(', ')}`, v),
  maxRequestBytes: (v, s) => integer(s, v, 1024, 2 ** 31),
  shutdownGraceMs: (v, s) => integer(s, v, 0, 600_000),
  workers: (v, s) => (v === 'auto' ? availableParallelism() : integer(s, v, 1, 64)),
  traceFile: optionalString('a file path'),
  traceLevel: (v, s) => {
    const list = typeof v === 'string' ? v.split(',').map((l) => l.trim()) : v;
    const ok =
      Array.isArray(list) &&
      list.length > 0 &&
      (list.length === 1 && list[0] === 'OFF'
        ? true
        : list.every((l) => l === 'TIMESTAMPS' || l === 'TENSORS'));
    if (!ok) invalid(s, 'OFF, TIMESTAMPS, TENSORS or TIMESTAMPS,TENSORS', v);
    return [...new Set((list as string[]).filter((l) => l !== 'OFF'))] as Settings['traceLevel'];
  },
  traceRate: (v, s) => integer(s, v, 1, 0xffffffff),
  traceCount: (v, s) => integer(s, v, -1, 0x7fffffff),
  traceLogFrequency: (v, s) => integer(s, v, 0, 0xffffffff),
  responseCacheBytes: (v, s) => integer(s, v, 0, 2 ** 40),
};

function applyLayer(target: Settings, layer: Raw, source: (key: keyof Settings) => string): void {
  for (const key of Object.keys(layer) as (keyof Settings)[]) {
    const value = layer[key];
    if (value === undefined) continue;
    const parse = PARSERS[key] as ((v: unknown, s: string) => unknown) | undefined;
    if (!parse) {
      throw new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        `${source(key)}: unknown setting; known: ${Object.keys(PARSERS).join(', ')}`,
      );
    }
    (target as unknown as Record<string, unknown>)[key] = parse(value, source(key));
  }
}

export interface SettingsSources {
  env?: Record<string, string | undefined>;
  /** CLI flags, already named as settings (`grpcPort`, …). */
  flags?: Raw;
  /** Path of a JSON settings file; else `SLIPWAY_CONFIG` from env. */
  configFile?: string;
}

export function loadSettings(sources: SettingsSources = {}): Readonly<Settings> {
  const env = sources.env ?? {};
  const settings: Settings = { ...DEFAULT_SETTINGS };
  const file = sources.configFile ?? env.SLIPWAY_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new SlipwayError('SLIPWAY_ERR_CONFIG', `settings file ${file}: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new SlipwayError('SLIPWAY_ERR_CONFIG', `settings file ${file}: must hold a JSON object`);
    }
    applyLayer(settings, parsed as Raw, (k) => `${file}: ${k}`);
  }
  const fromEnv: Raw = {};
  for (const key of Object.keys(ENV_NAMES) as (keyof Settings)[]) {
    const v = env[ENV_NAMES[key]];
    if (v !== undefined && v !== '') fromEnv[key] = v;
  }
  applyLayer(settings, fromEnv, (k) => ENV_NAMES[k]);
  if (sources.flags)
    applyLayer(settings, sources.flags, (k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (settings.traceLevel.length > 0 && settings.traceFile === null) {
    throw new SlipwayError(
      'SLIPWAY_ERR_CONFIG',
      `traceLevel ${settings.traceLevel.join(',')} needs traceFile (--trace-file, SLIPWAY_TRACE_FILE): the file traces are written to`,
    );
  }
  return Object.freeze(settings);
}
