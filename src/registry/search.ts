/**
 * Search conditions over registered models and versions, and a parser for MLflow's filter
 * syntax (`name LIKE '%income%' AND tags.team = 'risk'`), which the admin API accepts too.
 * Conditions are evaluated in JavaScript, so LIKE is case-sensitive and ILIKE is not on both
 * database dialects, as MLflow defines them.
 */
import { SlipwayError } from '../errors/index.js';

export type Comparator =
  | '='
  | '!='
  | 'LIKE'
  | 'ILIKE'
  | 'IN'
  | 'NOT IN'
  | '<'
  | '<='
  | '>'
  | '>='
  /** Case-insensitive substring, for plain-text search boxes (not in MLflow's syntax). */
  | 'CONTAINS';

/**
 * One condition. Attributes of models: `name`, `creation_timestamp`, `last_updated_timestamp`;
 * of versions also `version_number`, `run_id`, `source_path`, `model_id`.
 */
export interface SearchCondition {
  kind: 'attribute' | 'tag';
  key: string;
  comparator: Comparator;
  value: string | number | string[];
}

export interface SearchOrder {
  key: string;
  descending: boolean;
}

export type SearchTarget = 'models' | 'versions';

const ATTRIBUTES: Record<SearchTarget, Record<string, 'string' | 'number'>> = {
  models: { name: 'string', creation_timestamp: 'number', last_updated_timestamp: 'number' },
  versions: {
    name: 'string',
    run_id: 'string',
    source_path: 'string',
    model_id: 'string',
    version_number: 'number',
    creation_timestamp: 'number',
    last_updated_timestamp: 'number',
  },
};

const ORDER_KEYS: Record<SearchTarget, string[]> = {
  models: ['name', 'creation_timestamp', 'last_updated_timestamp'],
  versions: ['name', 'version_number', 'creation_timestamp', 'last_updated_timestamp'],
};

/** MLflow's prompt marker: a model without it is "not a prompt", so `!= 'true'` matches it. */
const IS_PROMPT_TAG = 'mlflow.prompt.is_prompt';

function bad(message: string): never {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
}

type Token =
  | { t: 'word'; v: string }
  | { t: 'string'; v: string }
  | { t: 'op'; v: string }
  | { t: 'list'; v: string[] };

function readQuoted(s: string, i: number): [string, number] {
  const q = s[i]!;
  let out = '';
  let j = i + 1;
  for (;;) {
    if (j >= s.length) bad(`filter: unterminated string starting at character ${i + 1}`);
    const c = s[j]!;
    if (c === q) {
      if (s[j + 1] === q) {
        out += q;
        j += 2;
        continue;
      }
      return [out, j + 1];
    }
    if (c === '\\' && j + 1 < s.length) {
      out += s[j + 1];
      j += 2;
      continue;
    }
    out += c;
    j++;
  }
}

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'" || c === '"') {
      const [v, j] = readQuoted(s, i);
      tokens.push({ t: 'string', v });
      i = j;
    } else if (c === '(') {
      const items: string[] = [];
      i++;
      for (;;) {
        while (/\s/.test(s[i] ?? '')) i++;
        if (s[i] === ')') {
          i++;
          break;
        }
        if (s[i] !== "'" && s[i] !== '"') bad(`filter: a list holds quoted strings, at character ${i + 1}`);
        const [v, j] = readQuoted(s, i);
        items.push(v);
        i = j;
        while (/\s/.test(s[i] ?? '')) i++;
        if (s[i] === ',') i++;
        else if (s[i] !== ')') bad(`filter: expected ',' or ')' at character ${i + 1}`);
      }
      tokens.push({ t: 'list', v: items });
    } else if ('=!<>'.includes(c)) {
      const two = s.slice(i, i + 2);
      if (two === '!=' || two === '<=' || two === '>=') {
        tokens.push({ t: 'op', v: two });
        i += 2;
      } else if (c === '!') {
        bad(`filter: unexpected '!' at character ${i + 1}`);
      } else {
        tokens.push({ t: 'op', v: c });
        i++;
      }
    } else {
      // A word: an identifier or keyword; `backticked` and ."quoted" parts belong to it.
      let v = '';
      while (i < s.length && !/[\s=!<>()]/.test(s[i]!)) {
        const d = s[i]!;
        if (d === '`') {
          const end = s.indexOf('`', i + 1);
          if (end < 0) bad(`filter: unterminated backtick at character ${i + 1}`);
          v += s.slice(i, end + 1);
          i = end + 1;
        } else if ((d === '"' || d === "'") && v.endsWith('.')) {
          const [q, j] = readQuoted(s, i);
          v += `\`${q}\``;
          i = j;
        } else if (d === '"' || d === "'") {
          break;
        } else {
          v += d;
          i++;
        }
      }
      tokens.push({ t: 'word', v });
    }
  }
  return tokens;
}

function unquoteKey(k: string): string {
  return k.length >= 2 && k.startsWith('`') && k.endsWith('`') ? k.slice(1, -1) : k;
}

