import { FrequentItems } from '../profile/frequent-items.js';
import { ColumnProfile, DEFAULT_OPTIONS, type Distribution, Moments } from '../profile/index.js';
import type { RowBatch } from '../table.js';
import {
  type CategoriesParams,
  type ClipParams,
  compileStep,
  type FittedStep,
  type ImputeParams,
  Layout,
  type MinMaxParams,
  numberOf,
  type Op,
  type StandardizeParams,
} from './compile.js';
import { FittedSteps, learnsColumn } from './fitted-steps.js';
import { type CategoryValue, parseStepsSpec, type StepSpec } from './spec.js';
import { bad, compareValues, normalizeCell, type Value } from './value.js';

/**
 * Batches to fit on: a function that opens them (called once per pass), or one stream when a
 * single pass is enough.
 */
export type BatchSource = AsyncIterable<RowBatch> | (() => AsyncIterable<RowBatch>);

export interface FitOptions {
  /** Recorded as `fitted_on` (a dataset reference or a file). */
  fittedOn?: string;
  /** Distinct values a one-hot or ordinal column may have (default 50 000, the profile's exact bound). */
  maxCategories?: number;
}

const EPS = 2 ** -52;

/** Values of one column as a learning step sees them (after the steps before it). */
interface Accumulator {
  add(v: Value, row: number): void;
}

/**
 * Moments of a numeric column (Welford, exact), and — for a median or quantiles — the profile's
 * column state: exact value counts up to 50 000 distinct values, then its KLL sketch.
 */
class NumericAccumulator implements Accumulator {
  readonly moments: Moments;
  readonly profile: ColumnProfile | null;
  infinite = 0;
  constructor(
    readonly column: string,
    private readonly where: string,
    distribution: boolean,
  ) {
    this.profile = distribution ? new ColumnProfile(column, DEFAULT_OPTIONS) : null;
    this.moments = this.profile ? this.profile.numeric : new Moments();
  }
  add(v: Value, row: number): void {
    if (v === null) return;
    const x = numberOf(v, row, this.column, this.where);
    if (this.profile) this.profile.add(x);
    else if (Number.isFinite(x)) this.moments.add(x);
    else this.infinite++;
  }
  get infinities(): number {
    return this.profile ? this.profile.types.infinite : this.infinite;
  }
}

/** Exact counts per value up to a bound; past it, Misra–Gries counters (mode only) or an error. */
class CategoryAccumulator implements Accumulator {
  counts: Map<Value, number> | null = new Map();
  frequent: FrequentItems<Value> | null = null;
  constructor(
    readonly column: string,
    private readonly where: string,
    private readonly limit: number,
    private readonly sketchable: boolean,
  ) {}
  add(v: Value, row: number): void {
    if (v === null) return;
    if (typeof v === 'number' && !Number.isFinite(v)) {
      bad(`row ${row}, column '${this.column}': ${v} cannot be a category (${this.where})`);
    }
    const counts = this.counts;
    if (counts === null) {
      (this.frequent as FrequentItems<Value>).add(v);
      return;
    }
    counts.set(v, (counts.get(v) ?? 0) + 1);
    if (counts.size > this.limit) {
      if (!this.sketchable) {
        bad(
          `column '${this.column}' has more than ${this.limit} distinct values: too many categories for ${this.where}`,
        );
      }
      this.frequent = new FrequentItems<Value>(DEFAULT_OPTIONS.frequentCapacity);
      for (const [k, c] of counts) this.frequent.add(k, c);
      this.counts = null;
    }
  }
}

interface Observed {
  index: number;
  accumulators: Map<string, Accumulator>;
}

/** One pass: the fitted steps so far run as transforms, the next learning steps observe. */
interface Pass {
  ops: Op[];
  inputs: { name: string; slot: number }[];
  size: number;
  observed: Observed[];
}

