import { SlipwayError } from '../errors/index.js';

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `500ms`, `30s`, `5m`, `1h`, `7d`, `2w` → milliseconds; `field` names the input in errors. */
export function parseDuration(text: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${field} must be a duration such as 30s, 5m, 1h or 7d, got ${JSON.stringify(text)}`,
    );
  }
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/** A point in time: an ISO date or date-time, epoch milliseconds, or a duration ago (`1h`). */
export function parseTime(text: string, field: string, now = Date.now()): number {
  const t = text.trim();
  if (/^\d{11,}$/.test(t)) return Number(t);
  if (/^\d+(\.\d+)?(ms|s|m|h|d|w)$/.test(t)) return now - parseDuration(t, field);
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `${field} must be an ISO date-time, epoch milliseconds or a duration ago (1h), got ${JSON.stringify(text)}`,
    );
  }
  return ms;
}
