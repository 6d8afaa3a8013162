import {
  classifierPredictions,
  type Datatype,
  fromBytes,
  type Prediction,
  type PredictionEntry,
  type Tensor,
} from '../inference/index.js';
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
  /** In a binary batch's header: the tensor's byte length in the payload. */
  bytes?: number;
  /** The tensor's bytes, once read from a binary batch's payload (never stored in JSON). */
  raw?: Uint8Array;
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
  /** The model's class names when it was served (config.json's `label_names`). */
  label_names?: string[];
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

/** The batch a flush writes for one model version's records-API requests: records as columns. */
export class RecordBatchBuilder {
  startMs = Number.POSITIVE_INFINITY;
  endMs = Number.NEGATIVE_INFINITY;
  private readonly fields: RowFields = emptyFields();
  private readonly inputs: Record<string, unknown[]> = {};
  private readonly outputs: Record<string, unknown[]> = {};

  constructor(
    readonly model: string,
    readonly version: string,
  ) {}

  get rows(): number {
    return this.fields.row.length;
  }

  add(e: PredictionEntry): void {
    const f = this.fields;
    for (const r of predictionRows(e)) {
      const n = f.row.length;
      f.request_id.push(e.requestId);
      f.row.push(r.rowIndex);
      f.time_ms.push(e.timeMs);
      f.latency_us.push(e.latencyUs);
      f.protocol.push(e.protocol);
      if (r.segments) put(f.segments, r.segments, n);
      put(this.inputs, r.inputs, n);
      put(this.outputs, r.outputs, n);
      if (e.timeMs < this.startMs) this.startMs = e.timeMs;
      if (e.timeMs > this.endMs) this.endMs = e.timeMs;
    }
  }

  finish(): RecordColumns {
    const n = this.rows;
    pad([this.inputs, this.outputs, this.fields.segments], n);
    return { kind: 'records', ...this.fields, inputs: this.inputs, outputs: this.outputs };
  }
}

type NumericData = Exclude<Tensor['data'], string[]>;
type NumericArrayConstructor = new (length: number) => NumericData;

/** One tensor position of a batch: every row's elements, in an array of the tensor's type (strings for BYTES). */
export interface GatheredTensor {
  name: string;
  datatype: Datatype;
  /** Elements per row. */
  width: number;
  /** The elements gathered so far are `data.subarray(0, length)`. */
  data?: NumericData;
  length: number;
  strings?: string[];
}

/**
 * Numbers kept per row of a tensor batch: time (ms), latency (µs), row index in its request, the
 * protocol (an index into the batch's `protocols`), and where its request id starts and ends in
 * the batch's `ids` bytes.
 */
const PER_ROW = 6;
const TIME = 0;
const LATENCY = 1;
const ROW = 2;
const PROTOCOL = 3;
const ID_START = 4;
const ID_END = 5;

/**
 * Gathered bytes of one batch after which it goes to the writer without waiting for the flush.
 * The writer's work on a batch (copying its payload into the page cache, syncing it, profiling a
 * sample) runs in one stretch: at a second's worth of traffic a stretch took tens of
 * milliseconds, and the serving threads sharing its cores answered slower for that long. Bounded
 * by size, a stretch stays a few milliseconds whatever the traffic.
 */
export const HANDOFF_BYTES = 512 * 1024;

/**
 * An entry's bytes per row as gathered: its tensors' elements (a BYTES element, whose size
 * varies, taken as 16), the row numbers and its id.
 */
function rowBytes(e: PredictionEntry): number {
  let bytes = PER_ROW * 8 + e.requestId.length;
  for (const t of [...(e.inputs ?? []), ...(e.outputs ?? [])]) {
    const width = widthOf(t);
    bytes += t.datatype === 'BYTES' ? width * 16 : width * (t.data as NumericData).BYTES_PER_ELEMENT;
  }
  return bytes;
}

/** A request id's UTF-8 bytes take at most three per UTF-16 unit. */
const MAX_UTF8_PER_UNIT = 3;

/**
 * V2 predictions of one model version and one signature, gathered where they are served: each
 * tensor's elements copied into a growing array of its type, each row's numbers into one
 * Float64Array and each request id's bytes into one buffer, so no request object (not even its
 * id string) outlives its request. Its buffers can be transferred to another thread as they are.
 */
