export { binnedShares, histogram, sturgesEdges } from './binning.js';
export {
  analyzeDrift,
  type ColumnComparison,
  type ColumnDrift,
  type ColumnOverride,
  compareProfiles,
  DEFAULT_DRIFT_SHARE,
  type DriftAnalysis,
  type DriftOptions,
  type DriftReport,
  defaultTestName,
  driftColumnKind,
  type TableSource,
} from './drift-engine.js';
export { renderDriftHtml } from './html-report.js';
export {
  type MultivariateDrift,
  type MultivariateOptions,
  pcaReconstructionDrift,
  symmetricEigen,
} from './multivariate.js';
export {
  type CategoryKey,
  type ColumnKind,
  type ColumnSummary,
  type DriftColumn,
  expand,
  hasSummaryRun,
  type StatTest,
  type StatTestResult,
  type SummaryStatTest,
  summarize,
} from './stat-test.js';
export { statTests } from './stattests/index.js';
