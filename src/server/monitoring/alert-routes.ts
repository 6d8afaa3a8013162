import type { FastifyPluginAsync } from 'fastify';
import type {
  AlertEngine,
  AlertEvent,
  AlertRule,
  AlertRuleInput,
  DeliveryRecord,
  Evaluation,
  RetrainRun,
} from '../../monitoring/alerts/index.js';
import { isoOrNull } from '../../monitoring/index.js';
import { bodyAsSent } from '../api/index.js';

const errorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, code: { type: 'string' } },
} as const;

const duration = { type: ['string', 'integer'], description: 'a duration (30s, 5m, 1h) or milliseconds' };

const ruleBody = {
  type: 'object',
  required: ['name', 'model', 'expression'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 256 },
    model: { type: 'string', minLength: 1 },
    version: { type: ['string', 'null'], minLength: 1 },
    expression: {
      type: 'string',
      minLength: 1,
      description:
        'metric op threshold [over window (at most 366d)] [segment=key:value], e.g. "accuracy < 0.8 over 1d segment=region:EU"',
    },
    interval: { ...duration, description: 'evaluation interval, 1s to 366d (default 1m)' },
    for: {
      ...duration,
      description: 'how long the condition must hold before firing, at most 366d (default 0)',
    },
    reference: {
      type: ['string', 'null'],
      description:
        'drift reference: training (default), a dataset ref (adult@1), a file: URI or window:<since>/<until> (since before until)',
    },
    webhooks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['url'],
        additionalProperties: false,
        properties: { url: { type: 'string', minLength: 1 }, secret: { type: 'string', minLength: 1 } },
      },
    },
    retrain: {
      type: ['object', 'null'],
      required: ['command'],
      additionalProperties: false,
      properties: {
        command: { type: 'array', minItems: 1, items: { type: 'string' } },
        cwd: { type: 'string', minLength: 1 },
        timeoutMs: { type: 'integer', minimum: 1 },
        env: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
  },
} as const;

// Null for a time no Date holds (an event stored before windows were bounded): one such row must
// not fail a listing of every rule's history.
const iso = isoOrNull;

/** A rule as the API shows it (snake_case, ISO times, no webhook secrets). */
export function ruleJson(r: AlertRule) {
  return {
    id: r.id,
    name: r.name,
    model: r.model,
    version: r.version,
    expression: r.expression,
    metric: r.parsed.metric,
    op: r.parsed.op,
    threshold: r.parsed.threshold,
    window_ms: r.parsed.windowMs,
    segment: r.parsed.segment ?? null,
    interval_ms: r.intervalMs,
    for_ms: r.forMs,
    reference: r.reference,
    webhooks: r.webhooks,
    retrain: r.retrain,
    state: r.state,
    state_since: iso(r.stateSinceMs),
    value: r.value,
    last_evaluated: iso(r.lastEvalMs),
    reason: r.reason,
    created: iso(r.createdMs),
  };
}

export function eventJson(e: AlertEvent) {
  return {
    id: e.id,
    rule_id: e.ruleId,
    rule: e.rule,
    state: e.state,
    previous: e.previous,
    value: e.value,
    threshold: e.threshold,
    window_start: iso(e.windowStartMs),
    window_end: iso(e.windowEndMs),
    at: iso(e.atMs),
    reason: e.reason,
  };
}

export function evaluationJson(e: Evaluation) {
  return {
    rule: e.rule,
    state: e.state,
    previous: e.previous,
    value: e.value,
    threshold: e.threshold,
    reason: e.reason,
    ...(e.event ? { event: eventJson(e.event) } : {}),
  };
}

function deliveryJson(d: DeliveryRecord) {
  return {
    event_id: d.eventId,
    url: d.url,
    attempt: d.attempt,
    status: d.status,
    ok: d.ok,
    error: d.error,
    at: iso(d.atMs),
    duration_ms: d.durationMs,
  };
}

function runJson(r: RetrainRun) {
  return {
    id: r.id,
    event_id: r.eventId,
    command: r.command,
    status: r.status,
    started: iso(r.startedMs),
    finished: iso(r.finishedMs),
    exit_code: r.exitCode,
    output_tail: r.outputTail,
    model_version: r.modelVersion,
  };
}

const anyObject = { type: 'object', additionalProperties: true } as const;

/**
 * `/api/v1/monitoring/alerts`: rules (list, create, get, delete), their history, webhook
 * deliveries and retraining runs, and evaluation on demand. Reading needs `read`, evaluating `write`, creating and deleting rules `admin` (a rule may run a command on the server).
 */
