import { type Command, InvalidArgumentError } from 'commander';
import { openStore } from '../app.js';
import type { Settings } from '../config/index.js';
import { Datasets } from '../data/index.js';
import { SlipwayError } from '../errors/index.js';
import {
  AlertEngine,
  type AlertRuleInput,
  Monitoring,
  MonitoringMetrics,
  parseDuration,
  parseTime,
  predictionJson,
  type Webhook,
} from '../monitoring/index.js';
import { Registry } from '../registry/index.js';
import { evaluationJson, eventJson, ruleJson } from '../server/monitoring/alert-routes.js';
import { addStoreOptions, runCommand, type StoreFlags, storeSettings } from './store-flags.js';

const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};
const json = (v: unknown): void => out(JSON.stringify(v, null, 2));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface Opened {
  settings: Readonly<Settings>;
  monitoring: Monitoring;
  registry: Registry;
  engine: AlertEngine;
}

/** Runs `fn` on the store's monitoring and alerts, then waits for webhooks and commands it started and closes. */
async function withMonitoring(flags: StoreFlags, fn: (o: Opened) => Promise<void>): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
  const settings = storeSettings(flags);
  const store = await openStore(settings);
  try {
    const monitoring = new Monitoring(store.db);
    const datasets = new Datasets(store.db, store.artifacts);
    const registry = new Registry(store.db, store.artifacts, {
      servingAlias: settings.servingAlias,
      datasetExists: (ref) => datasets.exists(ref),
    });
    const engine = new AlertEngine(store.db, {
      metrics: new MonitoringMetrics({ monitoring, registry, datasets }),
      registry,
      environment: { dataDir: settings.dataDir, databaseUrl: settings.databaseUrl },
    });
    await fn({ settings, monitoring, registry, engine });
    await engine.idle();
  } finally {
    await store.close();
  }
}

/**
 * The CLI cannot see what a server serves: a model is known to it when the store holds its
 * logged predictions or counted requests, or the registry has it. A typo is then an error
 * rather than a report of zeros.
 */
async function checkKnownHere(monitoring: Monitoring, registry: Registry, model: string): Promise<void> {
  if (await monitoring.hasLogged(model)) return;
  try {
    await registry.getModel(model);
  } catch (err) {
    if (err instanceof SlipwayError && err.code === 'SLIPWAY_ERR_RESOURCE_NOT_FOUND') {
      throw new SlipwayError(
        'SLIPWAY_ERR_MODEL_NOT_FOUND',
        `model '${model}' has no logged predictions in this store and is not registered`,
      );
    }
    throw err;
  }
}

interface RangeFlags extends StoreFlags {
  model?: string;
  version?: string;
  since?: string;
  until?: string;
}

function range(flags: RangeFlags): { sinceMs: number; untilMs: number } {
  const now = Date.now();
  const sinceMs = flags.since === undefined ? now - 86_400_000 : parseTime(flags.since, '--since', now);
  const untilMs = flags.until === undefined ? now + 1 : parseTime(flags.until, '--until', now);
  if (sinceMs >= untilMs) throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', '--since must be before --until');
  return { sinceMs, untilMs };
}

const rangeOptions = (cmd: Command, modelRequired = true) =>
  addStoreOptions(
    (modelRequired
      ? cmd.requiredOption('--model <name>', 'the model')
      : cmd.option('--model <name>', 'the model')
    )
      .option('--version <v>', 'only this version')
      .option('--since <time>', 'ISO date-time, epoch ms or a duration ago (1h); default 1d')
      .option('--until <time>', 'ISO date-time, epoch ms or a duration ago; default now'),
  );

interface AddFlags extends StoreFlags {
  name: string;
  model: string;
  expr: string;
  version?: string;
  interval?: string;
  for?: string;
  reference?: string;
  webhook: string[];
  webhookSecret?: string;
  retrain?: string;
  retrainCwd?: string;
  retrainTimeout?: string;
  json?: boolean;
}

/**
 * `slipway monitor …`: what the monitoring REST API gives, straight on the store (SQLite under
 * --data-dir, or --database-url) — performance, service stats, logged predictions — and alert
 * rules: list, add, remove, history, evaluate.
 */
