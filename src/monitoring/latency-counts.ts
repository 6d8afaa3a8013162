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
/** Latencies (µs) below this are counted in an array indexed by the latency: 16 ms. */
const DENSE_US = 16_384;

export class LatencyCounts {
  /**
   * Counts of latencies under DENSE_US, indexed by the latency (allocated at the first one): the
   * writer adds every logged row's latency: about 4 ns an add against 35 ns with the map (a loop
   * over a million latencies of some 8,000 distinct values), where the map's lookups had been a
   * seventh of the writer thread's samples at c=64.
   */
  private dense?: Float64Array;
  /** Counts of the rest (latencies from DENSE_US up, or not whole microseconds). */
  private readonly counts = new Map<number, number>();
  /** Latencies counted. */
  n = 0;

  add(us: number, count = 1): void {
    if (us >>> 0 === us && us < DENSE_US) {
      this.dense ??= new Float64Array(DENSE_US);
      this.dense[us] += count;
    } else {
      this.counts.set(us, (this.counts.get(us) ?? 0) + count);
    }
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
    const pairs: [number, number][] = [];
    const dense = this.dense;
    if (dense) for (let us = 0; us < DENSE_US; us++) if (dense[us]! > 0) pairs.push([us, dense[us]!]);
    const rest = [...this.counts.entries()].sort((a, b) => a[0] - b[0]);
    // The map holds latencies from DENSE_US up, and whatever stored text held that was not a
    // whole number of microseconds (which can fall among the dense ones).
    if (rest.length > 0 && rest[0]![0] < DENSE_US) {
      pairs.push(...rest);
      pairs.sort((a, b) => a[0] - b[0]);
    } else {
      for (const e of rest) pairs.push(e);
    }
    return [pairs.map((e) => e[0]), pairs.map((e) => e[1])];
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
