import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { SlipwayError } from '../../errors/index.js';
import type { ModelVersion, Registry } from '../../registry/index.js';
import { parseDatasetRef } from '../../registry/index.js';
import type { Database } from '../../store/index.js';
import type { AlertTables } from '../alert-migrations.js';
import {
  checkDurationMs,
  MAX_DURATION_MS,
  MAX_TIME_MS,
  parseDurationInput,
  parseWindowReference,
} from '../durations.js';
import type { AlertMetricSource, Measurement } from './alert-metrics.js';
import { checkRetrainConfig, type RetrainConfig, runCommand } from './retrain.js';
import { compare, formatDuration, parseRuleExpression, type RuleExpression } from './rule-expression.js';
import { type DeliveryOptions, deliver, type Webhook } from './webhooks.js';

/**
 * A rule's state. `ok`: the condition does not hold; `pending`: it holds, for less than the
 * rule's `for`; `firing`; `no_data`: the metric could not be computed (no traffic, no ground
 * truth, no reference) — never firing.
 */
export type AlertState = 'ok' | 'pending' | 'firing' | 'no_data';

export interface AlertRuleInput {
  name: string;
  model: string;
  /** Only this version's predictions (default: every version of the model). */
  version?: string | null;
  expression: string;
  /** Evaluation interval: a duration (`30s`, `1m`) or ms; default 1m. */
  interval?: string | number;
  /** How long the condition must hold before firing (`5m`); default 0 (at once). */
  for?: string | number;
  /** Drift reference: `training` (default), a dataset ref (`adult@1`), or `window:<since>/<until>` (`window:8d/1d`). */
  reference?: string | null;
  webhooks?: Webhook[];
  retrain?: RetrainConfig | null;
}

export interface AlertRule {
  id: string;
  name: string;
  model: string;
  version: string | null;
  expression: string;
  parsed: RuleExpression;
  intervalMs: number;
  forMs: number;
  reference: string | null;
  /** Secrets are never shown: only whether one is set. */
  webhooks: { url: string; signed: boolean }[];
  retrain: RetrainConfig | null;
  state: AlertState;
  stateSinceMs: number;
  value: number | null;
  lastEvalMs: number | null;
  reason: string | null;
  createdMs: number;
}

/** A state change, as history keeps it. */
export interface AlertEvent {
  id: string;
  ruleId: string;
  rule: string;
  state: AlertState;
  previous: AlertState;
  value: number | null;
  threshold: number;
  windowStartMs: number;
  windowEndMs: number;
  atMs: number;
  reason: string | null;
}

export interface Evaluation {
  rule: string;
  state: AlertState;
  previous: AlertState;
  value: number | null;
  threshold: number;
  reason: string | null;
  /** The event recorded when the state changed. */
  event?: AlertEvent;
}

export interface DeliveryRecord {
  id: string;
  eventId: string;
  url: string;
  attempt: number;
  status: number | null;
  ok: boolean;
  error: string | null;
  atMs: number;
  durationMs: number;
}

export interface RetrainRun {
  id: string;
  ruleId: string;
  eventId: string;
  command: string[];
  status: 'running' | 'succeeded' | 'failed' | 'timeout';
  startedMs: number;
  finishedMs: number | null;
  exitCode: number | null;
  outputTail: string;
  /** The version the command pushed (tagged `trigger=<run id>`), now alias `challenger`. */
  modelVersion: number | null;
}

/** The notification body every webhook receives (see docs/monitoring.md). */
export interface AlertNotification {
  rule: string;
  rule_id: string;
  event_id: string;
  model: string;
  version: string | null;
  /** `firing`, `resolved` (back to ok) or `no_data` (was firing, now cannot be measured). */
  state: 'firing' | 'resolved' | 'no_data';
  previous: AlertState;
  metric: string;
  op: string;
  value: number | null;
  threshold: number;
  expression: string;
  window: string;
  window_start: string;
  window_end: string;
  segment: { key: string; value: string } | null;
  reason: string | null;
  at: string;
}

