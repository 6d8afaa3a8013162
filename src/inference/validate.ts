import { SlipwayError } from '../errors/index.js';
import type { Job } from './batcher.js';
import { elementCount } from './datatypes.js';
import type { ModelConfig } from './model-config.js';
import type { RuntimeSignature } from './model-runtime.js';
import type { InferRequest, Tensor } from './types.js';

const fmt = (shape: readonly number[]) => `[${shape.join(',')}]`;

/**
 * Checks a request against the model's signature and turns it into a batcher job: inputs in the
 * model's order, the batch size, the outputs to fetch. Every error names the input or output.
 */
export function prepareJob(
  signature: RuntimeSignature,
  config: ModelConfig,
  batchable: boolean,
  request: InferRequest,
): Job {
  const given = request.inputs;
  if (!Array.isArray(given) || given.length === 0) {
    throw new SlipwayError(
      'SLIPWAY_ERR_INPUT_MISSING',
      `'inputs' must list the model's inputs: ${names(signature.inputs)}`,
    );
  }
  const inputs: Tensor[] = new Array(signature.inputs.length);
  for (const t of given) {
    const idx = signature.inputs.findIndex((m) => m.name === t.name);
    if (idx < 0) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_MISSING',
        `unknown input '${t.name}'; the model's inputs are ${names(signature.inputs)}`,
      );
    }
    if (inputs[idx])
      throw new SlipwayError('SLIPWAY_ERR_INPUT_MISSING', `input '${t.name}' is given more than once`);
    inputs[idx] = t;
  }
  const useBatching = batchable && config.maxBatchSize > 0;
  let batchSize = -1;
  let key = '';
  for (let i = 0; i < signature.inputs.length; i++) {
    const m = signature.inputs[i]!;
    const t = inputs[i];
    if (!t) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_MISSING',
        `input '${m.name}' is missing; the model's inputs are ${names(signature.inputs)}`,
      );
    }
    if (t.datatype !== m.datatype) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_DATATYPE',
        `input '${m.name}': expected datatype ${m.datatype}, got ${t.datatype}`,
      );
    }
    if (t.shape.length !== m.shape.length || t.shape.some((d, j) => m.shape[j] !== -1 && m.shape[j] !== d)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_SHAPE',
        `input '${m.name}': expected shape ${fmt(m.shape)}, got ${fmt(t.shape)}`,
      );
    }
    const count = elementCount(t.shape);
    if (t.data.length !== count) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INPUT_SHAPE',
        `input '${m.name}': shape ${fmt(t.shape)} needs ${count} elements, got ${t.data.length}`,
      );
    }
    if (useBatching) {
      const b = t.shape[0]!;
      if (b === 0) {
        throw new SlipwayError(
          'SLIPWAY_ERR_INPUT_SHAPE',
          `input '${m.name}': the first (batch) dimension is 0; a request needs at least one row`,
        );
      }
      if (batchSize === -1) batchSize = b;
      else if (b !== batchSize) {
        throw new SlipwayError(
          'SLIPWAY_ERR_INPUT_SHAPE',
          `input '${m.name}': first dimension ${b} differs from the batch size ${batchSize} of the other inputs`,
        );
      }
      key += `${t.shape.length > 1 ? t.shape.slice(1).join('x') : ''};`;
    }
  }
  if (useBatching && batchSize > config.maxBatchSize) {
    throw new SlipwayError(
      'SLIPWAY_ERR_INPUT_SHAPE',
      `batch size ${batchSize} exceeds the model's max_batch_size ${config.maxBatchSize}`,
    );
  }
  let outputs: string[];
  if (request.outputs && request.outputs.length > 0) {
    outputs = request.outputs.map((o, i) => {
      for (let k = 0; k < i; k++) {
        if (request.outputs![k]!.name === o.name) {
          throw new SlipwayError(
            'SLIPWAY_ERR_BAD_REQUEST',
            `output '${o.name}' is requested twice (outputs[${k}] and outputs[${i}])`,
          );
        }
      }
      if (!signature.outputs.some((m) => m.name === o.name)) {
        throw new SlipwayError(
          'SLIPWAY_ERR_OUTPUT_UNKNOWN',
          `unknown output '${o.name}'; the model's outputs are ${names(signature.outputs)}`,
        );
      }
      return o.name;
    });
  } else outputs = signature.outputs.map((m) => m.name);
  key += outputs.join(',');
  return { inputs, batchSize: useBatching ? batchSize : 1, outputs, key };
}

function names(ts: readonly { name: string }[]): string {
  return ts.map((t) => `'${t.name}'`).join(', ');
}
