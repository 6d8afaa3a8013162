/**
 * Times and durations as clients and rules write them (`since`, `until`, windows, a rule's
 * `interval`), read strictly: a value is refused with a 400 naming its field rather than read as
 * something else or let through to fail later (`Invalid time value`).
 *
 * @example
 *   parseTime('0', 'since');                       // 0: digits only are epoch milliseconds
 *   parseTime('2026-02-30', 'since');              // 400: "since: … is not a calendar date …"
 *   parseTime('1h', 'since', now);                 // now - 3 600 000
 *   parseDurationInput('99999999999999w', 'interval');  // 400: "interval must be at most 366d …"
 *   parseWindowReference('window:8d/1d', 'reference', now);  // { sinceMs: now - 8d, untilMs: now - 1d }
 */
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

/** The furthest a JavaScript Date reaches either side of 1970: 100 000 000 days (±8.64e15 ms). */
export const MAX_TIME_MS = 8.64e15;

/** The longest duration a rule (`over`, `interval`, `for`) or a performance `window` may be: 366 days. */
export const MAX_DURATION_MS = 366 * 86_400_000;

const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};

const DURATION = /^\d+(?:\.\d+)?(?:ms|s|m|h|d|w)$/;
const ISO =
  /^(?<year>\d{4}|[+-]\d{6})-(?<month>\d{2})-(?<day>\d{2})(?:[Tt ](?<hour>\d{2}):(?<minute>\d{2})(?::(?<second>\d{2})(?:\.\d+)?)?(?:[Zz]|[+-](?<offH>\d{2}):?(?<offM>\d{2}))?)?$/;

/** The times a JavaScript Date holds, as error messages name them. */
export const TIME_RANGE = '-271821-04-20T00:00:00Z and +275760-09-13T00:00:00Z (±8.64e15 epoch ms)';

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** An ISO 8601 date or date-time whose fields exist on the calendar (no 30 February), as epoch ms. */
function isoTime(text: string, field: string): number {
  const m = ISO.exec(text);
  if (!m) {
    bad(
      `${field} must be epoch milliseconds (digits only), an ISO 8601 date or date-time (2026-03-01, 2026-03-01T12:00:00Z) or a duration ago (30m, 1h, 7d), got ${JSON.stringify(text)}`,
    );
  }
  const g = m!.groups!;
  const year = Number(g.year);
  const month = Number(g.month);
  const day = Number(g.day);
  const wrong =
    month < 1 || month > 12
      ? `month ${g.month}`
      : day < 1 || day > daysIn(year, month)
        ? `day ${g.day} (${g.year}-${g.month} has ${daysIn(year, month)} days)`
        : g.hour !== undefined && Number(g.hour) > 23
          ? `hour ${g.hour}`
          : g.minute !== undefined && Number(g.minute) > 59
            ? `minute ${g.minute}`
            : g.second !== undefined && Number(g.second) > 59
              ? `second ${g.second}`
              : g.offH !== undefined && (Number(g.offH) > 23 || Number(g.offM) > 59)
                ? `UTC offset ${g.offH}:${g.offM}`
                : null;
  if (wrong !== null) bad(`${field}: ${JSON.stringify(text)} is not a calendar date-time: ${wrong}`);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) bad(`${field} must lie between ${TIME_RANGE}, got ${JSON.stringify(text)}`);
  return ms;
}

/**
 * A point in time: epoch milliseconds (digits only: `0` is 1970), an ISO 8601 date or date-time,
 * or a duration ago (`1h`). Within the range a JavaScript Date holds, else a 400 naming `field`.
 */
export function parseTime(text: string, field: string, now = Date.now()): number {
  const t = typeof text === 'string' ? text.trim() : '';
  let ms: number;
  if (/^\d+$/.test(t)) ms = Number(t);
  else if (DURATION.test(t)) ms = now - parseDuration(t, field);
  else ms = isoTime(t, field);
  if (!(Math.abs(ms) <= MAX_TIME_MS)) {
    bad(`${field} must lie between ${TIME_RANGE}, got ${JSON.stringify(text)}`);
  }
  return ms;
}

/** A duration (`30s`, `5m`, `1h`, `7d`) of at least 1 ms and at most `maxMs` (default 366 days). */
export function parseDurationInput(text: string, field: string, maxMs = MAX_DURATION_MS): number {
  const ms = parseDuration(text, field);
  checkDurationMs(ms, field, text, maxMs);
  return ms;
}

/** Refuses a duration in ms under 1 ms or over `maxMs`, naming `field`. */
export function checkDurationMs(
  ms: number,
  field: string,
  text: unknown = ms,
  maxMs = MAX_DURATION_MS,
): void {
  if (!(ms >= 1)) bad(`${field} must be at least 1ms, got ${JSON.stringify(text)}`);
  if (!(ms <= maxMs)) {
    bad(`${field} must be at most ${maxMs / 86_400_000}d (${maxMs} ms), got ${JSON.stringify(text)}`);
  }
}

/**
 * A past range of the log as a drift reference: `window:<since>/<until>` (as alert rules write
 * it) or `window:<since>..<until>` (as the drift API does), each end read by `parseTime`;
 * a reversed or empty range is refused.
 */
export function parseWindowReference(
  spec: string,
  field: string,
  now = Date.now(),
): { sinceMs: number; untilMs: number } {
  const body = spec.startsWith('window:') ? spec.slice('window:'.length) : '';
  const parts = body.split(body.includes('..') ? '..' : '/');
  if (parts.length !== 2 || parts[0]!.trim() === '' || parts[1]!.trim() === '') {
    bad(
      `${field} must be window:<since>/<until> (or window:<since>..<until>), e.g. window:8d/1d, got ${JSON.stringify(spec)}`,
    );
  }
  const sinceMs = parseTime(parts[0]!, `${field} since`, now);
  const untilMs = parseTime(parts[1]!, `${field} until`, now);
  if (sinceMs >= untilMs) {
    bad(
      `${field} ${JSON.stringify(spec)} is ${sinceMs === untilMs ? 'empty' : 'reversed'}: its since (${parts[0]!.trim()}) must be before its until (${parts[1]!.trim()}), e.g. window:8d/1d (8 days ago to 1 day ago)`,
    );
  }
  return { sinceMs, untilMs };
}

/** An epoch-ms time as ISO 8601, or null when a Date cannot hold it (a row stored before these bounds). */
export function isoOrNull(ms: number | null): string | null {
  return ms !== null && Math.abs(ms) <= MAX_TIME_MS ? new Date(ms).toISOString() : null;
}