function identifier(word: string, target: SearchTarget): { kind: 'attribute' | 'tag'; key: string } {
  const dot = word.startsWith('`') ? -1 : word.indexOf('.');
  if (dot < 0) {
    const key = unquoteKey(word);
    // Own keys only: `constructor` or `toString` is an unknown attribute, not Object.prototype's.
    if (!Object.hasOwn(ATTRIBUTES[target], key)) {
      bad(
        `filter: unknown attribute '${key}'; ${target} can be filtered by ${Object.keys(ATTRIBUTES[target]).join(', ')} and tags.<key>`,
      );
    }
    return { kind: 'attribute', key };
  }
  const entity = unquoteKey(word.slice(0, dot)).toLowerCase();
  const key = unquoteKey(word.slice(dot + 1));
  if (entity === 'tag' || entity === 'tags') {
    if (key === '') bad('filter: a tag condition needs a key: tags.<key>');
    return { kind: 'tag', key };
  }
  if (entity === 'attribute' || entity === 'attributes' || entity === 'attr') return identifier(key, target);
  return bad(`filter: unknown entity '${entity}' in '${word}'; use an attribute or tags.<key>`);
}

/**
 * Parses an MLflow search filter: conditions joined by AND, each `<key> <comparator> <value>`.
 *
 * @example
 *   parseFilter("name ILIKE '%income%' AND tags.team = 'risk'", 'models');
 */
export function parseFilter(filter: string | undefined, target: SearchTarget): SearchCondition[] {
  if (filter === undefined || filter.trim() === '') return [];
  if (filter.includes('\0')) bad('filter: must not contain NUL characters');
  const tokens = tokenize(filter);
  const out: SearchCondition[] = [];
  let i = 0;
  for (;;) {
    const id = tokens[i++];
    if (id?.t !== 'word')
      bad(`filter: expected a key such as name or tags.<key> in ${JSON.stringify(filter)}`);
    const field = identifier(id.v, target);
    let comparator: Comparator;
    const op = tokens[i++];
    if (op?.t === 'op') comparator = op.v as Comparator;
    else if (op?.t === 'word' && ['LIKE', 'ILIKE', 'IN'].includes(op.v.toUpperCase()))
      comparator = op.v.toUpperCase() as Comparator;
    else if (op?.t === 'word' && op.v.toUpperCase() === 'NOT' && tokens[i]?.t === 'word') {
      if ((tokens[i] as { v: string }).v.toUpperCase() !== 'IN') bad('filter: NOT is only allowed in NOT IN');
      i++;
      comparator = 'NOT IN';
    } else return bad(`filter: expected a comparator after '${id.v}'`);
    const val = tokens[i++];
    if (!val) return bad(`filter: '${id.v} ${comparator}' needs a value`);
    const type = field.kind === 'tag' ? 'string' : ATTRIBUTES[target][field.key]!;
    let value: SearchCondition['value'];
    if (comparator === 'IN' || comparator === 'NOT IN') {
      if (val.t !== 'list') bad(`filter: ${comparator} takes a list such as ('a', 'b')`);
      if (field.kind === 'tag' || !['name', 'run_id'].includes(field.key))
        bad(`filter: ${comparator} is only supported for name and run_id`);
      value = val.v;
    } else if (type === 'number') {
      const n = val.t === 'word' || val.t === 'string' ? Number(val.v) : Number.NaN;
      if (!Number.isFinite(n)) bad(`filter: '${field.key}' is compared with a number`);
      if (comparator === 'LIKE' || comparator === 'ILIKE')
        bad(`filter: '${field.key}' is numeric; LIKE does not apply`);
      value = n;
    } else {
      if (val.t !== 'string') bad(`filter: the value for '${id.v}' must be a quoted string`);
      if (['<', '<=', '>', '>='].includes(comparator))
        bad(`filter: '${id.v}' supports =, !=, LIKE and ILIKE${field.kind === 'attribute' ? ', IN' : ''}`);
      value = val.v;
    }
    out.push({ kind: field.kind, key: field.key, comparator, value });
    const next = tokens[i++];
    if (!next) return out;
    if (next.t !== 'word' || next.v.toUpperCase() !== 'AND')
      bad(`filter: conditions are joined with AND (OR is not supported), near ${JSON.stringify(next.v)}`);
  }
}

/** Parses `order_by` entries such as `name ASC` or `last_updated_timestamp DESC`. */
export function parseOrderBy(orderBy: readonly string[] | undefined, target: SearchTarget): SearchOrder[] {
  return (orderBy ?? []).map((o) => {
    const parts = o.trim().split(/\s+/);
    const key = unquoteKey(parts[0] ?? '');
    const dir = (parts[1] ?? 'ASC').toUpperCase();
    const valid = ORDER_KEYS[target];
    if (!valid.includes(key) || parts.length > 2 || (dir !== 'ASC' && dir !== 'DESC')) {
      bad(
        `order_by: ${JSON.stringify(o)} must be one of ${valid.join(', ')}, optionally followed by ASC or DESC`,
      );
    }
    return { key, descending: dir === 'DESC' };
  });
}

