/**
 * SQL for MLflow's search grammar on both dialects: each parsed clause becomes an EXISTS or a
 * comparison on the searched table (`e` experiments, `r` runs, `m` logged models), each order-by
 * a sort key with nulls last, as MLflow sorts.
 */
import { type Expression, type RawBuilder, type SqlBool, sql } from 'kysely';
import type { DialectName } from '../store/index.js';
import { type Clause, type OrderClause, own } from './search-filter.js';
import type { TrackingTables } from './tracking-migrations.js';
import { ARTIFACT_URI_SCHEME } from './tracking-types.js';
import { bad, parseExperimentId } from './validate.js';

type LoggedModelRow = TrackingTables['tracking_logged_models'];

export class SearchSql {
  constructor(private readonly dialect: DialectName) {}

  /** `a LIKE p` with MLflow's semantics on both dialects: LIKE is case-sensitive, ILIKE is not. */
  compare(
    column: Expression<unknown>,
    op: Clause['comparator'],
    value: Clause['value'],
  ): RawBuilder<SqlBool> {
    switch (op) {
      case 'LIKE':
        return this.dialect === 'sqlite'
          ? sql<SqlBool>`${column} GLOB ${likeToGlob(String(value))}`
          : sql<SqlBool>`${column} LIKE ${value}`;
      case 'ILIKE':
        return this.dialect === 'sqlite'
          ? sql<SqlBool>`${column} LIKE ${value}`
          : sql<SqlBool>`${column} ILIKE ${value}`;
      case 'IN':
      case 'NOT IN': {
        const list = (value as (string | number)[]).map((v) => sql`${v}`);
        return sql<SqlBool>`${column} ${sql.raw(op)} (${sql.join(list)})`;
      }
      case '=':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        return sql<SqlBool>`${column} ${sql.raw(op)} ${value}`;
      default:
        throw bad(`comparator '${op}' cannot be used here`);
    }
  }

  experimentClause(c: Clause): RawBuilder<SqlBool> {
    if (c.type === 'tag') {
      const exists = (cond: RawBuilder<SqlBool> | undefined) =>
        sql<SqlBool>`exists (select 1 from tracking_experiment_tags t where t.experiment_id = e.experiment_id and t.key = ${c.key}${cond ? sql` and ${cond}` : sql``})`;
      if (c.comparator === 'IS NULL') return sql<SqlBool>`not ${exists(undefined)}`;
      if (c.comparator === 'IS NOT NULL') return exists(undefined);
      return exists(this.compare(sql.ref('t.value'), c.comparator, c.value));
    }
    if (c.key === 'experiment_id') {
      const value = Array.isArray(c.value)
        ? c.value.map((v) => parseExperimentId(v, 'filter experiment_id'))
        : parseExperimentId(c.value, 'filter experiment_id');
      return this.compare(sql.ref('e.experiment_id'), c.comparator, value as Clause['value']);
    }
    return this.compare(sql.ref(`e.${c.key}`), c.comparator, c.value);
  }

  runClause(c: Clause): RawBuilder<SqlBool> {
    switch (c.type) {
      case 'attribute':
        return this.compare(runAttribute(c.key), c.comparator, c.value);
      case 'metric': {
        // NaN is stored as 0 with is_nan set: it satisfies only '!='.
        const nan = c.comparator === '!=' ? sql`or m.is_nan = 1` : sql`and m.is_nan = 0`;
        return sql<SqlBool>`exists (select 1 from tracking_latest_metrics m where m.run_id = r.run_id and m.key = ${c.key} and (${this.compare(sql.ref('m.value'), c.comparator, c.value)} ${nan}))`;
      }
      case 'param':
      case 'tag': {
        const table = sql.table(c.type === 'param' ? 'tracking_params' : 'tracking_run_tags');
        const exists = (cond: RawBuilder<SqlBool> | undefined) =>
          sql<SqlBool>`exists (select 1 from ${table} p where p.run_id = r.run_id and p.key = ${c.key}${cond ? sql` and ${cond}` : sql``})`;
        if (c.comparator === 'IS NULL') return sql<SqlBool>`not ${exists(undefined)}`;
        if (c.comparator === 'IS NOT NULL') return exists(undefined);
        return exists(this.compare(sql.ref('p.value'), c.comparator, c.value));
      }
      case 'dataset':
        return sql<SqlBool>`exists (select 1 from tracking_run_datasets d where d.run_id = r.run_id and ${this.compare(sql.ref(`d.${c.key}`), c.comparator, c.value)})`;
    }
  }

