import { SlipwayError } from '../errors/index.js';
import { allocate, elementCount } from './datatypes.js';
import type { ModelConfig } from './model-config.js';
import { KEEP_INPUTS, type ModelRuntime } from './model-runtime.js';
import type { StatsRecorder } from './stats.js';
import type { TraceTimes } from './trace.js';
import type { Cancellation, Tensor, TensorData } from './types.js';

/** The longest delay a Node timer keeps (a longer one fires at once). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A validated request, its inputs in the model's input order. */
export interface Job {
  inputs: Tensor[];
  /** Size of the first dimension (1 when the model does not batch). */
  batchSize: number;
  outputs: string[];
  /** Requests with equal keys can be stacked: same non-batch dims and same outputs. */
  key: string;
  timeoutMs?: number;
  cancel?: Cancellation;
  /** The caller reads the inputs after the run (the prediction log records them). */
  keepInputs?: boolean;
  /** Set on a traced request: the batcher notes when it queued and ran. */
  trace?: TraceTimes;
}

export interface JobResult {
  outputs: Tensor[];
  queueMs: number;
  computeMs: number;
  /** Size of the batch this request ran in. */
  executedBatch: number;
}

interface Entry {
  job: Job;
  enqueuedAt: number;
  resolve: (r: JobResult) => void;
  reject: (e: unknown) => void;
  settled: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Dynamic batching in front of a runtime. A request that finds an idle instance runs in the same
 * turn of the event loop;
 * requests arriving while every instance is busy queue up and leave together as one batch
 * (stacked along the first dimension) when an instance frees up. `max_queue_delay` only holds a
 * partial batch back while other batches are executing, so an idle model adds no latency.
 */
export class DynamicBatcher {
  private readonly queue: Entry[] = [];
  private running = 0;
  private delayTimer?: NodeJS.Timeout;
  private pumpScheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly runtime: ModelRuntime,
    private readonly config: ModelConfig,
    private readonly stats: StatsRecorder,
    private readonly onBatch?: (batchSize: number) => void,
  ) {}

  get depth(): number {
    return this.queue.length;
  }

  get executing(): number {
    return this.running;
  }

  submit(job: Job): Promise<JobResult> {
    // Requests an idle instance is about to take do not count as waiting.
    const idle = Math.max(0, this.runtime.capacity - this.running);
    if (this.queue.length >= this.config.maxQueueSize + idle) {
      return Promise.reject(
        new SlipwayError(
          'SLIPWAY_ERR_QUEUE_FULL',
          `the model's queue is full (max_queue_size ${this.config.maxQueueSize}); retry later`,
          { retryAfterSeconds: 1 },
        ),
      );
    }
    return new Promise<JobResult>((resolve, reject) => {
      const entry: Entry = { job, enqueuedAt: performance.now(), resolve, reject, settled: false };
      if (job.trace) job.trace.queueStart = entry.enqueuedAt;
      // Node's timers hold at most 2^31 - 1 ms (24.8 days) and fire at once beyond it; a longer
      // timeout is as good as none.
      if (job.timeoutMs !== undefined && job.timeoutMs > 0 && job.timeoutMs <= MAX_TIMER_MS) {
        entry.timer = setTimeout(() => {
          this.settle(
            entry,
            new SlipwayError(
              'SLIPWAY_ERR_TIMEOUT',
              `the request did not complete within its timeout of ${job.timeoutMs} ms`,
            ),
          );
        }, job.timeoutMs);
      }
      if (job.cancel) {
        if (job.cancel.cancelled) {
          this.settle(entry, new SlipwayError('SLIPWAY_ERR_CANCELLED', 'the request was cancelled'));
          return;
        }
        job.cancel.onCancel = () =>
          this.settle(entry, new SlipwayError('SLIPWAY_ERR_CANCELLED', 'the request was cancelled'));
      }
      this.queue.push(entry);
      this.schedulePump();
    });
  }

  /**
   * Dispatches at the end of the current I/O phase rather than at once: every request that
   * arrived in the same turn of the event loop joins the batch, and an idle model still starts
   * within the same turn.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Answers every request still waiting in the queue with `error`; executing batches go on. */
  rejectQueued(error: Error): void {
    for (const e of [...this.queue]) this.settle(e, error);
  }

