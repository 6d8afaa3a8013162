/**
 * Converters between the gRPC messages (as @grpc/proto-loader hands them over with
 * LOADER_OPTIONS) and the protocol types the data plane speaks. No I/O and no data plane here:
 * the server calls these, tests can call them directly.
 */
import { SlipwayError } from '../../errors/index.js';
import type {
  Datatype,
  InferRequest,
  InferResponse,
  ModelMetadata,
  ModelStats,
  Parameters,
  ParameterValue,
  RepositoryEntry,
  Tensor,
  TensorData,
} from '../../inference/index.js';
import {
  checkSharedOutputs,
  decodeOrtString,
  elementCount,
  fromBytes,
  inSharedMemory,
  isDatatype,
  readSharedInput,
  type SharedMemoryRegions,
  sharedMemoryRef,
  toBytes,
} from '../../inference/index.js';

/** The raw_output_contents entry of an output written to shared memory. */
const EMPTY = Buffer.alloc(0);

/**
 * How proto-loader maps protobuf values to JS, chosen for exactness and zero copies:
 * - `longs: String`: int64/uint64 arrive as decimal strings, so INT64/UINT64 tensor contents
 *   convert exactly to BigInt arrays (Number would round past 2^53). Shapes and parameters are
 *   then converted with Number() where the protocol types want numbers.
 * - `bytes: Buffer`: raw contents arrive as Buffers that view the received message, no copy.
 * - `enums: String`: enums by name, readable in tests; the server sends explicit numbers.
 * - `defaults: false`: absent fields stay absent, so "no contents" differs from "empty".
 * - `oneofs: true`: InferParameter carries `parameter_choice` naming the member that is set,
 *   which is the only way to tell a `false`/`0` value from an unset one.
 * - `keepCase: true`: field names stay snake_case, as in the .proto and Triton's JSON config.
 */
export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
} as const;

// --- Message shapes: only the part of each message Slipway reads or writes. ---------------

/** int64/uint64 as proto-loader delivers them (string) or as we may send them (number). */
type Int64 = string | number;

export interface InferParameterMsg {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  double_param?: number;
  uint64_param?: Int64;
}

