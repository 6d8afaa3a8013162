export { CounterFamily, HistogramFamily } from './hot-metrics.js';
export { type LoadGauge, ServingMetrics } from './serving-metrics.js';
