// A transform's output file: the CSV writer lives with the readers, re-exported for the capability's surface.
export { type CsvWriteOptions, csvField, writeCsv } from '../formats/index.js';
export type {
  CategoriesParams,
  ClipParams,
  FittedStep,
  ImputeParams,
  MinMaxParams,
  StandardizeParams,
} from './compile.js';
export { type BatchSource, type FitOptions, fitSteps } from './fit-steps.js';
export {
  type BatchTransformer,
  FittedSteps,
  type FittedStepsJson,
  isFittedStepsJson,
  STEPS_FORMAT,
  STEPS_VERSION,
} from './fitted-steps.js';
export {
  type CategoryValue,
  type ClipSpec,
  type CoerceSpec,
  type DropDuplicatesSpec,
  type ImputeSpec,
  type LogSpec,
  type MinMaxScaleSpec,
  type OneHotSpec,
  type OrdinalSpec,
  parseStepsSpec,
  type Remainder,
  STEP_KINDS,
  type StandardizeSpec,
  type StepKind,
  type StepSpec,
  type StepsSpec,
  type TextSpec,
} from './spec.js';
export { normalizeCell, type Value as StepValue } from './value.js';