function planPass(
  columns: readonly string[],
  steps: readonly StepSpec[],
  fitted: readonly (FittedStep | null)[],
  maxCategories: number,
): Pass {
  const layout = new Layout(columns);
  const ops: Op[] = [];
  const observed: Observed[] = [];
  // Columns an unfitted step will change: later steps reading them wait for the next pass.
  const tainted = new Set<string>();
  let pendingOneHot = false;
  for (let i = 0; i < steps.length; i++) {
    const at = `steps[${i}]`;
    const s = steps[i];
    const done = fitted[i];
    if (observed.length > 0) {
      const reads = s.columns ?? layout.names;
      if (reads.some((c) => tainted.has(c) || (pendingOneHot && !layout.has(c)))) break;
    }
    if (done) {
      const op = compileStep(done, layout, at, 'batch');
      if (op) ops.push(op);
      continue;
    }
    const where = `${at} ${s.step}`;
    const cols = s.columns as readonly string[];
    const slots = cols.map((c) => layout.slot(c, `${at}.columns`));
    const accumulators = new Map<string, Accumulator>();
    const list: [number, Accumulator][] = [];
    cols.forEach((c, k) => {
      if (!learnsColumn(s, c)) return;
      const categorical =
        s.step === 'one_hot' ||
        s.step === 'ordinal' ||
        (s.step === 'impute' && s.strategy === 'most_frequent');
      const acc = categorical
        ? new CategoryAccumulator(c, where, maxCategories, s.step === 'impute')
        : new NumericAccumulator(
            c,
            where,
            (s.step === 'impute' && s.strategy === 'median') || s.step === 'clip',
          );
      accumulators.set(c, acc);
      list.push([slots[k], acc]);
    });
    ops.push((w, row) => {
      for (const [slot, acc] of list) acc.add(w[slot], row);
      return true;
    });
    for (const c of cols) tainted.add(c);
    if (s.step === 'one_hot') pendingOneHot = true;
    observed.push({ index: i, accumulators });
  }
  const inputs = [...layout.read].sort((a, b) => a - b).map((slot) => ({ name: columns[slot], slot }));
  return { ops, inputs, size: layout.size, observed };
}

function numeric(acc: Accumulator, where: string): NumericAccumulator {
  const a = acc as NumericAccumulator;
  if (a.infinities > 0) {
    bad(
      `column '${a.column}' holds infinite values, which ${where} cannot learn from (clip them with fixed min/max first)`,
    );
  }
  if (a.moments.n === 0) {
    bad(`column '${a.column}' has no values for ${where} to learn from (every cell is missing)`);
  }
  return a;
}

/**
 * The median as numpy computes it (the middle value, or the mean of the two middle values) when
 * the counts are exact; the sketch's estimate otherwise.
 */
function median(profile: ColumnProfile): { value: number; exact: boolean } {
  const f = profile.frequencies();
  if (!f.exact) return { value: (profile.distribution() as Distribution).quantile(0.5), exact: false };
  const pairs = f.counts.map(([k, c]) => [Number(k), c] as const).sort((a, b) => a[0] - b[0]);
  const n = pairs.reduce((t, p) => t + p[1], 0);
  const at = (rank: number) => {
    let seen = 0;
    for (const [v, c] of pairs) {
      seen += c;
      if (seen > rank) return v;
    }
    return Number.NaN;
  };
  const lo = at(Math.floor((n - 1) / 2));
  return { value: n % 2 === 1 ? lo : (lo + at(n / 2)) / 2, exact: true };
}

function sortedCategories(acc: Accumulator, where: string): CategoryValue[] {
  const a = acc as CategoryAccumulator;
  const counts = a.counts as Map<Value, number>;
  if (counts.size === 0) {
    bad(`column '${a.column}' has no values for ${where} to learn from (every cell is missing)`);
  }
  return ([...counts.keys()] as CategoryValue[]).sort(compareValues);
}

/** The most frequent value; ties go to the smallest, as scikit-learn's SimpleImputer. */
function mode(acc: Accumulator, where: string): ImputeParams {
  const a = acc as CategoryAccumulator;
  const counts = a.counts ?? (a.frequent as FrequentItems<Value>).counts;
  let best: Value = null;
  let bestCount = 0;
  let n = 0;
  for (const [v, c] of counts) {
    n += c;
    if (c > bestCount || (c === bestCount && compareValues(v, best) < 0)) {
      best = v;
      bestCount = c;
    }
  }
  if (best === null)
    bad(`column '${a.column}' has no values for ${where} to learn from (every cell is missing)`);
  return { value: best as CategoryValue, n, exact: a.counts !== null };
}

