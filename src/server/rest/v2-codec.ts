/**
 * Converts between the Open Inference Protocol's REST body (JSON, or JSON followed by raw tensors
 * under the binary tensor extension) and the protocol types. No transport concerns here.
 */
import { describeValue, SlipwayError } from '../../errors/index.js';
import {
  checkOrtString,
  checkSharedOutputs,
  type Datatype,
  elementCount,
  fromBytes,
  type InferRequest,
  type InferResponse,
  inSharedMemory,
  isDatatype,
  MAX_REQUEST_ID_LENGTH,
  type Parameters,
  type RequestedOutput,
  type SharedMemoryRegions,
  sharedInputData,
  type Tensor,
  type TensorData,
  TYPED_ARRAY,
  toBytes,
} from '../../inference/index.js';

const bad = (message: string) => new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);

/**
 * Parses a V2 infer body. `headerLength` is the Inference-Header-Content-Length value when the
 * binary extension is in use (the JSON is then followed by raw tensors).
 */
export function decodeInferRequest(
  body: Buffer,
  headerLength: number | undefined,
  regions?: SharedMemoryRegions,
): InferRequest {
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    if (headerLength > body.length) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BINARY_DATA',
        `Inference-Header-Content-Length ${headerLength} exceeds the body length ${body.length}`,
      );
    }
    jsonEnd = headerLength;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8', 0, jsonEnd));
  } catch (err) {
    throw bad(`the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw bad('the request body must be a JSON object');
  const r = raw as Record<string, unknown>;
  const request: InferRequest = { inputs: [] };
  if (r.id !== undefined) request.id = checkRequestId(r.id);
  if (r.parameters !== undefined) request.parameters = parameters(r.parameters, 'parameters');
  if (!Array.isArray(r.inputs)) throw bad("'inputs' must be an array of tensors");
  let offset = jsonEnd;
  for (let i = 0; i < r.inputs.length; i++) {
    const { tensor, consumed } = decodeInput(r.inputs[i], i, body, offset, regions);
    offset += consumed;
    request.inputs.push(tensor);
  }
  if (offset !== body.length) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BINARY_DATA',
      `the body has ${body.length - offset} bytes of binary data beyond what the inputs' binary_data_size declare`,
    );
  }
  if (r.outputs !== undefined) {
    if (!Array.isArray(r.outputs)) throw bad("'outputs' must be an array");
    request.outputs = r.outputs.map((o, i): RequestedOutput => {
      if (typeof o !== 'object' || o === null || typeof (o as { name?: unknown }).name !== 'string') {
        throw bad(`outputs[${i}].name must be a string`);
      }
      const out: RequestedOutput = { name: (o as { name: string }).name };
      const p = (o as { parameters?: unknown }).parameters;
      if (p !== undefined) out.parameters = parameters(p, `outputs[${i}].parameters`);
      return out;
    });
    checkSharedOutputs(regions, request);
  }
  return request;
}

/**
 * A request's own `id`, which is echoed in the body and in the `x-request-id` header: a string
 * of printable ASCII (what a header value carries unaltered), at most MAX_REQUEST_ID_LENGTH long.
 */
export function checkRequestId(id: unknown): string {
  if (typeof id !== 'string') throw bad("'id' must be a string");
  if (id.length > MAX_REQUEST_ID_LENGTH)
    throw bad(`'id' is ${id.length} characters long; the longest allowed is ${MAX_REQUEST_ID_LENGTH}`);
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) {
      throw bad(
        `'id' holds character ${i} (U+${c.toString(16).toUpperCase().padStart(4, '0')}), which an HTTP header cannot carry; use printable ASCII`,
      );
    }
  }
  return id;
}

function parameters(p: unknown, field: string): Parameters {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw bad(`'${field}' must be an object`);
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw bad(`'${field}.${k}' must be a string, number or boolean`);
    }
  }
  return p as Parameters;
}

