import type { Tensor } from './types.js';

/**
 * One answered request, handed to the prediction log by reference: the log expands it into rows
 * and serializes it later, off the request's path.
 */
export interface PredictionEntry {
  timeMs: number;
  model: string;
  version: string;
  protocol: string;
  /** The request's id, or one generated for it (returned to the caller). */
  requestId: string;
  /** From the data plane receiving the request to its answer being ready. */
  latencyUs: number;
  /** Records API: the records as sent (quarantined ones excluded) and their predictions. */
  records?: readonly Record<string, unknown>[];
  predictions?: readonly unknown[];
  /** V2: the input and output tensors (rows along the first dimension). */
  inputs?: readonly Tensor[];
  outputs?: readonly Tensor[];
  /** Column names of one [N, F] input (`feature_names` in config.json). */
  featureNames?: readonly string[];
  /** Class names of a classifier's label indices (`label_names` in config.json). */
  labelNames?: readonly string[];
  /** Segment keys of the whole request (request parameters or headers). */
  segments?: Readonly<Record<string, string>>;
  /** Segment keys that records carry as fields, read per record. */
  segmentFields?: readonly string[];
}

/** Where served predictions go; every call returns at once (it copies, gathers or counts). */
export interface PredictionSink {
  /**
   * An answered request, taken before its answer is sent. Its tensors are read (copied or
   * gathered) later in the same callback, once the transport's continuations have taken the answer,
   * so nothing may write to them after the answer: the data plane keeps a V2 request's inputs in
   * place (`Job.keepInputs`), and answers' buffers are never reused.
   */
  record(entry: PredictionEntry): void;
  /**
   * Every request a model version answered or failed, sampled or not (for error rates and
   * volumes), with the CPU time its share of the batch took (µs; 0 for failures).
   */
  count(model: string, version: string, failed: boolean, cpuUs: number): void;
}
