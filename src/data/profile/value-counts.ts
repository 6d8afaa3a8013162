/** A distinct value as the profile keys it: numbers, exact big integers, booleans and strings. */
export type Key = number | bigint | boolean | string;

/**
 * Exact counts per distinct value. Counters are boxed so that a value seen before costs one map
 * lookup (get, then increment) instead of two (get, then set).
 */
export class ValueCounts implements Iterable<[Key, number]> {
  private readonly map = new Map<Key, { n: number }>();
  /** Estimated heap bytes: ~120 per entry (map slot, box, key header; measured) plus string characters. */
  bytes = 0;

  get size(): number {
    return this.map.size;
  }

  increment(key: Key): void {
    const box = this.map.get(key);
    if (box) box.n++;
    else this.insert(key, 1);
  }

  add(key: Key, count: number): void {
    const box = this.map.get(key);
    if (box) box.n += count;
    else this.insert(key, count);
  }

  private insert(key: Key, count: number): void {
    this.map.set(key, { n: count });
    this.bytes += typeof key === 'string' ? 120 + key.length : 120;
  }

  /** Each value and its count, in insertion order, without an entry array per value. */
  forEach(fn: (key: Key, count: number) => void): void {
    this.map.forEach((box, key) => {
      fn(key, box.n);
    });
  }

  *[Symbol.iterator](): Iterator<[Key, number]> {
    for (const [key, box] of this.map) yield [key, box.n];
  }
}
