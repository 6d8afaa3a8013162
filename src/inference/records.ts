/**
 * The records API: named features in, labelled predictions out. Maps
 * `{"instances": [{"age": 41, "workclass": "Private"}, …]}` onto a tabular model's inputs, either
 * one input per column (as skl2onnx pipelines make) or one [N, F] matrix whose column names come
 * from `feature_names` in config.json; maps outputs back to labels and probabilities by class name.
 */
import { parseDecimal } from '../data/index.js';
import { describeValue, SlipwayError } from '../errors/index.js';
import { allocate } from './datatypes.js';
import type { ModelConfig } from './model-config.js';
import type { InferRequest, InferResponse, Tensor, TensorData, TensorMetadata } from './types.js';

export type RecordValue = string | number | boolean | null;
export type Prediction = Record<string, unknown>;

export interface RecordsLayout {
  /** 'columns': one input per feature; 'matrix': one [N, F] input. */
  kind: 'columns' | 'matrix';
  features: { name: string; datatype: string }[];
}

const fieldError = (message: string) => new SlipwayError('SLIPWAY_ERR_RECORD_FIELD', message);

/** How records map onto this model's inputs; throws when the model is not tabular. */
export function recordsLayout(inputs: TensorMetadata[], config: ModelConfig): RecordsLayout {
  if (config.featureNames && inputs.length === 1) {
    const m = inputs[0]!;
    if (m.shape.length !== 2 || (m.shape[1] !== -1 && m.shape[1] !== config.featureNames.length)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `the records API needs input '${m.name}' to be [N, ${config.featureNames.length}] for the ${config.featureNames.length} feature_names; it is [${m.shape}]`,
      );
    }
    return { kind: 'matrix', features: config.featureNames.map((name) => ({ name, datatype: m.datatype })) };
  }
  for (const m of inputs) {
    const perRow = m.shape.slice(1);
    if (m.shape.length === 0 || perRow.some((d) => d !== 1)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `the records API needs one input per feature shaped [N] or [N, 1] (or feature_names in config.json for one [N, F] input); input '${m.name}' is [${m.shape}]`,
      );
    }
  }
  return { kind: 'columns', features: inputs.map((m) => ({ name: m.name, datatype: m.datatype })) };
}

/** The integers a record can give an integer input: JSON numbers are exact up to 2^53. */
const INTEGER_RANGE: Record<string, [number, number]> = {
  INT8: [-128, 127],
  INT16: [-32_768, 32_767],
  INT32: [-2_147_483_648, 2_147_483_647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT8: [0, 255],
  UINT16: [0, 65_535],
  UINT32: [0, 4_294_967_295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

/**
 * One record's value for one feature, as the input's datatype takes it; anything the datatype
 * cannot hold unchanged is refused, naming the record and the feature.
 */
function cell(value: unknown, datatype: string, row: number, feature: string): RecordValue {
  const field = `instances[${row}].${feature}`;
  if (value === undefined) throw fieldError(`${field} is missing`);
  if (datatype === 'BYTES') {
    let s: string;
    if (typeof value === 'string') s = value;
    else if (typeof value === 'number' || typeof value === 'boolean') s = String(value);
    else throw fieldError(`${field} must be a string, got ${describeValue(value)}`);
    if (s.includes('\0') || !s.isWellFormed())
      throw fieldError(
        `${field} holds a NUL or is not valid UTF-8, which an ONNX string tensor cannot carry`,
      );
    return s;
  }
  if (datatype === 'FP32' || datatype === 'FP64' || datatype === 'FP16') {
    if (value === null) return Number.NaN; // a missing numeric value, as imputers expect
    let x: number | undefined;
    if (typeof value === 'number') x = value;
    else if (typeof value === 'string') x = parseDecimal(value); // not hex, not "Infinity"
    if (x === undefined || !Number.isFinite(x))
      throw fieldError(`${field} must be a number, got ${describeValue(value)}`);
    if (datatype === 'FP32' && !Number.isFinite(Math.fround(x)))
      throw fieldError(`${field} is ${x}, beyond FP32's range (±3.4028235e38)`);
    return x;
  }
  if (datatype === 'BOOL') {
    if (typeof value === 'boolean') return value;
    throw fieldError(`${field} must be true or false, got ${describeValue(value)}`);
  }
  const [min, max] = INTEGER_RANGE[datatype] ?? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
  throw fieldError(
    `${field} must be an integer from ${min} to ${max} for ${datatype}, got ${describeValue(value)}`,
  );
}

/**
 * A numeric feature given as a decimal string is stored as the number the model saw, so the
 * prediction log (which keeps records as sent) holds one type per column for drift.
 */
function settle(row: Record<string, unknown>, feature: string, v: RecordValue): RecordValue {
  if (typeof v === 'number' && typeof row[feature] === 'string') row[feature] = v;
  return v;
}

/** The deepest a record's value may nest: the prediction log keeps records as sent. */
export const MAX_RECORD_DEPTH = 32;

/**
 * Refuses a record whose values nest deeper than MAX_RECORD_DEPTH (checked without recursion):
 * copying such a record to the log's writer would overflow the stack.
 */
export function checkRecordDepth(record: Record<string, unknown>, row: number): void {
  for (const key in record) {
    const v = record[key];
    if (typeof v !== 'object' || v === null) continue;
    const stack: [object, number][] = [[v, 1]];
    while (stack.length > 0) {
      const [node, depth] = stack.pop()!;
      if (depth > MAX_RECORD_DEPTH)
        throw fieldError(`instances[${row}].${key} nests deeper than ${MAX_RECORD_DEPTH} levels`);
      for (const k in node) {
        const c = (node as Record<string, unknown>)[k];
        if (typeof c === 'object' && c !== null) stack.push([c, depth + 1]);
      }
    }
  }
}

function fill(data: TensorData, datatype: string, j: number, v: RecordValue): void {
  if (datatype === 'BYTES') (data as string[])[j] = v as string;
  else if (datatype === 'INT64' || datatype === 'UINT64') (data as BigInt64Array)[j] = BigInt(v as number);
  else if (datatype === 'BOOL') (data as Uint8Array)[j] = v ? 1 : 0;
  else (data as Float32Array)[j] = v as number;
}

export function recordsToRequest(
  instances: unknown,
  inputs: TensorMetadata[],
  layout: RecordsLayout,
): InferRequest {
  if (!Array.isArray(instances) || instances.length === 0) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "'instances' must be a non-empty array of records");
  }
  const n = instances.length;
  instances.forEach((r, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r))
      throw fieldError(`instances[${i}] must be an object`);
  });
  const rows = instances as Record<string, unknown>[];
  if (layout.kind === 'matrix') {
    const m = inputs[0]!;
    const f = layout.features.length;
    if (m.datatype === 'FP16')
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `input '${m.name}' is FP16; use the V2 binary API`);
    const data = allocate(m.datatype, n * f);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < f; k++) {
        const feat = layout.features[k]!;
        const row = rows[i]!;
        fill(
          data,
          m.datatype,
          i * f + k,
          settle(row, feat.name, cell(row[feat.name], m.datatype, i, feat.name)),
        );
      }
    }
    return { inputs: [{ name: m.name, datatype: m.datatype, shape: [n, f], data }] };
  }
  const tensors: Tensor[] = inputs.map((m) => {
    if (m.datatype === 'FP16')
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `input '${m.name}' is FP16; use the V2 binary API`);
    const data = allocate(m.datatype, n);
    for (let i = 0; i < n; i++) {
      const row = rows[i]!;
      fill(data, m.datatype, i, settle(row, m.name, cell(row[m.name], m.datatype, i, m.name)));
    }
    return { name: m.name, datatype: m.datatype, shape: m.shape.length === 1 ? [n] : [n, 1], data };
  });
  return { inputs: tensors };
}

