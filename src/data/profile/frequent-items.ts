/**
 * Misra–Gries frequent items with the batched reduction used by DataSketches: up to 2·capacity
 * counters; when full, the (capacity+1)-th largest count is subtracted from every counter and the
 * non-positive ones dropped. Each estimate is a lower bound and the true count is at most
 * `estimate + maxError`, where maxError (the total subtracted) never exceeds n/(capacity+1).
 * Merging adds counters and reduces, and keeps the same bound for the combined stream.
 */
export class FrequentItems<K> {
  readonly capacity: number;
  counts = new Map<K, number>();
  maxError = 0;

  constructor(capacity = 1024) {
    this.capacity = capacity;
  }

  add(key: K, count = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + count);
    if (this.counts.size > 2 * this.capacity) this.reduce();
  }

  merge(other: FrequentItems<K>): void {
    for (const [key, c] of other.counts) this.counts.set(key, (this.counts.get(key) ?? 0) + c);
    this.maxError += other.maxError;
    if (this.counts.size > this.capacity) this.reduce();
  }

  /** Heaviest items first (ties by key order of first appearance). */
  top(limit: number): [K, number][] {
    return [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, limit);
  }

  private reduce(): void {
    const sorted = [...this.counts.values()].sort((a, b) => b - a);
    const cut = sorted[this.capacity] ?? 0;
    if (cut <= 0) return;
    for (const [key, c] of this.counts) {
      if (c <= cut) this.counts.delete(key);
      else this.counts.set(key, c - cut);
    }
    this.maxError += cut;
  }
}