export function registerMonitorCommands(program: Command): void {
  const monitor = program
    .command('monitor')
    .description('Model monitoring: performance, service stats, logged predictions, alert rules');

  rangeOptions(
    monitor
      .command('performance')
      .description(
        'Performance on predictions with ground truth (JSON, as GET /api/v1/monitoring/performance)',
      )
      .option('--segment <key:value>', 'only rows of this segment value (region:EU)')
      .option('--by <key>', 'one result per value of this segment key')
      .option('--window <duration>', 'one result per window (1h, 1d)')
      .option('--positive <class>', 'the positive class of binary precision/recall/F1'),
  ).action((flags: RangeFlags & { segment?: string; by?: string; window?: string; positive?: string }) =>
    runCommand(() =>
      withMonitoring(flags, async ({ monitoring, registry }) => {
        await checkKnownHere(monitoring, registry, flags.model!);
        const colon = flags.segment?.indexOf(':') ?? -1;
        if (flags.segment !== undefined && colon <= 0) {
          throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', '--segment must be key:value, e.g. region:EU');
        }
        json(
          await monitoring.performance({
            model: flags.model!,
            ...(flags.version !== undefined ? { version: flags.version } : {}),
            ...range(flags),
            ...(flags.segment !== undefined
              ? { segment: { key: flags.segment.slice(0, colon), value: flags.segment.slice(colon + 1) } }
              : {}),
            ...(flags.by !== undefined ? { by: flags.by } : {}),
            ...(flags.window !== undefined ? { windowMs: parseDuration(flags.window, '--window') } : {}),
            ...(flags.positive !== undefined ? { positive: flags.positive } : {}),
          }),
        );
      }),
    ),
  );

  rangeOptions(
    monitor
      .command('service')
      .description(
        'Requests, errors, error rate and latency quantiles (JSON, as GET /api/v1/monitoring/service)',
      ),
  ).action((flags: RangeFlags) =>
    runCommand(() =>
      withMonitoring(flags, async ({ monitoring, registry }) => {
        await checkKnownHere(monitoring, registry, flags.model!);
        json(
          await monitoring.service({
            model: flags.model!,
            ...(flags.version !== undefined ? { version: flags.version } : {}),
            ...range(flags),
          }),
        );
      }),
    ),
  );

  rangeOptions(
    monitor
      .command('predictions')
      .description('Logged predictions, newest first (JSON, as GET /api/v1/monitoring/predictions)')
      .option('--request-id <id>', 'only this request')
      .option('--limit <n>', 'at most this many (default 100)'),
    false,
  ).action((flags: RangeFlags & { requestId?: string; limit?: string }) =>
    runCommand(() =>
      withMonitoring(flags, async ({ monitoring }) => {
        const limit = flags.limit === undefined ? 100 : Number(flags.limit);
        if (!Number.isSafeInteger(limit) || limit < 1) {
          throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', '--limit must be a positive integer');
        }
        const now = Date.now();
        const predictions = await monitoring.predictions({
          ...(flags.model !== undefined ? { model: flags.model } : {}),
          ...(flags.version !== undefined ? { version: flags.version } : {}),
          ...(flags.requestId !== undefined ? { requestId: flags.requestId } : {}),
          ...(flags.since !== undefined ? { sinceMs: parseTime(flags.since, '--since', now) } : {}),
          ...(flags.until !== undefined ? { untilMs: parseTime(flags.until, '--until', now) } : {}),
          limit,
        });
        json({
          predictions: predictions.map(predictionJson),
        });
      }),
    ),
  );

  const alerts = monitor.command('alerts').description('Alert rules: list, add, remove, history, evaluate');

  addStoreOptions(
    alerts
      .command('list')
      .description('Alert rules with their state')
      .option('--model <name>', 'only rules of this model')
      .option('--json', 'print JSON'),
  ).action((flags: StoreFlags & { model?: string; json?: boolean }) =>
    runCommand(() =>
      withMonitoring(flags, async ({ engine }) => {
        const rules = await engine.listRules(flags.model !== undefined ? { model: flags.model } : {});
        if (flags.json) return json({ rules: rules.map(ruleJson) });
        if (rules.length === 0) return out('No alert rules.');
        out(
          table([
            ['NAME', 'MODEL', 'EXPRESSION', 'STATE', 'VALUE', 'EVERY'],
            ...rules.map((r) => [
              r.name,
              r.version ? `${r.model} v${r.version}` : r.model,
              r.expression,
              r.state,
              r.value === null ? '-' : String(r.value),
              `${r.intervalMs / 1000}s`,
            ]),
          ]),
        );
      }),
    ),
  );

  addStoreOptions(
    alerts
      .command('add')
      .description('Add an alert rule')
      .requiredOption('--name <name>', 'rule name')
      .requiredOption('--model <name>', 'the model')
      .requiredOption(
        '--expr <expression>',
        'metric op threshold [over window] [segment=key:value], e.g. "p99_latency_ms > 50 over 5m"',
      )
      .option('--version <v>', 'only this version')
      .option('--interval <duration>', 'evaluation interval (default 1m)')
      .option('--for <duration>', 'how long the condition must hold before firing (default 0)')
      .option(
        '--reference <ref>',
        'drift reference: training (default), dataset@version, or window:<since>/<until>',
      )
      .option('--webhook <url>', 'POST notifications here (repeatable)', collect, [])
      .option('--webhook-secret <secret>', 'HMAC-SHA256 secret signing the webhooks (SLIPWAY_WEBHOOK_SECRET)')
      .option(
        '--retrain <argv-json>',
        'a command run when the rule fires, as a JSON array: \'["python3","train.py"]\'',
      )
      .option('--retrain-cwd <dir>', "the command's working directory")
      .option('--retrain-timeout <duration>', 'kill the command past this (default 1h)')
      .option('--json', 'print JSON'),
  ).action((flags: AddFlags) =>
    runCommand(async () => {
      let retrain: AlertRuleInput['retrain'] = null;
      if (flags.retrain !== undefined) {
        let command: unknown;
        try {
          command = JSON.parse(flags.retrain);
        } catch {
          throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', '--retrain must be a JSON array of strings');
        }
        if (!Array.isArray(command)) {
          throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', '--retrain must be a JSON array of strings');
        }
        retrain = {
          command: command as string[],
          ...(flags.retrainCwd !== undefined ? { cwd: flags.retrainCwd } : {}),
          ...(flags.retrainTimeout !== undefined
            ? { timeoutMs: parseDuration(flags.retrainTimeout, '--retrain-timeout') }
            : {}),
        };
      }
      const secret = flags.webhookSecret ?? process.env.SLIPWAY_WEBHOOK_SECRET;
      const webhooks: Webhook[] = flags.webhook.map((url) => ({ url, ...(secret ? { secret } : {}) }));
      await withMonitoring(flags, async ({ engine }) => {
        const rule = await engine.createRule({
          name: flags.name,
          model: flags.model,
          expression: flags.expr,
          ...(flags.version !== undefined ? { version: flags.version } : {}),
          ...(flags.interval !== undefined ? { interval: flags.interval } : {}),
          ...(flags.for !== undefined ? { for: flags.for } : {}),
          ...(flags.reference !== undefined ? { reference: flags.reference } : {}),
          webhooks,
          retrain,
        });
        if (flags.json) return json(ruleJson(rule));
        out(
          `Added alert rule ${rule.name} (${rule.id}): ${rule.expression} on ${rule.model}, every ${rule.intervalMs / 1000}s`,
        );
      });
    }),
  );

  addStoreOptions(
    alerts
      .command('remove')
      .description('Remove an alert rule and its history')
      .argument('<rule>', 'rule name or id'),
  ).action((rule: string, flags: StoreFlags) =>
    runCommand(() =>
      withMonitoring(flags, async ({ engine }) => {
        await engine.deleteRule(rule);
        out(`Removed alert rule ${rule}`);
      }),
    ),
  );

  addStoreOptions(
    alerts
      .command('history')
      .description('State changes, newest first')
      .argument('[rule]', 'only this rule (name or id)')
      .option('--limit <n>', 'at most this many (default 100)')
      .option('--json', 'print JSON'),
  ).action((rule: string | undefined, flags: StoreFlags & { limit?: string; json?: boolean }) =>
    runCommand(() =>
      withMonitoring(flags, async ({ engine }) => {
        const limit = flags.limit === undefined ? 100 : Number(flags.limit);
        if (!Number.isSafeInteger(limit) || limit < 1)
          throw new InvalidArgumentError('--limit must be a positive integer');
        const events = await engine.history({ ...(rule !== undefined ? { rule } : {}), limit });
        if (flags.json) return json({ events: events.map(eventJson) });
        if (events.length === 0) return out('No state changes.');
        out(
          table([
            ['AT', 'RULE', 'STATE', 'FROM', 'VALUE', 'THRESHOLD', 'REASON'],
            ...events.map((e) => [
              new Date(e.atMs).toISOString(),
              e.rule,
              e.state,
              e.previous,
              e.value === null ? '-' : String(e.value),
              String(e.threshold),
              e.reason ?? '',
            ]),
          ]),
        );
      }),
    ),
  );

  addStoreOptions(
    alerts
      .command('evaluate')
      .description('Evaluate every rule (or one) now; waits for its webhooks and retraining commands')
      .argument('[rule]', 'only this rule (name or id)')
      .option('--json', 'print JSON'),
  ).action((rule: string | undefined, flags: StoreFlags & { json?: boolean }) =>
    runCommand(() =>
      withMonitoring(flags, async ({ engine }) => {
        const evaluations = await engine.evaluate(rule);
        if (flags.json) return json({ evaluations: evaluations.map(evaluationJson) });
        if (evaluations.length === 0) return out('No alert rules.');
        out(
          table([
            ['RULE', 'STATE', 'WAS', 'VALUE', 'THRESHOLD', 'REASON'],
            ...evaluations.map((e) => [
              e.rule,
              e.state,
              e.previous,
              e.value === null ? '-' : String(e.value),
              String(e.threshold),
              e.reason ?? '',
            ]),
          ]),
        );
      }),
    ),
  );
}
