import { readFileSync } from 'node:fs';
import { SlipwayError } from '../errors/index.js';

/**
 * Server settings: one validated, frozen object. Precedence, lowest first:
 * defaults < settings file (`--config`, or `SLIPWAY_CONFIG`) < `SLIPWAY_*` environment < CLI flags.
 *
 * @example
 *   const s = loadSettings({ env: process.env, flags: { port: '9000' } });
 */
export interface Settings {
  /** Folder of the model repository: `<dir>/<model>/<version>/model.onnx`. */
  models: string;
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
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  models: './models',
  host: '127.0.0.1',
  port: 8080,
  grpcPort: 8081,
  logLevel: 'info',
  maxRequestBytes: 64 * 1024 * 1024,
  shutdownGraceMs: 30_000,
});

type Raw = Partial<Record<keyof Settings, unknown>>;

/** Environment variable of each setting. */
export const ENV_NAMES: Record<keyof Settings, string> = {
  models: 'SLIPWAY_MODELS',
  host: 'SLIPWAY_HOST',
  port: 'SLIPWAY_PORT',
  grpcPort: 'SLIPWAY_GRPC_PORT',
  logLevel: 'SLIPWAY_LOG_LEVEL',
  maxRequestBytes: 'SLIPWAY_MAX_REQUEST_BYTES',
  shutdownGraceMs: 'SLIPWAY_SHUTDOWN_GRACE_MS',
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

const PARSERS: { [K in keyof Settings]: (value: unknown, source: string) => Settings[K] } = {
  models: (v, s) => (typeof v === 'string' && v !== '' ? v : invalid(s, 'a folder path', v)),
  host: (v, s) => (typeof v === 'string' && v !== '' ? v : invalid(s, 'a host name or address', v)),
  port: (v, s) => integer(s, v, 0, 65535),
  grpcPort: (v, s) => (v === null || v === 'off' || v === false ? null : integer(s, v, 0, 65535)),
  logLevel: (v, s) =>
    typeof v === 'string' && LOG_LEVELS.includes(v)
      ? (v as Settings['logLevel'])
      : invalid(s, `one of ${LOG_LEVELS.join(', ')}`, v),
  maxRequestBytes: (v, s) => integer(s, v, 1024, 2 ** 31),
  shutdownGraceMs: (v, s) => integer(s, v, 0, 600_000),
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
  return Object.freeze(settings);
}
