import type { RowBatch } from '../table.js';
import { compileStep, type FittedStep, Layout, type Op } from './compile.js';
import { parseStep, type Remainder, type StepSpec } from './spec.js';
import { bad, isCategory, normalizeCell, type Value } from './value.js';

/** The stored format name and version; `fromJSON` refuses anything else. */
export const STEPS_FORMAT = 'slipway.steps';
export const STEPS_VERSION = 1;

export interface FittedStepsJson {
  format: typeof STEPS_FORMAT;
  version: typeof STEPS_VERSION;
  /** The dataset version (`adult@3`) or file the steps were fitted on. */
  fitted_on: string;
  /** Rows read when fitting. */
  rows: number;
  /** The table's columns when fitted: the columns a transform reads, by name. */
  columns: string[];
  remainder: Remainder;
  /** The columns a transform writes, in order (derived; checked when loaded). */
  output_columns: string[];
  steps: FittedStep[];
}

/** A transform compiled for one path: ops over slots of a working row. */
interface Program {
  ops: Op[];
  size: number;
  inputs: { name: string; slot: number }[];
  names: string[];
  slots: number[];
}

function compileProgram(
  columns: readonly string[],
  steps: readonly FittedStep[],
  remainder: Remainder,
  mode: 'batch' | 'records',
): Program {
  const layout = new Layout(columns);
  const ops: Op[] = [];
  steps.forEach((s, i) => {
    const op = compileStep(s, layout, `steps[${i}]`, mode);
    if (op) ops.push(op);
  });
  const { names, slots } = layout.outputs(remainder);
  const inputs = [...layout.read].sort((a, b) => a - b).map((slot) => ({ name: columns[slot], slot }));
  return { ops, size: layout.size, inputs, names, slots };
}

/** A transformer for one table: drop_duplicates remembers rows across its batches. */
export interface BatchTransformer {
  transformBatch(batch: RowBatch): RowBatch;
}

/**
 * Fitted cleaning steps: one compiled transform that files (batches) and serving (records) both
 * run, cell by cell through the same code, so training and serving cannot disagree.
 *
 * @example
 *   const fitted = FittedSteps.fromJSON(JSON.parse(await readFile('fitted.json', 'utf8')));
 *   fitted.transformRecords([{ age: 39, workclass: 'State-gov' }]);
 *   // → [{ age: 0.03067…, 'workclass=Federal-gov': 0, …, 'workclass=State-gov': 1, … }]
 */
export class FittedSteps {
  readonly fittedOn: string;
  readonly rows: number;
  /** The table's columns when fitted. */
  readonly columns: readonly string[];
  readonly remainder: Remainder;
  readonly steps: readonly FittedStep[];
  /** Raw columns a record is read for (the rest of a record is ignored), in table order. */
  readonly inputColumns: readonly string[];
  /** Columns a transform produces, in order. */
  readonly outputColumns: readonly string[];
  private readonly records: Program;
  private readonly template: Record<string, Value>;

  constructor(init: {
    fittedOn: string;
    rows: number;
    columns: readonly string[];
    remainder: Remainder;
    steps: readonly FittedStep[];
  }) {
    this.fittedOn = init.fittedOn;
    this.rows = init.rows;
    this.columns = Object.freeze([...init.columns]);
    this.remainder = init.remainder;
    this.steps = Object.freeze([...init.steps]);
    this.records = compileProgram(this.columns, this.steps, this.remainder, 'records');
    this.inputColumns = Object.freeze(this.records.inputs.map((i) => i.name));
    this.outputColumns = Object.freeze([...this.records.names]);
    this.template = Object.fromEntries(this.outputColumns.map((n) => [n, null]));
  }

  /**
   * Transforms records (a serving request's rows, e.g. parsed JSON): a field absent from a
   * record is missing; fields no step or output reads are ignored. Row numbers in errors count
   * from 1. drop_duplicates does not apply here (see the docs).
   */
  transformRecords(records: readonly unknown[]): Record<string, Value>[] {
    const p = this.records;
    const work = new Array<Value>(p.size).fill(null);
    const out = new Array<Record<string, Value>>(records.length);
    const { names, slots } = p;
    const template = this.template;
    for (let i = 0; i < records.length; i++) {
      this.runRecord(work, records[i], i + 1);
      // Cloning a template gives every output object one shape at once (no growth per key).
      const o: Record<string, Value> = { ...template };
      for (let j = 0; j < names.length; j++) o[names[j]] = work[slots[j]];
      out[i] = o;
    }
    return out;
  }

