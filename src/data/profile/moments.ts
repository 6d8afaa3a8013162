/**
 * Count, mean, sum of squared deviations, min and max of a stream of numbers: Welford's update
 * per value and Chan et al.'s pairwise combination for merges, so the moments of merged chunks
 * equal the moments of the concatenation to floating-point accuracy.
 */
export class Moments {
  n = 0;
  mean = 0;
  m2 = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  add(x: number): void {
    const n = ++this.n;
    const d = x - this.mean;
    this.mean += d / n;
    this.m2 += d * (x - this.mean);
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }

  /** Adds the same value `count` times (the combination of a constant chunk). */
  addRepeated(x: number, count: number): void {
    const chunk = new Moments();
    chunk.n = count;
    chunk.mean = x;
    chunk.min = x;
    chunk.max = x;
    this.merge(chunk);
  }

  merge(other: Moments): void {
    if (other.n === 0) return;
    if (this.n === 0) {
      Object.assign(this, { n: other.n, mean: other.mean, m2: other.m2, min: other.min, max: other.max });
      return;
    }
    const n = this.n + other.n;
    const d = other.mean - this.mean;
    this.mean += (d * other.n) / n;
    this.m2 += other.m2 + (d * d * this.n * other.n) / n;
    this.n = n;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /** Sample variance (ddof = 1, as pandas' `std()` and `describe()`); NaN below two values. */
  sampleVariance(): number {
    return this.n > 1 ? this.m2 / (this.n - 1) : Number.NaN;
  }

  /** Population variance (ddof = 0, as numpy's default `std`). */
  populationVariance(): number {
    return this.n > 0 ? this.m2 / this.n : Number.NaN;
  }

  toJSON(): [number, number, number, number, number] | null {
    return this.n === 0 ? null : [this.n, this.mean, this.m2, this.min, this.max];
  }

  static fromJSON(json: readonly number[] | null): Moments {
    const m = new Moments();
    if (json) [m.n, m.mean, m.m2, m.min, m.max] = json;
    return m;
  }
}
