export { type AlertTables, alertMigrations } from './alert-migrations.js';
export * from './alerts/index.js';
export * from './drift/index.js';
export {
  checkDurationMs,
  isoOrNull,
  MAX_DURATION_MS,
  MAX_TIME_MS,
  parseDuration,
  parseDurationInput,
  parseTime,
  parseWindowReference,
} from './durations.js';
export { ModelGauges, type ModelGaugeValues } from './model-gauges.js';
export {
  type FeedbackInput,
  type LoggedPrediction,
  Monitoring,
  type PerformanceQuery,
  type PerformanceResult,
  predictionJson,
  type ReferenceResolver,
  type ServiceStats,
  type VersionComparison,
} from './monitoring.js';
export { type MonitoringTables, monitoringMigrations } from './monitoring-migrations.js';
export {
  type ClassificationMetrics,
  classificationMetrics,
  type PerformanceMetrics,
  type RegressionMetrics,
  regressionMetrics,
} from './performance.js';
export { PredictionLog, type PredictionLogOptions } from './prediction-log.js';
export { HOUR_MS, MINUTE_MS, mergeProfiles } from './prediction-writer.js';