function learn(step: StepSpec, accumulators: Map<string, Accumulator>, at: string): FittedStep {
  const where = `${at} ${step.step}`;
  const fitted: Record<string, unknown> = {};
  for (const [column, acc] of accumulators) {
    switch (step.step) {
      case 'impute': {
        if (step.strategy === 'most_frequent') {
          fitted[column] = mode(acc, where);
          break;
        }
        const a = numeric(acc, where);
        const n = a.moments.n;
        if (step.strategy === 'mean') {
          fitted[column] = { value: a.moments.mean, n, exact: true } satisfies ImputeParams;
        } else {
          fitted[column] = { ...median(a.profile as ColumnProfile), n } satisfies ImputeParams;
        }
        break;
      }
      case 'clip': {
        const a = numeric(acc, where);
        const d = (a.profile as ColumnProfile).distribution() as Distribution;
        const p: ClipParams = { n: a.moments.n, exact: d.exact };
        if (step.lower_quantile !== undefined) p.min = d.quantile(step.lower_quantile);
        if (step.upper_quantile !== undefined) p.max = d.quantile(step.upper_quantile);
        fitted[column] = p;
        break;
      }
      case 'standardize': {
        const { moments } = numeric(acc, where);
        const { mean, n } = moments;
        const variance = moments.populationVariance();
        // scikit-learn's _is_constant_feature: a variance within rounding of zero scales by 1.
        const constant = variance <= n * EPS * variance + (n * mean * EPS) ** 2;
        fitted[column] = { mean, scale: constant ? 1 : Math.sqrt(variance), n } satisfies StandardizeParams;
        break;
      }
      case 'min_max_scale': {
        const { moments } = numeric(acc, where);
        const { min: dataMin, max: dataMax, n } = moments;
        const [lo, hi] = step.feature_range;
        let range = dataMax - dataMin;
        if (range < 10 * EPS) range = 1;
        const scale = (hi - lo) / range;
        fitted[column] = {
          data_min: dataMin,
          data_max: dataMax,
          scale,
          min: lo - dataMin * scale,
          n,
        } satisfies MinMaxParams;
        break;
      }
      case 'one_hot':
      case 'ordinal':
        fitted[column] = { categories: sortedCategories(acc, where) } satisfies CategoriesParams;
        break;
    }
  }
  return { ...step, fitted } as FittedStep;
}

function sameColumns(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

/**
 * Fits a steps spec on a table, as a scikit-learn Pipeline does: each step learns from the output
 * of the steps before it. The data is streamed; a step that learns from a column an earlier
 * learning step changes waits for another pass (so `source` should be a function that re-opens
 * the batches). Memory stays bounded: per learned column, moments and exact value counts up to
 * 50 000 distinct values, then the profile's sketches.
 *
 * @example
 *   const fitted = await fitSteps(JSON.parse(specText), () => readTable('adult.csv'), { fittedOn: 'adult.csv' });
 *   await writeFile('fitted.json', JSON.stringify(fitted));
 */
export async function fitSteps(
  spec: unknown,
  source: BatchSource,
  options: FitOptions = {},
): Promise<FittedSteps> {
  const { steps, remainder } = parseStepsSpec(spec);
  const maxCategories = options.maxCategories ?? DEFAULT_OPTIONS.exactLimit;
  const fitted: (FittedStep | null)[] = steps.map((s) =>
    (s.columns ?? []).some((c) => learnsColumn(s, c)) ? null : (s as FittedStep),
  );
  let columns: string[] | null = null;
  let rows = 0;
  let pass = 0;
  do {
    if (pass > 0 && typeof source !== 'function') {
      bad('these steps need more than one pass over the data: pass a function that re-opens the batches');
    }
    const batches = typeof source === 'function' ? source() : source;
    let plan: Pass | null = null;
    let work: Value[] = [];
    let count = 0;
    for await (const batch of batches) {
      if (plan === null) {
        if (columns === null) {
          columns = [...batch.columns];
          const dup = columns.find((c, i) => columns!.indexOf(c) !== i);
          if (dup !== undefined) bad(`the table has two columns named '${dup}'`);
        } else if (!sameColumns(columns, batch.columns)) {
          bad('the table changed between passes: its columns differ');
        }
        plan = planPass(columns, steps, fitted, maxCategories);
        work = new Array<Value>(plan.size).fill(null);
      }
      const { ops, inputs } = plan;
      for (let r = 0; r < batch.rows.length; r++) {
        const cells = batch.rows[r];
        const row = batch.firstRow + r;
        for (let k = 0; k < inputs.length; k++) {
          work[inputs[k].slot] = normalizeCell(cells[inputs[k].slot], row, inputs[k].name);
        }
        for (let o = 0; o < ops.length; o++) if (!ops[o](work, row)) break;
      }
      count += batch.rows.length;
    }
    if (plan === null) {
      if (columns === null) return bad('the table is empty: no columns to fit on');
      plan = planPass(columns, steps, fitted, maxCategories);
    }
    if (pass === 0) rows = count;
    else if (count !== rows) bad(`the table changed between passes: ${rows} rows, then ${count}`);
    for (const o of plan.observed)
      fitted[o.index] = learn(steps[o.index], o.accumulators, `steps[${o.index}]`);
    pass++;
  } while (fitted.some((f) => f === null));
  return new FittedSteps({
    fittedOn: options.fittedOn ?? 'batches',
    rows,
    columns: columns as string[],
    remainder,
    steps: fitted as FittedStep[],
  });
}
