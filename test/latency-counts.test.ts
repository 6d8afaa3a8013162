import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LatencyCounts } from '../src/monitoring/latency-counts.js';

/** numpy's default percentile (linear interpolation between order statistics) over raw values. */
function percentile(sorted: readonly number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  return sorted[lo]! + (h - lo) * ((sorted[lo + 1] ?? sorted[lo]!) - sorted[lo]!);
}

describe('latency counts of minute windows', () => {
  test('quantiles of windows merged through their stored text equal those of the raw latencies', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const raw: number[] = [];
    const stored: string[] = [];
    for (let w = 0; w < 12; w++) {
      const window = new LatencyCounts();
      const n = 1 + Math.floor(random() * 4000);
      for (let i = 0; i < n; i++) {
        // A long tail: most requests near 300 µs, some near 20 ms.
        const us = Math.round(random() < 0.97 ? 200 + random() * 300 : 5000 + random() * 20_000);
        window.add(us);
        raw.push(us / 1000);
      }
      stored.push(JSON.stringify(window));
    }
    const merged = new LatencyCounts();
    for (const s of stored) merged.merge(s);
    merged.merge(null);
    raw.sort((a, b) => a - b);
    assert.equal(merged.n, raw.length);
    const ps = [0, 0.5, 0.95, 0.99, 0.999, 1];
    assert.deepEqual(
      merged.quantilesMs(ps),
      ps.map((p) => percentile(raw, p)),
    );
  });

  test('stored text lists every value once, ascending, below and above 16 ms and between whole microseconds', () => {
    const l = new LatencyCounts();
    for (const [us, count] of [
      [40_000, 2],
      [300, 5],
      [16_383, 1],
      [16_384, 3],
      [0, 1],
      [300, 2],
    ] as const)
      l.add(us, count);
    assert.deepEqual(l.toJSON(), [
      [0, 300, 16_383, 16_384, 40_000],
      [1, 7, 1, 3, 2],
    ]);
    // Text stored by hand or by another writer may hold fractions: they sort among the rest.
    l.merge(
      JSON.stringify([
        [299.5, 20_000.25],
        [4, 1],
      ]),
    );
    assert.deepEqual(l.toJSON(), [
      [0, 299.5, 300, 16_383, 16_384, 20_000.25, 40_000],
      [1, 4, 7, 1, 3, 1, 2],
    ]);
    assert.equal(l.n, 19);
  });

  test('no latencies: null quantiles', () => {
    assert.deepEqual(new LatencyCounts().quantilesMs([0.5, 0.99]), [null, null]);
  });
});
