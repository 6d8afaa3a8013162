import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RowBatch } from '../src/data/index.js';
import { analyzeDrift } from '../src/monitoring/drift/index.js';
import { pcaReconstructionDrift, symmetricEigen } from '../src/monitoring/drift/multivariate.js';

/** A small deterministic generator (mulberry32) and Box–Muller normals. */
function rng(seed: number) {
  let a = seed;
  const uniform = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Rows of (x, y, colour) where y = rho·x + noise with unit variance, colour follows the sign of x. */
function table(n: number, rho: number, seed: number): RowBatch {
  const normal = rng(seed);
  const rows = [];
  for (let i = 0; i < n; i++) {
    const x = normal();
    const y = rho * x + Math.sqrt(1 - rho * rho) * normal();
    rows.push([x, y, x > 0 ? 'red' : 'blue']);
  }
  return { columns: ['x', 'y', 'colour'], rows, firstRow: 1 };
}

describe('multivariate drift (PCA reconstruction error)', () => {
  test('Jacobi eigen-decomposition of a symmetric matrix', () => {
    const { values, vectors } = symmetricEigen([Float64Array.from([2, 1]), Float64Array.from([1, 2])]);
    assert.deepEqual(values.map((v) => Math.round(v * 1e12) / 1e12).sort(), [1, 3]);
    const i = values[0]! > values[1]! ? 0 : 1;
    assert.ok(Math.abs(Math.abs(vectors[0]![i]!) - Math.SQRT1_2) < 1e-12);
  });

  test('a flipped correlation: per-column tests see nothing, the reconstruction error does', async () => {
    const reference = table(5000, 0.9, 1);
    const same = table(1000, 0.9, 2);
    const flipped = table(1000, -0.9, 3);
    const columns = ['x', 'y', 'colour'];
    const calm = pcaReconstructionDrift([reference], [same], columns);
    assert.equal(calm.drifted, false);
    const shifted = pcaReconstructionDrift([reference], [flipped], columns);
    assert.equal(shifted.drifted, true);
    assert.ok(shifted.score > shifted.upper * 1.5, JSON.stringify(shifted));
    assert.ok(calm.score >= calm.lower && calm.score <= calm.upper, JSON.stringify(calm));
    // Each column's own distribution is unchanged, so Evidently's tests find no drift.
    const perColumn = await analyzeDrift(
      (async function* () {
        yield reference;
      })(),
      (async function* () {
        yield flipped;
      })(),
    );
    assert.equal(perColumn.report.columns.x!.drifted, false);
    assert.equal(perColumn.report.columns.y!.drifted, false);
    assert.equal(perColumn.report.dataset_drift, false);
  });

  test('errors name what is missing', () => {
    assert.throws(
      () => pcaReconstructionDrift([table(100, 0.5, 1)], [table(10, 0.5, 2)], ['x']),
      /at least two columns/,
    );
    assert.throws(
      () => pcaReconstructionDrift([table(5, 0.5, 1)], [table(10, 0.5, 2)], ['x', 'y']),
      /at least 20 reference rows/,
    );
  });
});