export interface InferTensorContentsMsg {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Int64[];
  uint_contents?: number[];
  uint64_contents?: Int64[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface InferTensorMsg {
  name?: string;
  datatype?: string;
  shape?: Int64[];
  parameters?: Record<string, InferParameterMsg>;
  contents?: InferTensorContentsMsg;
}

export interface ModelInferRequestMsg {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, InferParameterMsg>;
  inputs?: InferTensorMsg[];
  outputs?: { name?: string; parameters?: Record<string, InferParameterMsg> }[];
  raw_input_contents?: Uint8Array[];
}

export interface ModelInferResponseMsg {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, InferParameterMsg>;
  outputs: InferTensorMsg[];
  raw_output_contents?: Uint8Array[];
}

export interface ModelRepositoryParameterMsg {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'bytes_param';
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  bytes_param?: Uint8Array;
}

// --- Parameters ----------------------------------------------------------------------------

/** InferParameter map → protocol parameters. int64/uint64 become numbers (exact up to 2^53). */
export function parametersFromMsg(
  msg: Record<string, InferParameterMsg> | undefined,
): Parameters | undefined {
  if (!msg) return undefined;
  const out: Parameters = {};
  let any = false;
  for (const key of Object.keys(msg)) {
    const p = msg[key];
    let value: ParameterValue | undefined;
    switch (p.parameter_choice) {
      case 'bool_param':
        value = p.bool_param === true;
        break;
      case 'int64_param':
        value = Number(p.int64_param);
        break;
      case 'uint64_param':
        value = Number(p.uint64_param);
        break;
      case 'double_param':
        value = p.double_param ?? 0;
        break;
      case 'string_param':
        value = p.string_param ?? '';
        break;
      default:
        // A parameter with no member set carries no value; Triton ignores it too.
        continue;
    }
    out[key] = value;
    any = true;
  }
  return any ? out : undefined;
}

/**
 * Protocol parameters → InferParameter map. Integers go out as int64 (uint64 beyond the int64
 * range), other numbers as double.
 */
export function parametersToMsg(
  params: Parameters | undefined,
): Record<string, InferParameterMsg> | undefined {
  if (!params) return undefined;
  const out: Record<string, InferParameterMsg> = {};
  for (const key of Object.keys(params)) {
    const v = params[key];
    if (typeof v === 'boolean') out[key] = { bool_param: v };
    else if (typeof v === 'string') out[key] = { string_param: v };
    else if (Number.isSafeInteger(v)) out[key] = { int64_param: v };
    else if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63)
      out[key] = { int64_param: BigInt(v).toString() };
    else if (Number.isInteger(v) && v > 0 && v < 2 ** 64) out[key] = { uint64_param: BigInt(v).toString() };
    else out[key] = { double_param: v };
  }
  return out;
}

/** Repository parameters → protocol parameters; bytes become base64, as REST carries them. */
export function repositoryParametersFromMsg(
  msg: Record<string, ModelRepositoryParameterMsg> | undefined,
): Parameters | undefined {
  if (!msg) return undefined;
  const out: Parameters = {};
  let any = false;
  for (const key of Object.keys(msg)) {
    const p = msg[key];
    switch (p.parameter_choice) {
      case 'bool_param':
        out[key] = p.bool_param === true;
        break;
      case 'int64_param':
        out[key] = Number(p.int64_param);
        break;
      case 'string_param':
        out[key] = p.string_param ?? '';
        break;
      case 'bytes_param':
        out[key] = Buffer.from(p.bytes_param ?? new Uint8Array()).toString('base64');
        break;
      default:
        continue;
    }
    any = true;
  }
  return any ? out : undefined;
}

// --- Inference request ---------------------------------------------------------------------

/** Which InferTensorContents field carries each datatype; FP16 has none. */
const CONTENTS_FIELD: Record<Datatype, keyof InferTensorContentsMsg | undefined> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  FP16: undefined,
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/** Value ranges of the types that share a wider contents field. */
const NARROW_RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  UINT8: [0, 255],
  UINT16: [0, 65535],
};

export interface DecodedInferRequest {
  model: string;
  version: string | undefined;
  request: InferRequest;
  /** The request carried raw_input_contents; the response answers in kind. */
  raw: boolean;
  /** The request's `timeout` parameter (microseconds, as in Triton) in milliseconds. */
  timeoutMs: number | undefined;
}

