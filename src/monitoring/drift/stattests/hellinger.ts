/**
 * `hellinger`: the Hellinger distance between reference and current, as Evidently computes it.
 * Categorical: √(1 − Σ √(p_ref·p_cur)) over the union of categories. Numerical: density
 * histograms of both samples over Sturges bins of the *distinct* values of both (numpy
 * `histogram_bin_edges(keys, bins="sturges")`), the Bhattacharyya sum weighted by the mean bin
 * width. Score = distance; drift when distance ≥ threshold.
 */
import type { DriftColumn, StatTestResult, SummaryStatTest } from '../stat-test.js';
import { categoryCounts, orderFree, sorted } from './numpy-compat.js';

/**
 * numpy's `histogram_bin_edges(values, bins="sturges")` for an ascending array. For an integer
 * array numpy widens a bin narrower than 1 to 1 (so 0/1 data gets one bin, not two).
 */
export function sturgesEdges(ascending: Float64Array, integerDtype: boolean): Float64Array {
  let first = ascending[0];
  let last = ascending[ascending.length - 1];
  const ptp = last - first;
  let width = ptp / (Math.log2(ascending.length) + 1);
  if (integerDtype && width > 0 && width < 1) width = 1;
  if (first === last) {
    first -= 0.5;
    last += 0.5;
  }
  const bins = width > 0 ? Math.ceil((last - first) / width) : 1;
  // np.linspace: start + i·step, the last edge set to stop exactly.
  const step = (last - first) / bins;
  const edges = new Float64Array(bins + 1);
  for (let i = 0; i < bins; i++) edges[i] = i * step + first;
  edges[bins] = last;
  return edges;
}

/** Counts per bin with numpy's rule for explicit edges: [e_i, e_{i+1}), the last bin closed. */
function histogram(ascending: Float64Array, edges: Float64Array): Float64Array {
  const counts = new Float64Array(edges.length - 1);
  let bin = 0;
  const lastBin = counts.length - 1;
  for (const v of ascending) {
    if (v < edges[0] || v > edges[edges.length - 1]) continue;
    while (bin < lastBin && v >= edges[bin + 1]) bin++;
    counts[bin]++;
  }
  return counts;
}

function densities(ascending: Float64Array, edges: Float64Array): Float64Array {
  const counts = histogram(ascending, edges);
  let total = 0;
  for (const c of counts) total += c;
  const out = new Float64Array(counts.length);
  for (let i = 0; i < counts.length; i++) out[i] = counts[i] / (edges[i + 1] - edges[i]) / total;
  return out;
}

function finish(overlap: number): number {
  return Math.sqrt(1 - Math.min(Math.max(overlap, 0), 1));
}

/**
 * Whether pandas would hold the column as int64: the column may say so (`dtype`, set by whoever
 * read it: integers and no missing cells); otherwise all its values are integers.
 */
function isIntegerDtype(column: DriftColumn): boolean {
  const dtype = (column as { dtype?: string }).dtype;
  if (dtype !== undefined) return dtype === 'int64';
  for (const v of column.values as Float64Array) if (!Number.isInteger(v)) return false;
  return true;
}

export function hellingerDistance(reference: DriftColumn, current: DriftColumn): number {
  if (reference.kind === 'categorical' || current.kind === 'categorical') {
    const { ref, cur } = categoryCounts(reference, current);
    const nRef = reference.values.length;
    const nCur = current.values.length;
    let overlap = 0;
    for (let i = 0; i < ref.length; i++) overlap += Math.sqrt((ref[i] / nRef) * (cur[i] / nCur));
    return finish(overlap);
  }
  const ref = sorted(reference.values);
  const cur = sorted(current.values);
  const keys = new Set<number>();
  for (const v of ref) keys.add(v);
  for (const v of cur) keys.add(v);
  const edges = sturgesEdges(sorted([...keys]), isIntegerDtype(reference) && isIntegerDtype(current));
  const h1 = densities(ref, edges);
  const h2 = densities(cur, edges);
  const binWidth = (edges[edges.length - 1] - edges[0]) / (edges.length - 1);
  let overlap = 0;
  for (let i = 0; i < h1.length; i++) overlap += Math.sqrt(h1[i] * h2[i]) * binWidth;
  return finish(overlap);
}

export const hellinger: SummaryStatTest = orderFree({
  name: 'hellinger',
  kinds: ['categorical', 'numerical'],
  defaultThreshold: 0.1,
  run(reference: DriftColumn, current: DriftColumn, threshold: number): StatTestResult {
    const distance = hellingerDistance(reference, current);
    return { score: distance, drifted: distance >= threshold };
  },
});
