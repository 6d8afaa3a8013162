/**
 * The records API: named features in, labelled predictions out. Maps
 * `{"instances": [{"age": 41, "workclass": "Private"}, …]}` onto a tabular model's inputs, either
 * one input per column (as skl2onnx pipelines make) or one [N, F] matrix whose column names come
 * from `feature_names` in config.json; maps outputs back to labels and probabilities by class name.
 */
import { SlipwayError } from '../errors/index.js';
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

function cell(value: unknown, datatype: string, row: number, feature: string): RecordValue {
  if (value === undefined) throw fieldError(`instances[${row}].${feature} is missing`);
  if (datatype === 'BYTES') {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw fieldError(`instances[${row}].${feature} must be a string`);
  }
  if (datatype === 'FP32' || datatype === 'FP64' || datatype === 'FP16') {
    if (value === null) return Number.NaN; // a missing numeric value, as imputers expect
    if (typeof value === 'number') return value;
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
      return Number(value);
    throw fieldError(`instances[${row}].${feature} must be a number, got ${JSON.stringify(value)}`);
  }
  if (datatype === 'BOOL') {
    if (typeof value === 'boolean') return value;
    throw fieldError(`instances[${row}].${feature} must be true or false`);
  }
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  throw fieldError(`instances[${row}].${feature} must be an integer, got ${JSON.stringify(value)}`);
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
        fill(data, m.datatype, i * f + k, cell(rows[i]![feat.name], m.datatype, i, feat.name));
      }
    }
    return { inputs: [{ name: m.name, datatype: m.datatype, shape: [n, f], data }] };
  }
  const tensors: Tensor[] = inputs.map((m) => {
    if (m.datatype === 'FP16')
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `input '${m.name}' is FP16; use the V2 binary API`);
    const data = allocate(m.datatype, n);
    for (let i = 0; i < n; i++) fill(data, m.datatype, i, cell(rows[i]![m.name], m.datatype, i, m.name));
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
