import { SlipwayError } from '../errors/index.js';
import { DATATYPES, type Datatype, type TensorData } from './types.js';

/** ONNX Runtime's names for tensor element types, as onnxruntime-common spells them. */
export type OrtType =
  | 'bool'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'float16'
  | 'float32'
  | 'float64'
  | 'string';

const TO_ORT: Record<Datatype, OrtType> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

const FROM_ORT = Object.fromEntries(Object.entries(TO_ORT).map(([k, v]) => [v, k])) as Record<
  OrtType,
  Datatype
>;

/** Bytes per element; 0 for BYTES, whose elements vary in size. */
export const ELEMENT_SIZE: Record<Datatype, number> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: 0,
};

type NumericCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Uint16ArrayConstructor
  | Int16ArrayConstructor
  | Uint32ArrayConstructor
  | Int32ArrayConstructor
  | BigUint64ArrayConstructor
  | BigInt64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

export const TYPED_ARRAY: Record<Exclude<Datatype, 'BYTES'>, NumericCtor> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

const DATATYPE_SET = new Set<string>(DATATYPES);

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && DATATYPE_SET.has(value);
}

export function toOrtType(datatype: Datatype): OrtType {
  return TO_ORT[datatype];
}

/** Returns undefined for ORT types the protocol cannot carry (e.g. bfloat16, int4). */
export function fromOrtType(type: string): Datatype | undefined {
  return FROM_ORT[type as OrtType];
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Allocates a zero-filled tensor buffer of `count` elements. */
export function allocate(datatype: Datatype, count: number): TensorData {
  if (datatype === 'BYTES') return new Array<string>(count).fill('');
  return new TYPED_ARRAY[datatype](count);
}

/** Wraps raw little-endian bytes as the datatype's typed array, copying only when unaligned. */
export function fromBytes(datatype: Datatype, bytes: Uint8Array, name: string): TensorData {
  if (datatype === 'BYTES') return decodeBytesElements(bytes, name);
  const size = ELEMENT_SIZE[datatype];
  if (bytes.byteLength % size !== 0) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BINARY_DATA',
      `input '${name}': ${bytes.byteLength} bytes is not a whole number of ${datatype} elements (${size} bytes each)`,
    );
  }
  if (datatype === 'BOOL') {
    // One byte an element, 0 or 1: another value is no boolean ONNX Runtime defines.
    const at = bytes.findIndex((b) => b > 1);
    if (at >= 0) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_DATA',
        `input '${name}': BOOL element ${at} is the byte ${bytes[at]}; a BOOL element is 0 or 1`,
      );
    }
  }
  const Ctor = TYPED_ARRAY[datatype];
  const aligned = bytes.byteOffset % size === 0 ? bytes : (new Uint8Array(bytes) as Uint8Array<ArrayBuffer>);
  return new Ctor(aligned.buffer as ArrayBuffer, aligned.byteOffset, bytes.byteLength / size);
}

/** Raw little-endian bytes of a tensor, as the binary extension and gRPC raw contents carry them. */
export function toBytes(datatype: Datatype, data: TensorData): Uint8Array {
  if (datatype === 'BYTES') return encodeBytesElements(data as string[]);
  const typed = data as Exclude<TensorData, string[]>;
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * ONNX Runtime's string tensors hold NUL-terminated UTF-8, so a BYTES element with a NUL or
 * invalid UTF-8 would come back altered; such an element is refused instead.
 */
export function checkOrtString(value: string, name: string, index: number): void {
  if (value.includes('\0') || !value.isWellFormed()) {
    throw new SlipwayError(
      'SLIPWAY_ERR_INPUT_DATA',
      `input '${name}': BYTES element ${index} holds a NUL or is not valid UTF-8, which an ONNX string tensor cannot carry`,
    );
  }
}

/** Decodes one BYTES element, refusing what an ONNX string cannot hold unchanged. */
export function decodeOrtString(bytes: Uint8Array, name: string, index: number): string {
  let s: string;
  try {
    s = UTF8.decode(bytes);
  } catch {
    throw new SlipwayError(
      'SLIPWAY_ERR_INPUT_DATA',
      `input '${name}': BYTES element ${index} is not valid UTF-8, which an ONNX string tensor cannot carry`,
    );
  }
  checkOrtString(s, name, index);
  return s;
}

/** BYTES elements travel as a uint32 little-endian length, then the bytes. */
export function decodeBytesElements(bytes: Uint8Array, name: string): string[] {
  const out: string[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (offset + 4 > bytes.byteLength) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BINARY_DATA',
        `input '${name}': BYTES element ${out.length} has a truncated 4-byte length prefix`,
      );
    }
    const len = view.getUint32(offset, true);
    offset += 4;
    if (offset + len > bytes.byteLength) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BINARY_DATA',
        `input '${name}': BYTES element ${out.length} declares ${len} bytes but only ${bytes.byteLength - offset} remain`,
      );
    }
    out.push(decodeOrtString(bytes.subarray(offset, offset + len), name, out.length));
    offset += len;
  }
  return out;
}

export function encodeBytesElements(values: readonly string[]): Uint8Array {
  const parts = values.map((v) => Buffer.from(v, 'utf8'));
  let total = 0;
  for (const p of parts) total += 4 + p.length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, offset);
    offset += 4;
    p.copy(out, offset);
    offset += p.length;
  }
  return out;
}

/** Byte size of a tensor on the wire (binary extension), BYTES included. */
export function wireByteSize(datatype: Datatype, data: TensorData): number {
  if (datatype !== 'BYTES') return (data as Exclude<TensorData, string[]>).byteLength;
  let total = 0;
  for (const s of data as string[]) total += 4 + Buffer.byteLength(s, 'utf8');
  return total;
}
