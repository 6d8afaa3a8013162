/**
 * MLflow's search grammar (mlflow/utils/search_utils.py): AND-ed comparisons such as
 * `metrics.loss < 0.3 AND params.lr = '0.1' AND tags."team" LIKE 'vis%' AND attributes.run_id IN ('a', 'b')`,
 * and order-by clauses such as `metrics.loss DESC`. One tokenizer and parser serve runs,
 * experiments and logged models; a `Grammar` says which entities, keys and comparators each allows.
 */
import { bad, LIMITS } from './validate.js';

export type EntityType = 'metric' | 'param' | 'tag' | 'attribute' | 'dataset';

export type Comparator =
  | '='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'LIKE'
  | 'ILIKE'
  | 'IN'
  | 'NOT IN'
  | 'IS NULL'
  | 'IS NOT NULL';

export interface Clause {
  type: EntityType;
  key: string;
  comparator: Comparator;
  /** A number for metrics and numeric attributes, a string, a list for IN, null for IS [NOT] NULL. */
  value: number | string | string[] | null;
}

export interface OrderClause {
  type: EntityType;
  key: string;
  ascending: boolean;
}

export interface Grammar {
  /** What a prefix before the first dot names (`metrics` → metric); a bare key is an attribute. */
  entities: Record<string, EntityType>;
  /** Attribute names a filter may use, after `aliases`. */
  attributes: ReadonlySet<string>;
  numericAttributes: ReadonlySet<string>;
  aliases: Record<string, string>;
  comparators: (type: EntityType, key: string) => readonly Comparator[];
  /** Attributes that accept IN / NOT IN lists. */
  listAttributes: ReadonlySet<string>;
  datasetKeys?: ReadonlySet<string>;
}

const NUMERIC_OPS: readonly Comparator[] = ['>', '>=', '!=', '=', '<', '<='];
const STRING_OPS: readonly Comparator[] = ['!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'];
const KEYED_OPS: readonly Comparator[] = ['!=', '=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL'];

export const RUN_GRAMMAR: Grammar = {
  entities: {
    metric: 'metric',
    metrics: 'metric',
    parameter: 'param',
    parameters: 'param',
    param: 'param',
    params: 'param',
    tag: 'tag',
    tags: 'tag',
    attribute: 'attribute',
    attributes: 'attribute',
    attr: 'attribute',
    run: 'attribute',
    dataset: 'dataset',
    datasets: 'dataset',
  },
  attributes: new Set(['run_id', 'run_name', 'status', 'user_id', 'artifact_uri', 'start_time', 'end_time']),
  numericAttributes: new Set(['start_time', 'end_time']),
  aliases: {
    created: 'start_time',
    Created: 'start_time',
    'run name': 'run_name',
    'Run name': 'run_name',
    'Run Name': 'run_name',
  },
  comparators: (type, key) => {
    if (type === 'metric') return NUMERIC_OPS;
    if (type === 'param' || type === 'tag') return KEYED_OPS;
    if (type === 'attribute') return RUN_GRAMMAR.numericAttributes.has(key) ? NUMERIC_OPS : STRING_OPS;
    return STRING_OPS;
  },
  listAttributes: new Set(['run_id']),
  datasetKeys: new Set(['name', 'digest', 'context']),
};

export const EXPERIMENT_GRAMMAR: Grammar = {
  entities: { attribute: 'attribute', attributes: 'attribute', tag: 'tag', tags: 'tag' },
  attributes: new Set(['name', 'experiment_id', 'creation_time', 'last_update_time']),
  numericAttributes: new Set(['creation_time', 'last_update_time']),
  aliases: {},
  comparators: (type, key) => {
    if (type === 'tag') return KEYED_OPS;
    if (key === 'experiment_id') return ['=', '!=', 'IN', 'NOT IN'];
    if (EXPERIMENT_GRAMMAR.numericAttributes.has(key)) return NUMERIC_OPS;
    return ['=', '!=', 'LIKE', 'ILIKE'];
  },
  listAttributes: new Set(['experiment_id']),
};

