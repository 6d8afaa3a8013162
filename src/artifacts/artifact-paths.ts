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
  if (raw.startsWith('/') || /^[A-Za-z]:/.test(raw)) bad('must be relative');
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
