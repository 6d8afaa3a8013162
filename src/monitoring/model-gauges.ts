import type { Logger } from 'pino';
import type { ModelGaugeValues } from '../metrics/index.js';
import type { Monitoring } from './monitoring.js';

export type { ModelGaugeValues };

export interface ModelGaugeOptions {
  /** Model names served now. */
  models: () => string[];
  /** How often the figures are recomputed (ms). */
  refreshMs: number;
  logger: Logger;
}

/**
 * Recomputes each served model version's quality, traffic, cost and drift figures on a schedule,
 * so Prometheus scrapes read numbers and Grafana can alert on them: accuracy (or RMSE) over the
 * last day, error rate and p99 latency over the last hour, cost per 1000 predictions, and drift
 * of the last hour against the version's training dataset (when the registry names one).
 */
export class ModelGauges {
  private values: ModelGaugeValues[] = [];
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly monitoring: Monitoring,
    private readonly options: ModelGaugeOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    return this.running ?? Promise.resolve();
  }

  get current(): readonly ModelGaugeValues[] {
    return this.values;
  }

  /** Recomputes every figure (one refresh at a time). */
  refresh(): Promise<void> {
    this.running ??= this.compute().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async compute(): Promise<void> {
    const now = Date.now();
    const next: ModelGaugeValues[] = [];
    for (const model of this.options.models()) {
      try {
        const day = await this.monitoring.versions({ model, sinceMs: now - 86_400_000, untilMs: now + 1 });
        for (const v of day) {
          const hour = await this.monitoring.service({
            model,
            version: v.version,
            sinceMs: now - 3_600_000,
            untilMs: now + 1,
          });
          const values: ModelGaugeValues = {
            model,
            version: v.version,
            ...(v.accuracy !== undefined ? { accuracy: v.accuracy } : {}),
            ...(v.rmse !== undefined ? { rmse: v.rmse } : {}),
            ...(v.quality ? { quality: v.quality } : {}),
            errorRate: hour.error_rate,
            latencyP99Ms: hour.latency_ms.p99,
            costPer1000: v.cost_per_1000,
          };
          try {
            const d = await this.monitoring.driftAgainst(
              { model, version: v.version, sinceMs: now - 3_600_000, untilMs: now + 1 },
              { kind: 'training' },
            );
            values.drift = {
              share: d.drift_share,
              detected: d.dataset_drift,
              columns: Object.entries(d.columns).map(([column, c]) => ({
                column,
                test: c.test,
                score: c.score,
                drifted: c.drifted,
              })),
            };
          } catch {
            // No training dataset named, or no traffic in the last hour: no drift gauges.
          }
          next.push(values);
        }
      } catch (err) {
        this.options.logger.warn({ model, err: (err as Error).message }, 'model gauges refresh failed');
      }
    }
    this.values = next;
  }
}