  runOrderExpr(o: OrderClause): { nullsLast: RawBuilder<number>; value: Expression<unknown> } {
    if (o.type === 'attribute') {
      const value = runAttribute(o.key);
      return { nullsLast: sql<number>`case when ${value} is null then 1 else 0 end`, value };
    }
    if (o.type === 'metric') {
      const sub = (col: string) =>
        sql`(select ${sql.ref(`m.${col}`)} from tracking_latest_metrics m where m.run_id = r.run_id and m.key = ${o.key})`;
      return {
        // As MLflow: real values first, then NaN, then runs without the metric.
        nullsLast: sql<number>`case when ${sub('is_nan')} = 1 then 1 when ${sub('value')} is null then 2 else 0 end`,
        value: sub('value'),
      };
    }
    const table = sql.table(o.type === 'param' ? 'tracking_params' : 'tracking_run_tags');
    const value = sql`(select p.value from ${table} p where p.run_id = r.run_id and p.key = ${o.key})`;
    return { nullsLast: sql<number>`case when ${value} is null then 1 else 0 end`, value };
  }

  loggedModelClause(c: Clause, datasets: RawBuilder<SqlBool> | undefined): RawBuilder<SqlBool> {
    switch (c.type) {
      case 'attribute': {
        let value = c.value;
        if (c.key === 'status') {
          const norm = (v: string) => (v.startsWith('LOGGED_MODEL_') ? v : `LOGGED_MODEL_${v}`);
          value = Array.isArray(value) ? value.map(norm) : norm(String(value));
        }
        return this.compare(
          sql.ref(`m.${loggedModelColumn(c.key, 'filter attribute')}`),
          c.comparator,
          value,
        );
      }
      case 'metric':
        return sql<SqlBool>`exists (select 1 from tracking_logged_model_metrics mm where mm.model_id = m.model_id and mm.key = ${c.key} and mm.is_nan = 0 and ${this.compare(sql.ref('mm.value'), c.comparator, c.value)}${datasets ? sql` and ${datasets}` : sql``})`;
      case 'param':
      case 'tag': {
        const table = sql.table(
          c.type === 'param' ? 'tracking_logged_model_params' : 'tracking_logged_model_tags',
        );
        return sql<SqlBool>`exists (select 1 from ${table} p where p.model_id = m.model_id and p.key = ${c.key} and ${this.compare(sql.ref('p.value'), c.comparator, c.value)})`;
      }
      default:
        throw bad(`filter: logged models cannot be filtered by ${c.type}`);
    }
  }
}

/** Order-by and filter names for logged-model columns (MLflow's names and aliases). */
export const LOGGED_MODEL_COLUMNS: Record<string, keyof LoggedModelRow> = {
  model_id: 'model_id',
  experiment_id: 'experiment_id',
  name: 'name',
  status: 'status',
  model_type: 'model_type',
  source_run_id: 'source_run_id',
  status_message: 'status_message',
  creation_timestamp: 'creation_ms',
  creation_time: 'creation_ms',
  creation_timestamp_ms: 'creation_ms',
  last_updated_timestamp: 'last_updated_ms',
  last_updated_time: 'last_updated_ms',
  last_updated_timestamp_ms: 'last_updated_ms',
};

/** The logged-model column `name` names; anything else is a 400 naming `field`. */
export function loggedModelColumn(name: string, field: string): keyof LoggedModelRow {
  const column = own(LOGGED_MODEL_COLUMNS, name);
  if (!column) {
    throw bad(
      `${field} '${name}' is invalid; valid ones are ${Object.keys(LOGGED_MODEL_COLUMNS).join(', ')}`,
    );
  }
  return column;
}

function runAttribute(key: string): Expression<unknown> {
  switch (key) {
    case 'run_id':
      return sql.ref('r.run_id');
    case 'run_name':
      return sql.ref('r.name');
    case 'status':
      return sql.ref('r.status');
    case 'user_id':
      return sql.ref('r.user_id');
    case 'start_time':
      return sql.ref('r.start_time');
    case 'end_time':
      return sql.ref('r.end_time');
    case 'artifact_uri':
      return sql`(${`${ARTIFACT_URI_SCHEME}/`} || r.artifact_path)`;
    default:
      throw bad(`attribute '${key}' cannot be searched`);
  }
}

/** SQL LIKE pattern → SQLite GLOB pattern (case-sensitive), with GLOB's own wildcards escaped. */
export function likeToGlob(pattern: string): string {
  let out = '';
  for (const ch of pattern) {
    if (ch === '%') out += '*';
    else if (ch === '_') out += '?';
    else if (ch === '*' || ch === '?' || ch === '[') out += `[${ch}]`;
    else out += ch;
  }
  return out;
}
