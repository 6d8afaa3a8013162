/**
 * Multivariate drift by PCA reconstruction error, the method NannyML calls data reconstruction
 * drift: per-column tests miss a change in how columns move together (the same marginals, a
 * different correlation); a PCA fitted on the reference reconstructs reference-like rows well and
 * shifted ones badly.
 *
 * Fitted on the reference: numerical columns imputed with their mean, categorical ones encoded
 * as their frequency in the reference (unseen values 0, missing as a value of their own), every
 * column standardized, then the principal components that keep `varianceKept` of the variance.
 * A row's error is the Euclidean distance between it and its reconstruction. The reference is cut
 * into `chunks` equal parts; the current mean error drifts when it leaves the band
 * mean ± `sigmas` standard deviations of the chunks' mean errors.
 */

import { Kind, type Parsed, parseCell } from '../../data/profile/parse-cell.js';
import type { Cell, RowBatch } from '../../data/table.js';
import { SlipwayError } from '../../errors/index.js';

export interface MultivariateOptions {
  /** Share of variance the kept components explain (NannyML's default 0.65). */
  varianceKept?: number;
  /** Reference chunks the band is measured on (default 10). */
  chunks?: number;
  /** Band half-width in standard deviations of the chunks' mean errors (default 3). */
  sigmas?: number;
}

export interface MultivariateDrift {
  method: 'pca_reconstruction';
  columns: string[];
  components: number;
  /** Mean reconstruction error of the current rows. */
  score: number;
  reference_mean: number;
  lower: number;
  upper: number;
  drifted: boolean;
}

interface Encoder {
  name: string;
  numeric: boolean;
  mean: number;
  frequencies: Map<string, number>;
  center: number;
  scale: number;
}

function collect(batches: readonly RowBatch[], columns: readonly string[]): Cell[][] {
  const rows: Cell[][] = [];
  for (const b of batches) {
    const idx = columns.map((c) => b.columns.indexOf(c));
    for (const r of b.rows) rows.push(idx.map((i) => (i < 0 ? null : (r[i] ?? null))));
  }
  return rows;
}

const p: Parsed = { kind: Kind.Missing, value: 0, ms: 0 };

function numberOf(cell: Cell): number | null {
  parseCell(cell, p);
  if (p.kind === Kind.Integer || p.kind === Kind.Float) return p.value as number;
  if (p.kind === Kind.BigInteger) return Number(p.value);
  if (p.kind === Kind.Boolean) return p.value ? 1 : 0;
  return null;
}

function keyOf(cell: Cell): string {
  parseCell(cell, p);
  return p.kind === Kind.Missing ? '\u0000missing' : String(p.value);
}

function fitEncoders(rows: Cell[][], columns: readonly string[]): Encoder[] {
  return columns.map((name, j) => {
    let numbers = 0;
    let present = 0;
    let sum = 0;
    const counts = new Map<string, number>();
    for (const r of rows) {
      const x = numberOf(r[j]!);
      if (p.kind !== Kind.Missing) present++;
      if (x !== null) {
        numbers++;
        sum += x;
      }
      const k = keyOf(r[j]!);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const numeric = present > 0 && numbers === present;
    const frequencies = new Map([...counts].map(([k, n]) => [k, n / rows.length]));
    return { name, numeric, mean: numbers > 0 ? sum / numbers : 0, frequencies, center: 0, scale: 1 };
  });
}

function encode(rows: Cell[][], encoders: readonly Encoder[]): Float64Array[] {
  return rows.map((r) => {
    const v = new Float64Array(encoders.length);
    encoders.forEach((e, j) => {
      const raw = e.numeric ? (numberOf(r[j]!) ?? e.mean) : (e.frequencies.get(keyOf(r[j]!)) ?? 0);
      v[j] = (raw - e.center) / e.scale;
    });
    return v;
  });
}

/** Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric matrix, by cyclic Jacobi rotations. */
export function symmetricEigen(matrix: readonly Float64Array[]): {
  values: number[];
  vectors: Float64Array[];
} {
  const n = matrix.length;
  const a = matrix.map((row) => Float64Array.from(row));
  const v = Array.from({ length: n }, (_, i) => {
    const row = new Float64Array(n);
    row[i] = 1;
    return row;
  });
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i]![j]! ** 2;
    if (off < 1e-22) break;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const aij = a[i]![j]!;
        if (Math.abs(aij) < 1e-300) continue;
        const theta = (a[j]![j]! - a[i]![i]!) / (2 * aij);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const aki = a[k]![i]!;
          const akj = a[k]![j]!;
          a[k]![i] = c * aki - s * akj;
          a[k]![j] = s * aki + c * akj;
        }
        for (let k = 0; k < n; k++) {
          const aik = a[i]![k]!;
          const ajk = a[j]![k]!;
          a[i]![k] = c * aik - s * ajk;
          a[j]![k] = s * aik + c * ajk;
        }
        for (let k = 0; k < n; k++) {
          const vki = v[k]![i]!;
          const vkj = v[k]![j]!;
          v[k]![i] = c * vki - s * vkj;
          v[k]![j] = s * vki + c * vkj;
        }
      }
    }
  }
  return { values: a.map((row, i) => row[i]!), vectors: v };
}

