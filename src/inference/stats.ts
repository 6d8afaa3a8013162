/** Cumulative statistics per model version, in Triton's shape (`/v2/models/{m}/stats`). */

export interface Duration {
  count: number;
  ns: number;
}

export interface BatchStats {
  batch_size: number;
  compute_input: Duration;
  compute_infer: Duration;
  compute_output: Duration;
}

export interface ModelStats {
  name: string;
  version: string;
  /** Milliseconds since the epoch of the last inference, 0 if none. */
  last_inference: number;
  /** Number of inferences (batch elements) performed. */
  inference_count: number;
  /** Number of model executions (batches) performed. */
  execution_count: number;
  inference_stats: {
    success: Duration;
    fail: Duration;
    queue: Duration;
    compute_input: Duration;
    compute_infer: Duration;
    compute_output: Duration;
    cache_hit: Duration;
    cache_miss: Duration;
  };
  batch_stats: BatchStats[];
}

const zero = (): Duration => ({ count: 0, ns: 0 });

/** Accumulates one model version's statistics. Cheap enough for the hot path: a few adds. */
export class StatsRecorder {
  private lastInference = 0;
  private inferenceCount = 0;
  private executionCount = 0;
  private readonly success = zero();
  private readonly fail = zero();
  private readonly queue = zero();
  private readonly computeInput = zero();
  private readonly computeInfer = zero();
  private readonly computeOutput = zero();
  private readonly cacheHits = zero();
  private readonly cacheMisses = zero();
  private readonly byBatchSize = new Map<number, BatchStats>();

  constructor(
    readonly name: string,
    readonly version: string,
  ) {}

  /** One request finished (successfully or not) after `totalNs` end to end, `queueNs` of it queued. */
  request(ok: boolean, totalNs: number, queueNs: number): void {
    // Whole nanoseconds: clients read these as uint64 (perf_analyzer's HTTP backend with GetUint64).
    add(ok ? this.success : this.fail, 1, totalNs);
    if (ok) add(this.queue, 1, queueNs);
  }

  /**
   * A request answered from the response cache, as Triton counts one: a success of `totalNs`, in
   * the queue figures (`queueNs` before the lookup), a hit that took `lookupNs` to find, and not
   * an inference (`inference_count` counts what the model ran).
   */
  cacheHit(totalNs: number, queueNs: number, lookupNs: number): void {
    add(this.success, 1, totalNs);
    add(this.queue, 1, queueNs);
    add(this.cacheHits, 1, lookupNs);
    this.lastInference = Date.now();
  }

  /** A request the response cache did not have: `ns` spent looking it up and storing the answer. */
  cacheMiss(ns: number): void {
    add(this.cacheMisses, 1, ns);
  }

  /** One execution of `batchSize` elements finished, carrying `requests` requests. */
  execution(batchSize: number, requests: number, inputNs: number, inferNs: number, outputNs: number): void {
    this.executionCount++;
    this.inferenceCount += batchSize;
    this.lastInference = Date.now();
    add(this.computeInput, requests, inputNs * requests);
    add(this.computeInfer, requests, inferNs * requests);
    add(this.computeOutput, requests, outputNs * requests);
    let b = this.byBatchSize.get(batchSize);
    if (!b) {
      b = { batch_size: batchSize, compute_input: zero(), compute_infer: zero(), compute_output: zero() };
      this.byBatchSize.set(batchSize, b);
    }
    add(b.compute_input, 1, inputNs);
    add(b.compute_infer, 1, inferNs);
    add(b.compute_output, 1, outputNs);
  }

  snapshot(): ModelStats {
    return {
      name: this.name,
      version: this.version,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: { ...this.success },
        fail: { ...this.fail },
        queue: { ...this.queue },
        compute_input: { ...this.computeInput },
        compute_infer: { ...this.computeInfer },
        compute_output: { ...this.computeOutput },
        cache_hit: { ...this.cacheHits },
        cache_miss: { ...this.cacheMisses },
      },
      batch_stats: [...this.byBatchSize.values()]
        .sort((a, b) => a.batch_size - b.batch_size)
        .map((b) => structuredClone(b)),
    };
  }
}

function add(d: Duration, count: number, ns: number): void {
  d.count += count;
  d.ns += Math.round(ns);
}