/**
 * A classifier's answer, one `{label, probabilities: {class: p}}` per row: an integer or string
 * label output (one value a row) beside a float [N, C] output, either alone; class indices take
 * their names from `labelNames` (config.json's `label_names`). Undefined when the outputs have
 * neither, as a regressor's do.
 */
export function classifierPredictions(
  outputs: readonly Tensor[],
  labelNames: readonly string[] | undefined,
  n: number,
): Prediction[] | undefined {
  const labelOut = outputs.find(
    (o) => (o.datatype === 'INT64' || o.datatype === 'INT32' || o.datatype === 'BYTES') && rowWidth(o) === 1,
  );
  const probOut = outputs.find(
    (o) => (o.datatype === 'FP32' || o.datatype === 'FP64') && o.shape.length === 2,
  );
  if (!labelOut && !probOut) return undefined;
  const className = (k: number | string): string | number =>
    typeof k === 'number' && labelNames && k >= 0 && k < labelNames.length ? labelNames[k]! : k;
  const predictions: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    const p: Prediction = {};
    if (labelOut) {
      const raw = labelOut.data[i]!;
      p.label = className(typeof raw === 'bigint' ? Number(raw) : (raw as string | number));
    }
    if (probOut) {
      const c = probOut.shape[1]!;
      const probs: Record<string, number> = {};
      for (let k = 0; k < c; k++) probs[String(className(k))] = (probOut.data as Float32Array)[i * c + k]!;
      p.probabilities = probs;
      if (!labelOut) {
        let best = 0;
        for (let k = 1; k < c; k++)
          if (probs[String(className(k))]! > probs[String(className(best))]!) best = k;
        p.label = className(best);
      }
    }
    predictions.push(p);
  }
  return predictions;
}

/**
 * Turns outputs into one prediction per record: a classifier's label and probabilities by class
 * name (see classifierPredictions); anything else gives each output's row under its name.
 */
export function responseToPredictions(response: InferResponse, config: ModelConfig, n: number): Prediction[] {
  const classes = classifierPredictions(response.outputs, config.labelNames, n);
  if (classes) return classes;
  const predictions: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    const p: Prediction = {};
    for (const o of response.outputs) {
      const w = rowWidth(o);
      const row = Array.from(o.data.slice(i * w, (i + 1) * w) as ArrayLike<unknown>, (x) =>
        typeof x === 'bigint' ? Number(x) : x,
      );
      p[o.name] = w === 1 ? row[0] : row;
    }
    predictions.push(p);
  }
  return predictions;
}

function rowWidth(t: Tensor): number {
  let w = 1;
  for (let k = 1; k < t.shape.length; k++) w *= t.shape[k]!;
  return w;
}