function decodeInput(
  raw: unknown,
  i: number,
  body: Buffer,
  offset: number,
  regions: SharedMemoryRegions | undefined,
): { tensor: Tensor; consumed: number } {
  if (typeof raw !== 'object' || raw === null) throw bad(`inputs[${i}] must be an object`);
  const t = raw as Record<string, unknown>;
  if (typeof t.name !== 'string' || t.name === '') throw bad(`inputs[${i}].name must be a non-empty string`);
  const name = t.name;
  if (!isDatatype(t.datatype)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_INPUT_DATATYPE',
      `input '${name}': datatype ${describeValue(t.datatype)} is not one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES`,
    );
  }
  const datatype = t.datatype;
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0)) {
    throw new SlipwayError(
      'SLIPWAY_ERR_INPUT_SHAPE',
      `input '${name}': shape must be an array of non-negative integers`,
    );
  }
  const tensor: Tensor = { name, datatype, shape: shape as number[], data: [] };
  let consumed = 0;
  let binarySize: number | undefined;
  if (t.parameters !== undefined) {
    tensor.parameters = parameters(t.parameters, `inputs[${i}].parameters`);
    const shared = sharedInputData(regions, tensor);
    if (shared !== undefined) {
      if (t.data !== undefined || tensor.parameters.binary_data_size !== undefined) {
        throw bad(
          `input '${name}' is in shared memory (shared_memory_region); it must not also have 'data' or binary_data_size`,
        );
      }
      tensor.data = shared;
      return { tensor, consumed: 0 };
    }
    const size = tensor.parameters.binary_data_size;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BINARY_DATA',
          `input '${name}': binary_data_size must be a non-negative integer`,
        );
      }
      binarySize = size;
    }
  }
  const count = elementCount(tensor.shape);
  if (binarySize !== undefined) {
    if (t.data !== undefined)
      throw new SlipwayError(
        'SLIPWAY_ERR_BINARY_DATA',
        `input '${name}' has both 'data' and binary_data_size`,
      );
    if (offset + binarySize > body.length) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BINARY_DATA',
        `input '${name}': binary_data_size ${binarySize} runs past the end of the body (${body.length - offset} bytes left)`,
      );
    }
    tensor.data = fromBytes(datatype, body.subarray(offset, offset + binarySize), name);
    consumed = binarySize;
  } else {
    if (t.data === undefined) throw bad(`input '${name}' has no 'data' (and no binary_data_size parameter)`);
    if (datatype === 'FP16') {
      throw new SlipwayError(
        'SLIPWAY_ERR_BINARY_DATA',
        `input '${name}': FP16 cannot travel as JSON; send it with the binary tensor extension`,
      );
    }
    tensor.data = decodeJsonData(t.data, datatype, count, name, tensor.shape.length);
  }
  return { tensor, consumed };
}

/** Flattens JSON `data` (flat or nested, row-major) into the datatype's typed array. */
export function decodeJsonData(
  data: unknown,
  datatype: Datatype,
  count: number,
  name: string,
  rank: number,
): TensorData {
  if (!Array.isArray(data))
    throw new SlipwayError('SLIPWAY_ERR_INPUT_DATA', `input '${name}': data must be an array`);
  const flat: unknown[] = data.length > 0 && Array.isArray(data[0]) ? flatten(data, rank, name) : data;
  if (flat.length !== count) {
    throw new SlipwayError(
      'SLIPWAY_ERR_INPUT_SHAPE',
      `input '${name}': shape needs ${count} elements, data has ${flat.length}`,
    );
  }
  const wrong = (j: number, expected: string) =>
    new SlipwayError(
      'SLIPWAY_ERR_INPUT_DATA',
      `input '${name}': element ${j} is ${describeValue(flat[j])}, expected ${expected} for ${datatype}`,
    );
  switch (datatype) {
    case 'BYTES': {
      for (let j = 0; j < count; j++) {
        if (typeof flat[j] !== 'string') throw wrong(j, 'a string');
        checkOrtString(flat[j] as string, name, j);
      }
      return flat as string[];
    }
    case 'BOOL': {
      const out = new Uint8Array(count);
      for (let j = 0; j < count; j++) {
        const v = flat[j];
        if (typeof v !== 'boolean') throw wrong(j, 'true or false');
        out[j] = v ? 1 : 0;
      }
      return out;
    }
    case 'FP32':
    case 'FP64': {
      const out = new TYPED_ARRAY[datatype](count);
      for (let j = 0; j < count; j++) {
        const v = flat[j];
        if (typeof v !== 'number') throw wrong(j, 'a number');
        out[j] = v;
        // A double beyond FP32's range would silently become ±Infinity.
        if (out[j] === Number.POSITIVE_INFINITY || out[j] === Number.NEGATIVE_INFINITY)
          throw wrong(j, `a number within ${datatype}'s range (±3.4028235e38)`);
      }
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const out = datatype === 'INT64' ? new BigInt64Array(count) : new BigUint64Array(count);
      // JSON numbers are doubles: beyond 2^53 a value has already been rounded by the parser,
      // so it is refused rather than served altered. The binary extension carries all 64 bits.
      const min = datatype === 'INT64' ? Number.MIN_SAFE_INTEGER : 0;
      for (let j = 0; j < count; j++) {
        const v = flat[j];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > Number.MAX_SAFE_INTEGER) {
          throw wrong(
            j,
            `an integer from ${min} to ${Number.MAX_SAFE_INTEGER} (JSON numbers are exact only up to 2^53; send larger ${datatype} values as binary)`,
          );
        }
        out[j] = BigInt(v);
      }
      return out;
    }
    default: {
      const Ctor = TYPED_ARRAY[datatype];
      const out = new Ctor(count) as Int32Array;
      const bits = Ctor.BYTES_PER_ELEMENT * 8;
      const signed = datatype.startsWith('INT');
      const min = signed ? -(2 ** (bits - 1)) : 0;
      const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
      for (let j = 0; j < count; j++) {
        const v = flat[j];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
          throw wrong(j, `an integer between ${min} and ${max}`);
        }
        out[j] = v;
      }
      return out;
    }
  }
}

