export { type LoadGauge, ServingMetrics } from './serving-metrics.js';