export const LOGGED_MODEL_GRAMMAR: Grammar = {
  entities: {
    attributes: 'attribute',
    attribute: 'attribute',
    metrics: 'metric',
    metric: 'metric',
    params: 'param',
    param: 'param',
    tags: 'tag',
    tag: 'tag',
  },
  attributes: new Set([
    'name',
    'model_id',
    'model_type',
    'status',
    'source_run_id',
    'creation_timestamp',
    'last_updated_timestamp',
  ]),
  numericAttributes: new Set(['creation_timestamp', 'last_updated_timestamp']),
  aliases: { creation_time: 'creation_timestamp', last_updated_time: 'last_updated_timestamp' },
  comparators: (type, key) => {
    if (type === 'metric') return NUMERIC_OPS;
    if (type === 'attribute' && LOGGED_MODEL_GRAMMAR.numericAttributes.has(key)) return NUMERIC_OPS;
    return STRING_OPS;
  },
  listAttributes: new Set(['name', 'model_id', 'model_type', 'status', 'source_run_id']),
};

type Token =
  | { kind: 'word'; text: string }
  | { kind: 'quoted'; text: string; quote: '"' | '`' }
  | { kind: 'string'; text: string }
  | { kind: 'number'; text: string }
  | { kind: 'op'; text: string }
  | { kind: 'dot' | 'lparen' | 'rparen' | 'comma' };

const WORD_START = /[\p{L}_]/u;
const WORD_CHAR = /[\p{L}\p{N}\p{M}_:/-]/u;
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/;

function tokenize(input: string, what: string): Token[] {
  if (input.includes('\0')) throw bad(`${what} must not contain NUL characters`);
  const tokens: Token[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw bad(`${what} '${input}' is invalid: ${why} at position ${i}`);
  };
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      // A quote inside is doubled (SQL) or backslash-escaped; as in MLflow, the text between the
      // outer quotes is taken as it is.
      let j = i + 1;
      while (j < input.length) {
        if (input[j] === '\\' && c !== '`') j += 2;
        else if (input[j] === c && input[j + 1] === c) j += 2;
        else if (input[j] === c) break;
        else j++;
      }
      if (j >= input.length) fail(`unterminated ${c} quote`);
      const text = input.slice(i + 1, j);
      tokens.push(c === "'" ? { kind: 'string', text } : { kind: 'quoted', text, quote: c as '"' | '`' });
      i = j + 1;
      continue;
    }
    const prev = tokens[tokens.length - 1];
    const afterValue = prev && (prev.kind === 'word' || prev.kind === 'quoted' || prev.kind === 'number');
    const num = NUMBER.exec(input.slice(i));
    if (num && (/[\d.]/.test(c) || !afterValue) && !(c === '.' && prev?.kind === 'word')) {
      tokens.push({ kind: 'number', text: num[0] });
      i += num[0].length;
      continue;
    }
    const two = input.slice(i, i + 2);
    if (two === '!=' || two === '<=' || two === '>=' || two === '<>') {
      tokens.push({ kind: 'op', text: two === '<>' ? '!=' : two });
      i += 2;
      continue;
    }
    if (c === '=' || c === '<' || c === '>') {
      tokens.push({ kind: 'op', text: c });
      i++;
      continue;
    }
    if (c === '.') {
      tokens.push({ kind: 'dot' });
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: c === '(' ? 'lparen' : c === ')' ? 'rparen' : 'comma' });
      i++;
      continue;
    }
    if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < input.length && WORD_CHAR.test(input[j]!)) j++;
      tokens.push({ kind: 'word', text: input.slice(i, j) });
      i = j;
      continue;
    }
    fail(`unexpected character '${c}'`);
  }
  return tokens;
}

