/**
 * Exact counts of request latencies in whole microseconds, mergeable: each minute window stores
 * its rows' latencies this way (a few thousand distinct values at most, however busy the
 * minute), and latency quantiles over a range merge the windows' counts instead of reading the
 * raw log. Quantiles interpolate between order statistics as numpy's default does over the raw
 * values, so they are the same numbers.
 *
 * @example
 *   const l = new LatencyCounts();
 *   for (const w of windows) l.merge(w.latency);
 *   const [p50, p99] = l.quantilesMs([0.5, 0.99]);
 */
export class LatencyCounts {
  private readonly counts = new Map<number, number>();
  /** Latencies counted. */
  n = 0;

  add(us: number, count = 1): void {
    this.counts.set(us, (this.counts.get(us) ?? 0) + count);
    this.n += count;
  }

  /** Adds a stored window's counts (`toJSON`'s text; null adds nothing). */
  merge(stored: string | null): void {
    if (!stored) return;
    const [values, counts] = JSON.parse(stored) as [number[], number[]];
    for (let i = 0; i < values.length; i++) this.add(values[i]!, counts[i]!);
  }

  /** `[values, counts]`, values ascending. */
  toJSON(): [number[], number[]] {
    const values = [...this.counts.keys()].sort((a, b) => a - b);
    return [values, values.map((v) => this.counts.get(v)!)];
  }

  /** The p-quantiles in ms (null each when nothing was counted). */
  quantilesMs(ps: readonly number[]): (number | null)[] {
    if (this.n === 0) return ps.map(() => null);
    const [values, counts] = this.toJSON();
    /** The value of order statistic `rank` (0-based). */
    const at = (rank: number): number => {
      let seen = 0;
      for (let i = 0; i < values.length; i++) {
        seen += counts[i]!;
        if (rank < seen) return values[i]! / 1000;
      }
      return values[values.length - 1]! / 1000;
    };
    return ps.map((p) => {
      const h = (this.n - 1) * p;
      const lo = Math.floor(h);
      const a = at(lo);
      return a + (h - lo) * (at(Math.min(lo + 1, this.n - 1)) - a);
    });
  }
}