export interface AlertEngineOptions {
  metrics: AlertMetricSource;
  /** To set `challenger` on a version a retraining command pushed. */
  registry?: Registry;
  logger?: Logger;
  /** How often the schedule looks for due rules (default 1000 ms). */
  tickMs?: number;
  webhook?: Omit<DeliveryOptions, 'signal'>;
  /** What retraining commands are told about this server. */
  environment?: { url?: string; dataDir?: string; databaseUrl?: string | null };
  /** The alias a pushed version gets (default `challenger`). */
  challengerAlias?: string;
}

const DEFAULT_INTERVAL_MS = 60_000;

/** What a rule takes; anything else is refused rather than ignored. */
const RULE_FIELDS = [
  'name',
  'model',
  'version',
  'expression',
  'interval',
  'for',
  'reference',
  'webhooks',
  'retrain',
] as const;

/**
 * Names the alert routes take for themselves (`GET …/alerts/history`, `POST …/alerts/evaluate`):
 * a rule so named could not be reached by name. A rule id's shape is refused too, as names and
 * ids share the `…/alerts/{rule}` path.
 */
const RESERVED_NAMES = ['history', 'evaluate'];
const RULE_ID = /^al-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const bad = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);
};
const notFound = (message: string): never => {
  throw new SlipwayError('SLIPWAY_ERR_RESOURCE_NOT_FOUND', message);
};

type RuleRow = AlertTables['alert_rules'];

/**
 * Alert rules on the monitoring store: evaluated on a schedule (each at its own interval), their
 * state changes kept as history, notifications POSTed to webhooks (signed, retried with backoff,
 * each attempt recorded) and retraining commands run when a rule fires — none of which holds up
 * the evaluation of other rules.
 *
 * @example
 *   const engine = new AlertEngine(db, { metrics: new MonitoringMetrics({ monitoring }) });
 *   await engine.createRule({ name: 'slow', model: 'adult', expression: 'p99_latency_ms > 50 over 5m' });
 *   engine.start();
 */
export class AlertEngine {
  private readonly db: Kysely<AlertTables>;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private readonly running = new Map<string, Promise<Evaluation>>();
  /** Deliveries and retraining runs still going. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly abort = new AbortController();
  private snapshot: AlertRule[] = [];
  private environment: NonNullable<AlertEngineOptions['environment']>;

  constructor(
    database: Database,
    private readonly options: AlertEngineOptions,
  ) {
    this.db = database.as<AlertTables>();
    this.environment = { ...options.environment };
  }

  /** Tells retraining commands where the server is (known once it listens). */
  setEnvironment(env: NonNullable<AlertEngineOptions['environment']>): void {
    this.environment = { ...this.environment, ...env };
  }

  // ---------------------------------------------------------------- rules

