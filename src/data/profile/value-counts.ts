/** A distinct value as the profile keys it: numbers, exact big integers, booleans and strings. */
export type Key = number | bigint | boolean | string;

/** What one distinct value is taken to cost in `ValueCounts.bytes` (see there). */
export function entryBytes(key: Key): number {
  return typeof key === 'string' ? 120 + key.length : 120;
}

/**
 * Exact counts per distinct value, in the order values were first added: a map from each value
 * to its position, and the counts by position in one array (a value seen before costs one map
 * lookup and no object of its own).
 */
export class ValueCounts implements Iterable<[Key, number]> {
  /** Each value's position in `counts`: 0, 1, 2, … in insertion order (nothing is ever removed). */
  private index: Map<Key, number>;
  private counts: Float64Array;
  /** Estimated heap bytes: ~120 per entry (map slot, count, key header; measured with a boxed count, so an upper bound) plus string characters. */
  bytes = 0;

  constructor() {
    this.index = new Map();
    this.counts = new Float64Array(16);
  }

  /**
   * Counts built elsewhere, taken over without a copy: `index` maps each value to 0, 1, 2, … in
   * its insertion order and `counts` holds at least `index.size` counts by those positions. The
   * caller must not touch either afterwards.
   */
  static adopt(index: Map<Key, number>, counts: Float64Array, bytes: number): ValueCounts {
    const v = new ValueCounts();
    v.index = index;
    v.counts = counts;
    v.bytes = bytes;
    return v;
  }

  /** Counts of distinct `keys` (in their insertion order) by position in `counts`, which it keeps. */
  static fromArrays(keys: readonly Key[], counts: Float64Array): ValueCounts {
    const index = new Map<Key, number>();
    let bytes = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      index.set(key, i);
      bytes += entryBytes(key);
    }
    return ValueCounts.adopt(index, counts, bytes);
  }

  get size(): number {
    return this.index.size;
  }

  increment(key: Key): void {
    const i = this.index.get(key);
    if (i === undefined) this.insert(key, 1);
    else this.counts[i]!++;
  }

  add(key: Key, count: number): void {
    const i = this.index.get(key);
    if (i === undefined) this.insert(key, count);
    else this.counts[i]! += count;
  }

  private insert(key: Key, count: number): void {
    const i = this.index.size;
    if (i === this.counts.length) {
      const grown = new Float64Array(Math.max(16, 2 * i));
      grown.set(this.counts);
      this.counts = grown;
    }
    this.index.set(key, i);
    this.counts[i] = count;
    this.bytes += entryBytes(key);
  }

  /** Each value and its count, in insertion order, without an entry array per value. */
  forEach(fn: (key: Key, count: number) => void): void {
    const counts = this.counts;
    this.index.forEach((i, key) => {
      fn(key, counts[i]!);
    });
  }

  *[Symbol.iterator](): Iterator<[Key, number]> {
    for (const [key, i] of this.index) yield [key, this.counts[i]!];
  }
}
