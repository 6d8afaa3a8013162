export { type Exposition, mergeExpositions, withLabel } from './expositions.js';
export { CounterFamily, HistogramFamily } from './hot-metrics.js';
export { type LoadGauge, type ModelGaugeValues, ServingMetrics } from './serving-metrics.js';
