import { SlipwayError } from '../errors/index.js';

/**
 * Checks and normalizes an artifact path given by a client: relative, `/`-separated, no empty,
 * `.` or `..` segments (also when percent-encoded), no backslashes or NUL. Throws a 400 naming
 * the path otherwise.
 */
export function confinePath(raw: string, field = 'path'): string {
  const bad = (why: string): never => {
    throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_PATH', `${field} '${raw}' ${why}`);
  };
  if (typeof raw !== 'string') bad('must be a string');
  if (raw.includes('\0')) bad('contains a NUL byte');
  if (raw.includes('\\')) bad('contains a backslash');
  if (raw.startsWith('/')) bad('must be relative (it starts with /)');
  // `c:x` is a drive-relative path on Windows, which an artifact store may be served from.
  if (/^[A-Za-z]:/.test(raw)) bad(`must be relative (it starts with a drive letter, '${raw.slice(0, 2)}')`);
  const trimmed = raw.replace(/\/+$/, '');
  if (trimmed === '') return '';
  const segs = trimmed.split('/');
  for (const s of segs) {
    let decoded = s;
    // Decode repeatedly: %252e%252e is still a way of writing '..' to some layer below.
    for (let i = 0; i < 3 && decoded.includes('%'); i++) {
      try {
        decoded = decodeURIComponent(decoded);
      } catch {
        break;
      }
    }
    if (decoded === '..' || decoded === '.') bad('must not contain . or .. segments');
    if (decoded.includes('/') || decoded.includes('\\')) bad('must not contain encoded separators');
    if (s === '') bad('must not contain empty segments');
  }
  return segs.join('/');
}

/** Joins confined paths. */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

/**
 * The folder under which the model registry keeps each version's files, `registry/<name>/<n>`.
 * Those files are immutable once the version exists (its metadata holds their sha256), so the
 * artifact proxy serves them but refuses to write or delete anything there.
 */
export const REGISTRY_ROOT = 'registry';

/** True when the confined `path` is the registry's folder or inside it. */
export function isRegistryPath(path: string): boolean {
  return path === REGISTRY_ROOT || path.startsWith(`${REGISTRY_ROOT}/`);
}