export interface TensorBatch {
  kind: 'tensors';
  model: string;
  version: string;
  rows: number;
  startMs: number;
  endMs: number;
  /**
   * Request ids as UTF-8, one after the other (a request of several rows has its id once): a
   * Buffer where it is gathered, a Uint8Array on the thread it is transferred to.
   */
  ids: Uint8Array;
  idBytes: number;
  /** The protocols of the batch's rows (each row keeps an index). */
  protocols: string[];
  /** PER_ROW numbers a row: time_ms, latency_us, row, protocol, id start and end. */
  numbers: Float64Array;
  segments: Record<string, (string | null)[]>;
  inputs: GatheredTensor[];
  outputs: GatheredTensor[];
  featureNames?: string[];
  labelNames?: string[];
}

/** A gathered row's latency (µs). */
export function rowLatency(b: TensorBatch, i: number): number {
  return b.numbers[i * PER_ROW + LATENCY]!;
}

/** A gathered row's time (ms). */
export function rowTime(b: TensorBatch, i: number): number {
  return b.numbers[i * PER_ROW + TIME]!;
}

function widthOf(t: Tensor): number {
  const n = t.shape[0] ?? 0;
  return n === 0 ? 0 : t.data.length / n;
}

function sameTensors(gathered: readonly GatheredTensor[], tensors: readonly Tensor[] | undefined): boolean {
  const ts = tensors ?? [];
  if (ts.length !== gathered.length) return false;
  for (let k = 0; k < ts.length; k++) {
    const g = gathered[k]!;
    const t = ts[k]!;
    if (g.name !== t.name || g.datatype !== t.datatype || g.width !== widthOf(t)) return false;
  }
  return true;
}

/** Most bytes a BufferPool keeps for reuse; buffers given back beyond it are left to the collector. */
const POOL_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The buffers of batches the writer has stored, given back to be gathered into again. Several
 * megabytes a second allocated afresh live outside V8's heap and are freed only by full
 * collections, in the thread that gathers them and in the writer's, where they end; reused, the
 * same few buffers go back and forth. A buffer is taken for a need between a quarter of its size
 * and its size, so a large one is not tied up by a small need.
 */
export class BufferPool {
  private free: ArrayBuffer[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes = POOL_MAX_BYTES) {}

  /** A buffer of at least `bytes` (its content is stale). */
  take(bytes: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i]!.byteLength;
      if (size >= bytes && size <= 4 * bytes && (best < 0 || size < this.free[best]!.byteLength)) best = i;
    }
    if (best < 0) return new ArrayBuffer(bytes);
    const buffer = this.free[best]!;
    this.free[best] = this.free[this.free.length - 1]!;
    this.free.pop();
    this.bytes -= buffer.byteLength;
    return buffer;
  }

  /** Gives buffers back (detached ones, and any beyond the bound, are dropped). */
  release(buffers: readonly ArrayBuffer[]): void {
    for (const b of buffers) {
      if (b.byteLength === 0 || this.bytes + b.byteLength > this.maxBytes) continue;
      this.free.push(b);
      this.bytes += b.byteLength;
    }
  }

  /** Bytes kept for reuse. */
  get size(): number {
    return this.bytes;
  }
}