  /** Resolves when nothing is queued or executing. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settle(entry: Entry, error: unknown, result?: JobResult): void {
    if (entry.settled) return;
    entry.settled = true;
    if (entry.timer) clearTimeout(entry.timer);
    if (entry.job.cancel) entry.job.cancel.onCancel = undefined;
    if (error !== undefined) {
      // A request that gives up while queued leaves the queue at once.
      const i = this.queue.indexOf(entry);
      if (i >= 0) this.queue.splice(i, 1);
      entry.reject(error);
      this.checkIdle();
    } else entry.resolve(result!);
  }

  private pump(): void {
    while (this.running < this.runtime.capacity && this.queue.length > 0) {
      const batch = this.formBatch();
      if (!batch) return;
      void this.execute(batch);
    }
  }

  /** Takes the next batch off the queue, or returns undefined to wait for a fuller one. */
  private formBatch(force = false): Entry[] | undefined {
    const head = this.queue[0]!;
    const max = this.config.maxBatchSize;
    if (max === 0 || !this.runtime.batchable || head.job.batchSize >= max) return this.queue.splice(0, 1);
    let available = 0;
    for (const e of this.queue) {
      if (e.job.key !== head.job.key) continue;
      if (available + e.job.batchSize > max) break;
      available += e.job.batchSize;
    }
    const preferred = this.config.preferredBatchSizes;
    let target = available;
    let preferredHit = false;
    // A preferred size smaller than the head request could never take it: ignore such sizes.
    for (let i = preferred.length - 1; i >= 0; i--) {
      if (preferred[i]! <= available && preferred[i]! >= head.job.batchSize) {
        target = preferred[i]!;
        preferredHit = true;
        break;
      }
    }
    const delayMs = this.config.maxQueueDelayUs / 1000;
    if (!force && delayMs > 0 && available < max && !preferredHit && this.running > 0) {
      const waited = performance.now() - head.enqueuedAt;
      if (waited < delayMs) {
        if (!this.delayTimer) {
          this.delayTimer = setTimeout(() => {
            this.delayTimer = undefined;
            this.pumpAfterDelay();
          }, delayMs - waited);
        }
        return undefined;
      }
    }
    // The head fits (target >= its size); a head of no rows, which validation refuses, still goes
    // alone rather than leaving an empty batch that would dispatch nothing.
    if (target === 0) return this.queue.splice(0, 1);
    const taken: Entry[] = [];
    const rest: Entry[] = [];
    let size = 0;
    for (const e of this.queue) {
      if (size < target && e.job.key === head.job.key && size + e.job.batchSize <= target) {
        taken.push(e);
        size += e.job.batchSize;
      } else rest.push(e);
    }
    this.queue.length = 0;
    for (const e of rest) this.queue.push(e);
    return taken;
  }

  private pumpAfterDelay(): void {
    // The oldest request has waited its full delay: let it go with whatever batch is there.
    if (this.queue.length > 0 && this.running < this.runtime.capacity) {
      const batch = this.formBatch(true);
      if (batch) void this.execute(batch);
    }
    this.pump();
  }

  private async execute(batch: Entry[]): Promise<void> {
    this.running++;
    const live = batch.filter((e) => !e.settled);
    try {
      if (live.length > 0) await this.runBatch(live, true);
    } finally {
      this.running--;
      this.pump();
      this.checkIdle();
    }
  }

