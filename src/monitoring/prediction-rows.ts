import type { PredictionEntry, Tensor } from '../inference/index.js';

/** One logged row: a record's inputs and outputs by name, with its segment keys. */
export interface PredictionRow {
  timeMs: number;
  model: string;
  version: string;
  protocol: string;
  requestId: string;
  rowIndex: number;
  latencyUs: number;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  segments: Record<string, string> | null;
}

/** Widest tensor row spread into one column per element; wider ones are kept as arrays. */
const MAX_SPREAD = 16;

/** A tensor element as JSON can hold it: big integers as numbers when safe, else strings. */
function element(t: Tensor, i: number): unknown {
  const x = (t.data as ArrayLike<unknown>)[i];
  if (t.datatype === 'BOOL') return x === 1;
  if (typeof x === 'bigint') return x >= -9007199254740991n && x <= 9007199254740991n ? Number(x) : String(x);
  if (typeof x === 'number' && !Number.isFinite(x)) return null;
  return x;
}

/** One tensor's row `i` as named values: a scalar, named features, or an array. */
function tensorRow(
  t: Tensor,
  n: number,
  i: number,
  out: Record<string, unknown>,
  names?: readonly string[],
): void {
  const width = n === 0 ? 0 : t.data.length / n;
  if (t.datatype === 'FP16') return; // raw half-precision bits: not a value a reader can use
  if (width === 1) {
    out[t.name] = element(t, i);
    return;
  }
  if (names && names.length === width) {
    for (let k = 0; k < width; k++) out[names[k]!] = element(t, i * width + k);
    return;
  }
  const row: unknown[] = [];
  for (let k = 0; k < width; k++) row.push(element(t, i * width + k));
  out[t.name] = row;
}

/** What every row of a request shares. */
function rowBase(e: PredictionEntry) {
  return {
    timeMs: e.timeMs,
    model: e.model,
    version: e.version,
    protocol: e.protocol,
    requestId: e.requestId,
    latencyUs: e.latencyUs,
  };
}

/** Expands an answered request into one row per record (or tensor row). */
export function predictionRows(e: PredictionEntry): PredictionRow[] {
  const rows: PredictionRow[] = [];
  const base = rowBase(e);
  if (e.records) {
    e.records.forEach((record, i) => {
      let segments: Record<string, string> | null = e.segments ? { ...e.segments } : null;
      for (const key of e.segmentFields ?? []) {
        const v = record[key];
        if (v === undefined || v === null || key.startsWith('header:')) continue;
        segments ??= {};
        segments[key] = String(v);
      }
      const output = e.predictions?.[i];
      rows.push({
        ...base,
        rowIndex: i,
        inputs: record,
        outputs:
          typeof output === 'object' && output !== null
            ? (output as Record<string, unknown>)
            : { value: output },
        segments,
      });
    });
    return rows;
  }
  const n = e.inputs?.[0]?.shape[0] ?? 0;
  for (let i = 0; i < n; i++) rows.push(tensorPredictionRow(e, i));
  return rows;
}

/** Row `i` of a V2 entry (one of predictionRows' rows, built alone). */
export function tensorPredictionRow(e: PredictionEntry, i: number): PredictionRow {
  const inputs: Record<string, unknown> = {};
  for (const t of e.inputs ?? [])
    tensorRow(t, t.shape[0] ?? 0, i, inputs, e.inputs!.length === 1 ? e.featureNames : undefined);
  const outputs: Record<string, unknown> = {};
  for (const t of e.outputs ?? []) tensorRow(t, t.shape[0] ?? 0, i, outputs);
  return {
    ...rowBase(e),
    rowIndex: i,
    inputs,
    outputs,
    segments: e.segments ? { ...e.segments } : null,
  };
}

/**
 * Where one profile cell of a V2 entry's rows comes from: element `k` of a tensor's row, or
 * (`k` = -1) the whole row, as `tensorRow` keeps a row it cannot name element by element.
 */
interface CellSource {
  tensor: Tensor;
  width: number;
  k: number;
}

/**
 * The profile cells of every row of a V2 entry, worked out once: `columns` are the names
 * `profileCells` gives each row of `tensorPredictionRow`, in the same order, and `cells` reads
 * row `i`'s values straight from the tensors, with no row object in between.
 */
export interface CellPlan {
  columns: string[];
  cells(i: number, out: unknown[]): void;
}

/** A tensor's sources under the names `tensorRow` gives its values. */
function planRow(t: Tensor, out: Record<string, CellSource>, names?: readonly string[]): void {
  const n = t.shape[0] ?? 0;
  const width = n === 0 ? 0 : t.data.length / n;
  if (t.datatype === 'FP16') return;
  if (width === 1) out[t.name] = { tensor: t, width, k: 0 };
  else if (names && names.length === width)
    for (let k = 0; k < width; k++) out[names[k]!] = { tensor: t, width, k };
  else out[t.name] = { tensor: t, width, k: -1 };
}

/** The cell plan of a V2 entry (see CellPlan). */
export function tensorCellPlan(e: PredictionEntry): CellPlan {
  const columns: string[] = [];
  const sources: CellSource[] = [];
  // Objects filled in tensorRow's order, so key order (integer-like names first) and a repeated
  // name's last value come out as they do for a row object.
  const inputs: Record<string, CellSource> = {};
  const names = e.inputs?.length === 1 ? e.featureNames : undefined;
  for (const t of e.inputs ?? []) planRow(t, inputs, names);
  for (const [k, v] of Object.entries(inputs)) {
    if (v.k < 0) continue; // an array: profileCells leaves an input's arrays out
    columns.push(k);
    sources.push(v);
  }
  const outputs: Record<string, CellSource> = {};
  for (const t of e.outputs ?? []) planRow(t, outputs);
  for (const [k, v] of Object.entries(outputs)) {
    const name = `prediction.${k}`;
    if (v.k >= 0) {
      columns.push(name);
      sources.push(v);
    } else if (v.width <= MAX_SPREAD) {
      for (let j = 0; j < v.width; j++) {
        columns.push(`${name}[${j}]`);
        sources.push({ tensor: v.tensor, width: v.width, k: j });
      }
    }
  }
  return {
    columns,
    cells(i, out) {
      for (const s of sources) out.push(element(s.tensor, i * s.width + s.k));
    },
  };
}

/**
 * A row as the window profiles see it: inputs by name, outputs as `prediction.<name>`
 * (`prediction.probabilities.>50K` for an object of class probabilities, `prediction.scores[2]`
 * for a short array); nested or long values are left out.
 */
export function profileCells(
  row: Pick<PredictionRow, 'inputs' | 'outputs'>,
  columns: string[],
  cells: unknown[],
): void {
  for (const [k, v] of Object.entries(row.inputs)) {
    if (v === null || typeof v !== 'object') {
      columns.push(k);
      cells.push(v ?? null);
    }
  }
  for (const [k, v] of Object.entries(row.outputs)) {
    const name = `prediction.${k}`;
    if (v === null || typeof v !== 'object') {
      columns.push(name);
      cells.push(v ?? null);
    } else if (Array.isArray(v)) {
      if (v.length > MAX_SPREAD) continue;
      v.forEach((x, j) => {
        if (x === null || typeof x !== 'object') {
          columns.push(`${name}[${j}]`);
          cells.push(x);
        }
      });
    } else {
      for (const [sub, x] of Object.entries(v as Record<string, unknown>)) {
        if (x === null || typeof x !== 'object') {
          columns.push(`${name}.${sub}`);
          cells.push(x);
        }
      }
    }
  }
}