class Cursor {
  i = 0;
  constructor(
    readonly tokens: Token[],
    readonly input: string,
    readonly what: string,
  ) {}
  peek(): Token | undefined {
    return this.tokens[this.i];
  }
  next(): Token | undefined {
    return this.tokens[this.i++];
  }
  keyword(...words: string[]): boolean {
    const t = this.peek();
    if (t?.kind === 'word' && words.includes(t.text.toUpperCase())) {
      this.i++;
      return true;
    }
    return false;
  }
  fail(why: string): never {
    throw bad(`${this.what} '${this.input}' is invalid: ${why}`);
  }
}

/**
 * A grammar table's own entry: `constructor`, `toString` or `__proto__` name nothing, not
 * Object.prototype's members.
 */
export function own<T>(table: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

/** `entity.key`, `key`, with backtick or double-quoted parts (`metrics."my loss"`, `` `tags`.`a.b` ``). */
function readIdentifier(cur: Cursor, grammar: Grammar): { type: EntityType; key: string } {
  const parts: { text: string; quoted: boolean }[] = [];
  for (;;) {
    const t = cur.next();
    if (t?.kind === 'word') parts.push({ text: t.text, quoted: false });
    else if (t?.kind === 'quoted') parts.push({ text: t.text, quoted: true });
    else cur.fail(`expected an identifier such as metrics.<key>, params.<key>, tags.<key> or an attribute`);
    if (cur.peek()?.kind !== 'dot') break;
    cur.next();
  }
  let type: EntityType = 'attribute';
  let key: string;
  if (parts.length === 1) key = parts[0]!.text;
  else {
    const entity = own(grammar.entities, parts[0]!.text);
    if (!entity) {
      const valid = [...new Set(Object.keys(grammar.entities))].join(', ');
      cur.fail(`invalid entity type '${parts[0]!.text}'; valid ones are ${valid}`);
    }
    type = entity;
    key = parts
      .slice(1)
      .map((p) => p.text)
      .join('.');
  }
  if (type === 'attribute') {
    key = own(grammar.aliases, key) ?? key;
    if (!grammar.attributes.has(key)) {
      cur.fail(`invalid attribute key '${key}'; valid keys are ${[...grammar.attributes].join(', ')}`);
    }
  }
  if (type === 'dataset' && !grammar.datasetKeys?.has(key)) {
    cur.fail(`invalid dataset key '${key}'; valid keys are ${[...(grammar.datasetKeys ?? [])].join(', ')}`);
  }
  return { type, key };
}

function readComparator(cur: Cursor): Comparator {
  const t = cur.peek();
  if (t?.kind === 'op') {
    cur.next();
    return t.text as Comparator;
  }
  if (cur.keyword('LIKE')) return 'LIKE';
  if (cur.keyword('ILIKE')) return 'ILIKE';
  if (cur.keyword('IN')) return 'IN';
  if (cur.keyword('NOT')) {
    if (cur.keyword('IN')) return 'NOT IN';
    cur.fail(`expected IN after NOT`);
  }
  if (cur.keyword('IS')) {
    const not = cur.keyword('NOT');
    if (!cur.keyword('NULL')) cur.fail('expected NULL after IS');
    return not ? 'IS NOT NULL' : 'IS NULL';
  }
  return cur.fail(`expected a comparison operator`);
}

function readValue(
  cur: Cursor,
  grammar: Grammar,
  type: EntityType,
  key: string,
  op: Comparator,
): Clause['value'] {
  if (op === 'IS NULL' || op === 'IS NOT NULL') return null;
  const numeric = type === 'metric' || (type === 'attribute' && grammar.numericAttributes.has(key));
  const t = cur.next();
  if (op === 'IN' || op === 'NOT IN') {
    if (type === 'attribute' && !grammar.listAttributes.has(key)) {
      cur.fail(`only ${[...grammar.listAttributes].join(', ')} support comparison with a list of values`);
    }
    if (t?.kind !== 'lparen') cur.fail(`${op} expects a parenthesized list of quoted strings`);
    const values: string[] = [];
    for (;;) {
      const v = cur.next();
      if (v?.kind === 'string' || (v?.kind === 'quoted' && v.quote === '"')) values.push(v.text);
      else cur.fail(`${op} expects a non-empty list of quoted strings`);
      const sep = cur.next();
      if (sep?.kind === 'rparen') break;
      if (sep?.kind !== 'comma') cur.fail(`${op} list is not closed`);
    }
    return values;
  }
  if (numeric) {
    if (t?.kind !== 'number') cur.fail(`expected a numeric value for ${type} '${key}'`);
    return Number(t.text);
  }
  if (t?.kind === 'string' || (t?.kind === 'quoted' && t.quote === '"')) return t.text;
  return cur.fail(`expected a quoted string value for ${type} '${key}' (e.g. 'my-value')`);
}

/** Parses a filter into AND-ed clauses; an empty filter is no clause. Throws a 400 naming the problem. */
export function parseFilter(filter: string | undefined, grammar: Grammar): Clause[] {
  if (!filter || filter.trim() === '') return [];
  const cur = new Cursor(tokenize(filter, 'filter'), filter, 'filter');
  const clauses: Clause[] = [];
  let listed = 0;
  for (;;) {
    const { type, key } = readIdentifier(cur, grammar);
    const comparator = readComparator(cur);
    const allowed = grammar.comparators(type, key);
    if (!allowed.includes(comparator)) {
      cur.fail(`comparator '${comparator}' is not one of ${allowed.join(', ')} for ${type} '${key}'`);
    }
    const value = readValue(cur, grammar, type, key, comparator);
    clauses.push({ type, key, comparator, value });
    if (clauses.length > LIMITS.filterClauses) {
      throw bad(
        `filter has more than ${LIMITS.filterClauses} clauses; at most ${LIMITS.filterClauses} are allowed`,
      );
    }
    if (Array.isArray(value)) listed += value.length;
    if (listed > LIMITS.filterListValues) {
      throw bad(
        `filter lists more than ${LIMITS.filterListValues} values in IN lists; at most ${LIMITS.filterListValues} are allowed in one filter`,
      );
    }
    if (cur.peek() === undefined) break;
    if (!cur.keyword('AND')) cur.fail('clauses must be joined with AND');
  }
  return clauses;
}

/** `key [ASC|DESC]` with the same identifiers as filters. */
export function parseOrderBy(clause: string, grammar: Grammar): OrderClause {
  const cur = new Cursor(tokenize(clause, 'order_by'), clause, 'order_by');
  const { type, key } = readIdentifier(cur, grammar);
  let ascending = true;
  if (cur.keyword('DESC')) ascending = false;
  else cur.keyword('ASC');
  if (cur.peek() !== undefined) cur.fail('expected `<key> [ASC|DESC]`');
  if (type === 'dataset') cur.fail('datasets cannot be ordered by');
  return { type, key, ascending };
}

/** Page tokens as MLflow writes them: base64 of `{"offset": n}`. */
export function pageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64');
}

/**
 * The offset of a page token this server wrote: base64 of a JSON object whose `offset` is a
 * non-negative safe integer. Anything else (`1e20`, `null`, `"5"`, `[]`) is a 400 naming page_token.
 */
export function parsePageToken(token: string | undefined): number {
  if (!token) return 0;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
  } catch {
    throw bad(`page_token '${token}' is invalid: it could not be decoded`);
  }
  const offset =
    typeof decoded === 'object' && decoded !== null && Object.hasOwn(decoded, 'offset')
      ? (decoded as { offset: unknown }).offset
      : undefined;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw bad(`page_token '${token}' is invalid: its offset must be a non-negative integer`);
  }
  return offset;
}
