/** Alert rules on the monitoring store: grammar, evaluation, webhooks, retraining. See docs/monitoring.md#alerts. */
export {
  AlertEngine,
  type AlertEngineOptions,
  type AlertEvent,
  type AlertNotification,
  type AlertRule,
  type AlertRuleInput,
  type AlertState,
  type DeliveryRecord,
  type Evaluation,
  type RetrainRun,
} from './alert-engine.js';
export {
  type AlertMetricSource,
  type DriftFunction,
  type Measurement,
  type MeasureTarget,
  MonitoringMetrics,
  type MonitoringMetricsOptions,
} from './alert-metrics.js';
export { type CommandResult, checkRetrainConfig, type RetrainConfig, runCommand } from './retrain.js';
export {
  type Comparison,
  compare,
  DEFAULT_WINDOW_MS,
  DRIFT_METRICS,
  formatDuration,
  type MetricKind,
  PERFORMANCE_METRICS,
  parseRuleExpression,
  type RuleExpression,
  SERVICE_METRICS,
} from './rule-expression.js';
export {
  type DeliveryAttempt,
  type DeliveryOptions,
  deliver,
  SIGNATURE_HEADER,
  signBody,
  TIMESTAMP_HEADER,
  verifySignature,
  type Webhook,
} from './webhooks.js';