/** ModelInferRequest → protocol request; validates datatypes and element counts per input. */
export function decodeInferRequest(
  msg: ModelInferRequestMsg,
  regions?: SharedMemoryRegions,
): DecodedInferRequest {
  const inputs = msg.inputs ?? [];
  const raw = msg.raw_input_contents ?? [];
  const useRaw = raw.length > 0;
  // Inputs in shared memory have no entry in raw_input_contents: the others have one each, in order.
  const inputParams = inputs.map((t) => parametersFromMsg(t.parameters));
  const shared = inputParams.map((p, i) =>
    p === undefined ? undefined : sharedMemoryRef(p, `input '${inputs[i]!.name ?? ''}'`),
  );
  const carried = shared.reduce((n, s) => (s ? n : n + 1), 0);
  if (useRaw && raw.length !== carried) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BINARY_DATA',
      `raw_input_contents has ${raw.length} entries but the request has ${carried} inputs outside shared memory; send one per input, in order`,
    );
  }
  const tensors: Tensor[] = new Array(inputs.length);
  let next = 0;
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i];
    const name = t.name ?? '';
    const datatype = t.datatype;
    if (!isDatatype(datatype)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_DATATYPE',
        `input '${name}': unknown datatype '${datatype ?? ''}'`,
      );
    }
    const shape = decodeShape(name, t.shape);
    const params = inputParams[i];
    let data: TensorData;
    const ref = shared[i];
    if (ref) {
      if (t.contents) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BINARY_DATA',
          `input '${name}' is in shared memory (shared_memory_region); it must not also set contents`,
        );
      }
      data = readSharedInput(regions, ref, { name, datatype });
    } else if (useRaw) {
      if (t.contents) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BINARY_DATA',
          `input '${name}': sets contents while the request uses raw_input_contents; use one or the other`,
        );
      }
      data = fromBytes(datatype, raw[next++]!, name);
    } else {
      data = decodeContents(name, datatype, t.contents);
    }
    const expected = elementCount(shape);
    if (data.length !== expected) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_SHAPE',
        `input '${name}': shape [${shape.join(',')}] needs ${expected} elements, got ${data.length}` +
          (ref ? ' in shared memory' : useRaw ? ' in raw_input_contents' : ` in ${CONTENTS_FIELD[datatype]}`),
      );
    }
    const tensor: Tensor = { name, datatype, shape, data };
    if (params) tensor.parameters = params;
    tensors[i] = tensor;
  }

  const request: InferRequest = { inputs: tensors };
  if (msg.id) request.id = msg.id;
  const params = parametersFromMsg(msg.parameters);
  if (params) request.parameters = params;
  if (msg.outputs && msg.outputs.length > 0) {
    request.outputs = msg.outputs.map((o) => {
      const p = parametersFromMsg(o.parameters);
      return p ? { name: o.name ?? '', parameters: p } : { name: o.name ?? '' };
    });
    checkSharedOutputs(regions, request);
  }

  let timeoutMs: number | undefined;
  const timeout = params?.timeout;
  if (timeout !== undefined) {
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `parameter 'timeout' must be microseconds (an integer >= 0)`,
      );
    }
    // 0 means no timeout in Triton.
    if (timeout > 0) timeoutMs = timeout / 1000;
  }

  return {
    model: msg.model_name ?? '',
    version: msg.model_version || undefined,
    request,
    raw: useRaw,
    timeoutMs,
  };
}

function decodeShape(name: string, shape: Int64[] | undefined): number[] {
  if (!shape) return [];
  const out = new Array<number>(shape.length);
  for (let i = 0; i < shape.length; i++) {
    const d = Number(shape[i]);
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_SHAPE',
        `input '${name}': shape [${shape.join(',')}] has an invalid dimension ${shape[i]}`,
      );
    }
    out[i] = d;
  }
  return out;
}

function decodeContents(
  name: string,
  datatype: Datatype,
  contents: InferTensorContentsMsg | undefined,
): TensorData {
  const field = CONTENTS_FIELD[datatype];
  if (field === undefined) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BINARY_DATA',
      `input '${name}': ${datatype} has no typed contents field; send it in raw_input_contents`,
    );
  }
  switch (datatype) {
    case 'BOOL': {
      const v = contents?.bool_contents ?? [];
      const out = new Uint8Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = v[i] ? 1 : 0;
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const v = (datatype === 'INT64' ? contents?.int64_contents : contents?.uint64_contents) ?? [];
      const out = datatype === 'INT64' ? new BigInt64Array(v.length) : new BigUint64Array(v.length);
      // Strings (longs: String) convert exactly; a number only reaches here from an in-process caller.
      for (let i = 0; i < v.length; i++) out[i] = BigInt(v[i]);
      return out;
    }
    case 'BYTES': {
      const v = contents?.bytes_contents ?? [];
      return v.map((b, j) => decodeOrtString(b, name, j));
    }
    case 'FP16':
      // Unreachable: FP16 has no contents field (checked above).
      throw new SlipwayError('SLIPWAY_ERR_BINARY_DATA', `input '${name}': FP16 travels only as raw contents`);
    default: {
      const v = (contents?.[field] as number[] | undefined) ?? [];
      const range = NARROW_RANGE[datatype];
      if (range) {
        for (let i = 0; i < v.length; i++) {
          if (v[i] < range[0] || v[i] > range[1]) {
            throw new SlipwayError(
              'SLIPWAY_ERR_INPUT_DATA',
              `input '${name}': element ${i} (${v[i]}) is out of range for ${datatype}`,
            );
          }
        }
      }
      return TYPED_FROM[datatype](v);
    }
  }
}

