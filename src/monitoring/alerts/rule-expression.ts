/**
 * The alert rule grammar: a metric, a comparison and a threshold, with an optional window and
 * segment.
 *
 *   rule     := metric op number [ "over" duration ] [ "segment=" key ":" value ]
 *   metric   := name | test "(" column ")"
 *   op       := ">" | ">=" | "<" | "<=" | "==" | "!="
 *   duration := number unit            unit: ms s m h d w
 *
 * Metric names: service — `requests`, `errors`, `error_rate`, `p50_latency_ms`,
 * `p95_latency_ms`, `p99_latency_ms`; performance (predictions with ground truth) — `accuracy`,
 * `precision`, `recall`, `f1`, `roc_auc`, `log_loss`, `mae`, `rmse`, `mape`, `r2`; drift of the
 * logged inputs against a reference — `drift_share` (share of drifted columns), `drifted_columns`,
 * `dataset_drift` (1 or 0), and per column `<test>(column)`: the score of Evidently's test `<test>`
 * (`psi(age)`, `ks(hours_per_week)`, `wasserstein(x)`…) or `drift_score(column)` with the
 * column's default test. Without `over` the window is the last hour.
 *
 * @example
 *   parseRuleExpression('accuracy < 0.8 over 1d segment=region:EU');
 *   // { metric: 'accuracy', kind: 'performance', op: '<', threshold: 0.8, windowMs: 86_400_000, segment: { key: 'region', value: 'EU' }, … }
 */
import { SlipwayError } from '../../errors/index.js';
import { statTests } from '../drift/index.js';
import { MAX_DURATION_MS } from '../durations.js';

export type Comparison = '>' | '>=' | '<' | '<=' | '==' | '!=';
export type MetricKind = 'service' | 'performance' | 'drift' | 'column_drift';

export interface RuleExpression {
  /** The metric as written: `p99_latency_ms`, `psi(age)`. */
  metric: string;
  kind: MetricKind;
  /** For `column_drift`: the test (`drift_score` for the column's default) and the column. */
  test?: string;
  column?: string;
  op: Comparison;
  threshold: number;
  windowMs: number;
  /** Whether `over` was written (else `windowMs` is the default). */
  explicitWindow: boolean;
  segment?: { key: string; value: string };
}

/** The window when `over` is absent: the last hour. */
export const DEFAULT_WINDOW_MS = 3_600_000;

export const SERVICE_METRICS = [
  'requests',
  'errors',
  'error_rate',
  'p50_latency_ms',
  'p95_latency_ms',
  'p99_latency_ms',
] as const;
export const PERFORMANCE_METRICS = [
  'accuracy',
  'precision',
  'recall',
  'f1',
  'roc_auc',
  'log_loss',
  'mae',
  'rmse',
  'mape',
  'r2',
] as const;
export const DRIFT_METRICS = ['drift_share', 'drifted_columns', 'dataset_drift'] as const;

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

interface Token {
  text: string;
  /** 1-based character position in the expression. */
  at: number;
}

const TOKEN = /\s*(>=|<=|==|!=|[<>()=!]|[^\s<>=!()]+(?:=[^\s]*)?)/y;

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  for (;;) {
    const start = TOKEN.lastIndex;
    if (/^\s*$/.test(src.slice(start))) break;
    const m = TOKEN.exec(src);
    if (!m) {
      const at = start + (src.slice(start).length - src.slice(start).trimStart().length) + 1;
      fail(src, at, `unexpected ${JSON.stringify(src.slice(at - 1, at))}`);
    }
    const text = m![1]!;
    tokens.push({ text, at: TOKEN.lastIndex - text.length + 1 });
  }
  return tokens;
}

function fail(src: string, at: number, message: string): never {
  throw new SlipwayError(
    'SLIPWAY_ERR_BAD_REQUEST',
    `expression: at position ${at}: ${message} (in ${JSON.stringify(src)})`,
  );
}

const OPS = new Set<string>(['>', '>=', '<', '<=', '==', '!=']);
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;
const COLUMN = /^[^\s()]+$/;

/**
 * Parses a rule; an error names the 1-based position of what it could not read. The window is
 * 1 ms to 366 days; `stored` lifts that bound for a rule read back from the store, which may
 * predate it (it must still list and delete; evaluation refuses to measure it).
 */