  async createRule(input: AlertRuleInput): Promise<AlertRule> {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) bad('rule must be an object');
    for (const k of Object.keys(input)) {
      if (!(RULE_FIELDS as readonly string[]).includes(k))
        bad(`${k} is not a rule field (${RULE_FIELDS.join(', ')})`);
    }
    if (typeof input.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}$/.test(input.name)) {
      bad('name must be 1-256 letters, digits, _ . : or -, starting with a letter or digit');
    }
    if (RESERVED_NAMES.includes(input.name) || RULE_ID.test(input.name)) {
      bad(
        `name: '${input.name}' is reserved (${RESERVED_NAMES.join(', ')} and rule ids al-<uuid> name routes or rules): choose another`,
      );
    }
    if (typeof input.model !== 'string' || input.model === '') bad('model must be a model name');
    if (input.version != null && (typeof input.version !== 'string' || input.version === '')) {
      bad('version must be a version string');
    }
    const parsed = parseRuleExpression(input.expression);
    const intervalMs = durationField(input.interval, 'interval', DEFAULT_INTERVAL_MS);
    if (intervalMs < 1000) bad('interval must be at least 1s');
    const forMs = durationField(input.for, 'for', 0);
    const reference = checkReference(input.reference, parsed);
    const webhooks = input.webhooks ?? [];
    if (!Array.isArray(webhooks)) bad('webhooks must be an array of {url, secret?}');
    webhooks.forEach((h, i) => {
      if (typeof h !== 'object' || h === null) bad(`webhooks[${i}] must be an object {url, secret?}`);
      let u: URL | undefined;
      try {
        u = new URL(h.url);
      } catch {
        bad(`webhooks[${i}].url must be an http(s) URL`);
      }
      if (u!.protocol !== 'http:' && u!.protocol !== 'https:')
        bad(`webhooks[${i}].url must be an http(s) URL`);
      if (h.secret !== undefined && (typeof h.secret !== 'string' || h.secret === '')) {
        bad(`webhooks[${i}].secret must be a non-empty string`);
      }
      for (const k of Object.keys(h))
        if (k !== 'url' && k !== 'secret') bad(`webhooks[${i}].${k} is not a setting (url, secret)`);
    });
    let retrain: RetrainConfig | null = null;
    if (input.retrain != null) {
      try {
        retrain = checkRetrainConfig(input.retrain);
      } catch (err) {
        bad((err as Error).message);
      }
    }
    const existing = await this.db
      .selectFrom('alert_rules')
      .select('id')
      .where('name', '=', input.name)
      .executeTakeFirst();
    if (existing)
      throw new SlipwayError('SLIPWAY_ERR_ALREADY_EXISTS', `name: an alert rule '${input.name}' exists`);
    const now = Date.now();
    const row: RuleRow = {
      id: `al-${randomUUID()}`,
      name: input.name,
      model: input.model,
      version: input.version ?? null,
      expression: input.expression.trim(),
      interval_ms: intervalMs,
      for_ms: forMs,
      reference,
      webhooks: JSON.stringify(
        webhooks.map((h) => ({ url: h.url, ...(h.secret ? { secret: h.secret } : {}) })),
      ),
      retrain: retrain ? JSON.stringify(retrain) : null,
      state: 'ok',
      state_since_ms: now,
      last_value: null,
      last_eval_ms: null,
      last_reason: null,
      created_ms: now,
    };
    await this.db.insertInto('alert_rules').values(row).execute();
    await this.refresh();
    return toRule(row);
  }

  async listRules(filter: { model?: string } = {}): Promise<AlertRule[]> {
    let q = this.db.selectFrom('alert_rules').selectAll();
    if (filter.model !== undefined) q = q.where('model', '=', filter.model);
    return (await q.orderBy('name').execute()).map(toRule);
  }

  /** A rule by id or name. */
  async getRule(idOrName: string): Promise<AlertRule> {
    return toRule(await this.row(idOrName));
  }

  /** Deletes a rule with its history, deliveries and runs. */
  async deleteRule(idOrName: string): Promise<void> {
    const r = await this.row(idOrName);
    await this.db.transaction().execute(async (trx) => {
      for (const t of ['alert_events', 'alert_deliveries', 'alert_runs'] as const) {
        await trx.deleteFrom(t).where('rule_id', '=', r.id).execute();
      }
      await trx.deleteFrom('alert_rules').where('id', '=', r.id).execute();
    });
    await this.refresh();
  }

  /** State changes, newest first, of one rule or all. */
  async history(options: { rule?: string; limit?: number } = {}): Promise<AlertEvent[]> {
    let q = this.db
      .selectFrom('alert_events')
      .innerJoin('alert_rules', 'alert_rules.id', 'alert_events.rule_id')
      .selectAll('alert_events')
      .select('alert_rules.name as rule_name');
    if (options.rule !== undefined)
      q = q.where('alert_events.rule_id', '=', (await this.row(options.rule)).id);
    const rows = await q
      .orderBy('alert_events.at_ms', 'desc')
      .orderBy('alert_events.id')
      .limit(options.limit ?? 100)
      .execute();
    return rows.map((e) => ({
      id: e.id,
      ruleId: e.rule_id,
      rule: e.rule_name,
      state: e.state as AlertState,
      previous: e.previous as AlertState,
      value: e.value === null ? null : Number(e.value),
      threshold: Number(e.threshold),
      windowStartMs: Number(e.window_start_ms),
      windowEndMs: Number(e.window_end_ms),
      atMs: Number(e.at_ms),
      reason: e.reason,
    }));
  }

  /** Webhook delivery attempts of a rule, in order. */
  async deliveries(rule: string): Promise<DeliveryRecord[]> {
    const r = await this.row(rule);
    const rows = await this.db
      .selectFrom('alert_deliveries')
      .selectAll()
      .where('rule_id', '=', r.id)
      .orderBy('at_ms')
      .orderBy('attempt')
      .execute();
    return rows.map((d) => ({
      id: d.id,
      eventId: d.event_id,
      url: d.url,
      attempt: d.attempt,
      status: d.status,
      ok: Boolean(d.ok),
      error: d.error,
      atMs: Number(d.at_ms),
      durationMs: Number(d.duration_ms),
    }));
  }

  /** Retraining runs of a rule, newest first. */
  async runs(rule: string): Promise<RetrainRun[]> {
    const r = await this.row(rule);
    const rows = await this.db
      .selectFrom('alert_runs')
      .selectAll()
      .where('rule_id', '=', r.id)
      .orderBy('started_ms', 'desc')
      .execute();
    return rows.map((x) => ({
      id: x.id,
      ruleId: x.rule_id,
      eventId: x.event_id,
      command: JSON.parse(x.command) as string[],
      status: x.status as RetrainRun['status'],
      startedMs: Number(x.started_ms),
      finishedMs: x.finished_ms === null ? null : Number(x.finished_ms),
      exitCode: x.exit_code,
      outputTail: x.output_tail,
      modelVersion: x.model_version,
    }));
  }

  private async row(idOrName: string): Promise<RuleRow> {
    const r = await this.db
      .selectFrom('alert_rules')
      .selectAll()
      .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
      .executeTakeFirst();
    if (!r) notFound(`no alert rule '${idOrName}'`);
    return r!;
  }

  // ---------------------------------------------------------------- schedule

  /** Evaluates each rule when its interval has passed since its last evaluation. */
  start(): void {
    if (this.timer) return;
    const tick = async () => {
      if (this.ticking) return;
      this.ticking = true;
      try {
        const rules = await this.refresh();
        const now = Date.now();
        for (const r of rules) {
          if (this.running.has(r.id)) continue;
          if (r.lastEvalMs !== null && now - r.lastEvalMs < r.intervalMs) continue;
          // Each rule on its own: a slow or failing one does not hold up the others.
          void this.evaluateRule(r.id).catch((err) =>
            this.options.logger?.warn({ err, rule: r.name }, 'alert rule evaluation failed'),
          );
        }
      } catch (err) {
        this.options.logger?.warn({ err }, 'alert schedule: cannot read the rules');
      } finally {
        this.ticking = false;
      }
    };
    this.timer = setInterval(() => void tick(), this.options.tickMs ?? 1000);
    this.timer.unref();
    void tick();
  }

  /** Stops the schedule; retries still waiting give up, running commands are stopped; waits for the rest. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await Promise.allSettled([...this.running.values()]);
    await this.idle();
  }

  /** Resolves when every delivery and retraining run started so far has finished. */
  async idle(): Promise<void> {
    while (this.background.size > 0 || this.running.size > 0) {
      await Promise.allSettled([...this.background, ...this.running.values()]);
    }
  }

  /** The rules as of the last read (for Prometheus, which reads synchronously). */
  states(): readonly AlertRule[] {
    return this.snapshot;
  }

  private async refresh(): Promise<AlertRule[]> {
    this.snapshot = await this.listRules();
    return this.snapshot;
  }

  // ---------------------------------------------------------------- evaluation

  /** Evaluates one rule (by id or name) or every rule now, whatever their schedule. */
  async evaluate(rule?: string, nowMs?: number): Promise<Evaluation[]> {
    const ids = rule === undefined ? (await this.listRules()).map((r) => r.id) : [(await this.row(rule)).id];
    const out = await Promise.all(ids.map((id) => this.evaluateRule(id, nowMs)));
    await this.refresh();
    return out;
  }

  /** One evaluation at a time per rule: a second caller waits for the first, then runs its own. */
  private evaluateRule(id: string, nowMs?: number): Promise<Evaluation> {
    const before = this.running.get(id);
    const p = (async () => {
      if (before) await before.catch(() => undefined);
      return this.evaluateOnce(id, nowMs ?? Date.now());
    })();
    this.running.set(id, p);
    const clear = () => {
      if (this.running.get(id) === p) this.running.delete(id);
    };
    p.then(clear, clear);
    return p;
  }

  private async evaluateOnce(id: string, now: number): Promise<Evaluation> {
    const row = await this.row(id);
    const rule = toRule(row);
    const expr = rule.parsed;
    // Held within the dates a Date can show, whatever the rule: history and webhooks print it.
    const window = { sinceMs: Math.max(now - expr.windowMs, -MAX_TIME_MS), untilMs: now };
    let m: Measurement;
    if (!(expr.windowMs >= 1 && expr.windowMs <= MAX_DURATION_MS)) {
      // Stored before windows were bounded: reported, never measured.
      m = {
        value: null,
        reason: `the window ${formatDuration(expr.windowMs)} is outside 1ms to ${MAX_DURATION_MS / 86_400_000}d: recreate the rule with a shorter one`,
      };
    } else {
      try {
        m = await this.options.metrics.measure(
          { model: rule.model, version: rule.version, reference: rule.reference },
          expr,
          window,
        );
      } catch (err) {
        m = { value: null, reason: `cannot measure: ${(err as Error).message}` };
      }
    }
    const value = m.value !== null && Number.isFinite(m.value) ? m.value : null;
    const reason = value === null ? (m.reason ?? 'no value') : null;
    const previous = rule.state;
    let state: AlertState;
    if (value === null) state = 'no_data';
    else if (!compare(value, expr.op, expr.threshold)) state = 'ok';
    else if (previous === 'firing' || rule.forMs === 0) state = 'firing';
    else if (previous === 'pending' && now - rule.stateSinceMs >= rule.forMs) state = 'firing';
    else state = 'pending';

    const base = { last_value: value, last_eval_ms: now, last_reason: reason };
    if (state === previous) {
      await this.db.updateTable('alert_rules').set(base).where('id', '=', id).execute();
      return { rule: rule.name, state, previous, value, threshold: expr.threshold, reason };
    }
    const event: AlertEvent = {
      id: `ae-${randomUUID()}`,
      ruleId: id,
      rule: rule.name,
      state,
      previous,
      value,
      threshold: expr.threshold,
      windowStartMs: window.sinceMs,
      windowEndMs: window.untilMs,
      atMs: now,
      reason,
    };
    // Conditional on the state read: when another process (the CLI) changed it meanwhile, this
    // evaluation records and notifies nothing, so a transition is announced once.
    const changed = await this.db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('alert_rules')
        .set({ ...base, state, state_since_ms: now })
        .where('id', '=', id)
        .where('state', '=', previous)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await trx
        .insertInto('alert_events')
        .values({
          id: event.id,
          rule_id: id,
          state,
          previous,
          value,
          threshold: expr.threshold,
          window_start_ms: window.sinceMs,
          window_end_ms: window.untilMs,
          at_ms: now,
          reason,
        })
        .execute();
      return true;
    });
    if (!changed) return { rule: rule.name, state, previous, value, threshold: expr.threshold, reason };
    const notify =
      state === 'firing'
        ? 'firing'
        : previous === 'firing'
          ? state === 'ok'
            ? 'resolved'
            : 'no_data'
          : null;
    if (notify) this.notify(row, rule, event, notify);
    if (state === 'firing' && rule.retrain) this.track(this.retrain(rule, event, m));
    return { rule: rule.name, state, previous, value, threshold: expr.threshold, reason, event };
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err) => this.options.logger?.error({ err }, 'alert background work failed'));
    this.background.add(q);
    void q.finally(() => this.background.delete(q));
  }

  // ---------------------------------------------------------------- notifications

  private notify(row: RuleRow, rule: AlertRule, event: AlertEvent, state: AlertNotification['state']): void {
    const hooks = JSON.parse(row.webhooks) as Webhook[];
    if (hooks.length === 0) return;
    const body: AlertNotification = {
      rule: rule.name,
      rule_id: rule.id,
      event_id: event.id,
      model: rule.model,
      version: rule.version,
      state,
      previous: event.previous,
      metric: rule.parsed.metric,
      op: rule.parsed.op,
      value: event.value,
      threshold: event.threshold,
      expression: rule.expression,
      window: formatDuration(rule.parsed.windowMs),
      window_start: new Date(event.windowStartMs).toISOString(),
      window_end: new Date(event.windowEndMs).toISOString(),
      segment: rule.parsed.segment ?? null,
      reason: event.reason,
      at: new Date(event.atMs).toISOString(),
    };
    const text = JSON.stringify(body);
    for (const hook of hooks) {
      this.track(
        deliver(
          hook,
          text,
          async (a) => {
            await this.db
              .insertInto('alert_deliveries')
              .values({
                id: `ad-${randomUUID()}`,
                event_id: event.id,
                rule_id: rule.id,
                url: hook.url,
                attempt: a.attempt,
                status: a.status,
                ok: a.ok ? 1 : 0,
                error: a.error,
                at_ms: a.atMs,
                duration_ms: a.durationMs,
              })
              .execute();
            if (!a.ok)
              this.options.logger?.warn(
                { rule: rule.name, url: hook.url, attempt: a.attempt, error: a.error },
                'alert webhook failed',
              );
          },
          { ...this.options.webhook, signal: this.abort.signal },
        ),
      );
    }
  }

  // ---------------------------------------------------------------- retraining

  private async retrain(rule: AlertRule, event: AlertEvent, m: Measurement): Promise<void> {
    const config = rule.retrain!;
    const runId = `tr-${randomUUID()}`;
    const version =
      m.version ?? rule.version ?? (await this.servingVersion(rule.model))?.version.toString() ?? null;
    let dataset = m.dataset ?? null;
    if (dataset === null && version !== null && this.options.registry && /^\d+$/.test(version)) {
      const v = await this.options.registry.getVersion(rule.model, Number(version)).catch(() => undefined);
      dataset = v?.trainingData[0]?.ref ?? null;
    }
    const startedMs = Date.now();
    await this.db
      .insertInto('alert_runs')
      .values({
        id: runId,
        rule_id: rule.id,
        event_id: event.id,
        command: JSON.stringify(config.command),
        status: 'running',
        started_ms: startedMs,
        finished_ms: null,
        exit_code: null,
        output_tail: '',
        model_version: null,
      })
      .execute();
    const env: Record<string, string> = {
      SLIPWAY_MODEL: rule.model,
      SLIPWAY_MODEL_VERSION: version ?? '',
      SLIPWAY_ALERT: rule.name,
      SLIPWAY_ALERT_ID: rule.id,
      SLIPWAY_ALERT_EVENT: event.id,
      SLIPWAY_ALERT_VALUE: String(event.value),
      SLIPWAY_TRIGGER_ID: runId,
      SLIPWAY_WINDOW_START: new Date(event.windowStartMs).toISOString(),
      SLIPWAY_WINDOW_END: new Date(event.windowEndMs).toISOString(),
      SLIPWAY_DATASET: dataset ?? '',
      ...(this.environment.url ? { SLIPWAY_URL: this.environment.url } : {}),
      ...(this.environment.dataDir ? { SLIPWAY_DATA_DIR: this.environment.dataDir } : {}),
      ...(this.environment.databaseUrl ? { SLIPWAY_DATABASE_URL: this.environment.databaseUrl } : {}),
    };
    const result = await runCommand(config, env, this.abort.signal);
    let pushed: ModelVersion | undefined;
    let note = '';
    if (result.status === 'succeeded' && this.options.registry) {
      try {
        pushed = await this.pushedVersion(rule.model, runId);
        if (pushed) {
          await this.options.registry.setAlias(
            rule.model,
            this.options.challengerAlias ?? 'challenger',
            pushed.version,
            `alert:${rule.name}`,
          );
        }
      } catch (err) {
        note = `\n[slipway] cannot set ${this.options.challengerAlias ?? 'challenger'}: ${(err as Error).message}`;
      }
    }
    await this.db
      .updateTable('alert_runs')
      .set({
        status: result.status,
        finished_ms: Date.now(),
        exit_code: result.exitCode,
        output_tail: result.outputTail + note,
        model_version: pushed?.version ?? null,
      })
      .where('id', '=', runId)
      .execute();
    this.options.logger?.info(
      {
        rule: rule.name,
        run: runId,
        status: result.status,
        exitCode: result.exitCode,
        version: pushed?.version,
      },
      'retraining command finished',
    );
  }

  /** The newest version of `model` tagged `trigger=<run id>`. */
  private async pushedVersion(model: string, runId: string): Promise<ModelVersion | undefined> {
    const { versions } = await this.options.registry!.searchVersions({
      conditions: [
        { kind: 'attribute', key: 'name', comparator: '=', value: model },
        { kind: 'tag', key: 'trigger', comparator: '=', value: runId },
      ],
      orderBy: [{ key: 'version_number', descending: true }],
      maxResults: 1,
    });
    return versions[0];
  }

  private async servingVersion(model: string): Promise<ModelVersion | undefined> {
    const registry = this.options.registry;
    return registry?.getVersionByAlias(model, registry.servingAlias).catch(() => undefined);
  }
}

