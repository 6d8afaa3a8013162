import * as ort from 'onnxruntime-node';
import { SlipwayError } from '../errors/index.js';

/**
 * One input or output as Open Inference Protocol metadata describes it: `datatype` is a protocol
 * datatype (`FP32`, `INT64`, `BYTES`, …) and -1 marks a dynamic dimension. Values the protocol
 * cannot carry keep ONNX Runtime's type name in upper case (`BFLOAT16`), and sequences or maps
 * (skl2onnx's ZipMap) are `NON_TENSOR` with an empty shape: the registry keeps such models, the
 * inference server refuses to load them.
 */
export interface SignatureTensor {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelSignature {
  inputs: SignatureTensor[];
  outputs: SignatureTensor[];
}

const ORT_TO_PROTOCOL: Record<string, string> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

function describe(m: ort.InferenceSession.ValueMetadata): SignatureTensor {
  if (!m.isTensor) return { name: m.name, datatype: 'NON_TENSOR', shape: [] };
  return {
    name: m.name,
    datatype: ORT_TO_PROTOCOL[m.type] ?? String(m.type).toUpperCase(),
    shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
  };
}

/**
 * Reads the input/output signature of the ONNX model at `path` by opening it with ONNX Runtime,
 * which also proves the file is a model ONNX Runtime can load. `label` names the file in the
 * error a bad file gets (SLIPWAY_ERR_BAD_REQUEST).
 *
 * @example
 *   const sig = await readOnnxSignature('/tmp/model.onnx', 'model.onnx');
 *   sig.inputs[0]; // { name: 'age', datatype: 'FP32', shape: [-1, 1] }
 */
export async function readOnnxSignature(path: string, label: string): Promise<ModelSignature> {
  let session: ort.InferenceSession;
  try {
    // One thread and no graph rewrites: only the declared inputs and outputs are wanted.
    session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'disabled',
    });
  } catch (err) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      // ONNX Runtime names the local file; the client knows it by its label.
      `file '${label}' is not a valid ONNX model: ${oneLine((err as Error).message.split(path).join(label))}`,
    );
  }
  try {
    return { inputs: session.inputMetadata.map(describe), outputs: session.outputMetadata.map(describe) };
  } finally {
    await session.release();
  }
}

function oneLine(message: string): string {
  const m = message.replace(/\s+/g, ' ').trim();
  return m.length > 300 ? `${m.slice(0, 300)}…` : m;
}
