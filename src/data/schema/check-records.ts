import type { Cell } from '../table.js';
import type { ParsedSchema } from './schema.js';
import { type Failure, Validator } from './validator.js';

/**
 * Checks the rows of one serving request: `rows[i][k]` is the value of `columns[k]` in row
 * i + 1. Serving differs from a file in three ways: columns the schema does not name are allowed
 * (requests may carry fields for monitoring), uniqueness and row counts are not checked (they
 * describe a dataset, not a request), and rules relaxed with `mostly` are not enforced row by
 * row. Returns every problem (none when the rows pass).
 *
 * @example
 *   checkRows(parsed, ['age', 'workclass'], [[41, 'Private'], [-4, 'Pirate']]);
 *   // → [{ row: 2, column: 'age', rule: 'range', … }, { row: 2, column: 'workclass', rule: 'categories', … }]
 */
export function checkRows(
  schema: ParsedSchema,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
): Failure[] {
  const v = new Validator(schema, { environment: 'serving', serving: true, maxFailures: 0 });
  v.add({ columns, rows: rows as Cell[][], firstRow: 1 });
  return v.finish().failures;
}
