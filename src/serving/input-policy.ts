import { checkRows, FittedSteps, parseSchema } from '../data/index.js';
import { SlipwayError } from '../errors/index.js';
import type { InputPolicy, PolicyFiles } from '../inference/index.js';

/**
 * A model version's input policy from the files beside it: `schema.json` checks every request's
 * rows (records API; V2 too when there are no cleaning steps, since V2 tensors are the model's
 * own inputs, after the steps), and fitted `steps.json` turns valid records into the model's
 * inputs with the same compiled transform `slipway data transform` runs on files.
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
  let steps: FittedSteps | undefined;
  if (files.steps !== undefined) {
    try {
      steps = FittedSteps.fromJSON(files.steps);
    } catch (err) {
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        `steps.json: ${(err as Error).message} (serving needs fitted steps: slipway data fit)`,
      );
    }
  }
  const schema = parsed;
  const fitted = steps;
  return {
    checksTensors: fitted === undefined,
    ...(fitted ? { prepare: (records: Record<string, unknown>[]) => fitted.transformRecords(records) } : {}),
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
