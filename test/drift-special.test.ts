/** Special functions behind the drift p-values, against scipy (test/fixtures/drift-stattests/special.json). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  besselK,
  chi2Sf,
  erf,
  erfc,
  gammaP,
  gammaQ,
  incompleteBeta,
  logGamma,
  normalCdf,
  normalSf,
  studentTSf,
} from '../src/monitoring/drift/special.js';

const FIXTURE = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'drift-stattests', 'special.json');
const ref = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, number[][]>;

/** Relative closeness; values scipy rounds to 0 (or underflow) must be tiny here too. */
function close(actual: number, expected: number, rel: number, what: string): void {
  if (expected === 0) {
    assert.ok(Math.abs(actual) < 1e-300, `${what}: expected 0, got ${actual}`);
    return;
  }
  const diff = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(diff <= rel, `${what}: expected ${expected}, got ${actual} (relative ${diff.toExponential(2)})`);
}

describe('special functions match scipy', () => {
  test('logGamma (gammaln)', () => {
    for (const [x, v] of ref.logGamma) close(logGamma(x), v, 1e-13, `logGamma(${x})`);
  });

  test('gammaP and gammaQ (gammainc, gammaincc), tails included', () => {
    for (const [a, x, v] of ref.gammaP) close(gammaP(a, x), v, 1e-10, `gammaP(${a}, ${x})`);
    for (const [a, x, v] of ref.gammaQ) close(gammaQ(a, x), v, 1e-10, `gammaQ(${a}, ${x})`);
  });

  test('erf and erfc, erfc relative in the far tail', () => {
    for (const [x, v] of ref.erf) close(erf(x), v, 1e-13, `erf(${x})`);
    for (const [x, v] of ref.erfc) close(erfc(x), v, 1e-12, `erfc(${x})`);
  });

  test('normal sf and cdf', () => {
    for (const [z, v] of ref.normalSf) close(normalSf(z), v, 1e-12, `normalSf(${z})`);
    for (const [z, v] of ref.normalCdf) close(normalCdf(z), v, 1e-12, `normalCdf(${z})`);
  });

  test('chi-square sf', () => {
    for (const [x, k, v] of ref.chi2Sf) close(chi2Sf(x, k), v, 1e-10, `chi2Sf(${x}, ${k})`);
    assert.equal(chi2Sf(0, 3), 1);
    assert.equal(chi2Sf(Number.POSITIVE_INFINITY, 3), 0);
    assert.ok(Number.isNaN(chi2Sf(1, 0)));
  });

  test('regularized incomplete beta', () => {
    for (const [a, b, x, v] of ref.incompleteBeta)
      close(incompleteBeta(a, b, x), v, 1e-10, `I(${a}, ${b}, ${x})`);
  });

  test('Student t sf', () => {
    for (const [t, df, v] of ref.studentTSf) close(studentTSf(t, df), v, 1e-10, `studentTSf(${t}, ${df})`);
  });

  test('modified Bessel K', () => {
    for (const [nu, x, v] of ref.besselK) close(besselK(nu, x), v, 1e-12, `besselK(${nu}, ${x})`);
  });
});
