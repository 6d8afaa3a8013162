/**
 * Triton's classification extension: a requested output with parameter `classification: n`
 * comes back as its top n classes, a BYTES tensor of "<value>:<index>[:<label>]" strings, shape
 * [batch, n] (or [n] for a model that does not batch). Labels are the model's `label_names`
 * when they name every class of the output. The prediction log keeps the model's own outputs.
 */
import { describeValue, SlipwayError } from '../errors/index.js';
import type { RequestedOutput, Tensor, TensorMetadata } from './types.js';

type NumericData = Exclude<Tensor['data'], string[]>;

const bad = (message: string) => new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);

/**
 * The requested outputs' class counts by name; undefined when none asks for classification.
 * Checked before the model runs: a count that is not a positive integer, an output of strings
 * (the transports refuse a classification asked into shared memory, see checkSharedOutputs).
 */
export function classificationCounts(
  outputs: readonly RequestedOutput[] | undefined,
  signature: readonly TensorMetadata[],
): Map<string, number> | undefined {
  let counts: Map<string, number> | undefined;
  for (const o of outputs ?? []) {
    const n = o.parameters?.classification;
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
      throw bad(
        `output '${o.name}': classification must be a positive integer (classes to return), got ${describeValue(n)}`,
      );
    }
    if (signature.find((t) => t.name === o.name)?.datatype === 'BYTES') {
      throw bad(`output '${o.name}' is BYTES; classification needs an output of numbers`);
    }
    counts ??= new Map();
    counts.set(o.name, n);
  }
  return counts;
}

/**
 * The outputs with each one asked for classification replaced by its top classes (a new array;
 * the tensors given are left as they are). `batched`: the first dimension is the batch, and each
 * row is classified on its own.
 */
export function classifyOutputs(
  outputs: readonly Tensor[],
  counts: ReadonlyMap<string, number>,
  batched: boolean,
  labels: readonly string[] | undefined,
): Tensor[] {
  return outputs.map((t) => {
    const n = counts.get(t.name);
    return n === undefined ? t : classify(t, n, batched, labels);
  });
}

function classify(t: Tensor, count: number, batched: boolean, labels: readonly string[] | undefined): Tensor {
  const values = numbers(t);
  const rows = batched && t.shape.length > 0 ? t.shape[0]! : 1;
  const classes = rows === 0 ? 0 : values.length / rows;
  const k = Math.min(count, classes);
  const named = labels && labels.length === classes ? labels : undefined;
  const out: string[] = new Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const base = r * classes;
    const top = topK(classes, k, (a, b) => compare(values[base + a]!, values[base + b]!) || b - a);
    for (let j = 0; j < k; j++) {
      const i = top[j]!;
      out[r * k + j] = `${format(values[base + i]!, t.datatype)}:${i}${named ? `:${named[i]}` : ''}`;
    }
  }
  return {
    name: t.name,
    datatype: 'BYTES',
    shape: batched && t.shape.length > 0 ? [rows, k] : [k],
    data: out,
  };
}

/**
 * The k best of indexes 0..n-1, best first, by `rank` (positive when a ranks above b): a heap of
 * the k kept so far with the worst at its root, so a large output costs n·log k, not a full sort.
 */
function topK(n: number, k: number, rank: (a: number, b: number) => number): number[] {
  const heap: number[] = [];
  const worse = (a: number, b: number) => rank(a, b) < 0;
  const down = (at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let w = at;
      if (l < heap.length && worse(heap[l]!, heap[w]!)) w = l;
      if (r < heap.length && worse(heap[r]!, heap[w]!)) w = r;
      if (w === at) return;
      [heap[at], heap[w]] = [heap[w]!, heap[at]!];
      at = w;
    }
  };
  for (let i = 0; i < n && k > 0; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let at = heap.length - 1; at > 0; ) {
        const up = (at - 1) >> 1;
        if (!worse(heap[at]!, heap[up]!)) break;
        [heap[at], heap[up]] = [heap[up]!, heap[at]!];
        at = up;
      }
    } else if (rank(i, heap[0]!) > 0) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => rank(b, a));
}

/** Values in a comparable form: numbers, bigints for 64-bit integers, floats for FP16's bits. */
function numbers(t: Tensor): ArrayLike<number | bigint> {
  if (t.datatype === 'FP16') return Array.from(t.data as Uint16Array, halfToFloat);
  return t.data as NumericData;
}

/** Higher first; NaN sorts last, as it compares below every number. */
function compare(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'bigint' || typeof b === 'bigint') return a > b ? 1 : a < b ? -1 : 0;
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
  if (Number.isNaN(b)) return 1;
  return a - b;
}

/** As Triton prints a value (C++'s std::to_string): floats with six decimals, integers whole. */
function format(v: number | bigint, datatype: string): string {
  if (typeof v === 'bigint') return v.toString();
  if (datatype === 'BOOL') return v ? '1' : '0';
  if (datatype !== 'FP16' && datatype !== 'FP32' && datatype !== 'FP64') return String(v);
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (Object.is(v, -0)) return '-0.000000';
  return Math.abs(v) < 1e21 ? v.toFixed(6) : BigInt(Math.trunc(v)).toString() + '.000000';
}

/** An IEEE 754 half-precision value's bits as a number. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