  private async runBatch(entries: Entry[], isolateFailures: boolean): Promise<void> {
    const dispatchedAt = performance.now();
    const t0 = performance.now();
    const inputs = entries.length === 1 ? entries[0]!.job.inputs : stack(entries.map((e) => e.job.inputs));
    const total = entries.reduce((n, e) => n + e.job.batchSize, 0);
    const t1 = performance.now();
    for (let i = 0; i < entries.length; i++) {
      const trace = entries[i]!.job.trace;
      if (trace) {
        trace.computeStart = t0;
        trace.computeInputEnd = t1;
      }
    }
    let outputs: Tensor[];
    let inferMs: number;
    try {
      // Stacked inputs are a new tensor; a lone request's own inputs may be handed to a worker.
      const keep = entries.length === 1 && entries[0]!.job.keepInputs === true;
      const r = await this.runtime.run(inputs, entries[0]!.job.outputs, keep ? KEEP_INPUTS : undefined);
      outputs = r.outputs;
      inferMs = performance.now() - t1;
    } catch (err) {
      if (isolateFailures && entries.length > 1) {
        // One bad request must not fail its neighbours: run each alone (one at a time, within
        // this batch's instance) to find out whose it is.
        for (const e of entries) await this.runBatch([e], false);
        return;
      }
      for (const e of entries) {
        if (e.settled) continue;
        this.stats.request(false, (performance.now() - e.enqueuedAt) * 1e6, 0);
        this.settle(e, err);
      }
      return;
    }
    const t2 = performance.now();
    let parts: Tensor[][];
    try {
      parts =
        entries.length === 1
          ? [outputs]
          : unstack(
              outputs,
              entries.map((e) => e.job.batchSize),
              total,
            );
    } catch (err) {
      if (isolateFailures) {
        for (const e of entries) await this.runBatch([e], false);
        return;
      }
      for (const e of entries) this.settle(e, err);
      return;
    }
    const t3 = performance.now();
    this.stats.execution(total, entries.length, (t1 - t0) * 1e6, inferMs * 1e6, (t3 - t2) * 1e6);
    this.onBatch?.(total);
    const computeMs = t3 - t0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.settled) continue; // timed out or cancelled while executing; already answered
      const queueMs = dispatchedAt - e.enqueuedAt;
      this.stats.request(true, (t3 - e.enqueuedAt) * 1e6, queueMs * 1e6);
      const trace = e.job.trace;
      if (trace) {
        trace.computeOutputStart = t2;
        trace.computeEnd = t3;
      }
      this.settle(e, undefined, { outputs: parts[i]!, queueMs, computeMs, executedBatch: total });
    }
  }

  private checkIdle(): void {
    if (this.queue.length === 0 && this.running === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

/** Concatenates each input of several requests along the first dimension (one copy). */
export function stack(perRequest: Tensor[][]): Tensor[] {
  const first = perRequest[0]!;
  return first.map((t, i) => {
    let rows = 0;
    let count = 0;
    for (const r of perRequest) {
      rows += r[i]!.shape[0]!;
      count += r[i]!.data.length;
    }
    let data: TensorData;
    if (t.datatype === 'BYTES') {
      data = ([] as string[]).concat(...perRequest.map((r) => r[i]!.data as string[]));
    } else {
      const out = allocate(t.datatype, count) as Float32Array;
      let offset = 0;
      for (const r of perRequest) {
        const d = r[i]!.data as Float32Array;
        out.set(d, offset);
        offset += d.length;
      }
      data = out;
    }
    return { name: t.name, datatype: t.datatype, shape: [rows, ...t.shape.slice(1)], data };
  });
}

/** Splits each output back along the first dimension; views, not copies. */
export function unstack(outputs: Tensor[], sizes: number[], total: number): Tensor[][] {
  const parts: Tensor[][] = sizes.map(() => []);
  for (const o of outputs) {
    if (o.shape.length === 0 || o.shape[0] !== total) {
      throw new SlipwayError(
        'SLIPWAY_ERR_INFERENCE_FAILED',
        `output '${o.name}' has shape [${o.shape}], whose first dimension is not the batch size ${total}`,
      );
    }
    const row = elementCount(o.shape.slice(1));
    let start = 0;
    for (let i = 0; i < sizes.length; i++) {
      const n = sizes[i]!;
      const end = start + n * row;
      const data = Array.isArray(o.data)
        ? o.data.slice(start, end)
        : (o.data as Float32Array).subarray(start, end);
      parts[i]!.push({ name: o.name, datatype: o.datatype, shape: [n, ...o.shape.slice(1)], data });
      start = end;
    }
  }
  return parts;
}
