/**
 * Values stored the same way on both dialects: times as integer milliseconds since the epoch
 * (BIGINT on PostgreSQL, returned as numbers), JSON as text.
 */
export function now(): number {
  return Date.now();
}

export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export function fromJson<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined || text === '') return fallback;
  return JSON.parse(text) as T;
}