/** An array of `Ctor`'s type over a pooled buffer, holding at least `elements` (all the buffer fits). */
function pooled<T extends NumericData>(Ctor: NumericArrayConstructor, elements: number, pool: BufferPool): T {
  const bpe = (Ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const buffer = pool.take(elements * bpe);
  const View = Ctor as unknown as new (buffer: ArrayBuffer, offset: number, length: number) => T;
  return new View(buffer, 0, Math.floor(buffer.byteLength / bpe));
}

/** A new gathered tensor, sized for `elements` (the last batch's: one allocation a flush, not a doubling series). */
function gather(t: Tensor, elements: number, pool: BufferPool): GatheredTensor {
  const g: GatheredTensor = { name: t.name, datatype: t.datatype, width: widthOf(t), length: 0 };
  if (t.datatype === 'BYTES') g.strings = [];
  else {
    const Ctor = (t.data as NumericData).constructor as NumericArrayConstructor;
    g.data = pooled(Ctor, Math.max(256, Math.ceil(elements * 1.25)), pool);
  }
  return g;
}

/**
 * `array` when it holds `needed` elements, else a copy of its first `used` in one at least twice
 * the size (the old one goes back to the pool).
 */
function withCapacity<T extends NumericData>(array: T, used: number, needed: number, pool: BufferPool): T {
  if (needed <= array.length) return array;
  const grown = pooled<T>(
    array.constructor as NumericArrayConstructor,
    Math.max(needed, array.length * 2),
    pool,
  );
  grown.set(array.subarray(0, used) as never);
  pool.release([array.buffer as ArrayBuffer]);
  return grown;
}

function append(g: GatheredTensor, t: Tensor, pool: BufferPool): void {
  if (g.strings) {
    for (const s of t.data as string[]) g.strings.push(s);
    return;
  }
  const d = t.data as NumericData;
  const end = g.length + d.length;
  const into = withCapacity(g.data!, g.length, end, pool);
  g.data = into;
  if (d.length === 1) (into as unknown as unknown[])[g.length] = d[0];
  else into.set(d as never, g.length);
  g.length = end;
}

/**
 * Gathers V2 entries of one model version and signature into a TensorBatch as they arrive; the
 * log hands the batch to its writer and starts a new one.
 */
export class TensorAccumulator {
  private batch: TensorBatch;
  /** Requests in the batch gathered so far (a request may hold several rows). */
  entries = 0;
  /**
   * Rows after which the batch is handed to the writer before the flush: about
   * HANDOFF_BYTES of gathered data at the first entry's size per row.
   */
  readonly handoffRows: number;

  constructor(
    readonly model: string,
    readonly version: string,
    private readonly like: PredictionEntry,
    private readonly pool: BufferPool = new BufferPool(),
  ) {
    this.batch = this.empty();
    this.handoffRows = Math.max(256, Math.floor(HANDOFF_BYTES / rowBytes(like)));
  }

  private empty(last?: TensorBatch): TensorBatch {
    const e = this.like;
    const pool = this.pool;
    const b: TensorBatch = {
      kind: 'tensors',
      model: this.model,
      version: this.version,
      rows: 0,
      startMs: Number.POSITIVE_INFINITY,
      endMs: Number.NEGATIVE_INFINITY,
      // A whole buffer of its own, never a slice of Buffer's shared pool: it is transferred.
      ids: Buffer.from(pool.take(Math.max(4096, Math.ceil((last?.idBytes ?? 0) * 1.25)))),
      idBytes: 0,
      protocols: [],
      numbers: pooled(Float64Array, Math.max(256, Math.ceil((last?.rows ?? 0) * 1.25)) * PER_ROW, pool),
      segments: {},
      inputs: (e.inputs ?? []).map((t, k) => gather(t, last?.inputs[k]?.length ?? 0, pool)),
      outputs: (e.outputs ?? []).map((t, k) => gather(t, last?.outputs[k]?.length ?? 0, pool)),
    };
    if (e.featureNames) b.featureNames = [...e.featureNames];
    if (e.labelNames) b.labelNames = [...e.labelNames];
    return b;
  }

  get rows(): number {
    return this.batch.rows;
  }

  /** Whether an entry has this batch's tensors (names, datatypes and row widths). */
  matches(e: PredictionEntry): boolean {
    return sameTensors(this.batch.inputs, e.inputs) && sameTensors(this.batch.outputs, e.outputs);
  }

  add(e: PredictionEntry): void {
    const b = this.batch;
    const n = e.inputs?.[0]?.shape[0] ?? 0;
    this.entries++;
    b.numbers = withCapacity(b.numbers, b.rows * PER_ROW, (b.rows + n) * PER_ROW, this.pool);
    const id = e.requestId;
    if (b.idBytes + MAX_UTF8_PER_UNIT * id.length > b.ids.length) {
      const grown = Buffer.from(
        this.pool.take(Math.max(2 * b.ids.length, b.idBytes + MAX_UTF8_PER_UNIT * id.length)),
      );
      grown.set(b.ids.subarray(0, b.idBytes));
      this.pool.release([b.ids.buffer as ArrayBuffer]);
      b.ids = grown;
    }
    const idStart = b.idBytes;
    b.idBytes += (b.ids as Buffer).write(id, idStart);
    let protocol = b.protocols.indexOf(e.protocol);
    if (protocol < 0) protocol = b.protocols.push(e.protocol) - 1;
    for (let i = 0; i < n; i++) {
      if (e.segments) put(b.segments, e.segments, b.rows);
      const at = b.rows * PER_ROW;
      b.numbers[at + TIME] = e.timeMs;
      b.numbers[at + LATENCY] = e.latencyUs;
      b.numbers[at + ROW] = i;
      b.numbers[at + PROTOCOL] = protocol;
      b.numbers[at + ID_START] = idStart;
      b.numbers[at + ID_END] = b.idBytes;
      b.rows++;
    }
    if (e.timeMs < b.startMs) b.startMs = e.timeMs;
    if (e.timeMs > b.endMs) b.endMs = e.timeMs;
    const inputs = e.inputs ?? [];
    for (let k = 0; k < inputs.length; k++) append(b.inputs[k]!, inputs[k]!, this.pool);
    const outputs = e.outputs ?? [];
    for (let k = 0; k < outputs.length; k++) append(b.outputs[k]!, outputs[k]!, this.pool);
  }

  /** The batch gathered so far (its segments padded); the accumulator starts an empty one. */
  take(): TensorBatch {
    const b = this.batch;
    pad([b.segments], b.rows);
    this.batch = this.empty(b);
    this.entries = 0;
    return b;
  }
}

/** The buffers of tensor batches, to transfer rather than copy. */
export function transferables(batches: readonly TensorBatch[]): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const b of batches) {
    out.push(b.numbers.buffer as ArrayBuffer, b.ids.buffer as ArrayBuffer);
    for (const g of [...b.inputs, ...b.outputs]) if (g.data) out.push(g.data.buffer as ArrayBuffer);
  }
  return out;
}

