/**
 * What a model version checks (and prepares) before inference: a schema for its rows and
 * cleaning steps for the records API, both read from files that travel with the version
 * (`schema.json`, `steps.json`). Inference only knows this interface; src/data implements it and
 * app.ts wires the two together.
 */

/** One problem with one row (or, with `row` null, with the request as a whole). */
export interface RowProblem {
  /** 1-based row of the request (instance or tensor row); null for a missing or forbidden column. */
  row: number | null;
  field: string | null;
  rule: string;
  value: unknown;
  expected: string;
}

export interface InputPolicy {
  /** Whether the schema's columns are checked on V2 requests too (false when steps transform records first). */
  readonly checksTensors: boolean;
  /**
   * Checks rows given as named columns and returns every problem, by row. `rows[i][k]` is the
   * cell of `columns[k]` (undefined or null when absent).
   */
  check(columns: readonly string[], rows: readonly (readonly unknown[])[]): RowProblem[];
  /** Turns valid records into what the model's inputs read (cleaning steps); absent when there are none. */
  prepare?(records: Record<string, unknown>[]): Record<string, unknown>[];
}

/** The raw files beside a model version; parsed by the factory. */
export interface PolicyFiles {
  schema?: unknown;
  steps?: unknown;
}

/** Builds a version's policy from its files; throws (naming the file and field) when they are invalid. */
export type PolicyFactory = (files: PolicyFiles) => InputPolicy | undefined;

/** A row set aside in `quarantine` mode, with why. */
export interface QuarantinedRow {
  model: string;
  version: string;
  requestId?: string;
  protocol: string;
  row: number;
  /** The row as the request sent it, by column. */
  record: Record<string, unknown>;
  problems: RowProblem[];
}

/** Where quarantined rows are stored; a request answers only after its rows are stored. */
export interface QuarantineSink {
  store(rows: QuarantinedRow[]): Promise<void>;
}
