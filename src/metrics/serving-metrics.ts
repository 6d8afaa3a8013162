import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Queue depth and in-flight count of one model version, read when Prometheus scrapes. */
export interface LoadGauge {
  model: string;
  version: string;
  queueDepth: number;
  inFlight: number;
}

interface RequestChildren {
  requests: { inc(): void };
  seconds: { observe(v: number): void };
  queue: { observe(v: number): void };
  compute: { observe(v: number): void };
}

const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/**
 * The serving metrics in Prometheus exposition (`GET /metrics`). One registry per server, so
 * tests and several servers in one process do not share counters.
 *
 * @example
 *   const m = new ServingMetrics(() => manager.loadGauges());
 *   m.request('adult', '1', 'rest', 200, 0.0012, 0.0001, 0.0004);
 *   res.end(await m.registry.metrics());
 */
export class ServingMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'model' | 'version' | 'protocol' | 'status'>;
  private readonly requestSeconds: Histogram<'model' | 'version' | 'protocol'>;
  private readonly queueSeconds: Histogram<'model' | 'version'>;
  private readonly computeSeconds: Histogram<'model' | 'version'>;
  private readonly batchSize: Histogram<'model' | 'version'>;

  constructor(gauges: () => LoadGauge[], options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'slipway_inference_requests_total',
      help: 'Inference requests by model, version, protocol and HTTP-equivalent status code.',
      labelNames: ['model', 'version', 'protocol', 'status'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'slipway_inference_request_duration_seconds',
      help: 'Time from a request entering the data plane to its response being ready.',
      labelNames: ['model', 'version', 'protocol'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueSeconds = new Histogram({
      name: 'slipway_inference_queue_duration_seconds',
      help: "Time a request waited in its model's queue before its batch was dispatched.",
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.computeSeconds = new Histogram({
      name: 'slipway_inference_compute_duration_seconds',
      help: 'Time to stack inputs, run the model and split outputs, per request.',
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'slipway_inference_batch_size',
      help: 'Number of elements per model execution (after dynamic batching).',
      labelNames: ['model', 'version'],
      buckets: BATCH_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'slipway_inference_queue_depth',
      help: 'Requests waiting in the queue of each model version.',
      labelNames: ['model', 'version'],
      registers,
      collect() {
        this.reset();
        for (const g of gauges()) this.set({ model: g.model, version: g.version }, g.queueDepth);
      },
    });
    new Gauge({
      name: 'slipway_inference_in_flight_requests',
      help: 'Requests accepted by each model version and not yet answered (queued or executing).',
      labelNames: ['model', 'version'],
      registers,
      collect() {
        this.reset();
        for (const g of gauges()) this.set({ model: g.model, version: g.version }, g.inFlight);
      },
    });
    if (options.processMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'slipway_' });
  }

  /** Label children cached by key: prom-client hashes and sorts label objects on every call. */
  private readonly children = new Map<string, RequestChildren>();

  request(
    model: string,
    version: string,
    protocol: string,
    status: number,
    seconds: number,
    queueSeconds?: number,
    computeSeconds?: number,
  ): void {
    const key = `${model}\u0000${version}\u0000${protocol}\u0000${status}`;
    let c = this.children.get(key);
    if (!c) {
      c = {
        requests: this.requests.labels(model, version, protocol, String(status)),
        seconds: this.requestSeconds.labels(model, version, protocol),
        queue: this.queueSeconds.labels(model, version),
        compute: this.computeSeconds.labels(model, version),
      };
      this.children.set(key, c);
    }
    c.requests.inc();
    c.seconds.observe(seconds);
    if (queueSeconds !== undefined) c.queue.observe(queueSeconds);
    if (computeSeconds !== undefined) c.compute.observe(computeSeconds);
  }

  batch(model: string, version: string, size: number): void {
    this.batchSize.labels(model, version).observe(size);
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