/** Mean reconstruction error of rows through the kept components. */
function meanError(rows: readonly Float64Array[], components: readonly Float64Array[]): number {
  if (rows.length === 0) return Number.NaN;
  let total = 0;
  const d = rows[0]!.length;
  const proj = new Float64Array(components.length);
  for (const x of rows) {
    for (let c = 0; c < components.length; c++) {
      let s = 0;
      const w = components[c]!;
      for (let j = 0; j < d; j++) s += x[j]! * w[j]!;
      proj[c] = s;
    }
    let err = 0;
    for (let j = 0; j < d; j++) {
      let r = 0;
      for (let c = 0; c < components.length; c++) r += proj[c]! * components[c]![j]!;
      err += (x[j]! - r) ** 2;
    }
    total += Math.sqrt(err);
  }
  return total / rows.length;
}

/**
 * PCA reconstruction drift of `current` against `reference` over `columns`.
 *
 * @example
 *   pcaReconstructionDrift([ref], [cur], ['age', 'hours_per_week', 'workclass']).drifted
 */
export function pcaReconstructionDrift(
  reference: readonly RowBatch[],
  current: readonly RowBatch[],
  columns: readonly string[],
  options: MultivariateOptions = {},
): MultivariateDrift {
  const varianceKept = options.varianceKept ?? 0.65;
  const chunks = options.chunks ?? 10;
  const sigmas = options.sigmas ?? 3;
  if (columns.length < 2) {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'multivariate drift needs at least two columns');
  }
  const refRows = collect(reference, columns);
  const curRows = collect(current, columns);
  if (refRows.length < chunks * 2) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `multivariate drift needs at least ${chunks * 2} reference rows`,
    );
  }
  if (curRows.length === 0)
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'multivariate drift needs current rows');
  const encoders = fitEncoders(refRows, columns);
  // Standardize on the reference (population std, as scikit-learn's StandardScaler).
  const raw = encode(refRows, encoders);
  encoders.forEach((e, j) => {
    let mean = 0;
    for (const x of raw) mean += x[j]!;
    mean /= raw.length;
    let variance = 0;
    for (const x of raw) variance += (x[j]! - mean) ** 2;
    const std = Math.sqrt(variance / raw.length);
    e.center = mean;
    e.scale = std > 0 ? std : 1;
  });
  const ref = encode(refRows, encoders);
  const cur = encode(curRows, encoders);
  const d = columns.length;
  const cov = Array.from({ length: d }, () => new Float64Array(d));
  for (const x of ref) for (let i = 0; i < d; i++) for (let j = i; j < d; j++) cov[i]![j]! += x[i]! * x[j]!;
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      cov[i]![j]! /= ref.length - 1;
      cov[j]![i] = cov[i]![j]!;
    }
  }
  const { values, vectors } = symmetricEigen(cov);
  const order = values.map((_, i) => i).sort((a, b) => values[b]! - values[a]!);
  const total = values.reduce((s, x) => s + Math.max(0, x), 0);
  const components: Float64Array[] = [];
  let kept = 0;
  for (const i of order) {
    components.push(Float64Array.from(vectors, (row) => row[i]!));
    kept += Math.max(0, values[i]!);
    if (total === 0 || kept / total >= varianceKept) break;
  }
  const size = Math.floor(ref.length / chunks);
  const chunkErrors = Array.from({ length: chunks }, (_, c) =>
    meanError(ref.slice(c * size, (c + 1) * size), components),
  );
  const mean = chunkErrors.reduce((s, x) => s + x, 0) / chunks;
  const std = Math.sqrt(chunkErrors.reduce((s, x) => s + (x - mean) ** 2, 0) / (chunks - 1));
  const score = meanError(cur, components);
  const lower = Math.max(0, mean - sigmas * std);
  const upper = mean + sigmas * std;
  return {
    method: 'pca_reconstruction',
    columns: [...columns],
    components: components.length,
    score,
    reference_mean: mean,
    lower,
    upper,
    drifted: score < lower || score > upper,
  };
}