function bytesOf(g: GatheredTensor): Uint8Array {
  const d = g.data!;
  return new Uint8Array(d.buffer, d.byteOffset, g.length * d.BYTES_PER_ELEMENT);
}

/** A gathered tensor as a stored one: BYTES as strings, others with their bytes at hand (`raw`). */
function storedTensor(g: GatheredTensor): StoredTensor {
  const t = { name: g.name, datatype: g.datatype, width: g.width };
  return g.strings ? { ...t, strings: g.strings } : { ...t, raw: bytesOf(g) };
}

/**
 * A batch's per-row fields as columns, from its numbers (`perRow` a row), its request ids'
 * UTF-8 bytes and its protocols.
 */
function rowFields(
  numbers: Float64Array,
  perRow: number,
  rows: number,
  idBytes: Uint8Array,
  protocols: readonly string[],
): Omit<RowFields, 'segments'> {
  const column = (k: number) => {
    const out = new Array<number>(rows);
    for (let i = 0; i < rows; i++) out[i] = numbers[i * perRow + k]!;
    return out;
  };
  const ids = Buffer.from(idBytes.buffer, idBytes.byteOffset, idBytes.byteLength);
  const requestIds = new Array<string>(rows);
  let id = '';
  let idEnd = -1;
  for (let i = 0; i < rows; i++) {
    // The rows of one request share their id's bytes (and so one string).
    const end = numbers[i * perRow + ID_END]!;
    if (end !== idEnd) {
      idEnd = end;
      id = ids.toString('utf8', numbers[i * perRow + ID_START]!, end);
    }
    requestIds[i] = id;
  }
  return {
    request_id: requestIds,
    row: column(ROW),
    time_ms: column(TIME),
    latency_us: column(LATENCY),
    protocol: column(PROTOCOL).map((k) => protocols[k]!),
  };
}

/**
 * The JSON header of a tensor batch stored in binary: the payload beside it holds, each section
 * starting at a multiple of 8 bytes, the rows' numbers (`perRow` doubles a row: time, latency,
 * row, protocol index, request id start and end), the request ids' UTF-8 bytes (`idBytes`), then
 * each numeric tensor's bytes (inputs, then outputs) as `bytes` says. BYTES tensors stay in the
 * header as strings.
 */
export interface TensorBatchHeader {
  kind: 'tensors-binary';
  rows: number;
  perRow: number;
  idBytes: number;
  protocols: string[];
  segments: Record<string, (string | null)[]>;
  inputs: StoredTensor[];
  outputs: StoredTensor[];
  feature_names?: string[];
  label_names?: string[];
}

const padded = (n: number) => (n + 7) & ~7;

/** Zero bytes that pad a payload's sections to 8-byte boundaries. */
const PADDING = new Uint8Array(8);

/**
 * A gathered batch as stored in binary: a small JSON header and one payload of its buffers as
 * they are (no base64, no number or id turned into text), here as the payload's sections in
 * order, each followed by its padding to 8 bytes, over the batch's own buffers: a writer can
 * hand them to `writev` without copying them into one buffer first.
 */
export function tensorBatchSections(b: TensorBatch): {
  header: TensorBatchHeader;
  sections: Uint8Array[];
  bytes: number;
} {
  const data: Uint8Array[] = [
    new Uint8Array(b.numbers.buffer, b.numbers.byteOffset, b.rows * PER_ROW * 8),
    b.ids.subarray(0, b.idBytes),
  ];
  // The header names each numeric tensor's byte length; its bytes go to the payload.
  const stored = (g: GatheredTensor): StoredTensor => {
    const { raw, ...t } = storedTensor(g);
    if (!raw) return t;
    data.push(raw);
    return { ...t, bytes: raw.byteLength };
  };
  const header: TensorBatchHeader = {
    kind: 'tensors-binary',
    rows: b.rows,
    perRow: PER_ROW,
    idBytes: b.idBytes,
    protocols: b.protocols,
    segments: b.segments,
    inputs: b.inputs.map(stored),
    outputs: b.outputs.map(stored),
  };
  if (b.featureNames) header.feature_names = b.featureNames;
  if (b.labelNames) header.label_names = b.labelNames;
  const sections: Uint8Array[] = [];
  let bytes = 0;
  for (const d of data) {
    sections.push(d);
    const pad = padded(d.byteLength) - d.byteLength;
    if (pad > 0) sections.push(PADDING.subarray(0, pad));
    bytes += d.byteLength + pad;
  }
  return { header, sections, bytes };
}

