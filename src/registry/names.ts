import { parseDecimal } from '../data/index.js';
import { SlipwayError } from '../errors/index.js';
import { isValidModelName } from '../inference/index.js';

/** PostgreSQL text cannot hold NUL; refused as a 400 on both dialects rather than failing there. */
export function checkNoNul(value: string, field: string): string {
  if (value.includes('\0')) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${field}: must not contain NUL characters`);
  }
  return value;
}

/** Registered model names are served as `/v2/models/{name}`, so they follow the serving rule. */
export function checkModelName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !isValidModelName(name)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${field}: ${JSON.stringify(name)} is not a valid model name (letters, digits, '_', '.' and '-', starting with a letter or digit, at most 200 characters)`,
    );
  }
  return name;
}

const ALIAS = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Aliases: letters, digits, `_` and `-`. `latest` and version-like names (`7`, `v7`) are refused
 * because `models:/name@…` and `/versions/{n}` would read them as versions.
 */
export function checkAlias(alias: unknown, field = 'alias'): string {
  if (
    typeof alias !== 'string' ||
    !ALIAS.test(alias) ||
    /^\d+$/.test(alias) ||
    /^v\d+$/i.test(alias) ||
    alias.toLowerCase() === 'latest'
  ) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${field}: ${JSON.stringify(alias)} is not a valid alias (1 to 64 letters, digits, '_' or '-'; not 'latest', not all digits, not v<digits>)`,
    );
  }
  return alias;
}

/** Versions are 32-bit integers in the database. */
export const MAX_VERSION = 2_147_483_647;

export function checkVersion(version: unknown, field = 'version'): number {
  const n = typeof version === 'string' && /^\d+$/.test(version) ? Number(version) : version;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_VERSION) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${field}: ${JSON.stringify(version)} is not a version number (an integer from 1 to ${MAX_VERSION})`,
    );
  }
  return n;
}

/** The most tags one request may set or delete on a model or version (docs/registry.md). */
export const MAX_TAGS = 1000;
/** The most entries in one list of a request: aliases, training or evaluation data. */
export const MAX_LIST = 1000;

export function checkTagCount(tags: object | undefined, field = 'tags'): void {
  const n = tags ? Object.keys(tags).length : 0;
  if (n > MAX_TAGS) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${field}: at most ${MAX_TAGS} tags, got ${n}`);
  }
}

export function checkListLength(list: readonly unknown[] | undefined, field: string): void {
  if (list && list.length > MAX_LIST) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${field}: at most ${MAX_LIST} entries, got ${list.length}`,
    );
  }
}

export function checkTags(tags: Record<string, unknown> | undefined, field = 'tags'): Record<string, string> {
  checkTagCount(tags, field);
  const out = plainMap<string>();
  for (const [key, value] of Object.entries(tags ?? {})) {
    checkTagKey(key, field);
    if (typeof value !== 'string' || value.length > 5000) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `${field}.${key}: the value must be a string of at most 5000 characters`,
      );
    }
    out[key] = checkNoNul(value, `${field}.${key}`);
  }
  return out;
}

export function checkTagKey(key: unknown, field = 'key'): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 250) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${field}: tag key ${JSON.stringify(key)} must be 1 to 250 characters`,
    );
  }
  return checkNoNul(key, field);
}

export function checkMetrics(metrics: Record<string, unknown> | undefined): Record<string, number> {
  const out = plainMap<number>();
  for (const [key, value] of Object.entries(metrics ?? {})) {
    if (key.length === 0 || key.length > 250 || key.includes('\0')) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `metrics: metric name ${JSON.stringify(key)} must be 1 to 250 characters, without NUL`,
      );
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `metrics.${key}: ${JSON.stringify(value)} is not a finite number`,
      );
    }
    out[key] = value;
  }
  return out;
}

/**
 * A reference to the data a version was trained or evaluated on: a versioned dataset
 * (`adult@3`: `name` adult, `version` 3; `adult` alone leaves the version open) or a URI
 * (`s3://bucket/adult.parquet`: `uri`). `ref` is the text as given.
 */
export interface DatasetRef {
  ref: string;
  name: string | null;
  version: string | null;
  uri: string | null;
}

const DATASET = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,255})(?:@([A-Za-z0-9][A-Za-z0-9_.-]{0,255}))?$/;
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

export function parseDatasetRef(ref: unknown, field = 'dataset'): DatasetRef {
  const text = typeof ref === 'string' ? ref.trim() : '';
  const m = DATASET.exec(text);
  if (m) return { ref: text, name: m[1]!, version: m[2] ?? null, uri: null };
  if (URI.test(text) && text.length <= 4096 && !text.includes('\0'))
    return { ref: text, name: null, version: null, uri: text };
  throw new SlipwayError(
    'SLIPWAY_ERR_BAD_REQUEST',
    `${field}: ${JSON.stringify(ref)} is neither a dataset reference (name@version) nor a URI (scheme:…)`,
  );
}

/** Splits `k=v` (for --tag, --metric and query parameters); the value may contain `=`. */
export function splitPair(text: string, field: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `${field}: ${JSON.stringify(text)} must be key=value`);
  }
  return [text.slice(0, i), text.slice(i + 1)];
}

/**
 * A key → value object without a prototype, so every key a client sends is kept as given:
 * on `{}`, assigning `__proto__` would silently drop the entry.
 */
function plainMap<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Parses `k=v` metric pairs into numbers, naming the field of a bad one. */
export function parseMetricPairs(pairs: readonly string[], field = 'metric'): Record<string, number> {
  const out = plainMap<number>();
  for (const p of pairs) {
    const [k, v] = splitPair(p, field);
    // Decimal only: Number() would also read 0x10 as 16, 0b1 and 0o7.
    const n = parseDecimal(v);
    if (!Number.isFinite(n)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `${field}: ${JSON.stringify(p)} must be name=<number>`,
      );
    }
    out[k] = n;
  }
  return out;
}

export function parseTagPairs(pairs: readonly string[], field = 'tag'): Record<string, string> {
  const out = plainMap<string>();
  for (const p of pairs) {
    const [k, v] = splitPair(p, field);
    out[k] = v;
  }
  return checkTags(out, field);
}