/**
 * Nested `data`, row-major, as one flat array. Iterative, and no deeper than the shape has
 * dimensions: a body nested thousands of levels deep is a 400, not a stack overflow. Uneven
 * nesting is accepted as Triton accepts it; the element count is checked afterwards.
 */
function flatten(data: unknown[], rank: number, name: string): unknown[] {
  const out: unknown[] = [];
  const arrays: unknown[][] = [data];
  const next: number[] = [0];
  while (arrays.length > 0) {
    const top = arrays.length - 1;
    const a = arrays[top]!;
    const i = next[top]!;
    if (i === a.length) {
      arrays.pop();
      next.pop();
      continue;
    }
    next[top] = i + 1;
    const v = a[i];
    if (Array.isArray(v)) {
      if (arrays.length >= rank) {
        throw new SlipwayError(
          'SLIPWAY_ERR_INPUT_SHAPE',
          `input '${name}': data nests deeper than its shape's ${rank} dimension${rank === 1 ? '' : 's'}`,
        );
      }
      arrays.push(v);
      next.push(0);
    } else out.push(v);
  }
  return out;
}

/** Writes tensor data as a JSON array. Non-finite floats become null: JSON has no NaN. */
function jsonData(t: Tensor): string {
  const d = t.data;
  if (t.datatype === 'BYTES') return JSON.stringify(d);
  if (t.datatype === 'BOOL') {
    let s = '[';
    for (let j = 0; j < d.length; j++) s += (j ? ',' : '') + (d[j] ? 'true' : 'false');
    return `${s}]`;
  }
  if (t.datatype === 'FP32' || t.datatype === 'FP64') {
    const f = d as Float32Array;
    let finite = true;
    for (let j = 0; j < f.length; j++) {
      if (!Number.isFinite(f[j])) {
        finite = false;
        break;
      }
    }
    if (finite) return `[${f.join(',')}]`;
    return `[${Array.from(f, (x) => (Number.isFinite(x) ? String(x) : 'null')).join(',')}]`;
  }
  return `[${(d as Int32Array).join(',')}]`;
}

/** Whether an output should travel as binary, per the request's parameters. */
export function wantsBinary(request: InferRequest, output: string): boolean {
  const requested = request.outputs?.find((o) => o.name === output);
  const own = requested?.parameters?.binary_data;
  if (own !== undefined) return own === true;
  return request.parameters?.binary_data_output === true;
}

export interface EncodedResponse {
  /** JSON header (the whole body when `binary` is empty). */
  json: string;
  /** Raw tensors that follow the JSON, in output order. */
  binary: Uint8Array[];
}

export function encodeInferResponse(request: InferRequest, response: InferResponse): EncodedResponse {
  let json = `{"model_name":${JSON.stringify(response.modelName)},"model_version":${JSON.stringify(response.modelVersion)}`;
  if (response.id !== undefined) json += `,"id":${JSON.stringify(response.id)}`;
  if (response.parameters) json += `,"parameters":${JSON.stringify(response.parameters)}`;
  json += ',"outputs":[';
  const binary: Uint8Array[] = [];
  for (let i = 0; i < response.outputs.length; i++) {
    const o = response.outputs[i]!;
    json += `${i ? ',' : ''}{"name":${JSON.stringify(o.name)},"datatype":"${o.datatype}","shape":[${o.shape.join(',')}]`;
    if (inSharedMemory(o)) {
      json += '}';
    } else if (wantsBinary(request, o.name)) {
      const bytes = toBytes(o.datatype, o.data);
      binary.push(bytes);
      json += `,"parameters":{"binary_data_size":${bytes.byteLength}}}`;
    } else {
      if (o.datatype === 'FP16') {
        throw new SlipwayError(
          'SLIPWAY_ERR_BINARY_DATA',
          `output '${o.name}' is FP16, which JSON cannot carry; request it with parameters.binary_data = true`,
        );
      }
      json += `,"data":${jsonData(o)}}`;
    }
  }
  json += ']}';
  return { json, binary };
}

/** A V2 error body. */
export function encodeError(err: SlipwayError): string {
  return JSON.stringify(
    err.details
      ? { error: err.message, code: err.code, details: err.details }
      : { error: err.message, code: err.code },
  );
}