/** A rule's `interval` or `for`: a duration (`5m`) or milliseconds, 0 to 366 days. */
function durationField(v: unknown, field: string, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0)
      bad(`${field} must be a duration (30s, 5m) or a whole number of milliseconds, got ${v}`);
    if (v > 0) checkDurationMs(v, field);
    return v;
  }
  if (typeof v !== 'string') bad(`${field} must be a duration (30s, 5m) or milliseconds`);
  if ((v as string).trim() === '0') return 0;
  return parseDurationInput(v as string, field);
}

/**
 * A drift rule's reference, checked as it will be read: `training`, a dataset version
 * (`adult@1`), a `file:` URI, or a past window `window:<since>/<until>` in order (now).
 */
function checkReference(value: unknown, parsed: RuleExpression): string | null {
  if (value === undefined || value === null) return null;
  const expected =
    'training, a dataset version (adult@1), a file: URI or window:<since>/<until> (e.g. window:8d/1d)';
  if (typeof value !== 'string' || value.trim() === '') bad(`reference must be ${expected}`);
  const reference = value as string;
  if (parsed.kind !== 'drift' && parsed.kind !== 'column_drift')
    bad(`reference: ${parsed.metric} is not a drift metric`);
  if (reference === 'training') return reference;
  if (reference.startsWith('window:')) {
    parseWindowReference(reference, 'reference');
    return reference;
  }
  const ref = parseDatasetRef(reference, 'reference');
  if (ref.uri !== null && !ref.uri.startsWith('file:')) {
    bad(`reference: ${JSON.stringify(reference)} cannot be read; give ${expected}`);
  }
  return reference;
}

function toRule(r: RuleRow): AlertRule {
  return {
    id: r.id,
    name: r.name,
    model: r.model,
    version: r.version,
    expression: r.expression,
    parsed: parseRuleExpression(r.expression, { stored: true }),
    intervalMs: Number(r.interval_ms),
    forMs: Number(r.for_ms),
    reference: r.reference,
    webhooks: (JSON.parse(r.webhooks) as Webhook[]).map((h) => ({ url: h.url, signed: Boolean(h.secret) })),
    retrain: r.retrain === null ? null : (JSON.parse(r.retrain) as RetrainConfig),
    state: r.state as AlertState,
    stateSinceMs: Number(r.state_since_ms),
    value: r.last_value === null ? null : Number(r.last_value),
    lastEvalMs: r.last_eval_ms === null ? null : Number(r.last_eval_ms),
    reason: r.last_reason,
    createdMs: Number(r.created_ms),
  };
}