export function parseRuleExpression(src: string, options: { stored?: boolean } = {}): RuleExpression {
  if (typeof src !== 'string' || src.trim() === '') {
    throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'expression: must be a non-empty string');
  }
  const tokens = tokenize(src);
  let i = 0;
  const end = src.length + 1;
  const peek = () => tokens[i];
  const next = (what: string): Token => {
    const t = tokens[i++];
    if (!t) fail(src, end, `expected ${what}, got the end`);
    return t!;
  };

  const nameTok = next('a metric');
  const name = nameTok.text;
  let kind: MetricKind;
  let test: string | undefined;
  let column: string | undefined;
  let metric = name;
  if (peek()?.text === '(') {
    i++;
    if (name !== 'drift_score' && !statTests.has(name)) {
      fail(
        src,
        nameTok.at,
        `unknown drift test '${name}' (known: drift_score, ${[...statTests.keys()].join(', ')})`,
      );
    }
    const col = next('a column name');
    if (!COLUMN.test(col.text) || col.text === ')')
      fail(src, col.at, `expected a column name, got '${col.text}'`);
    const close = next("')'");
    if (close.text !== ')') fail(src, close.at, `expected ')', got '${close.text}'`);
    kind = 'column_drift';
    test = name;
    column = col.text;
    metric = `${name}(${col.text})`;
  } else if ((SERVICE_METRICS as readonly string[]).includes(name)) kind = 'service';
  else if ((PERFORMANCE_METRICS as readonly string[]).includes(name)) kind = 'performance';
  else if ((DRIFT_METRICS as readonly string[]).includes(name)) kind = 'drift';
  else if (statTests.has(name) || name === 'drift_score') {
    fail(src, nameTok.at + name.length, `'${name}' takes a column: ${name}(column)`);
  } else {
    fail(
      src,
      nameTok.at,
      `unknown metric '${name}' (known: ${[...SERVICE_METRICS, ...PERFORMANCE_METRICS, ...DRIFT_METRICS].join(', ')}, or <test>(column))`,
    );
  }

  const opTok = next('a comparison (> >= < <= == !=)');
  if (!OPS.has(opTok.text))
    fail(src, opTok.at, `expected a comparison (> >= < <= == !=), got '${opTok.text}'`);
  const numTok = next('a number');
  if (!NUMBER.test(numTok.text)) fail(src, numTok.at, `expected a number, got '${numTok.text}'`);
  const threshold = Number(numTok.text);

  let windowMs = DEFAULT_WINDOW_MS;
  let explicitWindow = false;
  let segment: RuleExpression['segment'];
  while (peek()) {
    const t = next('over or segment=');
    if (t.text === 'over') {
      if (explicitWindow) fail(src, t.at, "'over' given twice");
      const d = next('a duration (30s, 5m, 1h, 1d)');
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(d.text);
      if (!m || Number(m[1]) <= 0)
        fail(src, d.at, `expected a duration such as 30s, 5m, 1h or 1d, got '${d.text}'`);
      windowMs = Math.round(Number(m![1]) * UNITS[m![2]!]!);
      if (!options.stored && !(windowMs >= 1 && windowMs <= MAX_DURATION_MS)) {
        fail(src, d.at, `the window must be 1ms to ${MAX_DURATION_MS / 86_400_000}d, got '${d.text}'`);
      }
      explicitWindow = true;
    } else if (t.text.startsWith('segment=')) {
      if (segment) fail(src, t.at, "'segment=' given twice");
      const pair = t.text.slice('segment='.length);
      const colon = pair.indexOf(':');
      if (colon <= 0) fail(src, t.at + 'segment='.length, `expected key:value, got '${pair}'`);
      if (kind === 'service') {
        fail(src, t.at, `${metric} counts every request of the model: it takes no segment`);
      }
      segment = { key: pair.slice(0, colon), value: pair.slice(colon + 1) };
    } else {
      fail(src, t.at, `expected 'over <duration>' or 'segment=key:value', got '${t.text}'`);
    }
  }
  return {
    metric,
    kind: kind!,
    ...(test !== undefined ? { test, column } : {}),
    op: opTok.text as Comparison,
    threshold,
    windowMs,
    explicitWindow,
    ...(segment ? { segment } : {}),
  };
}

/** Whether `value op threshold` holds. */
export function compare(value: number, op: Comparison, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
  }
}

/** `1h`, `5m`, `90s`: a window length as the grammar writes it. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['w', 604_800_000],
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
