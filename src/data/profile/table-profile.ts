import { SlipwayError } from '../../errors/index.js';
import type { RowBatch } from '../table.js';
import {
  ColumnProfile,
  type ColumnStateJson,
  type ColumnSummary,
  type ColumnTransfer,
  DEFAULT_OPTIONS,
  type ProfileOptions,
} from './column-profile.js';

/** The stored profile format name and version; `fromJSON` refuses anything else. */
export const PROFILE_FORMAT = 'slipway.profile';
export const PROFILE_VERSION = 1;

export interface TableProfileJson {
  format: typeof PROFILE_FORMAT;
  version: typeof PROFILE_VERSION;
  options: ProfileOptions;
  rows: number;
  /** Per column, in header order: the derived summary (read-only) and the mergeable state. */
  columns: { name: string; summary: ColumnSummary; state: ColumnStateJson }[];
}

/** A profile sent to another thread: `toTransfer`'s message, rebuilt by `fromTransfer`. */
export interface TableTransfer {
  options: ProfileOptions;
  rows: number;
  columns: ({ name: string } & ColumnTransfer)[];
}

export interface TableSummary {
  rows: number;
  columns: ColumnSummary[];
}

/**
 * The mergeable profile of a table: feed it batches, merge profiles of chunks (files, hours,
 * serving pods), store it as JSON and read it back to keep merging.
 *
 * @example
 *   const profile = new TableProfile();
 *   for await (const batch of readTable('adult.csv')) profile.add(batch);
 *   const stored = JSON.stringify(profile);            // versioned, see TableProfileJson
 *   TableProfile.fromJSON(JSON.parse(stored)).merge(other).summary();
 */
export class TableProfile {
  readonly options: ProfileOptions;
  rows = 0;
  private readonly columns = new Map<string, ColumnProfile>();

  constructor(options: Partial<ProfileOptions> = {}) {
    const merged = { ...DEFAULT_OPTIONS, ...options };
    for (const key of Object.keys(DEFAULT_OPTIONS) as (keyof ProfileOptions)[]) {
      const value = merged[key];
      const least = key === 'topValues' ? 0 : key === 'kllK' ? 8 : 1;
      if (!Number.isSafeInteger(value) || value < least) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `profile option ${key} must be an integer ≥ ${least}`,
        );
      }
    }
    this.options = Object.freeze(merged);
  }

  add(batch: RowBatch): this {
    const columns = batch.columns.map((name) => this.column(name));
    const width = columns.length;
    // Row by row: each row's cells are adjacent in memory.
    for (const row of batch.rows) {
      for (let c = 0; c < width; c++) columns[c].add(row[c] ?? null);
    }
    // A column this batch lacks is missing in each of its rows.
    if (this.columns.size > columns.length) {
      const present = new Set(batch.columns);
      for (const [name, column] of this.columns) if (!present.has(name)) column.addMissing(batch.rows.length);
    }
    this.rows += batch.rows.length;
    this.keepWithinBudget();
    return this;
  }

  /** Adds `other` into this profile: the result is the profile of both tables' rows. */
  merge(other: TableProfile): this {
    const a = this.options;
    const b = other.options;
    if (a.exactLimit !== b.exactLimit || a.kllK !== b.kllK || a.frequentCapacity !== b.frequentCapacity) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        'profiles with different sketch options cannot be merged',
      );
    }
    for (const [name, theirs] of other.columns) this.column(name).merge(theirs);
    for (const [name, mine] of this.columns) if (!other.columns.has(name)) mine.addMissing(other.rows);
    this.rows += other.rows;
    this.keepWithinBudget();
    return this;
  }

  /** Column names in the order they first appeared. */
  get columnNames(): string[] {
    return [...this.columns.keys()];
  }

  /** One column's profile (its distribution and frequencies for drift tests), if the table has it. */
  get(name: string): ColumnProfile | undefined {
    return this.columns.get(name);
  }

  summary(): TableSummary {
    return { rows: this.rows, columns: [...this.columns.values()].map((c) => c.summary()) };
  }

  toJSON(): TableProfileJson {
    return {
      format: PROFILE_FORMAT,
      version: PROFILE_VERSION,
      options: { ...this.options },
      rows: this.rows,
      columns: [...this.columns.values()].map((c) => ({
        name: c.name,
        summary: c.summary(),
        state: c.toJSON(),
      })),
    };
  }

  /**
   * The profile as a message for another thread, with the buffers to transfer: exact value
   * counts as flat arrays in insertion order (cheaper to copy across and rebuild than the
   * stored form's pairs), so `fromTransfer` rebuilds this very profile.
   */
  toTransfer(): { message: TableTransfer; buffers: ArrayBuffer[] } {
    const columns = [...this.columns.values()].map((c) => ({ name: c.name, ...c.toTransfer() }));
    const buffers: ArrayBuffer[] = [];
    for (const c of columns) if (c.counts) buffers.push(c.counts.buffer as ArrayBuffer);
    return { message: { options: { ...this.options }, rows: this.rows, columns }, buffers };
  }

  static fromTransfer(message: TableTransfer): TableProfile {
    const profile = new TableProfile(message.options);
    profile.rows = message.rows;
    for (const c of message.columns) {
      try {
        profile.columns.set(c.name, ColumnProfile.fromTransfer(c.name, profile.options, c));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `profile: column ${c.name}: malformed state (${reason})`,
        );
      }
    }
    return profile;
  }

  static fromJSON(json: unknown): TableProfile {
    const j = json as Partial<TableProfileJson> | null;
    if (!j || j.format !== PROFILE_FORMAT || j.version !== PROFILE_VERSION) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `profile: expected format ${PROFILE_FORMAT} version ${PROFILE_VERSION}, got ${j?.format} version ${j?.version}`,
      );
    }
    if (!Array.isArray(j.columns) || typeof j.rows !== 'number') {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'profile: rows and columns are required');
    }
    const profile = new TableProfile(j.options);
    profile.rows = j.rows;
    for (const c of j.columns) {
      try {
        profile.columns.set(c.name, ColumnProfile.fromJSON(c.name, profile.options, c.state));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `profile: column ${c?.name}: malformed state (${reason})`,
        );
      }
    }
    return profile;
  }

  /**
   * The profiles of these columns, created (in order) where missing, for a reader that adds
   * cells column by column (the CSV profiler); it then sets `rows` and calls `keepWithinBudget`.
   */
  addColumns(names: readonly string[]): ColumnProfile[] {
    return names.map((name) => this.column(name));
  }

  /** Sketches the heaviest exact columns until the exact counts fit `exactBytes` (`add` calls it per batch). */
  keepWithinBudget(): void {
    let total = 0;
    for (const c of this.columns.values()) total += c.exactBytes;
    while (total > this.options.exactBytes) {
      let heaviest: ColumnProfile | undefined;
      for (const c of this.columns.values()) if (c.exactBytes > (heaviest?.exactBytes ?? 0)) heaviest = c;
      if (!heaviest) return;
      total -= heaviest.exactBytes;
      heaviest.sketch();
    }
  }

  private column(name: string): ColumnProfile {
    let column = this.columns.get(name);
    if (!column) {
      column = new ColumnProfile(name, this.options);
      // Rows seen before this column appeared lacked it.
      column.addMissing(this.rows);
      this.columns.set(name, column);
    }
    return column;
  }
}