const TYPED_FROM: Record<string, (v: number[]) => TensorData> = {
  UINT8: (v) => Uint8Array.from(v),
  UINT16: (v) => Uint16Array.from(v),
  UINT32: (v) => Uint32Array.from(v),
  INT8: (v) => Int8Array.from(v),
  INT16: (v) => Int16Array.from(v),
  INT32: (v) => Int32Array.from(v),
  FP32: (v) => Float32Array.from(v),
  FP64: (v) => Float64Array.from(v),
};

// --- Inference response --------------------------------------------------------------------

/**
 * Protocol response → ModelInferResponse. Raw output contents when `raw` (the request used raw
 * inputs, as tritonclient always does) or when an output has no typed field (FP16); typed
 * contents otherwise. The two cannot be mixed within one response.
 */
export function encodeInferResponse(
  res: InferResponse,
  requestId: string | undefined,
  raw: boolean,
): ModelInferResponseMsg {
  // Triton's C++ client reads raw_output_contents by output position whenever it is set, and
  // outputs in shared memory have no contents: their answers are raw throughout.
  const useRaw =
    raw || res.outputs.some((t) => CONTENTS_FIELD[t.datatype] === undefined || inSharedMemory(t));
  const outputs: InferTensorMsg[] = new Array(res.outputs.length);
  const rawContents: Uint8Array[] | undefined = useRaw ? new Array(res.outputs.length) : undefined;
  for (let i = 0; i < res.outputs.length; i++) {
    const t = res.outputs[i];
    const out: InferTensorMsg = { name: t.name, datatype: t.datatype, shape: t.shape };
    const params = parametersToMsg(t.parameters);
    if (params) out.parameters = params;
    if (inSharedMemory(t)) {
      // Its bytes are in the region; an empty entry keeps raw contents aligned with outputs.
      if (rawContents) rawContents[i] = EMPTY;
    } else if (rawContents) {
      const bytes = toBytes(t.datatype, t.data);
      rawContents[i] = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } else {
      out.contents = encodeContents(t.datatype, t.data);
    }
    outputs[i] = out;
  }
  const msg: ModelInferResponseMsg = {
    model_name: res.modelName,
    model_version: res.modelVersion,
    id: res.id ?? requestId ?? '',
    outputs,
  };
  const params = parametersToMsg(res.parameters);
  if (params) msg.parameters = params;
  if (rawContents) msg.raw_output_contents = rawContents;
  return msg;
}

function encodeContents(datatype: Datatype, data: TensorData): InferTensorContentsMsg {
  switch (datatype) {
    case 'BOOL':
      return { bool_contents: Array.from(data as Uint8Array, (b) => b !== 0) };
    case 'INT64':
      return { int64_contents: Array.from(data as BigInt64Array, String) };
    case 'UINT64':
      return { uint64_contents: Array.from(data as BigUint64Array, String) };
    case 'BYTES':
      return { bytes_contents: (data as string[]).map((s) => Buffer.from(s, 'utf8')) };
    default: {
      const field = CONTENTS_FIELD[datatype]!;
      return { [field]: Array.from(data as Exclude<TensorData, string[] | BigInt64Array | BigUint64Array>) };
    }
  }
}

// --- Metadata, repository, configuration, statistics ---------------------------------------

export function encodeModelMetadata(m: ModelMetadata) {
  return {
    name: m.name,
    versions: m.versions,
    platform: m.platform,
    inputs: m.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    outputs: m.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
  };
}

export function encodeRepositoryIndex(entries: RepositoryEntry[]) {
  return {
    models: entries.map((e) => ({
      name: e.name,
      version: e.version ?? '',
      state: e.state,
      reason: e.reason,
    })),
  };
}

