/** What several serving processes report as statistics, as one server's answer. */
import type { ModelStats } from '../inference/index.js';

type Duration = { count: number; ns: number };

const addDuration = (a: Duration, b: Duration): Duration => ({ count: a.count + b.count, ns: a.ns + b.ns });

/**
 * Sums each model version's statistics over the processes' lists: counts and times add up, the
 * last inference is the latest, batch statistics add up per batch size. Versions keep the order
 * of their first appearance; batch sizes are sorted.
 */
export function mergeStatistics(lists: readonly (readonly ModelStats[])[]): ModelStats[] {
  const out = new Map<string, ModelStats>();
  for (const list of lists) {
    for (const s of list) {
      const key = `${s.name}\u0000${s.version}`;
      const seen = out.get(key);
      if (!seen) {
        out.set(key, structuredClone(s));
        continue;
      }
      seen.last_inference = Math.max(seen.last_inference, s.last_inference);
      seen.inference_count += s.inference_count;
      seen.execution_count += s.execution_count;
      const a = seen.inference_stats;
      const b = s.inference_stats;
      for (const k of Object.keys(a) as (keyof ModelStats['inference_stats'])[]) {
        a[k] = addDuration(a[k], b[k]);
      }
      for (const bs of s.batch_stats) {
        const same = seen.batch_stats.find((x) => x.batch_size === bs.batch_size);
        if (!same) {
          seen.batch_stats.push(structuredClone(bs));
          continue;
        }
        same.compute_input = addDuration(same.compute_input, bs.compute_input);
        same.compute_infer = addDuration(same.compute_infer, bs.compute_infer);
        same.compute_output = addDuration(same.compute_output, bs.compute_output);
      }
    }
  }
  for (const s of out.values()) s.batch_stats.sort((x, y) => x.batch_size - y.batch_size);
  return [...out.values()];
}
