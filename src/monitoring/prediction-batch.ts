import { type Datatype, fromBytes, type PredictionEntry, type Tensor } from '../inference/index.js';
import type { PredictionRow } from './prediction-rows.js';
import { predictionRows } from './prediction-rows.js';

/** Per-row fields every batch has, one element per row. */
interface RowFields {
  request_id: string[];
  row: number[];
  time_ms: number[];
  latency_us: number[];
  protocol: string[];
  segments: Record<string, (string | null)[]>;
}

/** Records-API predictions, column by column (null where a row lacks the field). */
export interface RecordColumns extends RowFields {
  kind?: 'records';
  inputs: Record<string, unknown[]>;
  outputs: Record<string, unknown[]>;
}

/** One tensor of every row, concatenated: raw little-endian bytes in base64, or strings for BYTES. */
export interface StoredTensor {
  name: string;
  datatype: Datatype;
  /** Elements per row. */
  width: number;
  b64?: string;
  strings?: string[];
}

/**
 * V2 predictions of one input/output signature: the tensors as they came, concatenated along
 * the first dimension — storing them costs a copy and a base64 pass, not a value at a time.
 */
export interface TensorColumns extends RowFields {
  kind: 'tensors';
  inputs: StoredTensor[];
  outputs: StoredTensor[];
  feature_names?: string[];
}

export type BatchColumns = RecordColumns | TensorColumns;

function emptyFields(): RowFields {
  return { request_id: [], row: [], time_ms: [], latency_us: [], protocol: [], segments: {} };
}

function put(columns: Record<string, unknown[]>, values: Record<string, unknown>, n: number): void {
  for (const key in values) {
    let column = columns[key];
    if (!column) {
      column = [];
      columns[key] = column;
    }
    while (column.length < n) column.push(null);
    column.push(values[key] ?? null);
  }
}

function pad(groups: Record<string, unknown[]>[], n: number): void {
  for (const group of groups)
    for (const column of Object.values(group)) while (column.length < n) column.push(null);
}

/** The batch a flush writes for one model version and one shape of request. */
export interface BatchBuilder {
  readonly model: string;
  readonly version: string;
  startMs: number;
  endMs: number;
  readonly rows: number;
  add(entry: PredictionEntry): void;
  finish(): BatchColumns;
}

abstract class Builder {
  startMs = Number.POSITIVE_INFINITY;
  endMs = Number.NEGATIVE_INFINITY;
  protected readonly fields: RowFields = emptyFields();

  constructor(
    readonly model: string,
    readonly version: string,
  ) {}

  get rows(): number {
    return this.fields.row.length;
  }

  protected addRow(e: PredictionEntry, row: number, segments: Readonly<Record<string, string>> | null): void {
    const f = this.fields;
    const n = f.row.length;
    f.request_id.push(e.requestId);
    f.row.push(row);
    f.time_ms.push(e.timeMs);
    f.latency_us.push(e.latencyUs);
    f.protocol.push(e.protocol);
    if (segments) put(f.segments, segments, n);
    if (e.timeMs < this.startMs) this.startMs = e.timeMs;
    if (e.timeMs > this.endMs) this.endMs = e.timeMs;
  }
}

export class RecordBatchBuilder extends Builder implements BatchBuilder {
  private readonly inputs: Record<string, unknown[]> = {};
  private readonly outputs: Record<string, unknown[]> = {};

  add(e: PredictionEntry): void {
    for (const r of predictionRows(e)) {
      const n = this.rows;
      this.addRow(e, r.rowIndex, r.segments);
      put(this.inputs, r.inputs, n);
      put(this.outputs, r.outputs, n);
    }
  }

  finish(): RecordColumns {
    const n = this.rows;
    pad([this.inputs, this.outputs, this.fields.segments], n);
    return { kind: 'records', ...this.fields, inputs: this.inputs, outputs: this.outputs };
  }
}

/** A request's tensors' names, datatypes and row widths: entries alike share a tensor batch. */
export function tensorSignature(e: PredictionEntry): string {
  let s = '';
  for (const group of [e.inputs ?? [], e.outputs ?? []]) {
    for (const t of group) {
      const n = t.shape[0] ?? 0;
      s += `${t.name}:${t.datatype}:${n === 0 ? 0 : t.data.length / n};`;
    }
    s += '|';
  }
  return s;
}

