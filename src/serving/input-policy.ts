import { checkRows, parseSchema } from '../data/index.js';
import { SlipwayError } from '../errors/index.js';
import type { InputPolicy, PolicyFiles } from '../inference/index.js';

/**
 * A model version's input policy from the files beside it: `schema.json` checks every request's
 * rows (records API; V2 too when there are no cleaning steps, since V2 tensors are the model's
 * own inputs, after the steps).
 *
 * @example
 *   new RepositoryDataPlane({ …, createPolicy: createInputPolicy });
 */
export function createInputPolicy(files: PolicyFiles): InputPolicy | undefined {
  if (files.schema === undefined && files.steps === undefined) return undefined;
  let parsed: ReturnType<typeof parseSchema> | undefined;
  if (files.schema !== undefined) {
    try {
      parsed = parseSchema(files.schema);
    } catch (err) {
      throw new SlipwayError('SLIPWAY_ERR_MODEL_LOAD', `schema.json: ${(err as Error).message}`);
    }
  }
  const schema = parsed;
  return {
    checksTensors: files.steps === undefined,
    check: (columns, rows) =>
      schema
        ? checkRows(schema, columns, rows).map((f) => ({
            row: f.row,
            field: f.column,
            rule: f.rule,
            value: f.value,
            expected: f.expected,
          }))
        : [],
  };
}