export function encodeStatistics(stats: ModelStats[]) {
  return {
    model_stats: stats.map((s) => ({
      name: s.name,
      version: s.version,
      last_inference: s.last_inference,
      inference_count: s.inference_count,
      execution_count: s.execution_count,
      inference_stats: s.inference_stats,
      batch_stats: s.batch_stats,
    })),
  };
}

/** Triton's DataType enum numbers, by the names the JSON configuration uses. */
const DATA_TYPE_ENUM: Record<string, number> = {
  TYPE_BOOL: 1,
  TYPE_UINT8: 2,
  TYPE_UINT16: 3,
  TYPE_UINT32: 4,
  TYPE_UINT64: 5,
  TYPE_INT8: 6,
  TYPE_INT16: 7,
  TYPE_INT32: 8,
  TYPE_INT64: 9,
  TYPE_FP16: 10,
  TYPE_FP32: 11,
  TYPE_FP64: 12,
  TYPE_STRING: 13,
  TYPE_BF16: 14,
};

const INSTANCE_KIND_ENUM: Record<string, number> = { KIND_AUTO: 0, KIND_GPU: 1, KIND_CPU: 2, KIND_MODEL: 3 };

type Json = Record<string, unknown>;

/**
 * Triton's JSON model configuration (as `describeConfig` builds it) → the ModelConfig message.
 * Fields are picked one by one so that a JSON-only field never breaks serialization; enum
 * names are turned into numbers here because protobufjs would silently send 0 for a name it
 * does not know.
 */
export function encodeModelConfig(config: Json) {
  const io = (list: unknown) =>
    ((list as Json[] | undefined) ?? []).map((t) => ({
      name: t.name,
      data_type: enumValue(DATA_TYPE_ENUM, t.data_type, `data_type of '${String(t.name)}'`),
      dims: t.dims,
    }));
  const out: Json = {
    name: config.name,
    platform: config.platform,
    backend: config.backend,
    max_batch_size: config.max_batch_size,
    input: io(config.input),
    output: io(config.output),
    instance_group: ((config.instance_group as Json[] | undefined) ?? []).map((g) => ({
      name: g.name,
      count: g.count,
      kind: enumValue(INSTANCE_KIND_ENUM, g.kind ?? 'KIND_AUTO', 'instance_group kind'),
    })),
  };
  if (config.version_policy) out.version_policy = config.version_policy;
  const batching = config.dynamic_batching as Json | undefined;
  if (batching) {
    const queue = batching.default_queue_policy as Json | undefined;
    out.dynamic_batching = {
      preferred_batch_size: batching.preferred_batch_size,
      max_queue_delay_microseconds: batching.max_queue_delay_microseconds,
      ...(queue ? { default_queue_policy: { max_queue_size: queue.max_queue_size } } : {}),
    };
  }
  if (config.parameters) out.parameters = config.parameters;
  if (config.response_cache) out.response_cache = config.response_cache;
  const warmup = config.model_warmup as Json[] | undefined;
  if (warmup) {
    out.model_warmup = warmup.map((s) => ({
      name: s.name,
      batch_size: s.batch_size,
      count: s.count,
      inputs: Object.fromEntries(
        Object.entries(s.inputs as Record<string, Json>).map(([name, i]) => [
          name,
          {
            data_type: enumValue(DATA_TYPE_ENUM, i.data_type, `data_type of warmup input '${name}'`),
            dims: i.dims,
            ...(i.zero_data ? { zero_data: true } : { random_data: true }),
          },
        ]),
      ),
    }));
  }
  if (config.default_model_filename) out.default_model_filename = config.default_model_filename;
  return { config: out };
}

function enumValue(table: Record<string, number>, name: unknown, what: string): number {
  const v = typeof name === 'string' ? table[name] : undefined;
  if (v === undefined) {
    throw new SlipwayError('SLIPWAY_ERR_INTERNAL', `model configuration: unknown ${what} '${String(name)}'`);
  }
  return v;
}
