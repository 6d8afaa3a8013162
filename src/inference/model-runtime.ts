import type { Tensor, TensorMetadata } from './types.js';

export interface RuntimeSignature {
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface RunOptions {
  /**
   * The caller reads the inputs after the run: a runtime that moves buffers to another thread
   * (transferring them, which empties the caller's arrays) sends copies instead.
   */
  keepInputs?: boolean;
}

export const KEEP_INPUTS: RunOptions = Object.freeze({ keepInputs: true });

export interface RunResult {
  outputs: Tensor[];
  /** Nanoseconds spent inside the framework's run call. */
  inferNs: number;
}

/**
 * A loaded model version that can run batches. Implementations: ONNX Runtime in worker threads.
 * `run` may be called concurrently up to `capacity` times; callers queue beyond that.
 *
 * @example
 *   const rt = await OnnxRuntimePool.create('/models/m/1/model.onnx', config);
 *   const { outputs } = await rt.run([x], ['y']);
 *   await rt.unload();
 */
export interface ModelRuntime {
  readonly signature: RuntimeSignature;
  /** How many runs may proceed at once (e.g. worker instances). */
  readonly capacity: number;
  /** Whether the model accepts inputs stacked along the first dimension. */
  readonly batchable: boolean;
  run(inputs: Tensor[], outputs: string[], options?: RunOptions): Promise<RunResult>;
  /** Runs the inputs on every instance, outside the runtime's own bookkeeping (model warmup). */
  warmUp?(inputs: Tensor[], outputs: string[]): Promise<void>;
  /** Frees the model; runs still in progress finish first. */
  unload(): Promise<void>;
}