/**
 * A gathered batch as stored in binary, its payload in one buffer (for a database row).
 * `allocate` gives the payload's bytes (their content is overwritten), so a writer can reuse
 * one region flush after flush.
 */
export function tensorBatchStorage(
  b: TensorBatch,
  allocate: (bytes: number) => Buffer = (bytes) => Buffer.alloc(bytes),
): { header: TensorBatchHeader; payload: Buffer } {
  const { header, sections, bytes } = tensorBatchSections(b);
  const payload = allocate(bytes);
  let at = 0;
  for (const section of sections) {
    payload.set(section, at);
    at += section.byteLength;
  }
  return { header, payload };
}

/** A stored batch's columns: its JSON as it is, or a binary batch's header and payload read back. */
export function storedColumns(data: string, payload: Uint8Array | null): BatchColumns {
  const parsed = JSON.parse(data) as BatchColumns | TensorBatchHeader;
  if (parsed.kind !== 'tensors-binary') return parsed;
  if (!payload) throw new Error('a binary prediction batch without its payload');
  const h = parsed;
  let at = 0;
  const take = (n: number): Uint8Array => {
    if (at + n > payload.byteLength)
      throw new Error('a binary prediction batch shorter than its header says');
    const section = payload.subarray(at, at + n);
    at += padded(n);
    return section;
  };
  const numberBytes = take(h.rows * h.perRow * 8);
  const numbers = new Float64Array(new Uint8Array(numberBytes).buffer);
  const idSection = take(h.idBytes);
  const withRaw = (t: StoredTensor): StoredTensor => (t.strings ? t : { ...t, raw: take(t.bytes ?? 0) });
  const inputs = h.inputs.map(withRaw);
  const outputs = h.outputs.map(withRaw);
  const out: TensorColumns = {
    kind: 'tensors',
    ...rowFields(numbers, h.perRow, h.rows, idSection, h.protocols),
    segments: h.segments,
    inputs,
    outputs,
  };
  if (h.feature_names) out.feature_names = h.feature_names;
  if (h.label_names) out.label_names = h.label_names;
  return out;
}

/** A gathered batch's tensors decoded, as one entry over all its rows (for window profiles). */
export function batchEntry(b: TensorBatch): PredictionEntry {
  const decoded = (g: GatheredTensor): Tensor => decode(storedTensor(g), b.rows);
  return {
    timeMs: 0,
    model: b.model,
    version: b.version,
    protocol: '',
    requestId: '',
    latencyUs: 0,
    inputs: b.inputs.map(decoded),
    outputs: b.outputs.map(decoded),
    ...(b.featureNames ? { featureNames: b.featureNames } : {}),
  };
}

/**
 * A stored tensor back as a tensor of `rows` rows: from its bytes when they are at hand (`raw`),
 * else from the base64 of a batch stored as JSON (before 0421).
 */
function decode(t: StoredTensor, rows: number): Tensor {
  const shape = t.width === 1 ? [rows] : [rows, t.width];
  if (t.strings) return { name: t.name, datatype: t.datatype, shape, data: t.strings };
  const raw = t.raw;
  const bytes = raw
    ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength)
    : Buffer.from(t.b64 ?? '', 'base64');
  return { name: t.name, datatype: t.datatype, shape, data: fromBytes(t.datatype, bytes, t.name) };
}

/**
 * A stored V2 batch's rows as a classifier's answers (label and probabilities by class name), in
 * batchRows' order; undefined for a records batch (its predictions are stored so already) and for
 * a model whose outputs are not a classifier's.
 */
export function batchClassPredictions(
  d: BatchColumns,
  /** Class names for a batch stored without them (logged before the log kept them). */
  labelNames?: readonly string[],
): Prediction[] | undefined {
  if (d.kind !== 'tensors') return undefined;
  const n = d.row.length;
  return classifierPredictions(
    d.outputs.map((t) => decode(t, n)),
    d.label_names ?? labelNames,
    n,
  );
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
