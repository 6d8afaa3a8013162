/**
 * KLL quantile sketch (Karnin, Lang and Liberty 2016) over numbers. Level h holds items that each
 * stand for 2^h values; when the sketch outgrows its capacity the lowest full level is sorted and
 * every other item (random offset) is promoted. With k = 200 the normalized rank error is about
 * 1.65% with 99% confidence (the figure DataSketches publishes for its KLL at k = 200), and the
 * same bound holds after any sequence of merges. Memory stays near 3k numbers whatever the input.
 * The coin is a seeded xorshift generator stored with the sketch, so a sketch and its JSON copy
 * evolve identically.
 */
export class KllSketch {
  readonly k: number;
  n = 0;
  levels: number[][] = [[]];
  private size = 0;
  private state: number;

  constructor(k = 200, seed = 0x2545f491) {
    this.k = k;
    this.state = seed >>> 0 || 1;
  }

  update(x: number): void {
    this.levels[0].push(x);
    this.n++;
    if (++this.size > this.capacityTotal()) this.compress();
  }

  /**
   * Adds `count` copies of x in O(log count): one item at each level h where bit h of count is
   * set, which carries exactly that weight (the sketch of an exact value → count table).
   */
  updateWeighted(x: number, count: number): void {
    for (let h = 0, rest = count; rest > 0; h++, rest = Math.floor(rest / 2)) {
      if (rest % 2 === 0) continue;
      while (this.levels.length <= h) this.levels.push([]);
      this.levels[h].push(x);
      this.size++;
    }
    this.n += count;
    this.compress();
  }

  merge(other: KllSketch): void {
    if (other === this) other = KllSketch.fromJSON(this.toJSON());
    while (this.levels.length < other.levels.length) this.levels.push([]);
    other.levels.forEach((level, h) => {
      for (const x of level) this.levels[h].push(x);
    });
    this.n += other.n;
    this.size += other.size;
    this.compress();
  }

  /** The smallest retained value whose weighted rank reaches q·n. */
  quantile(q: number): number {
    const items = this.weighted();
    if (items.length === 0) return Number.NaN;
    const target = q * this.n;
    let cumulative = 0;
    for (const [x, w] of items) {
      cumulative += w;
      if (cumulative >= target) return x;
    }
    return items[items.length - 1][0];
  }

  /** Estimated number of values ≤ x (or < x when `inclusive` is false). */
  rank(x: number, inclusive = true): number {
    let r = 0;
    this.levels.forEach((level, h) => {
      for (const v of level) if (v < x || (inclusive && v === x)) r += 2 ** h;
    });
    return r;
  }

  toJSON(): { k: number; n: number; seed: number; levels: number[][] } {
    return { k: this.k, n: this.n, seed: this.state, levels: this.levels.map((l) => [...l]) };
  }

  static fromJSON(json: { k: number; n: number; seed: number; levels: number[][] }): KllSketch {
    const s = new KllSketch(json.k, json.seed);
    s.n = json.n;
    s.levels = json.levels.map((l) => [...l]);
    if (s.levels.length === 0) s.levels.push([]);
    s.size = s.levels.reduce((sum, l) => sum + l.length, 0);
    return s;
  }

  private weighted(): [number, number][] {
    const items: [number, number][] = [];
    this.levels.forEach((level, h) => {
      for (const x of level) items.push([x, 2 ** h]);
    });
    return items.sort((a, b) => a[0] - b[0]);
  }

  private capacity(h: number): number {
    const depth = this.levels.length - 1 - h;
    return Math.max(2, Math.ceil(this.k * (2 / 3) ** depth));
  }

  private capacityTotal(): number {
    let total = 0;
    for (let h = 0; h < this.levels.length; h++) total += this.capacity(h);
    return total;
  }

  private coin(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state & 1;
  }

  private compress(): void {
    while (this.size > this.capacityTotal()) {
      const h = this.levels.findIndex((level, i) => level.length >= this.capacity(i));
      if (h + 1 === this.levels.length) this.levels.push([]);
      const level = this.levels[h].sort((a, b) => a - b);
      // An odd item stays behind at its level so weights stay exact.
      const start = level.length % 2;
      const kept = start ? [level[0]] : [];
      const up = this.levels[h + 1];
      for (let i = start + this.coin(); i < level.length; i += 2) up.push(level[i]);
      this.size -= level.length - kept.length - (level.length - start) / 2;
      this.levels[h] = kept;
    }
  }
}