export class TensorBatchBuilder extends Builder implements BatchBuilder {
  private readonly inputs: Tensor[][] = [];
  private readonly outputs: Tensor[][] = [];
  private featureNames?: readonly string[];

  add(e: PredictionEntry): void {
    const n = e.inputs?.[0]?.shape[0] ?? 0;
    for (let i = 0; i < n; i++) this.addRow(e, i, e.segments ?? null);
    this.inputs.push([...(e.inputs ?? [])]);
    this.outputs.push([...(e.outputs ?? [])]);
    if (e.featureNames) this.featureNames = e.featureNames;
  }

  finish(): TensorColumns {
    pad([this.fields.segments], this.rows);
    const out: TensorColumns = {
      kind: 'tensors',
      ...this.fields,
      inputs: concat(this.inputs),
      outputs: concat(this.outputs),
    };
    if (this.featureNames) out.feature_names = [...this.featureNames];
    return out;
  }
}

/** Each tensor position's data across requests, joined. */
function concat(perRequest: Tensor[][]): StoredTensor[] {
  const first = perRequest[0] ?? [];
  return first.map((t, k) => {
    const n = t.shape[0] ?? 0;
    const width = n === 0 ? 0 : t.data.length / n;
    if (t.datatype === 'BYTES') {
      const strings: string[] = [];
      for (const req of perRequest) for (const s of req[k]!.data as string[]) strings.push(s);
      return { name: t.name, datatype: t.datatype, width, strings };
    }
    const parts = perRequest.map((req) => {
      const d = req[k]!.data as Exclude<Tensor['data'], string[]>;
      return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    });
    return { name: t.name, datatype: t.datatype, width, b64: Buffer.concat(parts).toString('base64') };
  });
}

/** A stored tensor back as a tensor of `rows` rows. */
function decode(t: StoredTensor, rows: number): Tensor {
  const shape = t.width === 1 ? [rows] : [rows, t.width];
  if (t.strings) return { name: t.name, datatype: t.datatype, shape, data: t.strings };
  const bytes = Buffer.from(t.b64 ?? '', 'base64');
  return { name: t.name, datatype: t.datatype, shape, data: fromBytes(t.datatype, bytes, t.name) };
}

/** The rows of a stored batch, in order. */
export function batchRows(model: string, version: string, d: BatchColumns): PredictionRow[] {
  const rows: PredictionRow[] = [];
  const n = d.row.length;
  const segmentsOf = (i: number) => {
    let s: Record<string, string> | null = null;
    for (const key in d.segments) {
      const v = d.segments[key]![i];
      if (v === null || v === undefined) continue;
      s ??= {};
      s[key] = v;
    }
    return s;
  };
  if (d.kind === 'tensors') {
    // Rebuild one entry over the whole batch and expand it as the log expands a request.
    const expanded = predictionRows({
      timeMs: 0,
      model,
      version,
      protocol: '',
      requestId: '',
      latencyUs: 0,
      inputs: d.inputs.map((t) => decode(t, n)),
      outputs: d.outputs.map((t) => decode(t, n)),
      ...(d.feature_names ? { featureNames: d.feature_names } : {}),
    });
    expanded.forEach((r, i) => {
      rows.push({
        ...r,
        timeMs: d.time_ms[i]!,
        protocol: d.protocol[i]!,
        requestId: d.request_id[i]!,
        rowIndex: d.row[i]!,
        latencyUs: d.latency_us[i]!,
        segments: segmentsOf(i),
      });
    });
    return rows;
  }
  const pick = (group: Record<string, unknown[]>, i: number) => {
    const out: Record<string, unknown> = {};
    for (const key in group) {
      const v = group[key]![i];
      if (v !== null && v !== undefined) out[key] = v;
    }
    return out;
  };
  for (let i = 0; i < n; i++) {
    rows.push({
      timeMs: d.time_ms[i]!,
      model,
      version,
      protocol: d.protocol[i]!,
      requestId: d.request_id[i]!,
      rowIndex: d.row[i]!,
      latencyUs: d.latency_us[i]!,
      inputs: pick(d.inputs, i),
      outputs: pick(d.outputs, i),
      segments: segmentsOf(i),
    });
  }
  return rows;
}
