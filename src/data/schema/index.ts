export { checkRows } from './check-records.js';
export { compileExpression, type Expression, type Value } from './expression.js';
export { type InferOptions, inferSchema, patternOf } from './infer-schema.js';
export {
  type ColumnRule,
  type ColumnSchema,
  type CrossRule,
  ENVIRONMENTS,
  type Environment,
  type ParsedSchema,
  parseSchema,
  type RuleName,
  SCHEMA_FORMAT,
  SCHEMA_TYPES,
  SCHEMA_VERSION,
  type Schema,
  type SchemaType,
} from './schema.js';
export {
  type Failure,
  type RuleResult,
  type ValidateOptions,
  type ValidationReport,
  Validator,
  validateTable,
} from './validator.js';