/**
 * SQL LIKE without an escape character (MLflow's, on SQLite): `%` is any run of characters, `_`
 * exactly one character (a code point, as SQLite counts them: an emoji is one), anything else
 * itself; `caseless` for ILIKE. The classic greedy wildcard match with one backtrack point (the
 * last `%`): O(text × pattern) at worst, never exponential as a backtracking regex is on
 * `%a%a%a%b`. The pattern is folded and split once, then matched against each text.
 *
 * @example
 *   likeMatcher('inc%v_', false)('income-v2'); // true
 */
export function likeMatcher(pattern: string, caseless: boolean): (text: string) => boolean {
  const p = Array.from(caseless ? canonical(pattern) : pattern);
  return (text) => wildcardMatch(Array.from(caseless ? canonical(text) : text), p);
}

/** `likeMatcher(pattern, caseless)(text)`, for a pattern used once. */
export function likeMatch(text: string, pattern: string, caseless: boolean): boolean {
  return likeMatcher(pattern, caseless)(text);
}

function wildcardMatch(t: readonly string[], p: readonly string[]): boolean {
  let ti = 0;
  let pi = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    const c = p[pi];
    if (c === '%') {
      star = pi++;
      mark = ti;
    } else if (c !== undefined && (c === '_' || c === t[ti])) {
      pi++;
      ti++;
    } else if (star >= 0) {
      // Let the last `%` take one more character and retry what follows it.
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (p[pi] === '%') pi++;
  return pi === p.length;
}

/**
 * Case folding as a case-insensitive JavaScript regex without the `u` flag does it: each
 * character's upper case, unless that is several characters ('ß' → 'SS') or takes a non-ASCII
 * character to ASCII ('ı' → 'I', 'ſ' → 'S'), which keep their own.
 */
function canonical(s: string): string {
  let out = '';
  for (const c of s) {
    const u = c.toUpperCase();
    out += Array.from(u).length !== 1 || (c.codePointAt(0)! >= 128 && u.codePointAt(0)! < 128) ? c : u;
  }
  return out;
}

/**
 * A test of whether one item satisfies every condition; `get` reads an attribute or a tag of it.
 * Made once per search: LIKE and ILIKE patterns are folded and split here, not per item.
 *
 * @example items.filter((m) => matcher((kind, key) => (kind === 'tag' ? m.tags[key] : m.name)))
 */
export function conditionsMatcher(
  conditions: readonly SearchCondition[],
): (get: (kind: 'attribute' | 'tag', key: string) => string | number | undefined) => boolean {
  const likes = conditions.map((c) =>
    c.comparator === 'LIKE' || c.comparator === 'ILIKE'
      ? likeMatcher(String(c.value), c.comparator === 'ILIKE')
      : undefined,
  );
  return (get) => {
    for (let i = 0; i < conditions.length; i++) {
      const c = conditions[i]!;
      const raw = get(c.kind, c.key);
      // Only a string or number is a value; anything else (never expected) matches nothing.
      const lhs = typeof raw === 'string' || typeof raw === 'number' ? raw : undefined;
      if (lhs === undefined) {
        if (c.kind === 'tag' && c.key === IS_PROMPT_TAG) {
          if ((c.comparator === '!=' && c.value === 'true') || (c.comparator === '=' && c.value === 'false'))
            continue;
        }
        return false;
      }
      if (!compare(lhs, c.comparator, c.value, likes[i])) return false;
    }
    return true;
  };
}

function compare(
  lhs: string | number,
  op: Comparator,
  rhs: SearchCondition['value'],
  like: ((text: string) => boolean) | undefined,
): boolean {
  switch (op) {
    case '=':
      return lhs === rhs;
    case '!=':
      return lhs !== rhs;
    case 'LIKE':
    case 'ILIKE':
      return like!(String(lhs));
    case 'CONTAINS':
      return String(lhs).toLowerCase().includes(String(rhs).toLowerCase());
    case 'IN':
      return (rhs as string[]).includes(String(lhs));
    case 'NOT IN':
      return !(rhs as string[]).includes(String(lhs));
    case '<':
      return Number(lhs) < (rhs as number);
    case '<=':
      return Number(lhs) <= (rhs as number);
    case '>':
      return Number(lhs) > (rhs as number);
    case '>=':
      return Number(lhs) >= (rhs as number);
  }
}

/** Page tokens: the offset into the ordered results, opaque to clients. */
export function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

export function decodePageToken(token: string | undefined, field = 'page_token'): number {
  if (token === undefined || token === '') return 0;
  try {
    const o = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown }).o;
    if (typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) return o;
  } catch {
    // fall through
  }
  return bad(`${field}: ${JSON.stringify(token)} is not a page token this server issued`);
}