  /**
   * Transforms records into columns: `values[j][i]` is output column `columns[j]` of record i
   * (what a model's input tensors are built from, without an object per record).
   */
  transformRecordsColumnar(records: readonly unknown[]): { columns: readonly string[]; values: Value[][] } {
    const p = this.records;
    const work = new Array<Value>(p.size).fill(null);
    const { slots } = p;
    const values = slots.map(() => new Array<Value>(records.length));
    for (let i = 0; i < records.length; i++) {
      this.runRecord(work, records[i], i + 1);
      for (let j = 0; j < slots.length; j++) values[j][i] = work[slots[j]];
    }
    return { columns: this.outputColumns, values };
  }

  private runRecord(work: Value[], record: unknown, row: number): void {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      bad(`row ${row}: a record must be an object of column values`);
    }
    const r = record as Record<string, unknown>;
    for (const { name, slot } of this.records.inputs) {
      work[slot] = normalizeCell(Object.hasOwn(r, name) ? r[name] : undefined, row, name);
    }
    for (const op of this.records.ops) op(work, row);
  }

  /**
   * A transformer for one table's batches (drop_duplicates spans them). Columns the table lacks
   * are missing in every row, as an absent field of a record is; extra columns are ignored.
   */
  batchTransformer(): BatchTransformer {
    const p = compileProgram(this.columns, this.steps, this.remainder, 'batch');
    const work = new Array<Value>(p.size).fill(null);
    let lastColumns: readonly string[] | null = null;
    let index: number[] = [];
    let written = 0;
    return {
      transformBatch: (batch) => {
        if (batch.columns !== lastColumns) {
          index = p.inputs.map((i) => batch.columns.indexOf(i.name));
          lastColumns = batch.columns;
        }
        const rows: Value[][] = [];
        const inputs = p.inputs;
        const { ops, slots } = p;
        for (let r = 0; r < batch.rows.length; r++) {
          const cells = batch.rows[r];
          const row = batch.firstRow + r;
          for (let k = 0; k < inputs.length; k++) {
            const c = index[k];
            work[inputs[k].slot] = c < 0 ? null : normalizeCell(cells[c], row, inputs[k].name);
          }
          let keep = true;
          for (let o = 0; o < ops.length && keep; o++) keep = ops[o](work, row);
          if (!keep) continue;
          const out = new Array<Value>(slots.length);
          for (let j = 0; j < slots.length; j++) out[j] = work[slots[j]];
          rows.push(out);
        }
        const firstRow = written + 1;
        written += rows.length;
        return { columns: this.outputColumns, rows, firstRow };
      },
    };
  }

  /** One batch on its own (drop_duplicates within it only). */
  transformBatch(batch: RowBatch): RowBatch {
    return this.batchTransformer().transformBatch(batch);
  }

  /** A table's batches, transformed (drop_duplicates across the whole table). */
  async *transformTable(batches: AsyncIterable<RowBatch>): AsyncGenerator<RowBatch> {
    const t = this.batchTransformer();
    for await (const b of batches) yield t.transformBatch(b);
  }

  /** The table's columns the transform reads that `columns` lacks (they will be missing). */
  absentColumns(columns: readonly string[]): string[] {
    const present = new Set(columns);
    return compileProgram(this.columns, this.steps, this.remainder, 'batch')
      .inputs.map((i) => i.name)
      .filter((n) => !present.has(n));
  }

  toJSON(): FittedStepsJson {
    return {
      format: STEPS_FORMAT,
      version: STEPS_VERSION,
      fitted_on: this.fittedOn,
      rows: this.rows,
      columns: [...this.columns],
      remainder: this.remainder,
      output_columns: [...this.outputColumns],
      steps: this.steps.map((s) => ({ ...s })),
    };
  }

  /** Loads fitted steps (the parsed JSON of a fitted file), validating every field. */
  static fromJSON(json: unknown): FittedSteps {
    if (!isFittedStepsJson(json)) {
      return bad(`not fitted steps: expected "format": "${STEPS_FORMAT}" and "version": ${STEPS_VERSION}`);
    }
    const raw = json as unknown as Record<string, unknown>;
    if (typeof raw.fitted_on !== 'string') bad('fitted_on must be a string');
    if (typeof raw.rows !== 'number' || !Number.isSafeInteger(raw.rows) || raw.rows < 0) {
      bad('rows must be a non-negative integer');
    }
    if (!Array.isArray(raw.columns) || !raw.columns.every((c) => typeof c === 'string')) {
      bad('columns must be an array of column names');
    }
    if (raw.remainder !== 'passthrough' && raw.remainder !== 'drop')
      bad('remainder must be one of passthrough, drop');
    if (!Array.isArray(raw.steps)) bad('steps must be an array of fitted steps');
    const steps = (raw.steps as unknown[]).map((s, i) => parseFittedStep(s, `steps[${i}]`));
    const fitted = new FittedSteps({
      fittedOn: raw.fitted_on as string,
      rows: raw.rows as number,
      columns: raw.columns as string[],
      remainder: raw.remainder as Remainder,
      steps,
    });
    const stored = raw.output_columns;
    if (
      stored !== undefined &&
      (!Array.isArray(stored) ||
        stored.length !== fitted.outputColumns.length ||
        stored.some((c, i) => c !== fitted.outputColumns[i]))
    ) {
      bad('output_columns does not match the columns the steps produce (was the file edited?)');
    }
    return fitted;
  }
}

