/**
 * Triton's `model_warmup`: requests a version runs before it is READY, so the first real requests
 * do not pay for ONNX Runtime's first-run allocations. A sample that fails keeps the version from
 * serving, with the reason in the repository index.
 *
 * @example config.json
 *   "model_warmup": [{ "name": "zeros", "batch_size": 8, "count": 2,
 *     "inputs": { "INPUT0": { "data_type": "TYPE_FP32", "dims": [4], "zero_data": true } } }]
 */
import { SlipwayError } from '../errors/index.js';
import { allocate, elementCount, isDatatype } from './datatypes.js';
import type { ModelConfig } from './model-config.js';
import { KEEP_INPUTS, type ModelRuntime } from './model-runtime.js';
import type { Datatype, InferRequest, TensorData } from './types.js';
import { prepareJob } from './validate.js';

export interface WarmupSample {
  name: string;
  /** Rows of each request; the batch dimension is added when the model batches. */
  batchSize: number;
  /** Times the request is run. */
  count: number;
  inputs: { name: string; datatype: Datatype; dims: number[]; fill: 'zero' | 'random' }[];
}

const MAX_SAMPLES = 64;
const MAX_COUNT = 1000;
/** Elements per warmup input at most (64 Mi), so a typo in dims cannot exhaust memory. */
const MAX_ELEMENTS = 1 << 26;

/** Reads `model_warmup` from config.json; throws a config error naming the field. */
export function parseWarmup(raw: unknown, fail: (field: string, expected: string) => never): WarmupSample[] {
  if (!Array.isArray(raw)) fail('model_warmup', 'an array of warmup samples');
  if (raw.length > MAX_SAMPLES) fail('model_warmup', `at most ${MAX_SAMPLES} samples`);
  const names = new Set<string>();
  return raw.map((s, i) => {
    const at = `model_warmup[${i}]`;
    if (!isObject(s)) fail(at, 'an object with name, batch_size, inputs and count');
    for (const key of Object.keys(s)) {
      if (!['name', 'batch_size', 'inputs', 'count'].includes(key))
        fail(`${at}.${key}`, 'one of: name, batch_size, inputs, count');
    }
    if (typeof s.name !== 'string' || s.name === '') fail(`${at}.name`, 'a non-empty string');
    if (names.has(s.name)) fail(`${at}.name`, `a name not used by another sample ('${s.name}' is)`);
    names.add(s.name);
    const batchSize =
      s.batch_size === undefined ? 1 : integer(s.batch_size, 1, 1 << 16, `${at}.batch_size`, fail);
    const count = s.count === undefined ? 1 : integer(s.count, 1, MAX_COUNT, `${at}.count`, fail);
    if (!isObject(s.inputs) || Object.keys(s.inputs).length === 0)
      fail(`${at}.inputs`, 'an object of input name → {data_type, dims, zero_data | random_data}');
    const inputs = Object.entries(s.inputs).map(([name, v]) => {
      const field = `${at}.inputs.${name}`;
      if (!isObject(v)) fail(field, 'an object with data_type, dims and zero_data or random_data');
      for (const key of Object.keys(v)) {
        if (!['data_type', 'dims', 'zero_data', 'random_data', 'input_data_file'].includes(key))
          fail(`${field}.${key}`, 'one of: data_type, dims, zero_data, random_data');
      }
      if (v.input_data_file !== undefined)
        fail(`${field}.input_data_file`, 'absent: warmup data is zero_data or random_data here');
      const type = typeof v.data_type === 'string' ? v.data_type.replace(/^TYPE_/, '') : undefined;
      const datatype = type === 'STRING' ? 'BYTES' : type;
      if (!isDatatype(datatype))
        fail(`${field}.data_type`, 'a datatype such as TYPE_FP32, TYPE_INT64 or TYPE_STRING');
      if (!Array.isArray(v.dims)) fail(`${field}.dims`, 'an array of sizes (without the batch dimension)');
      const dims = v.dims.map((d, k) => integer(d, 0, 1 << 30, `${field}.dims[${k}]`, fail));
      if (elementCount(dims) * batchSize > MAX_ELEMENTS)
        fail(`${field}.dims`, `at most ${MAX_ELEMENTS} elements with batch_size`);
      const zero = v.zero_data === true;
      const random = v.random_data === true;
      if (zero === random) fail(field, 'exactly one of zero_data: true or random_data: true');
      return { name, datatype, dims, fill: zero ? ('zero' as const) : ('random' as const) };
    });
    return { name: s.name, batchSize, count, inputs };
  });
}

/** Runs every sample on a freshly loaded runtime; throws a load error naming the sample. */
export async function warmUp(runtime: ModelRuntime, config: ModelConfig): Promise<void> {
  const batching = runtime.batchable && config.maxBatchSize > 0;
  for (const sample of config.warmup) {
    const request: InferRequest = {
      inputs: sample.inputs.map((i) => {
        const shape = batching ? [sample.batchSize, ...i.dims] : i.dims;
        return {
          name: i.name,
          datatype: i.datatype,
          shape,
          data: fill(i.datatype, elementCount(shape), i.fill),
        };
      }),
    };
    try {
      if (!batching && sample.batchSize !== 1) {
        throw new SlipwayError(
          'SLIPWAY_ERR_MODEL_LOAD',
          `batch_size must be 1: the model does not batch (its first dimension is fixed, or max_batch_size is 0); give the whole shape in dims`,
        );
      }
      const job = prepareJob(runtime.signature, config, runtime.batchable, request);
      for (let n = 0; n < sample.count; n++) {
        // Every instance once per round; the same inputs again, so a worker gets a copy each time.
        if (runtime.warmUp) await runtime.warmUp(job.inputs, job.outputs);
        else await runtime.run(job.inputs, job.outputs, KEEP_INPUTS);
        // A main-thread run finishes synchronously: let other work through between rounds.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_LOAD',
        `model_warmup '${sample.name}': ${(err as Error).message}`,
      );
    }
  }
}

function fill(datatype: Datatype, count: number, how: 'zero' | 'random'): TensorData {
  const data = allocate(datatype, count);
  if (how === 'zero') return data;
  if (datatype === 'BYTES') {
    const strings = data as string[];
    for (let i = 0; i < count; i++)
      strings[i] = Math.random()
        .toString(36)
        .slice(2, 2 + 1 + (i % 8));
  } else if (datatype === 'FP32' || datatype === 'FP64') {
    const xs = data as Float32Array | Float64Array;
    for (let i = 0; i < count; i++) xs[i] = Math.random();
  } else if (datatype === 'FP16') {
    // 0, 0.5 or 1 as IEEE half bits.
    const xs = data as Uint16Array;
    for (let i = 0; i < count; i++) xs[i] = [0x0000, 0x3800, 0x3c00][i % 3]!;
  } else if (datatype === 'INT64' || datatype === 'UINT64') {
    const xs = data as BigInt64Array | BigUint64Array;
    for (let i = 0; i < count; i++) xs[i] = BigInt(Math.floor(Math.random() * 100));
  } else {
    // Booleans 0/1; other integers 0..99 (within every integer type's range).
    const xs = data as Uint8Array;
    const top = datatype === 'BOOL' ? 2 : 100;
    for (let i = 0; i < count; i++) xs[i] = Math.floor(Math.random() * top);
  }
  return data;
}

function integer(
  v: unknown,
  min: number,
  max: number,
  field: string,
  fail: (field: string, expected: string) => never,
): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail(field, `an integer from ${min} to ${max}`);
  return v as number;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