export function alertRoutes(engine: AlertEngine): FastifyPluginAsync {
  return async (app) => {
    const base = '/api/v1/monitoring/alerts';
    const idParam = {
      type: 'object',
      required: ['rule'],
      properties: { rule: { type: 'string', description: 'rule id or name' } },
    } as const;

    app.get<{ Querystring: { model?: string } }>(
      base,
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary: 'Alert rules with their current state',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { model: { type: 'string', minLength: 1 } },
          },
          response: {
            200: { type: 'object', properties: { rules: { type: 'array', items: anyObject } } },
            400: errorBody,
          },
        },
      },
      async (req) => ({
        rules: (await engine.listRules(req.query.model !== undefined ? { model: req.query.model } : {})).map(
          ruleJson,
        ),
      }),
    );

    app.post<{ Body: AlertRuleInput }>(
      base,
      {
        config: { scope: 'admin' },
        // As sent, not coerced by AJV (1 → "1"): createRule checks every field, naming it.
        validatorCompiler: bodyAsSent,
        schema: {
          tags: ['monitoring'],
          summary: 'Create an alert rule',
          body: ruleBody,
          response: { 201: anyObject, 400: errorBody, 409: errorBody },
        },
      },
      async (req, reply) => {
        const rule = await engine.createRule(req.body);
        return reply.code(201).send(ruleJson(rule));
      },
    );

    app.get<{ Params: { rule: string } }>(
      `${base}/:rule`,
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary: 'One alert rule, with its recent retraining runs',
          params: idParam,
          response: { 200: anyObject, 404: errorBody },
        },
      },
      async (req) => ({
        ...ruleJson(await engine.getRule(req.params.rule)),
        runs: (await engine.runs(req.params.rule)).slice(0, 20).map(runJson),
      }),
    );

    app.delete<{ Params: { rule: string } }>(
      `${base}/:rule`,
      {
        config: { scope: 'admin' },
        schema: {
          tags: ['monitoring'],
          summary: 'Delete an alert rule with its history',
          params: idParam,
          response: { 204: { type: 'null' }, 404: errorBody },
        },
      },
      async (req, reply) => {
        await engine.deleteRule(req.params.rule);
        return reply.code(204).send();
      },
    );

    app.get<{ Querystring: { rule?: string; limit?: number } }>(
      `${base}/history`,
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary: 'State changes of every rule (or one), newest first',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              rule: { type: 'string', minLength: 1 },
              limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
            },
          },
          response: {
            200: { type: 'object', properties: { events: { type: 'array', items: anyObject } } },
            400: errorBody,
            404: errorBody,
          },
        },
      },
      async (req) => ({
        events: (
          await engine.history({
            ...(req.query.rule !== undefined ? { rule: req.query.rule } : {}),
            limit: req.query.limit ?? 100,
          })
        ).map(eventJson),
      }),
    );

    app.get<{ Params: { rule: string }; Querystring: { limit?: number } }>(
      `${base}/:rule/history`,
      {
        config: { scope: 'read' },
        schema: {
          tags: ['monitoring'],
          summary: "A rule's state changes, webhook deliveries and retraining runs",
          params: idParam,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 } },
          },
          response: { 200: anyObject, 400: errorBody, 404: errorBody },
        },
      },
      async (req) => ({
        events: (await engine.history({ rule: req.params.rule, limit: req.query.limit ?? 100 })).map(
          eventJson,
        ),
        deliveries: (await engine.deliveries(req.params.rule)).map(deliveryJson),
        runs: (await engine.runs(req.params.rule)).map(runJson),
      }),
    );

    app.post<{ Body: { rule?: string } | undefined }>(
      `${base}/evaluate`,
      {
        config: { scope: 'write' },
        schema: {
          tags: ['monitoring'],
          summary: 'Evaluate every rule (or one) now, whatever its schedule',
          body: {
            type: ['object', 'null'],
            additionalProperties: false,
            properties: { rule: { type: 'string', minLength: 1 } },
          },
          response: {
            200: { type: 'object', properties: { evaluations: { type: 'array', items: anyObject } } },
            400: errorBody,
            404: errorBody,
          },
        },
      },
      async (req) => ({
        evaluations: (await engine.evaluate(req.body?.rule ?? undefined)).map(evaluationJson),
      }),
    );

    app.post<{ Params: { rule: string } }>(
      `${base}/:rule/evaluate`,
      {
        config: { scope: 'write' },
        schema: {
          tags: ['monitoring'],
          summary: 'Evaluate one rule now',
          params: idParam,
          response: { 200: anyObject, 404: errorBody },
        },
      },
      async (req) => evaluationJson((await engine.evaluate(req.params.rule))[0]!),
    );
  };
}
