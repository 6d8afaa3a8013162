import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { type Exposition, mergeExpositions } from './expositions.js';
import {
  type CounterChild,
  CounterFamily,
  type HistogramChild,
  HistogramFamily,
  type MetricFamily,
} from './hot-metrics.js';

/** One model version's quality, traffic, cost and drift figures (computed by src/monitoring). */
export interface ModelGaugeValues {
  model: string;
  version: string;
  accuracy?: number;
  rmse?: number;
  /** Every scalar quality figure of the task by name (accuracy, f1, roc_auc… or mae, r2…). */
  quality?: Record<string, number>;
  errorRate: number;
  latencyP99Ms: number | null;
  costPer1000: number | null;
  drift?: {
    share: number;
    detected: boolean;
    columns: { column: string; test: string; score: number; drifted: boolean }[];
  };
}

/** Queue depth and in-flight count of one model version, read when Prometheus scrapes. */
export interface LoadGauge {
  model: string;
  version: string;
  queueDepth: number;
  inFlight: number;
}

interface RequestChildren {
  requests: CounterChild;
  seconds: HistogramChild;
  queue: HistogramChild;
  compute: HistogramChild;
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
 *   res.end(await m.render());
 */
export class ServingMetrics {
  /** prom-client's registry: load gauges and process metrics. */
  readonly registry = new Registry();
  private readonly requests = new CounterFamily(
    'slipway_inference_requests_total',
    'Inference requests by model, version, protocol and HTTP-equivalent status code.',
    ['model', 'version', 'protocol', 'status'],
  );
  private readonly requestSeconds = new HistogramFamily(
    'slipway_inference_request_duration_seconds',
    'Time from a request entering the data plane to its response being ready.',
    ['model', 'version', 'protocol'],
    LATENCY_BUCKETS,
  );
  private readonly queueSeconds = new HistogramFamily(
    'slipway_inference_queue_duration_seconds',
    "Time a request waited in its model's queue before its batch was dispatched.",
    ['model', 'version'],
    LATENCY_BUCKETS,
  );
  private readonly computeSeconds = new HistogramFamily(
    'slipway_inference_compute_duration_seconds',
    'Time to stack inputs, run the model and split outputs, per request.',
    ['model', 'version'],
    LATENCY_BUCKETS,
  );
  private readonly batchSize = new HistogramFamily(
    'slipway_inference_batch_size',
    'Number of elements per model execution (after dynamic batching).',
    ['model', 'version'],
    BATCH_BUCKETS,
  );
  private readonly invalidRows = new CounterFamily(
    'slipway_invalid_rows_total',
    "Request rows that broke the model version's schema, by what happened to them (rejected, quarantined).",
    ['model', 'version', 'action'],
  );
  private readonly cacheLookups = new CounterFamily(
    'slipway_response_cache_lookups_total',
    'Response cache lookups of models that enable it, by result (hit, miss).',
    ['model', 'version', 'result'],
  );
  private peers?: { worker: string; others: () => Promise<Exposition[]> };
  private readonly hot: MetricFamily[] = [
    this.requests,
    this.invalidRows,
    this.cacheLookups,
    this.requestSeconds,
    this.queueSeconds,
    this.computeSeconds,
    this.batchSize,
  ];

