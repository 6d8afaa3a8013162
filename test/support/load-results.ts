/** Load results for the bench harness's tests: only the throughput differs. */
import type { LoadResult } from '../../bench/harness/load.js';

export const loadResult = (rps: number): LoadResult => ({
  rps,
  p50Ms: 1,
  p99Ms: 2,
  requests: rps,
  errors: 0,
  serverCores: 1,
  loadgenCores: 0.3,
  cpuBusy: [1, 1],
  otherCores: 0,
});
