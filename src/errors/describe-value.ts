/**
 * A request value as an error message quotes it: scalars as JSON (long strings cut short), arrays
 * and objects by kind, so a message never serializes (or recurses into) a large or deep value.
 *
 * @example describeValue('abc') // '"abc"'; describeValue([1, 2]) // 'an array'
 */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string')
    return value.length > 40 ? `${JSON.stringify(value.slice(0, 40)).slice(0, -1)}…"` : JSON.stringify(value);
  if (value === undefined) return 'nothing';
  return String(value);
}