  constructor(gauges: () => LoadGauge[], options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
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

  /** Exposes the prediction log's queue and counters, read when Prometheus scrapes. */
  attachPredictionLog(
    read: () => { queued: number; written: number; dropped: number; failedFlushes: number },
  ): void {
    scrapedGauge(
      this.registry,
      'slipway_prediction_log_queued',
      'Answered requests queued for the prediction log, not yet written.',
      () => read().queued,
    );
    scrapedCounter(
      this.registry,
      'slipway_prediction_log_written_rows_total',
      'Prediction rows written to the store.',
      () => read().written,
    );
    scrapedCounter(
      this.registry,
      'slipway_prediction_log_dropped_rows_total',
      'Prediction rows dropped because the queue was full (the store too slow) or the server was closing.',
      () => read().dropped,
    );
    scrapedCounter(
      this.registry,
      'slipway_prediction_log_failed_flushes_total',
      'Flushes that failed and were retried.',
      () => read().failedFlushes,
    );
  }

  /**
   * Alert rules as gauges, read when Prometheus scrapes: `slipway_alert_state` is 1 for each
   * rule's current state (one series per state, so Grafana can alert on `state="firing"`), and
   * `slipway_alert_value` the value of its last evaluation.
   */
  attachAlerts(
    read: () => readonly { name: string; model: string; state: string; value: number | null }[],
  ): void {
    const registers = [this.registry];
    const states = ['ok', 'pending', 'firing', 'no_data'];
    new Gauge({
      name: 'slipway_alert_state',
      help: 'Alert rule state: 1 for the current one (ok, pending, firing, no_data), 0 for the others.',
      labelNames: ['rule', 'model', 'state'],
      registers,
      collect() {
        this.reset();
        for (const r of read()) {
          for (const s of states) this.set({ rule: r.name, model: r.model, state: s }, r.state === s ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'slipway_alert_value',
      help: "The metric value of each alert rule's last evaluation (absent when it had no data).",
      labelNames: ['rule', 'model'],
      registers,
      collect() {
        this.reset();
        for (const r of read()) if (r.value !== null) this.set({ rule: r.name, model: r.model }, r.value);
      },
    });
  }

  /**
   * Each model version's quality, traffic, cost and drift figures (recomputed on a schedule by
   * the monitoring capability), read when Prometheus scrapes.
   */
  attachModelGauges(read: () => readonly ModelGaugeValues[]): void {
    const registers = [this.registry];
    const gauge = (
      name: string,
      help: string,
      pick: (v: ReturnType<typeof read>[number]) => number | null | undefined,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['model', 'version'],
        registers,
        collect() {
          this.reset();
          for (const v of read()) {
            const x = pick(v);
            if (x !== null && x !== undefined) this.set({ model: v.model, version: v.version }, x);
          }
        },
      });
    gauge(
      'slipway_model_accuracy',
      'Accuracy over the last day, on predictions with ground truth.',
      (v) => v.accuracy,
    );
    gauge(
      'slipway_model_rmse',
      'RMSE over the last day (regression), on predictions with ground truth.',
      (v) => v.rmse,
    );
    new Gauge({
      name: 'slipway_model_quality',
      help: 'Each quality figure over the last day on predictions with ground truth, by metric: accuracy, precision, recall, f1, roc_auc, log_loss (classification) or mae, rmse, mape, r2 (regression).',
      labelNames: ['model', 'version', 'metric'],
      registers,
      collect() {
        this.reset();
        for (const v of read()) {
          for (const [metric, x] of Object.entries(v.quality ?? {}))
            this.set({ model: v.model, version: v.version, metric }, x);
        }
      },
    });
    gauge(
      'slipway_model_error_rate',
      'Failed (5xx) share of requests over the last hour.',
      (v) => v.errorRate,
    );
    gauge(
      'slipway_model_latency_p99_milliseconds',
      'p99 latency of logged predictions over the last hour.',
      (v) => v.latencyP99Ms,
    );
    gauge(
      'slipway_model_cost_per_1000_predictions',
      'CPU cost per 1000 predictions over the last day, at the configured price.',
      (v) => v.costPer1000,
    );
    gauge(
      'slipway_drift_share',
      'Share of drifted input columns, last hour against the training dataset.',
      (v) => v.drift?.share,
    );
    gauge(
      'slipway_dataset_drift',
      '1 when the share of drifted columns reaches the dataset drift threshold.',
      (v) => (v.drift === undefined ? undefined : v.drift.detected ? 1 : 0),
    );
    new Gauge({
      name: 'slipway_drift_score',
      help: "Each input column's drift score (the test's statistic or p-value), last hour against the training dataset.",
      labelNames: ['model', 'version', 'column', 'test'],
      registers,
      collect() {
        this.reset();
        for (const v of read()) {
          for (const c of v.drift?.columns ?? [])
            this.set({ model: v.model, version: v.version, column: c.column, test: c.test }, c.score);
        }
      },
    });
    new Gauge({
      name: 'slipway_drift_detected',
      help: '1 when the column drifted by its test and threshold.',
      labelNames: ['model', 'version', 'column'],
      registers,
      collect() {
        this.reset();
        for (const v of read()) {
          for (const c of v.drift?.columns ?? [])
            this.set({ model: v.model, version: v.version, column: c.column }, c.drifted ? 1 : 0);
        }
      },
    });
  }

  /** Children of one request label set, cached so an observation does no lookup per family. */
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

  invalid(model: string, version: string, action: 'rejected' | 'quarantined', rows: number): void {
    this.invalidRows.labels(model, version, action).inc(rows);
  }

  cacheLookup(model: string, version: string, hit: boolean): void {
    this.cacheLookups.labels(model, version, hit ? 'hit' : 'miss').inc();
  }

  /** Exposes the response cache's size, read when Prometheus scrapes. */
  attachResponseCache(read: () => { bytes: number; entries: number; evictions: number }): void {
    scrapedGauge(
      this.registry,
      'slipway_response_cache_bytes',
      "Bytes the response cache holds (model outputs and each entry's overhead).",
      () => read().bytes,
    );
    scrapedGauge(
      this.registry,
      'slipway_response_cache_entries',
      'Answers the response cache holds.',
      () => read().entries,
    );
    scrapedCounter(
      this.registry,
      'slipway_response_cache_evictions_total',
      'Answers the response cache let go to make room, least recently used first.',
      () => read().evictions,
    );
  }

  batch(model: string, version: string, size: number): void {
    this.batchSize.labels(model, version).observe(size);
  }

  /**
   * The whole exposition: hot-path families, then prom-client's gauges and process metrics. With
   * peers attached (several serving processes), every process's samples, each with a `worker` label.
   */
  async render(): Promise<string> {
    const own = await this.renderOwn();
    if (!this.peers) return own;
    const others = await this.peers.others();
    return mergeExpositions([{ worker: this.peers.worker, text: own }, ...others]);
  }

  /** This process's exposition alone. */
  async renderOwn(): Promise<string> {
    return this.hot.map((f) => f.render()).join('') + (await this.registry.metrics());
  }

  /** Makes `render()` include the other serving processes' expositions. */
  attachPeers(worker: string, others: () => Promise<Exposition[]>): void {
    this.peers = { worker, others };
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A gauge without labels whose value is read when Prometheus scrapes. */
function scrapedGauge(registry: Registry, name: string, help: string, value: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(value());
    },
  });
}

/** A counter without labels whose total is kept elsewhere and read when Prometheus scrapes. */
function scrapedCounter(registry: Registry, name: string, help: string, total: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(total());
    },
  });
}