/** Whether parsed JSON claims to be fitted steps (a spec has no format). */
export function isFittedStepsJson(json: unknown): json is FittedStepsJson {
  return (
    json !== null &&
    typeof json === 'object' &&
    (json as Record<string, unknown>).format === STEPS_FORMAT &&
    (json as Record<string, unknown>).version === STEPS_VERSION
  );
}

type Raw = Record<string, unknown>;

function finiteField(p: Raw, key: string, at: string): number {
  const v = p[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) return bad(`${at}.${key} must be a finite number`);
  return v;
}

function countField(p: Raw, at: string): number {
  const v = p.n;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    return bad(`${at}.n must be a non-negative integer`);
  return v;
}

/** Whether a step learns its parameters for `column` from data. */
export function learnsColumn(step: StepSpec, column: string): boolean {
  switch (step.step) {
    case 'impute':
      return step.strategy !== 'constant';
    case 'clip':
      return step.lower_quantile !== undefined || step.upper_quantile !== undefined;
    case 'standardize':
    case 'min_max_scale':
      return true;
    case 'one_hot':
    case 'ordinal':
      return step.categories?.[column] === undefined;
    default:
      return false;
  }
}

function parseFittedStep(value: unknown, at: string): FittedStep {
  const spec = parseStep(value, at, ['fitted']);
  const learned = spec.columns?.filter((c) => learnsColumn(spec, c)) ?? [];
  const rawFitted = (value as Raw).fitted;
  if (learned.length === 0) {
    if (rawFitted !== undefined) bad(`${at}.fitted: ${spec.step} learns nothing here`);
    return spec as FittedStep;
  }
  if (rawFitted === null || typeof rawFitted !== 'object' || Array.isArray(rawFitted)) {
    return bad(`${at}.fitted must be an object of learned parameters per column: the step is not fitted`);
  }
  for (const key of Object.keys(rawFitted)) {
    if (!learned.includes(key)) bad(`${at}.fitted.${key}: not a column this step learns`);
  }
  const fitted: Record<string, unknown> = {};
  for (const column of learned) {
    const here = `${at}.fitted.${column}`;
    const p = (rawFitted as Raw)[column];
    if (p === null || typeof p !== 'object' || Array.isArray(p)) return bad(`${here} is missing`);
    const q = p as Raw;
    switch (spec.step) {
      case 'impute':
        if (!isCategory(q.value)) bad(`${here}.value must be a string, a finite number or a boolean`);
        if (typeof q.exact !== 'boolean') bad(`${here}.exact must be true or false`);
        fitted[column] = { value: q.value, n: countField(q, here), exact: q.exact };
        break;
      case 'clip': {
        const c: Record<string, unknown> = { n: countField(q, here), exact: q.exact };
        if (typeof q.exact !== 'boolean') bad(`${here}.exact must be true or false`);
        if (spec.lower_quantile !== undefined) c.min = finiteField(q, 'min', here);
        if (spec.upper_quantile !== undefined) c.max = finiteField(q, 'max', here);
        fitted[column] = c;
        break;
      }
      case 'standardize': {
        const scale = finiteField(q, 'scale', here);
        if (!(scale > 0)) bad(`${here}.scale must be positive`);
        fitted[column] = { mean: finiteField(q, 'mean', here), scale, n: countField(q, here) };
        break;
      }
      case 'min_max_scale':
        fitted[column] = {
          data_min: finiteField(q, 'data_min', here),
          data_max: finiteField(q, 'data_max', here),
          scale: finiteField(q, 'scale', here),
          min: finiteField(q, 'min', here),
          n: countField(q, here),
        };
        break;
      case 'one_hot':
      case 'ordinal': {
        const list = q.categories;
        if (!Array.isArray(list) || !list.every(isCategory) || new Set(list).size !== list.length) {
          bad(`${here}.categories must be an array of distinct strings, finite numbers or booleans`);
        }
        fitted[column] = { categories: list };
        break;
      }
    }
  }
  return { ...spec, fitted } as FittedStep;
}
